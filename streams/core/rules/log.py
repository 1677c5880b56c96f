"""What the rules stage knows of one rule from its partition of ``dom.rules.v1``, in order, and
what it writes back to keep the topic's latest record for the rule the right one.

The topic is compacted: a worker started later folds only the latest record of each rule. When
that record is a refused version, the valid one before it would be gone, so the stage publishes
the version in force again after a refusal. That copy lands wherever the log is by then: after
a tombstone, or a newer version, published meanwhile. Compaction would keep the copy, and bring
back a deleted rule or an older version. So the stage follows every rule's records in the
partition's order (:class:`RuleLog`, kept in its table) and answers each one:

- a refused version: the version in force again, if there is one;
- a version no newer than the rule has had, after a deletion or a newer version (the late copy
  of a race, or an old edit replayed): the tombstone, or the version in force, again, so that
  the latest record is right once more;
- anything else: nothing.

Every function is pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from schemas.models import Rule


class RuleLog(BaseModel):
    """One rule's history in its partition, as far as the stage has read it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    highest: int = 0  # the highest version it had, refused ones included
    deleted: bool = False  # its latest record (not a late copy) was a tombstone
    valid: Rule | None = None  # the version in force (None: none, or deleted)

    @classmethod
    def from_stored(cls, raw: bytes) -> RuleLog:
        return cls.model_validate_json(raw)

    def stored(self) -> bytes:
        return self.model_dump_json().encode()


@dataclass(frozen=True)
class Answer:
    """What the stage writes to the rules topic after a record: the version in force again,
    a tombstone again, or nothing."""

    republish: Rule | None = None
    tombstone: bool = False


NOTHING = Answer()


def on_tombstone(log: RuleLog) -> tuple[RuleLog, Answer]:
    return RuleLog(highest=log.highest, deleted=True), NOTHING


def on_refused(log: RuleLog, rule: Rule) -> tuple[RuleLog, Answer]:
    """A version workers refuse: the one in force is published again after it."""
    kept = log.model_copy(update={"highest": max(log.highest, rule.version)})
    if log.valid is not None and log.valid.version < rule.version:
        return kept, Answer(republish=log.valid)
    return kept, NOTHING


def on_valid(log: RuleLog, rule: Rule) -> tuple[RuleLog, Answer]:
    """A valid version: in force, unless it comes late (no newer than a deletion it follows,
    or older than the version in force); then what should be latest is written again."""
    if log.deleted and rule.version <= log.highest:
        return log, Answer(tombstone=True)
    if log.valid is not None and rule.version < log.valid.version:
        return log, Answer(republish=log.valid)
    if log.valid is not None and rule.version == log.valid.version:
        return log, NOTHING  # the copy published after a refusal, or a redelivery
    return RuleLog(highest=max(log.highest, rule.version), valid=rule), NOTHING

"""The rules stage's reading of one rule's records: a refusal has the version in force
published again; a late copy after a deletion or a newer version is answered with what should
be latest, so compaction never keeps a deleted rule or an older version."""

from streams.core.rules.log import NOTHING, Answer, RuleLog, on_refused, on_tombstone, on_valid
from tests.unit.factories import make_rule


def rule(version: int):  # type: ignore[no-untyped-def]
    return make_rule("R-1", version=version)


def test_a_refusal_has_the_version_in_force_published_again() -> None:
    log, _ = on_valid(RuleLog(), rule(2))
    log, answer = on_refused(log, rule(3))
    assert answer == Answer(republish=rule(2)) and log.highest == 3
    log, answer = on_valid(log, rule(2))  # the copy comes back: nothing more
    assert answer == NOTHING and log.valid == rule(2)


def test_the_copy_that_lands_after_a_deletion_is_deleted_again() -> None:
    log, _ = on_valid(RuleLog(), rule(2))
    log, answer = on_refused(log, rule(3))
    log, _ = on_tombstone(log)  # published before the copy landed
    log, answer = on_valid(log, answer.republish)  # type: ignore[arg-type]
    assert answer == Answer(tombstone=True) and log.deleted


def test_the_copy_that_lands_after_a_newer_version_is_superseded_again() -> None:
    log, _ = on_valid(RuleLog(), rule(2))
    log, answer = on_refused(log, rule(3))
    log, _ = on_valid(log, rule(4))
    log, late = on_valid(log, answer.republish)  # type: ignore[arg-type]
    assert late == Answer(republish=rule(4)) and log.valid == rule(4)


def test_a_rule_created_again_after_its_deletion_is_in_force() -> None:
    log, _ = on_valid(RuleLog(), rule(2))
    log, _ = on_tombstone(log)
    log, answer = on_valid(log, rule(3))
    assert answer == NOTHING and log.valid == rule(3) and not log.deleted


def test_a_refusal_with_nothing_in_force_asks_for_nothing() -> None:
    log, answer = on_refused(RuleLog(), rule(1))
    assert answer == NOTHING
    log, answer = on_valid(log, rule(1))  # never valid before: it is in force now
    assert answer == NOTHING and log.valid == rule(1)


def test_the_log_survives_the_table() -> None:
    log, _ = on_valid(RuleLog(), rule(2))
    log, _ = on_refused(log, rule(5))
    assert RuleLog.from_stored(log.stored()) == log

"""The rules stage: checks every rule published to ``dom.rules.v1`` and reports the bad ones.

Every worker's network view follows the rules topic and applies valid rules itself (an
invalid one never replaces the version in force). This agent is the single place that
tells the operator: the worker owning the rule's partition sends a rule that cannot be
decoded or compiled to the dead-letter topic, with the precise error (a condition past a
size limit of ``streams.core.rules.expr`` too, or too costly to run on every order: see
``streams.core.rules.cost``). It then publishes the version in force again, so that compaction
keeps a valid version as the latest and a worker started later never finds only the refused one.
It decides on what it read of the rule in the partition's order (its table,
:mod:`streams.core.rules.log`), never on the view, which may lag: and when that copy lands
after a deletion or a newer version published meanwhile, the stage writes the tombstone or the
newer version again, so compaction never keeps a deleted rule or an older version.

It also tells of rules in force that misbehave on orders (``RuleReporter``): a condition that
failed on an order (it did not fire) or ran over the evaluation budget counts in
``dom_rule_errors_total{rule_id, kind}`` and is logged, once a minute at most per rule.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from config.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.models import Rule
from streams.core.rules.directives import ERROR, RuleFailure
from streams.core.rules.log import NOTHING, Answer, RuleLog, on_refused, on_tombstone, on_valid
from streams.core.rules.ruleset import RuleError, compile_rule
from streams.metrics import PipelineMetrics
from streams.runtime import BatchTable, Runtime, Sends, Tombstone
from streams.views import NetworkView

log = logging.getLogger(__name__)
STAGE = "rules"
LOG_EVERY = 60.0
"""Seconds between two log lines about the same rule misbehaving (every time is counted)."""


def build_rules_stage(
    runtime: Runtime, settings: Settings, codec: Codec, view: NetworkView
) -> None:
    logs = BatchTable(runtime.table("rules"), RuleLog.from_stored, RuleLog.stored)
    # The view's sets share their watch: this hears of every rule set the worker will apply.
    view.rules.watch.listen(RuleReporter(runtime.metrics))

    def answer(event: Any, known: RuleLog, said: Answer, sends: Sends) -> None:
        logs.put(event.key, known, event)
        if said.republish is not None:
            sends.add([said.republish])
        if said.tombstone:
            sends.add([Tombstone(registry.RULES.name, event.key)])

    async def handle(event: Any, sends: Sends) -> None:
        if event.key is None:
            sends.dead_letter(event, "a rule needs its rule_id as key", STAGE, "bad_key")
            return
        known = logs.get(event.key) or RuleLog()
        if event.value is None:
            answer(event, *on_tombstone(known), sends)  # the views delete the rule
            return
        try:
            rule = codec.decode_as(event.value, Rule)
        except DecodeError as exc:
            sends.dead_letter(event, exc.reason, STAGE, "undecodable")
            return
        if event.key != rule.rule_id.encode():
            sends.dead_letter(event, f"key must be the rule_id {rule.rule_id!r}", STAGE, "bad_key")
            return
        refusal = _refusal(rule)
        if refusal is not None:
            sends.dead_letter(
                event, f"{refusal} (version {rule.version} refused)", STAGE, "invalid_rule"
            )
            if known.valid is None and not known.deleted:  # read before the stage kept a log
                known = known.model_copy(update={"valid": view.rules.get(rule.rule_id)})
            answer(event, *on_refused(known, rule), sends)
            return
        known, said = on_valid(known, rule)
        if said == NOTHING:
            log.info("rule %s v%s accepted", rule.rule_id, rule.version)
        else:
            log.info(
                "rule %s v%s came late: the latest is written again", rule.rule_id, rule.version
            )
        answer(event, known, said, sends)

    runtime.stage(STAGE, [registry.RULES.name], handle, table=logs)


def _refusal(rule: Rule) -> str | None:
    """Why workers refuse ``rule``, or None. Whatever compiling raises is a refusal, as the
    network view treats it: a bug of the checker must not let a rule through unreported."""
    try:
        compile_rule(rule)
    except RuleError as exc:
        return str(exc)
    except Exception as exc:
        log.exception("checking rule %s v%s failed", rule.rule_id, rule.version)
        return f'rule "{rule.rule_id}": could not be checked: {exc!r}'
    return None


class RuleReporter:
    """Counts every failure or slow run of a rule on an order, and logs it, at most once per
    ``LOG_EVERY`` seconds per rule and kind (saying how many it stands for): a rule failing on
    every order must not flood the log."""

    def __init__(
        self, metrics: PipelineMetrics, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.metrics = metrics
        self.clock = clock
        self._last: dict[tuple[str, str], tuple[float, int]] = {}  # when logged, how many since

    def __call__(self, failure: RuleFailure) -> None:
        self.metrics.rule_errors.labels(failure.rule_id, failure.kind).inc()
        key, now = (failure.rule_id, failure.kind), self.clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < LOG_EVERY:
            self._last[key] = (last[0], last[1] + 1)
            return
        self._last[key] = (now, 0)
        what = "failed on an order and did not fire" if failure.kind == ERROR else "ran slow"
        since = f" ({last[1]} more since the last line)" if last is not None and last[1] else ""
        log.warning("rule %s %s: %s%s", failure.rule_id, what, failure.message, since)

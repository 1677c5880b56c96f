"""The rules stage: checks every rule published to ``dom.rules.v1`` and reports the bad ones.

Every worker's network view follows the rules topic and applies valid rules itself (an
invalid one never replaces the version in force). This agent is the single place that
tells the operator: the worker owning the rule's partition sends a rule that cannot be
decoded or compiled to the dead-letter topic, with the precise error. It then publishes the
version in force again, so that compaction keeps a valid version as the latest and a worker
started later never finds only the refused one.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from dom.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.models import Rule
from streams.core.rules import RuleError, compile_rule
from streams.outbox import Outbox, Sends
from streams.raw import raw_topic
from streams.views import NetworkView

log = logging.getLogger(__name__)
STAGE = "rules"


def build_rules_stage(
    app: faust.App, settings: Settings, codec: Codec, outbox: Outbox, view: NetworkView
) -> None:
    source = raw_topic(app, settings, registry.RULES.name)

    async def handle(event: Any, sends: Sends) -> None:
        if event.value is None:
            return  # a tombstone: the views delete the rule
        try:
            rule = codec.decode_as(event.value, Rule)
        except DecodeError as exc:
            sends.dead_letter(event, exc.reason, STAGE, "undecodable")
            return
        if event.key != rule.rule_id.encode():
            sends.dead_letter(event, f"key must be the rule_id {rule.rule_id!r}", STAGE, "bad_key")
            return
        try:
            compile_rule(rule)
        except RuleError as exc:
            sends.dead_letter(
                event, f"{exc} (version {rule.version} refused)", STAGE, "invalid_rule"
            )
            in_force = view.rules.get(rule.rule_id)
            if in_force is not None and in_force.version < rule.version:
                sends.add([in_force])
            return
        log.info("rule %s v%s accepted", rule.rule_id, rule.version)

    @app.agent(source, name=f"{settings.app_id}.rules")
    async def rules_agent(stream: Any) -> None:
        await outbox.process(stream, handle, STAGE)

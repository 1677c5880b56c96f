"""The version in force published again after a refused one never brings back a rule deleted,
or an older version superseded, meanwhile: on the real broker, what compaction would keep of
each rule (its latest record) and what the worker holds are right once the stage is done."""

from __future__ import annotations

from pathlib import Path

from connectors.producer import ContractProducer
from schemas.codec import Codec
from schemas.models import Rule
from tests.e2e.harness import Pipeline
from tests.e2e.test_rules_live import live_rules, wait_for_rules
from tests.unit.factories import make_rule

BROKEN = "order.total >"  # refused: the condition does not parse


def latest_records(pipeline: Pipeline) -> dict[str, Rule | None]:
    """What compaction keeps of the rules topic: each rule's latest record (None: a tombstone)."""
    codec = Codec()
    latest: dict[str, Rule | None] = {}
    name = pipeline.settings.topic("dom.rules.v1")
    for message in pipeline.read_changelog_messages_raw(name, tombstones=True):
        key, value = message.key().decode(), message.value()
        latest[key] = None if value is None else codec.decode_as(value, Rule)  # type: ignore[assignment]
    return latest


def held(body: dict) -> dict[str, int]:  # type: ignore[type-arg]
    return {r["rule_id"]: r["version"] for r in body["rules"]}


def test_a_refusal_racing_a_deletion_or_a_newer_version_never_brings_back_the_old_one(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(make_settings(), tmp_path)
    pipeline.start_worker("w1")
    try:
        with ContractProducer(pipeline.settings) as producer:
            producer.send_all([make_rule("GONE", version=2), make_rule("NEWER", version=2)])
        wait_for_rules(pipeline, lambda b: held(b) == {"GONE": 2, "NEWER": 2})

        # Back to back: a refused version, then at once a deletion or a newer valid version.
        # Whatever the stage publishes again after the refusal lands after them.
        with ContractProducer(pipeline.settings) as producer:
            producer.send(make_rule("GONE", version=3, condition=BROKEN))
            producer.send_raw("dom.rules.v1", b"GONE", None)
            producer.send(make_rule("NEWER", version=3, condition=BROKEN))
            producer.send(make_rule("NEWER", version=4))
        # And a copy of version 2 landing late, as the stage's own copy does when it loses
        # the race by a wider margin (a slow broker, a restart in between).
        with ContractProducer(pipeline.settings) as producer:
            producer.send_all([make_rule("GONE", version=2), make_rule("NEWER", version=2)])

        latest = latest_records(pipeline)  # read until quiet: the stage has answered all
        assert latest["GONE"] is None, f"GONE would come back after compaction: {latest['GONE']}"
        assert latest["NEWER"] is not None and latest["NEWER"].version == 4, latest["NEWER"]
        assert held(live_rules(pipeline)) == {"NEWER": 4}
        # a worker started now folds only what compaction keeps: the same set
        pipeline.start_worker("w2")
        fresh, _ = wait_for_rules(pipeline, lambda b: held(b) == {"NEWER": 4}, worker="w2")
        assert held(fresh) == {"NEWER": 4}
    finally:
        pipeline.stop_all()

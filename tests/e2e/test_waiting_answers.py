"""An order's state after one sku's answer waits unwritten for the next answer
(``streams/runtime/acks.py``): the first answer is not committed meanwhile, so a worker killed
while it waits loses nothing, and the order is written twice, at its placement and at its
decision, instead of once more for the first answer.

Two workers: w1 owns the order and one of its skus, w2 the other sku. w2 is stopped
(SIGSTOP), so only w1's sku answers; w1 applies that answer, its state waits, and w1 is
SIGKILLed. w2 goes on, answers its sku and, once the group has given it w1's partitions, reads
the first answer again from the committed offset and routes the order."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from config.settings import Settings
from schemas import topics as registry
from streams.core.saga.state import OrderState
from tests.e2e.conftest import static_pair
from tests.e2e.harness import Pipeline, group_members, partition_of
from tests.e2e.invariants import check_invariants, wait_for_outcomes
from tests.unit.factories import make_order

PARTITIONS = 4
SESSION_S = 30
"""Longer than w2 stays stopped (else the group would hand its skus to w1); the group waits
this long for the killed w1 (static members) before w2 gets its partitions."""
SKUS = [f"SKU-{n}" for n in range(16)]
STOCK = dict.fromkeys(SKUS, 10)


def _holds(members: dict[str, frozenset[tuple[str, int]]], worker: str, topic: str) -> set[int]:
    [held] = [parts for name, parts in members.items() if f"-{worker}-" in name]
    return {partition for name, partition in held if name == topic}


def _waiting_keys(pipeline: Pipeline, worker: str) -> float:
    return sum(
        s.value
        for s in pipeline.metric_samples(worker)
        if s.name == "dom_stage_waiting_keys" and s.labels.get("stage") == "orders"
    )


def _committed_and_end(settings: Settings, topic: str, partition: int) -> tuple[int, int]:
    """The workers' committed offset of the partition, and its end."""
    consumer = Consumer({**settings.librdkafka_config(), "group.id": settings.app_id})
    try:
        [committed] = consumer.committed([TopicPartition(topic, partition)], timeout=30)
        _, end = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
        return committed.offset, end
    finally:
        consumer.close()


def test_an_answer_whose_change_waits_is_not_lost_when_its_worker_is_killed(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(topic_partitions=PARTITIONS)
    with static_pair(settings, tmp_path, SESSION_S, STOCK) as pipeline:
        members = group_members(settings)
        orders_topic = settings.topic(registry.ORDERS.name)
        commands_topic = settings.topic(registry.SKU_COMMANDS.name)
        w1_orders = _holds(members, "w1", orders_topic)
        order_id = next(
            o for n in range(1000) if partition_of(o := f"W-{n}", PARTITIONS) in w1_orders
        )
        here = next(
            s for s in SKUS if partition_of(s, PARTITIONS) in _holds(members, "w1", commands_topic)
        )
        away = next(
            s for s in SKUS if partition_of(s, PARTITIONS) in _holds(members, "w2", commands_topic)
        )
        w1, w2 = pipeline.workers["w1"], pipeline.workers["w2"]

        w2._signal(signal.SIGSTOP)
        try:
            pipeline.produce([make_order(order_id, lines=[(here, 1), (away, 1)])])
            deadline = time.monotonic() + 20
            while _waiting_keys(pipeline, "w1") < 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _waiting_keys(pipeline, "w1") >= 1, (
                f"w1 never kept {order_id}'s state waiting after {here}'s answer: " + w1.log_tail()
            )
            results = settings.topic(registry.SKU_RESULTS.name)
            time.sleep(3.0)  # three of the workers' commit intervals
            committed, end = _committed_and_end(
                settings, results, partition_of(order_id, PARTITIONS)
            )
            assert committed < end, (
                f"{here}'s answer was committed ({committed} of {end}) while the state it "
                "changed was not written"
            )
            w1.kill()
        finally:
            w2._signal(signal.SIGCONT)

        statuses = wait_for_outcomes(pipeline, {order_id}, timeout=SESSION_S * 4)
        check_invariants(pipeline, {order_id}, statuses)
        # by id: a status sent again after a takeover is the same record (same event_id)
        mine = {s.event_id: s for s in statuses if s.order_id == order_id}
        assert [s.status.value for s in mine.values()] == ["RECEIVED", "ALLOCATED"], mine
        [outcome] = [s for s in mine.values() if s.status.value == "ALLOCATED"]
        assert sorted(line.sku for s in outcome.shipments for line in s.lines) == sorted(
            [here, away]
        )
        changelog = settings.topic(registry.ORDERS_CHANGELOG.name)
        written = [
            OrderState.from_stored(m.value())
            for m in pipeline.read_changelog_messages_raw(changelog)
            if m.key() == order_id.encode()
        ]
        # At its placement, then at its decision (again, should a replay apply the last
        # answer again): never after the first answer alone.
        assert [(w.status, w.pending) for w in written[:1]] == [
            ("RECEIVED", {here: None, away: None})
        ]
        assert {w.status for w in written[1:]} == {"ALLOCATED"}, [w.status for w in written]

"""Contract events through the real broker with both Kafka clients the pipeline uses.

Connectors produce with confluent-kafka (`ContractProducer`); the Faust stages read and write with
aiokafka. Both must carry codec-encoded records unchanged, and both must put one key on one
partition, or the events of one order would reach two different owners.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from confluent_kafka import Consumer

from config.settings import Settings
from connectors.producer import ContractProducer
from dom.admin import create_topics
from schemas.codec import Codec
from schemas.models import Message, OrderCancelled, OrderPlaced
from schemas.topics import ORDERS
from tests.unit.factories import make_cancel, make_order


@dataclass(frozen=True)
class Received:
    """One record as a consumer saw it."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def _consume_confluent(
    settings: Settings, topic: str, expected: int, timeout: float = 30.0
) -> list[Received]:
    """Read ``topic`` from the beginning with a confluent-kafka consumer, in arrival order."""
    consumer = Consumer(
        settings.librdkafka_config(
            **{
                "group.id": f"test-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
    )
    consumer.subscribe([topic])
    got: list[Received] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None
            got.append(Received(partition, offset, msg.key(), msg.value()))
    finally:
        consumer.close()
    return got


def _order_events() -> list[Message]:
    """Several orders, some placed then cancelled, interleaved as they would arrive."""
    events: list[Message] = []
    for i in range(8):
        order_id = f"ORD-{i:03d}"
        events.append(make_order(order_id, lines=[("SKU-1", i + 1), ("SKU-2", 1)]))
    for i in range(0, 8, 2):
        order_id = f"ORD-{i:03d}"
        events.append(make_cancel(order_id, reason=f"customer request {i}"))
    # A later cancel of the same order, so one key carries three events in a known order.
    events.append(make_cancel("ORD-000", event_id="cancel-ORD-000-again", reason="duplicate"))
    return events


def _assert_order_events_kept_together(sent: list[Message], received: list[Received]) -> None:
    """Keys are order ids, and every order's events sit on one partition in the sent order."""
    codec = Codec()
    decoded = [(r, codec.decode(r.value or b"")) for r in received]
    assert sorted(m.model_dump_json() for _, m in decoded) == sorted(
        m.model_dump_json() for m in sent
    )
    for record, model in decoded:
        assert record.key == model.order_id.encode()  # type: ignore[attr-defined]

    partitions: dict[str, set[int]] = defaultdict(set)
    seen: dict[str, list[tuple[int, Message]]] = defaultdict(list)
    for record, model in decoded:
        order_id = model.order_id  # type: ignore[attr-defined]
        partitions[order_id].add(record.partition)
        seen[order_id].append((record.offset, model))
    expected: dict[str, list[Message]] = defaultdict(list)
    for model in sent:
        expected[model.order_id].append(model)  # type: ignore[attr-defined]

    assert set(seen) == set(expected)
    for order_id, events in seen.items():
        assert len(partitions[order_id]) == 1, f"{order_id} spread over {partitions[order_id]}"
        assert [m for _, m in sorted(events, key=lambda e: e[0])] == expected[order_id]


def test_confluent_contract_producer_round_trip(settings: Settings) -> None:
    create_topics(settings, [ORDERS])
    topic = settings.topic(ORDERS.name)
    events = _order_events()

    producer = ContractProducer(settings)
    producer.send_all(events)
    report = producer.flush()

    assert (report.delivered, report.failed, report.errors) == (len(events), 0, [])
    received = _consume_confluent(settings, topic, expected=len(events))
    assert len(received) == len(events)
    assert {type(Codec().decode(r.value or b"")) for r in received} == {
        OrderPlaced,
        OrderCancelled,
    }
    _assert_order_events_kept_together(events, received)
    # More than one partition in use: the per-order check above is not trivially true.
    assert len({r.partition for r in received}) > 1


async def _aiokafka_produce(
    settings: Settings, topic: str, records: list[tuple[bytes, bytes]]
) -> list[int]:
    """Produce with an idempotent, ``acks=all`` aiokafka producer; the partition of each."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=settings.kafka_client_id,
        enable_idempotence=True,
        acks="all",
    )
    await producer.start()
    try:
        partitions = []
        for key, value in records:
            metadata = await producer.send_and_wait(topic, value=value, key=key)
            partitions.append(metadata.partition)
        return partitions
    finally:
        await producer.stop()


async def _aiokafka_consume_in_group(
    settings: Settings, topic: str, group_id: str, expected: int, timeout: float = 30.0
) -> tuple[list[Received], dict[int, int | None], dict[int, int]]:
    """Read ``topic`` in consumer group ``group_id`` and commit.

    Returns the records, the group's committed offset per partition and each partition's end.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=settings.kafka_client_id,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                got.extend(Received(r.partition, r.offset, r.key, r.value) for r in records)
        await consumer.commit()
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = await consumer.end_offsets(tps)
        committed = {tp.partition: await consumer.committed(tp) for tp in tps}
        return got, committed, {tp.partition: end for tp, end in ends.items()}
    finally:
        await consumer.stop()


def test_aiokafka_idempotent_producer_and_group_consumer_round_trip(settings: Settings) -> None:
    create_topics(settings, [ORDERS])
    topic = settings.topic(ORDERS.name)
    events = _order_events()
    codec = Codec()
    records = [(e.order_id.encode(), codec.encode(e)) for e in events]  # type: ignore[attr-defined]
    group_id = f"{settings.topic_prefix}aiokafka-group"

    partitions = asyncio.run(_aiokafka_produce(settings, topic, records))
    received, committed, ends = asyncio.run(
        _aiokafka_consume_in_group(settings, topic, group_id, expected=len(events))
    )

    assert len(received) == len(events)
    _assert_order_events_kept_together(events, received)
    # The broker put each record where the producer said it did.
    sent_partition = {value: p for (_key, value), p in zip(records, partitions, strict=True)}
    assert {r.value: r.partition for r in received} == sent_partition
    # The group committed everything it read: a restart of the group would read nothing again.
    assert committed == ends
    assert sum(ends.values()) == len(events)


def test_confluent_and_aiokafka_put_a_key_on_the_same_partition(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(topic_partitions=6)
    create_topics(settings, [ORDERS])
    topic = settings.topic(ORDERS.name)
    orders = [make_order(f"ORD-{uuid.uuid4().hex[:12]}") for _ in range(40)]

    with ContractProducer(settings) as producer:  # librdkafka, partitioner murmur2_random
        producer.send_all(orders)
    assert (producer.report.delivered, producer.report.failed) == (len(orders), 0)
    codec = Codec()
    cancels = [make_cancel(o.order_id) for o in orders]
    aiokafka_partitions = asyncio.run(
        _aiokafka_produce(  # aiokafka's default partitioner
            settings, topic, [(c.order_id.encode(), codec.encode(c)) for c in cancels]
        )
    )

    received = _consume_confluent(settings, topic, expected=2 * len(orders))
    assert len(received) == 2 * len(orders)
    by_producer: dict[str, dict[type[Message], int]] = defaultdict(dict)
    for record in received:
        model = codec.decode(record.value or b"")
        assert record.key == model.order_id.encode()  # type: ignore[attr-defined]
        by_producer[model.order_id][type(model)] = record.partition  # type: ignore[attr-defined]

    mismatched = {
        order_id: placements
        for order_id, placements in by_producer.items()
        if placements[OrderPlaced] != placements[OrderCancelled]
    }
    assert mismatched == {}, "confluent-kafka and aiokafka disagree on the partition of a key"
    assert [by_producer[c.order_id][OrderCancelled] for c in cancels] == aiokafka_partitions
    # The keys spread over the topic, so agreeing is not agreeing on a single partition.
    assert len({p[OrderPlaced] for p in by_producer.values()}) >= 4

"""Small helpers for tests that cross a real broker: produce and read back with confluent-kafka."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    Producer,
    TopicPartition,
)

from config.settings import Settings
from dom.admin import admin_client


def produce(
    settings: Settings,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    partition: int | None = None,
) -> int:
    """Produce (key, value) pairs durably (to ``partition``, or by key); return how many the
    broker acknowledged."""
    acked: list[bool] = []
    producer = Producer(settings.producer_config())
    where = {} if partition is None else {"partition": partition}
    for key, value in records:
        producer.produce(
            topic,
            value=value,
            key=key,
            on_delivery=lambda err, _msg: acked.append(err is None),
            **where,
        )
        producer.poll(0)
    producer.flush(30)
    return sum(acked)


def committed_offsets(settings: Settings, group: str) -> list[TopicPartition]:
    """The offsets ``group`` has committed, as the broker lists them."""
    admin = admin_client(settings)  # held until the answer is in: it answers the future
    [listed] = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)]).values()
    return list(listed.result(timeout=30).topic_partitions)


Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def consume(
    settings: Settings,
    topic: str,
    expected: int,
    timeout: float = 30.0,
    until: Callable[[list[Record]], bool] | None = None,
) -> list[Record]:
    """Read ``topic`` from the beginning until ``expected`` records arrived (or, given
    ``until``, until it holds for what arrived) or time ran out."""
    enough = until or (lambda got: len(got) >= expected)
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
    got: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        while not enough(got) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            got.append((msg.key(), msg.value(), list(msg.headers() or [])))
    finally:
        consumer.close()
    return got

"""Small helpers for tests that cross a real broker: produce and read back with confluent-kafka."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, Producer

from config.settings import Settings


def produce(
    settings: Settings, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]
) -> int:
    """Produce (key, value) pairs durably; return how many the broker acknowledged."""
    acked: list[bool] = []
    producer = Producer(settings.producer_config())
    for key, value in records:
        producer.produce(
            topic, value=value, key=key, on_delivery=lambda err, _msg: acked.append(err is None)
        )
        producer.poll(0)
    producer.flush(30)
    return sum(acked)


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

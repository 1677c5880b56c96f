"""On a real broker: the pipeline's producers compress their batches as
``DOM_PRODUCER_COMPRESSION`` says (a worker's, which writes the changelogs and the contract's
records, and the connectors' and command line's), and the readers its users run read them back:
librdkafka (the warehouses' and channels' consumers, ``dom`` itself) and aiokafka (the workers).

What is compressed is seen as an SRE sees it: the bytes a consumer received from the broker,
against the bytes of the records it read."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer

from config.settings import Settings
from dom.admin import create_topics
from dom.bench_kafka import ReceivedBytes
from schemas.topics import Direction, Topic
from streams.runtime.faust_app import faust_app
from streams.runtime.side_consumer import side_consumer_config
from tests.integration.kafka_io import produce

pytestmark = pytest.mark.broker

RECORDS = 300
Pairs = list[tuple[bytes, bytes]]


def _records() -> Pairs:
    """Values much like the orders' changelog: JSON order states alike but for their ids."""
    pairs = []
    for i in range(RECORDS):
        order_id = f"o-{i:05d}"
        state = {
            "order": {"order_id": order_id, "channel": "WEB", "customer": {"email": "a@b.c"}},
            "status": "ALLOCATED",
            "shipments": {
                f"{order_id}-1-DC-{n}": {"location_id": f"DC-{n}", "lines": [{"sku": f"S{n}"}]}
                for n in range(8)
            },
            "history": [{"status": s, "reason": "routed to the nearest DC"} for s in "AB"],
        }
        pairs.append((order_id.encode(), json.dumps(state).encode()))
    return pairs


async def _send_as_a_worker(settings: Settings, topic: str, records: Pairs) -> None:
    """Send through the producer a worker's Faust app builds, as the stages do."""
    producer = faust_app(settings).producer
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, key, value, 0, None, None)
        await producer.flush()
    finally:
        await producer.stop()


def _send_as_a_connector(settings: Settings, topic: str, records: Pairs) -> None:
    """Send through a producer of the contract's settings, as connectors and ``dom`` do."""
    assert produce(settings, topic, records, partition=0) == len(records)


def _read_with_librdkafka(settings: Settings, topic: str, expected: int) -> tuple[Pairs, int]:
    """The records of ``topic`` and the bytes the consumer received from the broker for them
    (librdkafka's statistics: every response, framing included)."""
    received = ReceivedBytes(every_ms=100)
    consumer = Consumer(
        settings.librdkafka_config(
            **{
                "group.id": f"test-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                **received.config(),
            }
        )
    )
    consumer.subscribe([topic])
    got: Pairs = []
    deadline = time.monotonic() + 30
    try:
        while len(got) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                got.append((msg.key() or b"", msg.value() or b""))
        wire_bytes = received.total(consumer)
    finally:
        consumer.close()
    return got, wire_bytes


async def _read_with_aiokafka(settings: Settings, topic: str, expected: int) -> Pairs:
    consumer = AIOKafkaConsumer(
        topic, auto_offset_reset="earliest", **side_consumer_config(settings.aiokafka_config())
    )
    await consumer.start()
    got: Pairs = []
    try:
        deadline = time.monotonic() + 30
        while len(got) < expected and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                got.extend((r.key or b"", r.value or b"") for r in batch)
    finally:
        await consumer.stop()
    return got


Sender = Callable[[Settings, str, Pairs], None]
SENDERS: dict[str, Sender] = {
    "worker": lambda settings, topic, records: asyncio.run(
        _send_as_a_worker(settings, topic, records)
    ),
    "connector": _send_as_a_connector,
}


@pytest.mark.parametrize("sender", sorted(SENDERS))
@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_what_a_producer_sends_is_compressed_as_set_and_every_reader_reads_it(
    make_settings: Callable[..., Settings], sender: str, compression: str
) -> None:
    settings = make_settings(producer_compression=compression, topic_partitions=1)
    check = Topic(f"compression-{sender}", "key", (), Direction.INTERNAL)
    create_topics(settings, [check])
    topic = settings.topic(check.name)
    records = _records()
    record_bytes = sum(len(key) + len(value) for key, value in records)

    SENDERS[sender](settings, topic, records)

    read, wire_bytes = _read_with_librdkafka(settings, topic, len(records))
    assert read == records
    assert asyncio.run(_read_with_aiokafka(settings, topic, len(records))) == records
    if compression == "none":
        assert wire_bytes >= record_bytes
    else:  # about a tenth: alike values, and a batch per linger
        assert 0 < wire_bytes < record_bytes / 4

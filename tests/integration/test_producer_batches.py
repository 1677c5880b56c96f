"""On a real broker: a worker's producer sends a batch's records in few produce requests, as
many as ``DOM_PRODUCER_BATCH_BYTES`` lets one partition's batch hold, and every record arrives.

A stage sends all its records, then flushes and waits (streams/runtime/outbox.py), and the
producer keeps one request in flight to a broker: each request it takes is a round trip the
stage waits for. The requests are counted as the broker counts them (its produce request
rate, what an SRE watches), on the worker's own client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from config.settings import Settings
from dom.admin import create_topics
from schemas.topics import Direction, Topic
from streams.runtime.faust_app import faust_app
from streams.runtime.side_consumer import side_consumer_config

pytestmark = pytest.mark.broker

RECORDS = 300
VALUE_BYTES = 4_500
"""About an order state's size: 300 of them are 1.35 MB, 82 batches of Faust's default 16 KB."""


async def _send_as_a_stage(settings: Settings, topic: str) -> tuple[int, int]:
    """Send RECORDS values to one partition through the producer a worker's Faust app builds,
    then flush, as a stage's batch does; the produce requests it took and the records sent."""
    producer = faust_app(settings).producer
    await producer.start()
    requests = 0
    try:
        client = producer._ensure_producer().client
        send = client.send

        async def counted(node_id: int, request: Any, **kwargs: Any) -> Any:
            nonlocal requests
            if type(request).__name__.startswith("ProduceRequest"):
                requests += 1
            return await send(node_id, request, **kwargs)

        client.send = counted
        for n in range(RECORDS):
            value = f"{n:06d}".encode() * (VALUE_BYTES // 6)
            await producer.send(topic, f"o-{n}".encode(), value, 0, None, None)
        await producer.flush()
    finally:
        await producer.stop()
    return requests, RECORDS


async def _read(settings: Settings, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, auto_offset_reset="earliest", **side_consumer_config(settings.aiokafka_config())
    )
    await consumer.start()
    keys: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(keys) < RECORDS and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                keys.extend(r.key or b"" for r in batch)
    finally:
        await consumer.stop()
    return keys


@pytest.mark.parametrize("batch_bytes", [1_000_000, 16_384])
def test_a_stage_s_records_go_out_in_as_many_requests_as_batches_of_the_setting_hold(
    make_settings: Callable[..., Settings], batch_bytes: int
) -> None:
    # A long linger: only a full batch goes out before the flush's, so the count is exact.
    settings = make_settings(
        producer_batch_bytes=batch_bytes, producer_linger_ms=1000, topic_partitions=1
    )
    check = Topic(f"batches-{batch_bytes}", "key", (), Direction.INTERNAL)
    create_topics(settings, [check])
    topic = settings.topic(check.name)

    requests, sent = asyncio.run(_send_as_a_stage(settings, topic))

    assert asyncio.run(_read(settings, topic)) == [f"o-{n}".encode() for n in range(sent)]
    full_batches = RECORDS // (batch_bytes // (VALUE_BYTES + 20))  # a record's own framing
    assert full_batches <= requests <= full_batches + 2


def test_by_default_a_stage_s_records_go_out_in_a_handful_of_requests(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(topic_partitions=1)
    check = Topic("batches-default", "key", (), Direction.INTERNAL)
    create_topics(settings, [check])
    topic = settings.topic(check.name)

    requests, sent = asyncio.run(_send_as_a_stage(settings, topic))

    assert asyncio.run(_read(settings, topic)) == [f"o-{n}".encode() for n in range(sent)]
    # Faust's own default (16 KB a batch) took 82 at least. The producer lingers 5 ms, so the
    # first batch may go before the loop sent the rest: a few more than the two full ones.
    assert requests <= 20

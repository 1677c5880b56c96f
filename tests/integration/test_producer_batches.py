"""On a real broker: a worker's producer sends a batch's records in few produce requests, as
many as ``DOM_PRODUCER_BATCH_BYTES`` lets one partition's batch hold, and every record arrives;
a stage's records go out as soon as it has handed them over, not after the producer's linger.

A stage sends all its records, then flushes and waits (streams/runtime/outbox.py), and the
producer keeps one request in flight to a broker: each request it takes is a round trip the
stage waits for. The requests are counted as the broker counts them (its produce request
rate, what an SRE watches), on the worker's own client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from config.settings import Settings
from dom.admin import create_topics
from schemas.topics import Direction, Topic
from streams.runtime.faust_app import faust_app
from streams.runtime.outbox import send_now
from tests.integration.kafka_io import consume

pytestmark = pytest.mark.broker

RECORDS = 300
VALUE_BYTES = 4_500
"""About an order state's size: 300 of them are 1.35 MB, 100 batches of Faust's default 16 KB
(three to a batch)."""


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


def _keys_read(settings: Settings, topic: str) -> list[bytes | None]:
    return [key for key, _, _ in consume(settings, topic, RECORDS)]


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

    assert _keys_read(settings, topic) == [f"o-{n}".encode() for n in range(sent)]
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

    assert _keys_read(settings, topic) == [f"o-{n}".encode() for n in range(sent)]
    # Faust's own default (16 KB a batch) took 100. The producer lingers 5 ms, so the
    # first batch may go before the loop sent the rest: a few more than the two full ones.
    assert requests <= 20


async def _delivered_after(settings: Settings, topic: str, now: bool) -> float:
    """Seconds from a record's send to the broker's answer, the producer told to send what
    it holds at once (``send_now``, as a stage does once its batch is sent) or not."""
    producer = faust_app(settings).producer
    await producer.start()
    loop = asyncio.get_running_loop()
    try:
        await (await producer.send(topic, b"warm", b"up", 0, None, None))  # metadata known
        started = loop.time()
        delivered = await producer.send(topic, b"o-1", b"state", 0, None, None)
        if now:
            send_now(producer)
        await delivered
        return loop.time() - started
    finally:
        await producer.stop()


@pytest.mark.parametrize("now", [True, False])
def test_a_stage_s_records_go_out_at_once_instead_of_after_the_linger(
    make_settings: Callable[..., Settings], now: bool
) -> None:
    settings = make_settings(producer_linger_ms=1000, topic_partitions=1)
    check = Topic(f"send-now-{now}", "key", (), Direction.INTERNAL)
    create_topics(settings, [check])

    waited = asyncio.run(_delivered_after(settings, settings.topic(check.name), now))

    if now:  # a round trip to the broker, not the second of linger
        assert waited < 0.6
    else:
        assert waited >= 0.9

"""A stage's batch goes on only once the broker took every record it caused, and a commit never
follows a producer buffer that could not be drained."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from streams.runtime import faust_fixes
from streams.runtime.faust_fixes import BufferNotDrained, _drain
from streams.runtime.outbox import DeliveryFailed, confirm_delivery


def test_a_batch_waits_until_every_record_is_delivered() -> None:
    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        first, second = loop.create_future(), loop.create_future()
        loop.call_later(0.01, first.set_result, "metadata")
        loop.call_later(0.02, second.set_result, "metadata")
        await confirm_delivery("orders", [("status", first), ("commands", second)])
        return [first.result(), second.result()]

    assert asyncio.run(scenario()) == ["metadata", "metadata"]


def test_a_refused_record_fails_the_batch_naming_topic_and_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        delivered, refused, cancelled = (loop.create_future() for _ in range(3))
        delivered.set_result("metadata")
        loop.call_later(0.01, refused.set_exception, ValueError("MESSAGE_TOO_LARGE"))
        cancelled.cancel()
        await confirm_delivery(
            "orders", [("commands", delivered), ("status", refused), ("dlq", cancelled)]
        )

    with pytest.raises(DeliveryFailed) as failed, caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    assert str(failed.value) == (
        "1 records to status: ValueError: MESSAGE_TOO_LARGE; "
        "1 records to dlq: the send was cancelled"
    )
    assert "orders stage: the broker refused 1 of its records to status" in caplog.text
    assert "commands" not in caplog.text


class StuckBuffer:
    """A producer buffer whose records never leave (the broker is gone)."""

    size = 3
    should_stop = False

    def __init__(self, stops_after: int | None = None) -> None:
        self.flushes = 0
        self.stops_after = stops_after

    async def flush_atmost(self, n: Any) -> int:
        self.flushes += 1
        if self.stops_after is not None and self.flushes >= self.stops_after:
            self.should_stop = True
        return 0


class DrainingBuffer:
    size = 2

    async def flush_atmost(self, n: Any) -> int:
        self.size -= 1
        return 1


def test_a_buffer_waits_for_the_broker_as_long_as_it_takes_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(faust_fixes, "DRAIN_DEADLINE", 0.02)

    async def outage() -> None:
        with pytest.raises(TimeoutError):  # still waiting, long past the deadline
            await asyncio.wait_for(_drain(StuckBuffer()), timeout=0.3)

    asyncio.run(outage())
    assert caplog.text.count("waiting for the broker") >= 3


def test_a_worker_that_stops_with_writes_queued_gives_up_its_last_commit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(faust_fixes, "DRAIN_DEADLINE", 0.05)
    with pytest.raises(BufferNotDrained, match="3 table writes still queued"):
        asyncio.run(_drain(StuckBuffer(stops_after=2)))
    assert "its last commit is given up" in caplog.text


def test_a_drained_buffer_lets_the_flush_return() -> None:
    buffer = DrainingBuffer()
    asyncio.run(_drain(buffer))
    assert buffer.size == 0

"""A stage applies its next batch while the broker takes the last one's records: the next batch's
flush confirms them, and only then are the last batch's inputs acknowledged and the next
batch's records sent. A refusal found there stops the stage with both batches unacknowledged,
and what the next batch notes as done ends where the batch before it began."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from schemas.models import Availability
from streams.core import replays
from streams.runtime.batch_table import BatchTable
from streams.runtime.outbox import DeliveryFailed, Sends, _Batch, _Sent
from tests.unit.batch_fakes import FakeEvent, FakeProducer, Run
from tests.unit.factories import T0


class BrokerLater(FakeProducer):
    """A producer whose records are taken by the broker only when it is flushed, as the real
    one's are (at the latest); records to ``refuse`` are refused then."""

    def __init__(self, log: list[str], refuse: str | None = None) -> None:
        super().__init__(log)
        self.refuse = refuse
        self.in_flight: list[tuple[str, asyncio.Future[None]]] = []

    async def send(
        self, topic: str, key: bytes, value: bytes, partition: Any, timestamp: Any, headers: Any
    ) -> asyncio.Future[None]:
        self.log.append(f"send {topic}")
        self.sent.append((topic, key, value, headers))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.in_flight.append((topic, future))
        return future

    async def flush(self) -> None:
        self.log.append("flush")
        self.deliver()

    def deliver(self) -> None:
        """The broker answers for every record sent so far."""
        for topic, future in self.in_flight:
            if self.refuse is not None and topic.endswith(self.refuse):
                future.set_exception(RuntimeError("MessageSizeTooLarge"))
            else:
                future.set_result(None)
        self.in_flight.clear()


class Counter:
    """A stage that stores each key's count and publishes it."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.table: BatchTable[int] = BatchTable(
            run.table(), lambda raw: int(raw), lambda n: str(n).encode()
        )
        self.done_from: list[dict[str, int]] = []

    async def handle(self, event: Any, sends: Sends) -> None:
        self.done_from.append(sends.done_from())
        self.table.put(event.key, (self.table.get(event.key) or 0) + 1, event)
        sends.add([Availability(sku=event.key.decode(), total_available=1, updated_at=T0)])


def _stage(refuse: str | None = None) -> tuple[Run, Counter, _Batch, list[list[int]]]:
    """A counter stage over a producer whose broker answers on flush, and the acks it made."""
    run = Run()
    run.app.producer = BrokerLater(run.log, refuse)  # type: ignore[assignment]
    acked: list[list[int]] = []

    async def ack(events: list[Any]) -> None:
        run.log.append(f"ack {[e.message.offset for e in events]}")
        acked.append([e.message.offset for e in events])

    counter = Counter(run)
    batch = _Batch(counter.handle, run.stage, run.sequencer, None, counter.table, None, ack)  # type: ignore[arg-type]
    return run, counter, batch, acked


async def confirm(run: Run, sent: _Sent, batch: _Batch) -> None:
    """Confirm a batch on its own (no batch waits), the broker answering a moment later."""
    producer: Any = run.app.producer
    asyncio.get_running_loop().call_soon(producer.deliver)
    await run.outbox._confirm(sent, batch)


def _events(run: Run, *keys: str) -> list[FakeEvent]:
    return [run.event("inputs", key, b"1") for key in keys]


def test_the_next_batch_is_applied_before_the_last_ones_records_are_confirmed() -> None:
    run, _, batch, acked = _stage()
    availability = run.settings.topic("dom.inventory.availability.v1")

    async def two_batches() -> None:
        first = await run.outbox._batch(_events(run, "A", "B"), batch, None)
        assert acked == [] and not first.deliveries[0][1].done()  # in flight, not acked
        second = await run.outbox._batch(_events(run, "A"), batch, first)
        assert acked == [[0, 1]]  # confirmed by the second batch's flush
        await confirm(run, second, batch)

    asyncio.run(two_batches())
    assert acked == [[0, 1], [2]]
    assert run.log == [
        "write A",
        "write B",
        "flush",
        f"send {availability}",  # the first batch's records, one per key
        f"send {availability}",
        "write A",  # the second batch applied and stored while they are on their way
        "flush",
        "ack [0, 1]",  # the first batch delivered: its inputs acknowledged,
        f"send {availability}",  # then the second batch's records go out
        "ack [2]",  # confirmed on their own: no batch waits
    ]


def test_a_refusal_found_by_the_next_batch_stops_the_stage_with_both_unacknowledged() -> None:
    run, _, batch, acked = _stage(refuse="dom.inventory.availability.v1")

    async def two_batches() -> _Sent:
        first = await run.outbox._batch(_events(run, "A", "B"), batch, None)
        with pytest.raises(DeliveryFailed, match="MessageSizeTooLarge"):
            await run.outbox._batch(_events(run, "C"), batch, first)
        return first

    asyncio.run(two_batches())
    assert acked == []
    # Read again from the first batch's start: neither batch's inputs are lost.
    assert run.outbox._unfinished[run.stage] == {("inputs", 0): 0}
    sent = [key for _, key, _, _ in run.app.producer.sent]
    assert sent == [b"A", b"B"], "the second batch's records never went out"


def test_a_batch_notes_as_done_only_what_came_before_the_batch_before_it() -> None:
    run, counter, batch, _ = _stage()

    async def batches() -> None:
        first = await run.outbox._batch(_events(run, "A", "B"), batch, None)
        second = await run.outbox._batch(_events(run, "A", "C"), batch, first)
        await confirm(run, second, batch)
        third = await run.outbox._batch(_events(run, "D"), batch, None)
        await confirm(run, third, batch)

    asyncio.run(batches())
    assert counter.done_from == [
        {"inputs:0": 0},
        {"inputs:0": 0},
        {"inputs:0": 0},  # the second batch began at 2; the first, still unconfirmed, at 0
        {"inputs:0": 0},
        {"inputs:0": 4},  # nothing unconfirmed before the third
    ]


def test_a_replay_of_the_batch_before_is_not_skipped() -> None:
    # Batch 1 began at 3 and read the key at 4; batch 2 began at 6 and read it at 7, while
    # batch 1's records were on their way. Batch 2's value must not call offset 4 done:
    # if batch 1's records are refused, both batches are read again, and 4 must be applied.
    sends = Sends(batch_from={("t", 0): 6}, sent_from={("t", 0): 3, ("u", 1): 9})
    assert sends.done_from() == {"t:0": 3}  # u:1 is not read by batch 2: nothing said of it
    assert sends.read_from() == {"t:0": 6}  # where batch 2 began: a replay reads before it
    after_batch_1 = replays.note_read({}, "t:0", 4, 1_000, {"t:0": 3})
    after_batch_2 = replays.note_read(after_batch_1, "t:0", 7, 2_000, sends.done_from())
    assert not replays.done_before(after_batch_2, "t:0", 4, 1_000)
    assert replays.done_before(after_batch_2, "t:0", 2, 900)
    # Had it noted where batch 2 began, the replay of 4 would have been skipped whole.
    assumed = replays.note_read(after_batch_1, "t:0", 7, 2_000, sends.read_from())
    assert replays.done_before(assumed, "t:0", 4, 1_000)

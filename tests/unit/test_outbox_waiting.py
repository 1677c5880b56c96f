"""A change a stage lets wait is written with the key's next change that may not, and the
inputs that made it are acknowledged only then: in offset order, the later ones of their
partitions waiting behind them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.models import StockEvent
from streams.runtime import acks
from streams.runtime.batch_table import BatchTable
from streams.runtime.outbox import Sends
from tests.unit.batch_fakes import FakeEvent, LoggedTable, Run
from tests.unit.factories import make_stock_event

TOPIC = "inputs"


class Tally:
    """Adds each input's amount to its key's count. An input marked ``wait`` causes nothing
    and its change may wait; any other sends a record, so its key is written now."""

    def __init__(self, run: Run, table: LoggedTable, *, unstorable: int | None = None) -> None:
        self.run = run
        self.unstorable = unstorable
        self.table: BatchTable[dict[str, int]] = BatchTable(table, json.loads, self._encode)

    def _encode(self, value: dict[str, int]) -> bytes:
        if value["n"] == self.unstorable:
            raise ValueError(f"{value['n']} cannot be stored")
        return json.dumps(value).encode()

    async def handle(self, event: Any, sends: Sends) -> None:
        body = json.loads(event.value)
        value = {"n": (self.table.get(event.key) or {"n": 0})["n"] + body["add"]}
        waits = bool(body.get("wait"))
        self.table.put(event.key, value, event, lazy=waits)
        if not waits:
            sends.add([_record(body["id"], event.key, value["n"])])

    def batch(self, *events: FakeEvent) -> None:
        self.run.batch(list(events), self.handle, self.table)


def _record(input_id: str, key: bytes, n: int) -> StockEvent:
    return make_stock_event(key.decode(), "X", n, event_id=f"caused-by-{input_id}")


def add(
    run: Run, key: str, amount: int, input_id: str, *, wait: bool = False, partition: int = 0
) -> FakeEvent:
    body = {"add": amount, "id": input_id, "wait": wait}
    return run.event(TOPIC, key, json.dumps(body).encode(), partition)


def stored(table: LoggedTable) -> dict[str, int]:
    return {k.decode(): json.loads(v)["n"] for k, v in table.items()}


def offsets(events: list[FakeEvent]) -> list[tuple[int, int]]:
    return [(e.message.partition, e.message.offset) for e in events]


def test_a_waiting_change_holds_its_input_and_the_later_ones_of_its_partition() -> None:
    run = Run()
    table = run.table()
    stage = Tally(run, table)

    waits = add(run, "A", 1, "a1", wait=True)
    unacked = run.app.consumer._unacked_messages
    unacked.add(waits.message)  # handed to the stream: what Faust waits for at a rebalance

    stage.batch(waits, add(run, "B", 1, "b1"), add(run, "C", 1, "c1", partition=1))

    assert stored(table) == {"B": 1, "C": 1}  # A waits
    assert offsets(run.acked) == [(1, 0)]  # A's input, and B's behind it, are not committed
    assert waits.message not in unacked  # a rebalance does not wait for the batch it pauses

    stage.batch(add(run, "A", 2, "a2"), add(run, "D", 1, "d1", partition=1))

    assert stored(table) == {"A": 3, "B": 1, "C": 1, "D": 1}
    assert [w for w in run.log if w.startswith("write A")] == ["write A"]  # once, with both
    assert offsets(run.acked) == [(1, 0), (0, 0), (0, 1), (0, 2), (1, 1)]


def test_a_packed_message_is_held_until_every_waiting_key_it_changed_is_written() -> None:
    run = Run()
    table = run.table()
    stage = Tally(run, table)
    packed = run.event(
        "dom.internal.sku-results.v1",
        "A",
        run.codec.encode_batch(
            [
                (b"A", json.dumps({"add": 1, "id": "a1", "wait": True}).encode()),
                (b"B", json.dumps({"add": 1, "id": "b1", "wait": True}).encode()),
            ]
        ),
    )
    run.outbox._unpacked_topics = frozenset({"dom.internal.sku-results.v1"})

    stage.batch(packed)
    assert run.acked == [] and stored(table) == {}

    stage.batch(add(run, "A", 1, "a2"))
    assert stored(table) == {"A": 2}
    assert packed not in run.acked  # B still waits in it

    stage.batch(add(run, "B", 1, "b2"))
    assert stored(table) == {"A": 2, "B": 2}
    assert packed in run.acked


def test_a_waiting_change_past_its_time_is_written_by_the_next_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = Run()
    table = run.table()
    stage = Tally(run, table)
    stage.batch(add(run, "A", 1, "a1", wait=True))
    assert stored(table) == {}

    monkeypatch.setattr(acks, "WAIT_MAX_S", -1.0)
    stage.batch(add(run, "B", 1, "b1", partition=1))

    assert stored(table) == {"A": 1, "B": 1}
    assert sorted(offsets(run.acked)) == [(0, 0), (1, 0)]


def test_past_the_most_keys_that_may_wait_the_oldest_are_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(acks, "WAIT_MAX_KEYS", 2)
    run = Run()
    table = run.table()
    stage = Tally(run, table)

    stage.batch(add(run, "A", 1, "a1", wait=True))
    stage.batch(add(run, "B", 1, "b1", wait=True), add(run, "C", 1, "c1", wait=True))

    assert stored(table) == {"A": 1}
    assert len(run.acks) == 2


def test_a_key_that_cannot_be_stored_applies_its_waiting_inputs_again_and_is_written() -> None:
    """Put back to the table's value, the key gets the waiting inputs of earlier batches
    again, then this batch's one by one: the one that makes it unstorable is refused."""
    run = Run()
    table = run.table({b"A": b'{"n": 10}'})
    stage = Tally(run, table, unstorable=16)

    stage.batch(add(run, "A", 1, "a1", wait=True))
    stage.batch(add(run, "A", 5, "a2"))

    [letter] = run.letters()
    assert json.loads(letter.value)["id"] == "a2" and "16 cannot be stored" in letter.error
    assert stored(table) == {"A": 11}  # 10 and a1's 1: what waited is not lost
    assert offsets(run.acked) == [(0, 0), (0, 1)]
    assert len(run.acks) == 0

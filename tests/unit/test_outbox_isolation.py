"""No input stops a stage: one that breaks the work after its batch (storing its key's value,
the ``finish`` hook) is dead-lettered alone, and the rest of its batch takes effect."""

from __future__ import annotations

import json
from typing import Any

from schemas.models import Availability, StockEvent
from streams.runtime.batch_table import BatchTable
from streams.runtime.outbox import Sends
from tests.unit.batch_fakes import FakeEvent, LoggedTable, Run
from tests.unit.factories import T0, make_stock_event

TOPIC = "inputs"
LIMIT = 100


class Counters:
    """A stage that adds each input's amount to its key's count and sends a record for it;
    ``finish`` publishes each changed count, and refuses one above ``LIMIT``."""

    def __init__(self, run: Run, table: LoggedTable, *, mutable: bool = False) -> None:
        self.run = run
        self.table: BatchTable[dict[str, int]] = BatchTable(
            table, json.loads, self._encode, mutable=mutable
        )
        self.mutable = mutable
        self.handled = 0
        self.finished: list[set[bytes]] = []
        self.unstorable: set[int] = set()

    def _encode(self, value: dict[str, int]) -> bytes:
        if value["n"] in self.unstorable:
            raise ValueError(f"{value['n']} cannot be stored")
        return json.dumps(value).encode()

    async def handle(self, event: Any, sends: Sends) -> None:
        self.handled += 1
        body = json.loads(event.value)
        if body.get("boom"):
            raise RuntimeError("a bug")
        value = self.table.get(event.key) or {"n": 0}
        if self.mutable:
            value["n"] += body["add"]  # as the order saga does: in place
        else:
            value = {"n": value["n"] + body["add"]}
        self.table.put(event.key, value, event)
        sends.add([caused_by(body["id"], event.key, value["n"])])

    def finish(self, changed: dict[bytes, dict[str, int]], sends: Sends) -> None:
        self.finished.append(set(changed))
        for key, value in changed.items():
            if value["n"] > LIMIT:
                raise ValueError(f"{value['n']} is above {LIMIT}")
            sends.add([Availability(sku=key.decode(), total_available=value["n"], updated_at=T0)])

    def batch(self, *events: FakeEvent) -> None:
        self.run.batch(list(events), self.handle, self.table, self.finish)


def caused_by(input_id: str, key: bytes, n: int) -> StockEvent:
    """The record an input caused (any contract record would do)."""
    return make_stock_event(key.decode(), "X", n, event_id=f"caused-by-{input_id}")


def add(run: Run, key: str, amount: int, input_id: str, **extra: Any) -> FakeEvent:
    body = {"add": amount, "id": input_id, **extra}
    return run.event(TOPIC, key, json.dumps(body).encode())


def caused(run: Run) -> list[str]:
    return [r.event_id for r in run.records() if isinstance(r, StockEvent)]


def published(run: Run) -> dict[str, int]:
    return {r.sku: r.total_available for r in run.records() if isinstance(r, Availability)}


def stored(table: LoggedTable) -> dict[str, int]:
    return {k.decode(): json.loads(v)["n"] for k, v in table.items()}


def test_an_input_that_poisons_finish_is_dead_lettered_alone() -> None:
    run = Run()
    table = run.table()
    stage = Counters(run, table)
    poison = add(run, "A", 200, "a2")

    stage.batch(
        add(run, "A", 5, "a1"),
        add(run, "B", 1, "b1"),
        poison,
        add(run, "A", 7, "a3"),
        add(run, "B", 2, "b2"),
    )

    [letter] = run.letters()
    assert (letter.key, letter.value) == (poison.key, poison.value)
    assert "205 is above 100" in letter.error and letter.stage == "test"
    assert stored(table) == {"A": 12, "B": 3}  # a1 and a3, b1 and b2 took effect
    assert sorted(caused(run)) == ["caused-by-a1", "caused-by-a3", "caused-by-b1", "caused-by-b2"]
    assert published(run) == {"A": 12, "B": 3}
    # state before records: every table write is flushed before anything is sent
    assert sorted(run.log[:2]) == ["write A", "write B"] and run.log[2] == "flush"
    assert all(entry.startswith("send") for entry in run.log[3:])


def test_a_value_that_cannot_be_stored_refuses_only_the_input_that_made_it() -> None:
    run = Run()
    table = run.table()
    stage = Counters(run, table)
    stage.unstorable = {13}
    poison = add(run, "A", 7, "a2")

    stage.batch(add(run, "A", 6, "a1"), add(run, "B", 4, "b1"), poison)

    [letter] = run.letters()
    assert letter.value == poison.value and "13 cannot be stored" in letter.error
    assert stored(table) == {"A": 6, "B": 4}
    assert sorted(caused(run)) == ["caused-by-a1", "caused-by-b1"]
    assert published(run) == {"A": 6, "B": 4}


def test_a_mutated_value_is_rolled_back_to_the_last_input_that_passed() -> None:
    run = Run()
    table = run.table({b"A": b'{"n": 1}'})
    stage = Counters(run, table, mutable=True)

    stage.batch(add(run, "A", 5, "a1"), add(run, "A", 200, "a2"), add(run, "A", 1, "a3"))

    assert [letter.value for letter in run.letters()] == [
        json.dumps({"add": 200, "id": "a2"}).encode()
    ]
    assert stored(table) == {"A": 7}
    assert published(run) == {"A": 7}


def test_when_every_input_of_a_key_fails_the_key_keeps_the_tables_value() -> None:
    run = Run()
    table = run.table({b"A": b'{"n": 99}'})
    stage = Counters(run, table)

    stage.batch(add(run, "A", 2, "a1"), add(run, "A", 3, "a2"), add(run, "B", 1, "b1"))

    assert len(run.letters()) == 2
    assert stored(table) == {"A": 99, "B": 1}
    assert caused(run) == ["caused-by-b1"]
    assert published(run) == {"B": 1}  # nothing about A: its value did not change


def test_a_batch_that_fails_nowhere_pays_for_nothing() -> None:
    run = Run()
    table = run.table()
    stage = Counters(run, table)

    stage.batch(add(run, "A", 1, "a1"), add(run, "B", 1, "b1"), add(run, "A", 1, "a2"))

    assert stage.handled == 3  # no input applied twice
    assert stage.finished == [{b"A", b"B"}]  # finish called once, with every changed key
    assert [(key, value) for key, value, _ in table.writes] == [
        (b"A", b'{"n": 2}'),
        (b"B", b'{"n": 1}'),
    ]
    assert run.letters() == []


def test_an_input_that_raises_is_dead_lettered_and_answered_by_the_refusal_hook() -> None:
    run = Run()
    table = run.table()
    stage = Counters(run, table)
    answered: list[tuple[bytes, str]] = []

    def refuse(event: Any, reason: str, sends: Sends) -> None:
        answered.append((event.key, reason))
        sends.add([caused_by("refusal-" + json.loads(event.value)["id"], event.key, 0)])

    run.outbox.on_refused(run.stage, refuse)
    stage.batch(add(run, "A", 1, "a1", boom=True), add(run, "A", 500, "a2"), add(run, "A", 2, "a3"))

    reasons = {reason for _, reason in answered}
    assert any("a bug" in r for r in reasons) and any("500 is above 100" in r for r in reasons)
    # one answer per refused input, though a1 was applied (and refused) again with its key's
    assert sorted(caused(run)) == ["caused-by-a3", "caused-by-refusal-a1", "caused-by-refusal-a2"]
    assert len(run.letters()) == 2
    assert stored(table) == {"A": 2}


def test_a_refusal_hook_that_fails_still_lets_the_dead_letter_go() -> None:
    run = Run()
    table = run.table()
    stage = Counters(run, table)

    def refuse(event: Any, reason: str, sends: Sends) -> None:
        raise RuntimeError("the hook is broken too")

    run.outbox.on_refused(run.stage, refuse)
    stage.batch(add(run, "A", 1, "a1", boom=True), add(run, "A", 2, "a2"))

    assert len(run.letters()) == 1
    assert stored(table) == {"A": 2}

"""A batch reads each key once, writes each changed key once, and undoes a failed input."""

from __future__ import annotations

import json
from typing import Any

from faust.streams import _current_event

from streams.runtime.batch_table import BatchTable


class FakeTable(dict[bytes, bytes]):
    """A Faust table as the stages use it: get, set; records which event each write saw."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.reads: list[bytes] = []
        self.writes: list[tuple[bytes, bytes, Any]] = []

    def get(self, key: bytes, default: Any = None) -> Any:
        self.reads.append(key)
        return super().get(key, default)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        ref = _current_event.get(None)
        self.writes.append((key, value, ref() if ref else None))
        super().__setitem__(key, value)


class Event:
    def __init__(self, name: str) -> None:
        self.name = name


def counts(table: FakeTable, *, mutable: bool = False) -> BatchTable[dict[str, int]]:
    return BatchTable(table, json.loads, lambda v: json.dumps(v).encode(), mutable=mutable)


def test_each_key_is_read_once_and_written_once_in_the_last_events_partition() -> None:
    table = FakeTable({b"a": b'{"n": 1}'})
    batch = counts(table)
    first, second = Event("first"), Event("second")
    for event in (first, second):
        value = batch.get(b"a")
        assert value is not None
        batch.put(b"a", {"n": value["n"] + 1}, event)
    assert batch.get(b"missing") is None

    changed = batch.write_back()

    assert changed == {b"a": {"n": 3}}
    assert table.reads == [b"a", b"missing"]
    assert table.writes == [(b"a", b'{"n": 3}', second)]


def test_a_new_batch_reads_the_table_again() -> None:
    table = FakeTable({b"a": b'{"n": 1}'})
    batch = counts(table)
    batch.get(b"a")
    batch.write_back()
    table[b"a"] = b'{"n": 7}'  # changed behind the batch's back (say, a recovery)
    assert batch.get(b"a") == {"n": 7}
    assert table.reads == [b"a", b"a"]


def test_untouched_and_unchanged_keys_are_not_written() -> None:
    table = FakeTable({b"a": b'{"n": 1}'})
    batch = counts(table)
    batch.get(b"a")
    assert batch.write_back() == {}
    assert table.writes == []


def test_rollback_restores_a_mutated_value_read_from_the_table() -> None:
    table = FakeTable({b"a": b'{"n": 1}'})
    batch = counts(table, mutable=True)
    value = batch.get(b"a")
    assert value is not None
    value["n"] = 99  # the input mutated it in place, then failed

    batch.rollback(b"a")

    assert batch.get(b"a") == {"n": 1}
    assert batch.write_back() == {}
    assert table.writes == []


def test_rollback_keeps_what_earlier_inputs_of_the_batch_did() -> None:
    table = FakeTable({b"a": b'{"n": 1}'})
    batch = counts(table, mutable=True)
    good = Event("good")
    value = batch.get(b"a")
    assert value is not None
    value["n"] = 2
    batch.put(b"a", value, good)
    again = batch.get(b"a")
    assert again is not None
    again["n"] = 99  # the second input fails half-way

    batch.rollback(b"a")

    assert batch.write_back() == {b"a": {"n": 2}}
    assert table.writes == [(b"a", b'{"n": 2}', good)]


def test_rollback_of_a_key_that_had_no_value_forgets_it() -> None:
    table = FakeTable()
    batch = counts(table, mutable=True)
    assert batch.get(b"new") is None
    batch.rollback(b"new")
    assert batch.get(b"new") is None
    assert batch.write_back() == {}


def kept(table: FakeTable, keep: int, *, mutable: bool = False) -> BatchTable[dict[str, int]]:
    return BatchTable(
        table, json.loads, lambda v: json.dumps(v).encode(), mutable=mutable, keep=keep
    )


def test_values_are_kept_across_batches_within_a_generation() -> None:
    table = FakeTable({b"a": b'{"n": 1}'})
    batch = kept(table, keep=10)
    batch.follow(1)
    batch.put(b"a", {"n": 2}, Event("e"))
    batch.write_back()
    batch.follow(1)
    assert batch.get(b"a") == {"n": 2}
    assert table.reads == []  # never read: the batch wrote it


def test_a_new_generation_reads_the_table_again() -> None:
    table = FakeTable({b"a": b'{"n": 1}'})
    batch = kept(table, keep=10)
    batch.follow(1)
    batch.get(b"a")
    batch.write_back()
    table[b"a"] = b'{"n": 5}'  # the partition moved away and back: recovered from the changelog
    batch.follow(2)
    assert batch.get(b"a") == {"n": 5}


def test_a_changed_value_survives_a_generation_change_inside_its_batch() -> None:
    table = FakeTable()
    batch = kept(table, keep=10)
    batch.follow(1)
    event = Event("e")
    batch.put(b"a", {"n": 1}, event)
    batch.follow(2)
    assert batch.write_back() == {b"a": {"n": 1}}
    assert table.writes == [(b"a", b'{"n": 1}', event)]


def test_only_the_most_recently_used_values_are_kept() -> None:
    table = FakeTable({b"a": b'{"n": 1}', b"b": b'{"n": 2}', b"c": b'{"n": 3}'})
    batch = kept(table, keep=2)
    batch.follow(1)
    for key in (b"a", b"b", b"c", b"a"):
        batch.get(key)
    batch.write_back()
    table.reads.clear()
    for key in (b"a", b"b", b"c"):
        batch.get(key)
    assert table.reads == [b"b"]  # a and c were the two most recently used


def test_rollback_of_a_kept_value_restores_the_tables_value() -> None:
    table = FakeTable()
    batch = kept(table, keep=10, mutable=True)
    batch.follow(1)
    batch.get(b"a")
    batch.put(b"a", {"n": 1}, Event("placed"))
    batch.write_back()
    value = batch.get(b"a")
    assert value is not None
    value["n"] = 99  # mutated by an input of the next batch, which then failed

    batch.rollback(b"a")

    assert batch.get(b"a") == {"n": 1}
    assert batch.write_back() == {}


# ---- the two-step write-back: a value that cannot be stored stops only its inputs ------------


def fussy(table: FakeTable, *, mutable: bool = False) -> BatchTable[dict[str, int]]:
    """Values above 100 cannot be encoded."""

    def encode(value: dict[str, int]) -> bytes:
        if value["n"] > 100:
            raise ValueError(f"{value['n']} is too many")
        return json.dumps(value).encode()

    return BatchTable(table, json.loads, encode, mutable=mutable)


def test_encode_changed_reports_the_keys_that_cannot_be_stored() -> None:
    table = FakeTable()
    batch = fussy(table)
    good, bad = Event("good"), Event("bad")
    batch.put(b"a", {"n": 1}, good)
    batch.put(b"b", {"n": 500}, bad)

    values, errors = batch.encode_changed()

    assert values == {b"a": {"n": 1}}
    assert list(errors) == [b"b"] and "500 is too many" in errors[b"b"]
    assert batch.last_input(b"b") is bad


def test_reset_puts_a_key_back_to_the_tables_value_and_unmarks_it() -> None:
    table = FakeTable({b"b": b'{"n": 7}'})
    batch = fussy(table, mutable=True)
    value = batch.get(b"b")
    assert value is not None
    value["n"] = 500
    batch.put(b"b", value, Event("bad"))
    batch.encode_changed()

    batch.reset(b"b")

    assert batch.get(b"b") == {"n": 7}
    assert batch.last_input(b"b") is None
    assert batch.write_back() == {}
    assert table.writes == []


def test_restore_puts_back_a_value_that_passed_and_writes_it_in_its_inputs_partition() -> None:
    table = FakeTable()
    batch = fussy(table)
    passed = Event("passed")
    batch.put(b"a", {"n": 5}, passed)
    raw, value = batch.encode_key(b"a")
    assert value == {"n": 5}
    batch.put(b"a", {"n": 500}, Event("poison"))

    batch.restore(b"a", raw, passed)

    assert batch.get(b"a") == {"n": 5}
    assert batch.write_back() == {b"a": {"n": 5}}
    assert table.writes == [(b"a", b'{"n": 5}', passed)]


def test_a_change_that_may_wait_is_not_written_until_one_that_may_not() -> None:
    table = FakeTable({b"a": b'{"n": 1}'})
    batch = counts(table, mutable=True)
    first, second, third = Event("first"), Event("second"), Event("third")
    value = batch.get(b"a")
    assert value is not None
    value["n"] += 1
    batch.put(b"a", value, first, lazy=True)

    assert batch.write_back() == {}
    assert table.writes == []
    assert set(batch.waiting()) == {b"a"}

    value = batch.get(b"a")  # the next batch reads the waiting value, not the table's
    assert value == {"n": 2}
    value["n"] += 1
    batch.put(b"a", value, second, lazy=True)
    assert batch.write_back() == {}

    value = batch.get(b"a")
    assert value is not None
    value["n"] += 10
    batch.put(b"a", value, third)
    assert batch.write_back() == {b"a": {"n": 13}}
    assert table.writes == [(b"a", b'{"n": 13}', third)]
    assert batch.waiting() == {}


def test_a_change_that_may_wait_after_one_that_may_not_in_the_batch_is_written() -> None:
    """The key's earlier change of the batch caused records: its value must be stored now."""
    table = FakeTable()
    batch = counts(table)
    first, second = Event("first"), Event("second")
    batch.put(b"a", {"n": 1}, first)
    batch.put(b"a", {"n": 2}, second, lazy=True)

    assert batch.write_back() == {b"a": {"n": 2}}
    assert table.writes == [(b"a", b'{"n": 2}', second)]


def test_write_now_writes_a_waiting_change_with_its_last_input() -> None:
    table = FakeTable()
    batch = counts(table)
    first, second = Event("first"), Event("second")
    batch.put(b"a", {"n": 1}, first, lazy=True)
    batch.write_back()
    batch.put(b"a", {"n": 2}, second, lazy=True)
    batch.write_now([b"a"])

    assert batch.write_back() == {b"a": {"n": 2}}
    assert table.writes == [(b"a", b'{"n": 2}', second)]


def test_a_new_generation_forgets_a_waiting_change_and_reads_the_table() -> None:
    """Its inputs are read again from the committed offsets by the partition's owner."""
    table = FakeTable({b"a": b'{"n": 1}'})
    batch = counts(table)
    batch.follow(1)
    batch.put(b"a", {"n": 5}, Event("waits"), lazy=True)
    batch.write_back()

    batch.follow(2)

    assert batch.waiting() == {}
    assert batch.get(b"a") == {"n": 1}
    assert batch.write_back() == {}
    assert table.writes == []


def test_a_rollback_of_a_key_whose_change_waits_restores_the_waiting_value() -> None:
    table = FakeTable({b"a": b'{"n": 1}'})
    batch = counts(table, mutable=True)
    value = batch.get(b"a")
    assert value is not None
    value["n"] = 2
    batch.put(b"a", value, Event("waits"), lazy=True)
    batch.write_back()

    value = batch.get(b"a")
    assert value is not None
    value["n"] = 99  # an input that fails half-way
    batch.rollback(b"a")

    assert batch.get(b"a") == {"n": 2}


def test_keys_whose_changes_wait_are_kept_past_the_most_recently_used() -> None:
    table = FakeTable()
    batch = BatchTable(table, json.loads, lambda v: json.dumps(v).encode(), keep=1)
    batch.put(b"waits", {"n": 1}, Event("w"), lazy=True)
    for name in (b"b", b"c", b"d"):
        batch.put(name, {"n": 1}, Event(name.decode()))
    batch.write_back()

    assert table.get(b"waits") is None
    assert batch.get(b"waits") == {"n": 1}  # kept decoded, though the oldest
    assert set(batch.waiting()) == {b"waits"}

"""A stage's inputs are acknowledged in offset order per partition; those whose key's change
waits unwritten, and every later one of their partitions, only once the key is written."""

from __future__ import annotations

from streams.runtime.acks import HeldAcks
from tests.unit.batch_fakes import FakeEvent, FakeMessage


def event(partition: int, offset: int, key: str = "k") -> FakeEvent:
    return FakeEvent(FakeMessage("t", partition, offset, key.encode(), b"{}"))


def offsets(events: list[FakeEvent]) -> list[tuple[int, int]]:
    return [(e.message.partition, e.message.offset) for e in events]


def test_a_batch_with_nothing_held_is_acknowledged_whole() -> None:
    acks = HeldAcks()
    batch = [event(0, 0), event(0, 1), event(1, 0)]

    assert acks.done(batch) == batch
    assert acks.waiting() == 0


def test_a_held_input_holds_back_the_later_ones_of_its_partition_only() -> None:
    acks = HeldAcks()
    held, after, elsewhere = event(0, 0, "a"), event(0, 1, "b"), event(1, 0, "c")
    acks.hold(b"a", [held], [held])

    assert offsets(acks.done([held, after, elsewhere])) == [(1, 0)]
    assert acks.waiting() == 2
    assert offsets(acks.done([event(0, 2, "d")])) == []  # still behind the held one

    acks.release([b"a"])

    assert offsets(acks.done([])) == [(0, 0), (0, 1), (0, 2)]
    assert acks.waiting() == 0


def test_an_input_held_by_two_keys_waits_for_both() -> None:
    """A packed message carries answers for several orders."""
    acks = HeldAcks()
    message = event(0, 7)
    acks.hold(b"a", [message], [])
    acks.hold(b"b", [message], [])
    acks.done([message])

    acks.release([b"a"])
    assert acks.done([]) == []
    acks.release([b"b"])
    assert acks.done([]) == [message]


def test_a_new_generation_releases_every_hold() -> None:
    acks = HeldAcks()
    acks.follow(1)
    held = event(0, 0, "a")
    acks.hold(b"a", [held], [held])
    assert acks.done([held]) == []
    assert len(acks) == 1

    acks.follow(1)
    assert acks.done([]) == []
    acks.follow(2)  # stale acknowledgements: the runtime reads the partition again

    assert acks.done([]) == [held]
    assert len(acks) == 0
    assert acks.inputs == {}


def test_the_inputs_of_a_key_are_kept_until_it_is_written() -> None:
    acks = HeldAcks()
    first, second = event(0, 0, "a"), event(0, 1, "a")
    acks.hold(b"a", [first], [first])
    acks.hold(b"a", [second], [second])

    assert acks.inputs == {b"a": [first, second]}
    acks.release([b"a"])
    assert acks.inputs == {}

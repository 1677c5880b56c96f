"""The sequencer admits a partition's records in order and reports holes to fill first."""

from __future__ import annotations

from dataclasses import dataclass

from streams.runtime.sequencer import ADMIT, Sequencer


@dataclass
class Msg:
    offset: int
    generation_id: int = 1
    topic: str = "t"
    partition: int = 0


def verdicts(seq: Sequencer, *offsets: int, generation: int = 1) -> list[int]:
    return [seq.admit(Msg(o, generation)) for o in offsets]


def test_records_in_order_and_replays_are_admitted() -> None:
    seq = Sequencer("orders")
    assert verdicts(seq, 5, 6, 7, 6, 7, 8) == [ADMIT] * 6


def test_a_hole_is_reported_once_with_its_first_offset() -> None:
    seq = Sequencer("orders")
    assert verdicts(seq, 0, 1) == [ADMIT, ADMIT]
    assert verdicts(seq, 5) == [2]  # fill 2..4 first, then 5
    assert verdicts(seq, 6, 7) == [ADMIT, ADMIT]
    assert verdicts(seq, 3, 4) == [ADMIT, ADMIT]  # Faust delivering them late: replays


def test_a_new_generation_starts_afresh_where_the_seek_put_it() -> None:
    seq = Sequencer("orders")
    verdicts(seq, 0, 1, 2)
    # after a rebalance another worker processed up to 40: a jump is no hole
    assert verdicts(seq, 41, 42, generation=2) == [ADMIT, ADMIT]


def test_partitions_are_independent() -> None:
    seq = Sequencer("orders")
    assert seq.admit(Msg(0, partition=0)) == ADMIT
    assert seq.admit(Msg(9, partition=1)) == ADMIT
    assert seq.admit(Msg(1, partition=0)) == ADMIT
    assert seq.admit(Msg(11, partition=1)) == 10


def test_the_first_record_of_a_generation_must_be_where_reading_started() -> None:
    # The partition starts at its committed offset (or the log start); Faust skipping the
    # first records after a restart is a hole like any other.
    seq = Sequencer("orders")
    assert seq.admit(Msg(7), start=0) == 0
    assert seq.admit(Msg(8), start=0) == ADMIT
    assert seq.admit(Msg(3, generation_id=2), start=3) == ADMIT
    assert seq.admit(Msg(1, generation_id=3), start=4) == ADMIT  # before the start: a replay
    assert seq.admit(Msg(4, generation_id=3), start=4) == ADMIT

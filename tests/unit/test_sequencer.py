"""The sequencer admits a partition's records in order and asks for a rewind across a hole."""

from __future__ import annotations

from dataclasses import dataclass

from streams.sequencer import ADMIT, DROP, MAX_REWINDS, RETRY_AFTER, Sequencer


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


def test_a_hole_asks_for_a_rewind_then_drops_until_the_missing_record_comes() -> None:
    seq = Sequencer("orders")
    assert verdicts(seq, 0, 1) == [ADMIT, ADMIT]
    assert verdicts(seq, 5, 6, 7) == [2, DROP, DROP]  # rewind to 2; the rest waits
    assert verdicts(seq, 2, 3, 4, 5, 6) == [ADMIT] * 5  # the hole, fetched again, then on


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


def test_a_rewind_is_asked_again_when_it_seems_lost_and_a_lasting_hole_is_accepted() -> None:
    seq = Sequencer("orders")
    verdicts(seq, 0)
    asked = 0
    offset = 10
    for _ in range(MAX_REWINDS * (RETRY_AFTER + 1) + 1):
        verdict = seq.admit(Msg(offset))
        offset += 1
        if verdict == 1:
            asked += 1
        elif verdict == ADMIT:
            break  # the log start moved past the hole: accepted, with an error logged
    assert asked == MAX_REWINDS and verdict == ADMIT

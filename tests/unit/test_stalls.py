"""A partition holding records its stage never got is read again from where the stage was; a
busy stage, a partition read to its end and a first sighting are left alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.types import TP

from streams.runtime import faust_fixes
from streams.runtime.sequencer import ADMIT, Sequencer
from streams.runtime.stalls import AGAIN_S, CHECK_S, STALL_S, StallWatch

ORDERS = "p.dom.orders.v1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeFlow:
    def is_active(self) -> bool:
        return True


class FakeConsumer:
    def __init__(self, ends: dict[TP, int], committed: dict[TP, int]) -> None:
        self.ends = ends
        self._committed_offset = committed

    def assignment(self) -> set[TP]:
        return set(self.ends)

    async def highwaters(self, *partitions: TP) -> dict[TP, int]:
        return {tp: self.ends[tp] for tp in partitions}


class FakeApp:
    rebalancing = False
    in_recovery = False
    consumer_generation_id = 3

    def __init__(self, consumer: FakeConsumer) -> None:
        self.consumer = consumer
        self.flow_control = FakeFlow()


class Record:
    def __init__(self, offset: int, partition: int = 0) -> None:
        self.topic = ORDERS
        self.partition = partition
        self.offset = offset
        self.generation_id = 3


@pytest.fixture(autouse=True)
def no_refetch_left() -> Any:
    faust_fixes.REFETCH.clear()
    yield
    faust_fixes.REFETCH.clear()


def watch_over(ends: dict[int, int], committed: dict[int, int]) -> tuple[StallWatch, Any, Clock]:
    clock = Clock()
    consumer = FakeConsumer(
        {TP(ORDERS, p): end for p, end in ends.items()},
        {TP(ORDERS, p): offset for p, offset in committed.items()},
    )
    return StallWatch(clock=clock), FakeApp(consumer), clock


def look(watch: StallWatch, app: Any, clock: Clock, seconds: float = CHECK_S) -> list[str]:
    clock.now += seconds
    counted: list[str] = []
    asyncio.run(watch.check(app, counted.append))
    return counted


def test_a_partition_never_read_though_it_holds_records_is_read_from_its_committed_offset() -> None:
    # Partition 0 was read to its end; partition 2 holds 80..84 and the stage never got one.
    watch, app, clock = watch_over({0: 50, 2: 85}, {0: 40, 2: 80})
    sequencer = Sequencer("orders")
    for offset in range(40, 50):
        assert sequencer.admit(Record(offset), start=40) == ADMIT
    watch.reading("orders", sequencer, [ORDERS])

    assert look(watch, app, clock, STALL_S) == []  # first seen there: one more round
    assert look(watch, app, clock) == ["orders"]
    assert {TP(ORDERS, 2): 80} == faust_fixes.REFETCH
    faust_fixes.REFETCH.clear()
    assert look(watch, app, clock) == []  # sought: given time to come
    assert look(watch, app, clock, AGAIN_S) == ["orders"]  # still nothing: once more


def test_a_partition_read_past_where_it_was_stalled_is_not_sought() -> None:
    watch, app, clock = watch_over({0: 60}, {0: 40})
    sequencer = Sequencer("orders")
    sequencer.admit(Record(40), start=40)
    watch.reading("orders", sequencer, [ORDERS])
    assert look(watch, app, clock, STALL_S) == []
    sequencer.admit(Record(41), start=40)  # a record came meanwhile: the fetcher is at work
    assert look(watch, app, clock) == []
    assert faust_fixes.REFETCH == {}


def test_a_busy_stage_is_never_judged() -> None:
    watch, app, clock = watch_over({0: 500}, {0: 0})
    watch.reading("orders", Sequencer("orders"), [ORDERS])
    watch.working("orders", True)  # one long batch: its records may be queued behind it
    for _ in range(5):
        assert look(watch, app, clock, STALL_S) == []
    watch.working("orders", False)
    assert look(watch, app, clock) == []  # idle only from the batch's end
    assert faust_fixes.REFETCH == {}


def test_offsets_that_hold_no_record_are_no_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    # The partition ends with a transaction's commit marker at 50, which the fetcher noted.
    watch, app, clock = watch_over({0: 51}, {0: 40})
    sequencer = Sequencer("orders")
    for offset in range(40, 50):
        sequencer.admit(Record(offset), start=40)
    watch.reading("orders", sequencer, [ORDERS])
    monkeypatch.setattr("streams.runtime.gaps.known", lambda *args: args == (ORDERS, 0, 50, 51))
    for _ in range(3):
        assert look(watch, app, clock, STALL_S) == []


def test_nothing_is_judged_while_partitions_move() -> None:
    watch, app, clock = watch_over({0: 85}, {0: 80})
    watch.reading("orders", Sequencer("orders"), [ORDERS])
    app.rebalancing = True
    for _ in range(3):
        assert look(watch, app, clock, STALL_S) == []
    app.rebalancing = False
    assert look(watch, app, clock) == []  # seen for the first time now
    assert look(watch, app, clock) == ["orders"]

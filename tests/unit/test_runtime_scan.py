"""A timer's read of a whole table: in slices, the worker's other work served between them, and
over as soon as the partitions move."""

from __future__ import annotations

import asyncio
import itertools

from streams.runtime import in_slices


def test_a_scan_reads_every_item_a_slice_at_a_time_and_lets_other_work_run_between() -> None:
    turns: list[str] = []

    async def other_work() -> None:
        while True:
            turns.append("other")
            await asyncio.sleep(0)

    async def scan() -> list[list[int]]:
        parts = []
        async for part in in_slices(range(7), 3, lambda: False):
            turns.append("slice")
            parts.append(part)
        return parts

    async def main() -> list[list[int]]:
        task = asyncio.ensure_future(other_work())
        parts = await scan()
        task.cancel()
        return parts

    assert asyncio.run(main()) == [[0, 1, 2], [3, 4, 5], [6]]
    slices = [i for i, turn in enumerate(turns) if turn == "slice"]
    assert len(slices) == 3
    assert all("other" in turns[a:b] for a, b in itertools.pairwise(slices))


def test_a_scan_ends_after_the_slice_in_hand_when_the_partitions_move() -> None:
    read: list[int] = []
    moves: list[str] = []

    def items():  # type: ignore[no-untyped-def]
        for item in range(10):
            read.append(item)
            yield item

    async def scan() -> list[list[int]]:
        parts = []
        async for part in in_slices(items(), 4, lambda: bool(moves)):
            parts.append(part)
            moves.append("rebalance")  # while the slice is worked on
        return parts

    assert asyncio.run(scan()) == [[0, 1, 2, 3]]
    assert read == [0, 1, 2, 3]  # nothing more was read from the moved stores

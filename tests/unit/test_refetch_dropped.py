"""Records a stream dropped unprocessed during a rebalance are fetched again once the flow is
active, even when no later record of their partition comes to show the hole they left."""

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.runtime import faust_fixes

ORDERS = TP("dom.orders.v1", 2)


class FakeConsumer:
    def __init__(self, active: bool) -> None:
        self.active = active
        self.app = SimpleNamespace(
            consumer_generation_id=7,
            flow_control=SimpleNamespace(is_active=lambda: self.active),
        )
        self._unacked_messages: set[Any] = set()
        self.seeks: list[tuple[TP, int]] = []

    def assignment(self) -> set[TP]:
        return {ORDERS}

    async def _seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


@dataclass(frozen=True)
class Message:
    offset: int
    tp: TP = ORDERS
    generation_id: int = 7


def message(offset: int) -> Message:
    return Message(offset)


def test_dropped_records_are_fetched_again_from_the_first_once_the_flow_resumes() -> None:
    faust_fixes.REFETCH.clear()
    consumer = FakeConsumer(active=False)  # a rebalance under way: the stream drops them
    for offset in (53, 51, 52):
        assert faust_fixes._ack(consumer, message(offset)) is False
    fetched = {ORDERS: ["104"], TP("dom.stock.v1", 0): ["9"]}
    assert asyncio.run(faust_fixes._refetch_dropped(consumer, fetched)) == fetched  # not yet
    consumer.active = True
    kept = asyncio.run(faust_fixes._refetch_dropped(consumer, fetched))
    assert consumer.seeks == [(ORDERS, 51)]
    assert kept == {TP("dom.stock.v1", 0): ["9"]}  # what came after is fetched again too
    assert faust_fixes.REFETCH == {}

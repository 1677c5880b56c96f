"""The order stage applies retention: the scan's command deletes a finished order's key (in
the partition of the command, like every write) and keeps a note; what comes for the order
later is refused with the reason; a live order and a repeated command change nothing.

The stage is driven as the outbox drives it (each input handled with its event current, then
the batch's table written back), without the outbox's producer: what it would send is kept.
"""

from __future__ import annotations

import asyncio
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

from faust.streams import _current_event

from config.settings import Settings
from schemas.internal import OrderPurge
from schemas.models import Message, OrderStatusChanged
from streams.core.saga.retention import RemovedOrder, purges, removed_key
from streams.order_stage import OrderStage, SagaSettings, order_table
from streams.runtime.outbox import Sends
from streams.views import NetworkView
from tests.unit.batch_fakes import FakeEvent, FakeTable, Letter, LoggedTable, Run
from tests.unit.factories import (
    make_fulfillment_update,
    make_location,
    make_order,
    make_return_request,
)

ORDERS = "dom.orders.v1"
SECOND = 1 / 86400  # a day's fraction: DOM_ORDER_RETENTION_DAYS of one second


class DeletingTable(LoggedTable):
    """Logs deletes too, with the partition of the event that made them (the tombstone's), and
    keys as bytes (a note's key is not text, so no order id can be one)."""

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.log.append(f"write {key!r}")
        FakeTable.__setitem__(self, key, value)

    def __delitem__(self, key: bytes) -> None:
        ref = _current_event.get(None)
        self.log.append(f"delete {key!r} p{ref().message.partition if ref else None}")
        super().__delitem__(key)


class Orders:
    """The stage with a one-second retention and no return window, over a table of its own."""

    def __init__(self) -> None:
        self.run = Run("orders")
        self.table = DeletingTable(self.run.log)
        self.orders = order_table(self.table)
        view = NetworkView()
        view.apply(make_location("DC-EAST"))  # no stock anywhere: an order waits (BACKORDERED)
        settings = Settings(order_retention_days=SECOND, return_window_days=0)
        self.saga = SagaSettings.of(settings)
        self.stage = OrderStage(
            self.orders, self.run.codec, view, self.saga, self.run.outbox.metrics
        )
        self.sent: list[Message] = []
        self.letters: list[Letter] = []

    def event(self, record: Message, partition: int = 0) -> FakeEvent:
        """The next input: one topic, so each is a second after the one before."""
        key = record.order_id  # type: ignore[attr-defined]
        value = self.run.codec.encode(record)
        return self.run.event(self.run.settings.topic(ORDERS), key, value, partition)

    def batch(self, *records: Message) -> None:
        sends = Sends()
        for event in [self.event(r) for r in records]:
            _current_event.set(weakref.ref(event))  # tables write in the event's partition
            asyncio.run(self.stage.handle(event, sends))
        self.orders.write_back()
        self.sent += sends.records
        self.letters += [Letter(x.key, x.value, x.headers) for _, x in sends.letters]

    def scan(self, now: datetime) -> list[OrderPurge]:
        return purges(list(self.table.items()), now, self.saga.retention)

    def statuses(self) -> list[OrderStatusChanged]:
        return [r for r in self.sent if isinstance(r, OrderStatusChanged)]


def at(offset: int) -> datetime:
    """The time of the fake input at ``offset`` (batch_fakes: 2024-05-01 12:00 UTC + offset s)."""
    return datetime(2024, 5, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=offset)


def test_a_finished_order_is_removed_and_a_later_return_is_refused_with_the_reason() -> None:
    orders = Orders()
    rejected = make_order("ORD-R", lines=[("SKU-1", 1_000_000)])  # REJECTED at once
    orders.batch(rejected, make_order("ORD-L"))  # offsets 0, 1: ORD-L waits for stock
    assert {s.order_id: s.status.value for s in orders.statuses()} == {
        "ORD-R": "REJECTED",
        "ORD-L": "BACKORDERED",
    }

    commands = orders.scan(at(5))
    assert [c.order_id for c in commands] == ["ORD-R"]
    orders.batch(*commands, *commands)  # redelivered: applied once

    assert b"ORD-R" not in orders.table and b"ORD-L" in orders.table
    assert orders.run.log.count("delete b'ORD-R' p0") == 1
    note = RemovedOrder.from_stored(orders.table[removed_key("ORD-R")])
    assert note.status == "REJECTED" and note.removed_at == at(2)

    orders.batch(make_return_request("ORD-R", "RET-1"))
    refusal = orders.statuses()[-1]
    assert refusal.order_id == "ORD-R" and refusal.status.value == "REJECTED"
    assert refusal.reason.startswith("return RET-1 refused: order ORD-R was closed (REJECTED")
    assert "after the retention of 1.15741e-05 days (DOM_ORDER_RETENTION_DAYS)" in refusal.reason
    assert orders.letters == []


def test_a_live_order_stays_whatever_the_command_says() -> None:
    orders = Orders()
    orders.batch(make_order("ORD-L"))
    stored = orders.table[b"ORD-L"]

    orders.batch(OrderPurge(command_id="purge:ORD-L:0", order_id="ORD-L", issued_at=at(9)))

    assert orders.table[b"ORD-L"] == stored
    assert orders.scan(at(100)) == []


def test_late_news_and_a_second_placement_of_a_removed_order_are_dead_lettered() -> None:
    orders = Orders()
    orders.batch(make_order("ORD-R", lines=[("SKU-1", 1_000_000)]))
    orders.batch(*orders.scan(at(5)))

    orders.batch(
        make_fulfillment_update("ORD-R", "ORD-R-1-1", "DC-EAST"),
        make_order("ORD-R", event_id="again"),
    )

    letters = orders.letters
    assert [x.key for x in letters] == [b"ORD-R", b"ORD-R"]
    assert all("order ORD-R was closed (REJECTED" in x.error for x in letters)
    assert b"ORD-R" not in orders.table


def test_the_note_is_forgotten_after_another_retention_and_the_order_is_unknown() -> None:
    orders = Orders()
    orders.batch(make_order("ORD-R", lines=[("SKU-1", 1_000_000)]))
    orders.batch(*orders.scan(at(5)))  # removed at offset 1
    assert orders.scan(at(1)) == []  # the note is not due yet

    [forget] = orders.scan(at(10))
    orders.batch(forget)
    orders.batch(make_return_request("ORD-R", "RET-2"))

    assert removed_key("ORD-R") not in orders.table
    [letter] = orders.letters
    assert "no order 'ORD-R' is known: never placed, or removed after its retention" in (
        letter.error
    )
    assert not _keys_but(orders.table, b"\xff")


def _keys_but(table: Any, prefix: bytes) -> list[bytes]:
    return [k for k in table if not k.startswith(prefix)]

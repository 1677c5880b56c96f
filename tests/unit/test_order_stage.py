"""The order stage's batches: an input whose effect cannot be stored is dead-lettered with the
reason, and the rest of the batch goes on; orders routed one after another do not go after the
units the stage has just promised another order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from config.settings import Settings
from schemas.internal import SkuAction, SkuCommand, SkuResult
from schemas.models import Availability, LocationAvailability, Message, OrderStatusChanged
from streams.core.saga.state import OrderState
from streams.order_stage import MAX_STATE_BYTES, OrderStage, SagaSettings, order_table
from streams.views import NetworkView
from tests.unit.batch_fakes import FakeEvent, Run
from tests.unit.factories import (
    at,
    make_address,
    make_availability,
    make_cancel,
    make_location,
    make_order,
)

ORDERS = "dom.orders.v1"


class Orders:
    """The stage over a table of its own, with a view of one DC."""

    def __init__(self, stored: dict[bytes, bytes] | None = None, **settings: Any) -> None:
        self.run = Run("orders")
        self.table = self.run.table({} if stored is None else stored)
        self.orders = order_table(self.table)
        view = NetworkView()
        view.apply(make_location("DC-EAST"))
        saga = SagaSettings.of(Settings(**settings))
        self.stage = OrderStage(self.orders, self.run.codec, view, saga, self.run.outbox.metrics)

    def event(self, record: Message) -> FakeEvent:
        key = record.order_id  # type: ignore[attr-defined]
        return self.run.event(self.run.settings.topic(ORDERS), key, self.run.codec.encode(record))

    def batch(self, *events: FakeEvent) -> None:
        self.run.batch(list(events), self.stage.handle, self.orders)

    def statuses(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for record in self.run.records():
            if isinstance(record, OrderStatusChanged):
                out.setdefault(record.order_id, []).append(record.status.value)
        return out


def test_an_order_too_large_to_store_is_dead_lettered_and_the_batch_goes_on() -> None:
    orders = Orders()
    # Within the contract, but its state (the order, and its address again in the commands
    # it causes) is more than a changelog record may hold.
    huge = make_order("ORD-HUGE", ship_to=make_address(name="x" * MAX_STATE_BYTES))

    orders.batch(orders.event(huge), orders.event(make_order("ORD-OK")))

    [letter] = orders.run.letters()
    assert letter.key == b"ORD-HUGE" and letter.stage == "orders"
    assert "state would be" in letter.error and f"{MAX_STATE_BYTES}" in letter.error
    assert orders.statuses() == {"ORD-OK": ["RECEIVED", "BACKORDERED"]}
    assert b"ORD-HUGE" not in orders.table and b"ORD-OK" in orders.table
    assert all(len(value) <= MAX_STATE_BYTES for value in _values(orders.table))


@pytest.mark.parametrize("plan_hold_ids", [True, False])
def test_shipments_are_held_under_their_plans_own_ids_unless_turned_off(
    plan_hold_ids: bool,
) -> None:
    """DOM_PLAN_HOLD_IDS=false while a worker of an earlier release, which holds a shipment
    under its shipment id, still runs."""
    orders = Orders(plan_hold_ids=plan_hold_ids)
    orders.stage.view.apply(stock_at(5, 0, updated_at=at(1)))
    orders.batch(orders.event(make_order("A")))

    [reserve] = [x for x in orders.run.records() if isinstance(x, SkuCommand)]
    [hold] = [h.hold_id for h in reserve.holds]
    [shipment] = _stored(orders, "A").shipments.values()
    assert shipment.shipment_id == "A-1-1" and shipment.hold == hold
    if plan_hold_ids:
        assert hold.startswith("A-1-1.") and len(hold) == len("A-1-1.") + 8
    else:
        assert hold == "A-1-1"


def test_an_order_keeps_the_replies_of_its_last_batch_only() -> None:
    orders = Orders()
    placed, cancelled = make_order("ORD-1"), make_cancel("ORD-1")
    place = orders.event(placed)
    orders.batch(place)
    assert set(_stored(orders, "ORD-1").replies) == {"event:" + placed.event_id}

    orders.batch(orders.event(cancelled))  # the next batch of that partition: placing is done

    state = _stored(orders, "ORD-1")
    assert set(state.replies) == set(state.replied_at) == {"event:" + cancelled.event_id}
    assert orders.statuses() == {"ORD-1": ["RECEIVED", "BACKORDERED", "CANCELLED"]}
    # The placement read again (a consumer group rewound by hand): skipped whole, as before.
    again = Orders(dict(orders.table))
    again.batch(place)
    assert again.run.records() == []


def test_the_inputs_of_one_batch_keep_their_replies_for_a_replay_of_that_batch() -> None:
    orders = Orders()
    placed, cancelled = make_order("ORD-1"), make_cancel("ORD-1")
    batch = [orders.event(placed), orders.event(cancelled)]
    orders.batch(*batch)
    first = orders.run.records()

    state = _stored(orders, "ORD-1")
    assert set(state.replies) == {"event:" + placed.event_id, "event:" + cancelled.event_id}
    # A stage killed before the batch's records went out reads the batch again: the same
    # records, from the replies.
    again = Orders(dict(orders.table))
    again.batch(*batch)
    assert again.run.records() == first


def _stored(orders: Orders, order_id: str) -> OrderState:
    return OrderState.from_stored(orders.table[order_id.encode()])


def _values(table: Any) -> list[bytes]:
    return [table[key] for key in list(table)]


# ---- routing steers around what the worker promised (streams/core/routing/promised.py) ----------


def at_location(location_id: str, available: int) -> LocationAvailability:
    return LocationAvailability(
        location_id=location_id, on_hand=available, reserved=0, safety_stock=0, available=available
    )


def two_dcs(east: int, far: int, updated_at: datetime) -> Orders:
    """The stage's view: DC-EAST at the default ship-to, DC-FAR in Chicago, SKU-1 at both."""
    orders = Orders()
    view = orders.stage.view
    view.apply(make_location("DC-FAR", address=make_address(lat=41.8781, lon=-87.6298)))
    view.apply(stock_at(east, far, updated_at))
    return orders


def stock_at(east: int, far: int, updated_at: datetime) -> Availability:
    lines = (at_location("DC-EAST", east), at_location("DC-FAR", far))
    return make_availability(
        "SKU-1", locations=lines, total_available=east + far, updated_at=updated_at
    )


def reserved_at(orders: Orders) -> list[tuple[str, str]]:
    return [
        (x.order_id, h.location_id)
        for x in orders.run.records()
        if isinstance(x, SkuCommand) and x.action == SkuAction.RESERVE
        for h in x.holds
    ]


def test_orders_of_one_batch_do_not_go_after_the_same_last_unit() -> None:
    orders = two_dcs(east=1, far=5, updated_at=at(1))

    orders.batch(orders.event(make_order("A")), orders.event(make_order("B")))

    # A takes DC-EAST's last unit; B, routed before any owner answered, goes to DC-FAR
    # instead of losing a race for it.
    assert reserved_at(orders) == [("A", "DC-EAST"), ("B", "DC-FAR")]


def test_a_promise_ends_when_the_view_shows_the_granted_hold() -> None:
    orders = two_dcs(east=1, far=5, updated_at=at(1))
    orders.batch(orders.event(make_order("A")))
    [reserve] = [x for x in orders.run.records() if isinstance(x, SkuCommand)]
    orders.batch(orders.event(granted(reserve)))
    # The owner's record after the hold, stamped with the same input: DC-EAST restocked to 3
    # free units since. Were A's unit still counted, C (3 units) would look elsewhere.
    orders.stage.view.apply(stock_at(3, 5, updated_at=at(2)))

    orders.batch(orders.event(make_order("C", lines=[("SKU-1", 3)])))

    assert reserved_at(orders)[-1] == ("C", "DC-EAST")


# ---- an answer that decides nothing waits for the order's next write (streams/runtime/acks.py) --


def two_skus_at_east() -> Orders:
    orders = Orders()
    for sku in ("SKU-1", "SKU-2"):
        lines = (at_location("DC-EAST", 5),)
        orders.stage.view.apply(
            make_availability(sku, locations=lines, total_available=5, updated_at=at(1))
        )
    return orders


def granted(reserve: SkuCommand) -> SkuResult:
    return SkuResult(
        command_id=reserve.command_id,
        order_id=reserve.order_id,
        sku=reserve.sku,
        action=SkuAction.RESERVE,
        attempt=reserve.attempt,
        ok=True,
        holds=reserve.holds,
        at=at(2),
    )


def test_an_order_whose_skus_answer_in_two_batches_is_written_twice_not_three_times() -> None:
    orders = two_skus_at_east()
    orders.batch(orders.event(make_order("A", lines=[("SKU-1", 1), ("SKU-2", 1)])))
    first, second = [x for x in orders.run.records() if isinstance(x, SkuCommand)]
    writes = len(orders.table.writes)
    answer = orders.event(granted(first))

    orders.batch(answer)

    assert len(orders.table.writes) == writes  # nothing decided: the state waits
    assert answer not in orders.run.acked  # and the answer is not committed
    assert _stored(orders, "A").pending == {"SKU-1": None, "SKU-2": None}

    orders.batch(orders.event(granted(second)))

    assert len(orders.table.writes) == writes + 1
    assert orders.statuses() == {"A": ["RECEIVED", "ALLOCATED"]}
    assert answer in orders.run.acked
    assert _stored(orders, "A").status == "ALLOCATED"


def test_an_answer_whose_change_was_lost_with_the_worker_is_read_again() -> None:
    """The first answer's change waited, unwritten and uncommitted, when the worker died: the
    one that takes over reads it again from the committed offset, with the second."""
    orders = two_skus_at_east()
    orders.batch(orders.event(make_order("A", lines=[("SKU-1", 1), ("SKU-2", 1)])))
    first, second = [x for x in orders.run.records() if isinstance(x, SkuCommand)]
    answer = orders.event(granted(first))
    orders.batch(answer)

    again = Orders(dict(orders.table))
    again.stage.view = orders.stage.view
    again.run._offsets = dict(orders.run._offsets)  # the partition goes on where it was
    again.batch(answer, again.event(granted(second)))

    assert again.statuses() == {"A": ["ALLOCATED"]}
    assert OrderState.from_stored(again.table[b"A"]).status == "ALLOCATED"

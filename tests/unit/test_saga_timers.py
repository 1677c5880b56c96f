"""What the timers owe an order: a move away from a location that did not accept in time, a
cancel for a pickup nobody collected; nothing before the deadline, nothing for what moved on."""

from __future__ import annotations

from datetime import timedelta

from schemas.models import (
    ActionResult,
    FulfillmentCommand,
    OrderAction,
    OrderActionKind,
    OrderCancelled,
    OrderStatusChanged,
)
from streams.core.saga.apply import apply_input
from streams.core.saga.move import ACCEPT_TIMER
from streams.core.saga.state import OrderState, ShipmentState
from streams.core.saga.timers import Deadlines, due, timed_out
from tests.unit.factories import T0, make_order
from tests.unit.test_saga import ACCEPTED, World, placed, report
from tests.unit.test_saga_backorders import Line

DEADLINES = Deadlines(accept_store_s=60, accept_dc_s=600, pickup_s=3600)


def allocated(order=None) -> OrderState:  # type: ignore[no-untyped-def]
    line = Line()
    line.stock("SKU-1", 5)
    line.send(order or make_order("ORD-1"))
    state = line.orders[(order or make_order("ORD-1")).order_id]
    assert state.status == "ALLOCATED"
    return state


def kinds(location_id: str) -> str | None:
    return {"DC-EAST": "DC", "STORE-1": "STORE"}.get(location_id)


def test_a_shipment_not_accepted_by_its_deadline_is_moved_away_once_per_routing() -> None:
    state = allocated()
    [shipment] = state.shipments.values()
    assert shipment.opened_at == T0

    assert timed_out(state, T0 + timedelta(seconds=599), DEADLINES, kinds) == []
    [move] = timed_out(state, T0 + timedelta(seconds=600), DEADLINES, kinds)
    assert isinstance(move, OrderAction)
    assert (move.kind, move.shipment_id, move.requested_by) == (
        OrderActionKind.MOVE_SHIPMENT,
        shipment.shipment_id,
        ACCEPT_TIMER,
    )
    assert move.action_id == f"accept-timeout:{shipment.shipment_id}:{state.attempt}"
    assert "DOM_ACCEPT_TIMEOUT_DC_S (600 s)" in move.reason


def test_an_accepted_or_settled_shipment_owes_nothing() -> None:
    state = allocated()
    [shipment] = state.shipments.values()
    shipment.accepted = True
    assert timed_out(state, T0 + timedelta(days=30), DEADLINES, kinds) == []
    shipment.accepted, shipment.state = False, ShipmentState.SHIPPED
    assert timed_out(state, T0 + timedelta(days=30), DEADLINES, kinds) == []


def test_a_ready_pickup_past_its_expiry_cancels_the_order() -> None:
    state = allocated(make_order("ORD-P"))
    [shipment] = state.shipments.values()
    # the store has the customer's pickup ready (it ACCEPTED the PICKUP shipment)
    shipment.kind, shipment.accepted, shipment.ready_at = "PICKUP", True, T0 + timedelta(minutes=5)
    assert timed_out(state, T0 + timedelta(minutes=64), DEADLINES, kinds) == []
    [cancel] = timed_out(state, T0 + timedelta(minutes=65), DEADLINES, kinds)
    assert isinstance(cancel, OrderCancelled)
    assert cancel.event_id == "pickup-expired:ORD-P" and "DOM_PICKUP_EXPIRY_S" in cancel.reason


def test_the_scan_skips_orders_being_routed_and_orders_without_a_watched_shipment() -> None:
    state = allocated()
    late = T0 + timedelta(days=1)
    stored = state.model_dump_json().encode()
    assert len(due([stored, None], late, DEADLINES, kinds)) == 1
    state.pending = {"SKU-1": None}
    assert due([state.model_dump_json().encode()], late, DEADLINES, kinds) == []
    [shipment] = state.shipments.values()
    state.pending, shipment.accepted = {}, True
    assert due([state.model_dump_json().encode()], late, DEADLINES, kinds) == []


def test_a_timer_move_of_a_shipment_accepted_after_the_timer_read_it_is_refused() -> None:
    # The timer reads the orders in slices while the stage goes on: the location's ACCEPTED
    # may come between the timer's read and its move.
    world = placed(World({"SKU-1": {"DC-EAST": 5, "DC-WEST": 5}}), make_order("ORD-1"))
    [shipment] = world.orders["ORD-1"].shipments.values()
    [move] = timed_out(world.orders["ORD-1"], T0 + timedelta(hours=1), DEADLINES, kinds)
    world.update(report("ORD-1", shipment.shipment_id, shipment.location_id, status=ACCEPTED))

    state, outputs = apply_input(world.orders["ORD-1"], move, world.ctx)

    [answer] = [r for r in outputs if isinstance(r, OrderStatusChanged)]
    assert answer.action_result is ActionResult.REFUSED
    assert answer.reason == f"DC-EAST accepted shipment {shipment.shipment_id} meanwhile"
    assert not [r for r in outputs if isinstance(r, FulfillmentCommand)]  # no CANCEL went out
    assert state is not None and state.shipments[shipment.shipment_id].location_id == "DC-EAST"

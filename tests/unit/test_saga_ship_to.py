"""CHANGE_SHIP_TO in the saga: a shipment that stays gets the new address sent; a pickup order
or one that shipped refuses it and changes nothing."""

from __future__ import annotations

from schemas.models import ActionResult, FulfillmentCommand, OrderActionKind, OrderStatusChanged
from tests.unit.factories import make_address, make_order, make_order_action
from tests.unit.test_saga_backorders import Line

CHICAGO = make_address(city="Chicago", region="IL", postal_code="60601", lat=41.88, lon=-87.63)


def answer(line: Line, action_id: str) -> OrderStatusChanged:
    [found] = [
        r for r in line.published if isinstance(r, OrderStatusChanged) and r.action_id == action_id
    ]
    return found


def test_a_shipment_with_nowhere_better_to_go_stays_and_gets_the_new_address() -> None:
    line = Line()  # one location: nothing is ever cheaper elsewhere
    line.stock("SKU-1", 5)
    line.send(make_order("ORD-1"))
    line.send(
        make_order_action("ORD-1", OrderActionKind.CHANGE_SHIP_TO, action_id="A-1", ship_to=CHICAGO)
    )
    said = answer(line, "A-1")
    assert said.action_result is ActionResult.APPLIED
    assert "stays at DC-EAST (new address sent)" in said.reason
    commands = [r for r in line.published if isinstance(r, FulfillmentCommand)]
    ids = [c.command_id for c in commands]
    assert ids == ["ORD-1-1-1:fulfil", "ORD-1-1-1:ship-to:1"]
    assert commands[-1].ship_to == CHICAGO
    assert line.orders["ORD-1"].order.ship_to == CHICAGO


def test_a_shipped_order_refuses_a_new_address_and_keeps_its_own() -> None:
    from schemas.models import FulfillmentStatus
    from streams.core.saga.apply import apply_input
    from tests.unit.factories import make_fulfillment_update

    line = Line()
    line.stock("SKU-1", 5)
    line.send(make_order("ORD-1"))
    [shipment] = line.orders["ORD-1"].shipments
    state, _ = apply_input(
        line.orders["ORD-1"],
        make_fulfillment_update("ORD-1", shipment, "DC-EAST", FulfillmentStatus.SHIPPED),
        line.ctx(),
    )
    before = state.order.ship_to  # type: ignore[union-attr]
    line.send(
        make_order_action("ORD-1", OrderActionKind.CHANGE_SHIP_TO, action_id="A-1", ship_to=CHICAGO)
    )
    said = answer(line, "A-1")
    assert said.action_result is ActionResult.REFUSED
    assert said.reason == f"order ORD-1 has already shipped ({shipment})"
    assert line.orders["ORD-1"].order.ship_to == before

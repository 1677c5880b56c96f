"""Cancels reach the warehouse: CANCEL commands, units held until the location confirms (unless
it had not accepted), late shipments that still count, and cancelling some units of some lines."""

from __future__ import annotations

from dataclasses import replace

from schemas.internal import SkuAction
from schemas.models import (
    ActionLine,
    ActionResult,
    FulfillmentAction,
    FulfillmentStatus,
    OrderActionKind,
    OrderStatusChanged,
    ShipmentLine,
)
from streams.core.inventory import stock as inventory
from streams.core.inventory.sku_owner import apply_command
from streams.core.saga.actions import MAX_DEFERRED
from streams.core.saga.apply import apply_input
from tests.unit.factories import (
    T0,
    make_cancel,
    make_order,
    make_order_action,
    make_return_request,
)
from tests.unit.test_returns import apply as apply_returns
from tests.unit.test_returns import shipped
from tests.unit.test_saga import World, placed, report
from tests.unit.test_saga_actions import act, answers

ACCEPTED = FulfillmentStatus.ACCEPTED
CANCELLED = FulfillmentStatus.CANCELLED
SHIPPED = FulfillmentStatus.SHIPPED
SHIPMENT = "ORD-1-1-1"


def allocated(lines: list[tuple[str, int]], stock: dict[str, dict[str, int]]) -> World:
    return placed(World(stock), make_order(lines=lines))


def accept(world: World, shipment_id: str = SHIPMENT, location_id: str = "DC-EAST") -> None:
    world.update(report("ORD-1", shipment_id, location_id, status=ACCEPTED))


def tell(world: World, status: FulfillmentStatus, shipment_id: str = SHIPMENT) -> None:
    world.update(report("ORD-1", shipment_id, "DC-EAST", status=status))
    world.run()


def cancel_lines(world: World, action_id: str, *lines: tuple[str, int]) -> None:
    wanted = [ActionLine(line_id=lid, quantity=n) for lid, n in lines]
    act(world, OrderActionKind.CANCEL_LINES, action_id, lines=wanted, reason="customer call")


def cancels(world: World) -> list[tuple[str, str]]:
    return [
        (c.shipment_id, c.command_id)
        for c in world.fulfillment()
        if c.action is FulfillmentAction.CANCEL
    ]


# ---- whole-order cancels ------------------------------------------------------------------------


def test_cancelling_an_unaccepted_shipment_tells_the_location_and_releases_at_once() -> None:
    world = allocated([("SKU-1", 2)], {"SKU-1": {"DC-EAST": 5}})

    world.cancel(make_cancel())
    world.run()

    assert cancels(world) == [(SHIPMENT, f"{SHIPMENT}:cancel")]
    [cancel] = [c for c in world.fulfillment() if c.action is FulfillmentAction.CANCEL]
    assert cancel.location_id == "DC-EAST"
    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=5, reserved=0)


def test_cancelling_an_accepted_shipment_holds_its_units_until_the_location_confirms() -> None:
    world = allocated([("SKU-1", 2)], {"SKU-1": {"DC-EAST": 5}})
    accept(world)

    world.cancel(make_cancel())
    world.run()

    assert cancels(world) == [(SHIPMENT, f"{SHIPMENT}:cancel")]
    assert world.statuses()[-1] == "CANCELLED"
    assert world.at("SKU-1", "DC-EAST").reserved == 2

    tell(world, CANCELLED)

    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=5, reserved=0)
    assert world.statuses()[-1] == "CANCELLED"
    assert "DC-EAST confirmed the cancel of ORD-1-1-1" in world.last_status().reason
    tell(world, CANCELLED)  # a repeat changes nothing
    assert len(world.sku_commands(SkuAction.RELEASE)) == 1


def test_a_shipment_shipped_after_its_cancel_consumes_its_held_units() -> None:
    world = allocated([("SKU-1", 2)], {"SKU-1": {"DC-EAST": 5}})
    accept(world)
    world.cancel(make_cancel())
    world.run()

    tell(world, SHIPPED)

    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=3, reserved=0)
    last = world.last_status()
    assert last.status.value == "COMPLETED"
    assert last.reason.startswith("cancel REFUSED, too late: ORD-1-1-1 was shipped")
    assert "the order's cancel: customer request" in last.reason
    tell(world, CANCELLED)  # the location's confused confirmation afterwards changes nothing
    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=3, reserved=0)


def test_a_shipment_shipped_after_its_units_were_released_still_takes_them_off_on_hand() -> None:
    world = allocated([("SKU-1", 2)], {"SKU-1": {"DC-EAST": 5}})
    world.cancel(make_cancel())
    world.run()
    assert world.at("SKU-1", "DC-EAST").available == 5

    tell(world, SHIPPED)
    tell(world, SHIPPED)  # redelivered: counted once

    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=3, reserved=0)
    assert world.statuses()[-2:] == ["CANCELLED", "COMPLETED"]
    assert "cancel REFUSED, too late" in world.last_status().reason


def test_a_late_consumption_redelivered_to_the_owner_changes_on_hand_once() -> None:
    world = allocated([("SKU-1", 2)], {"SKU-1": {"DC-EAST": 5}})
    world.cancel(make_cancel())
    world.run()
    tell(world, SHIPPED)
    [late] = world.sku_commands(SkuAction.CONSUME)
    assert late.holds[0].hold_id == "ORD-1-1-1:late"

    state, _ = apply_command(world.inventory["SKU-1"], late, T0)

    assert state.at("DC-EAST") == inventory.LocationStock(on_hand=3, reserved=0)


def test_with_plan_hold_ids_every_command_names_the_plans_hold() -> None:
    world = World({"SKU-1": {"DC-EAST": 5}})
    world.ctx = replace(world.ctx, plan_hold_ids=True)
    placed(world, make_order(lines=[("SKU-1", 2)]))
    [reserve] = world.sku_commands(SkuAction.RESERVE)
    [hold] = [h.hold_id for h in reserve.holds]
    assert hold.startswith("ORD-1-1-1.") and world.statuses()[-1] == "ALLOCATED"
    world.cancel(make_cancel())
    world.run()

    tell(world, SHIPPED)  # the location shipped anyway: its released units leave on-hand

    [released] = world.sku_commands(SkuAction.RELEASE)
    [late] = world.sku_commands(SkuAction.CONSUME)
    assert [h.hold_id for h in released.holds] == [hold]
    assert [h.hold_id for h in late.holds] == [hold + ":late"]
    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=3, reserved=0)


def test_a_hold_placed_on_an_accepted_shipment_waits_for_the_location() -> None:
    world = allocated([("SKU-1", 2)], {"SKU-1": {"DC-EAST": 5}})
    accept(world)

    act(world, OrderActionKind.PLACE_HOLD, "A-1")

    assert answers(world)[-1].action_result is ActionResult.APPLIED
    assert cancels(world) == [(SHIPMENT, f"{SHIPMENT}:cancel")]
    assert world.at("SKU-1", "DC-EAST").reserved == 2
    tell(world, CANCELLED)
    assert world.at("SKU-1", "DC-EAST").reserved == 0


def test_a_held_order_whose_shipment_left_anyway_does_not_route_it_again() -> None:
    world = allocated([("SKU-1", 2)], {"SKU-1": {"DC-EAST": 5}})
    accept(world)
    act(world, OrderActionKind.PLACE_HOLD, "A-1")

    tell(world, SHIPPED)
    assert "hold placed by action A-1" in world.last_status().reason
    act(world, OrderActionKind.RELEASE_HOLD, "A-2")

    assert world.sku_commands(SkuAction.RESERVE)[1:] == []
    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=3, reserved=0)


# ---- cancelling lines ---------------------------------------------------------------------------


def test_cancelling_one_line_releases_only_its_sku_and_refulfils_the_other() -> None:
    world = allocated(
        [("SKU-A", 1), ("SKU-B", 1)], {"SKU-A": {"DC-EAST": 5}, "SKU-B": {"DC-EAST": 5}}
    )

    cancel_lines(world, "A-1", ("1", 1))

    [answer] = answers(world)
    assert answer.action_result is ActionResult.APPLIED
    assert answer.reason.startswith("cancelled 1 of line 1 by alice (customer call)")
    # The channel learns which units went: the answer names them.
    assert [(x.line_id, x.sku, x.quantity) for x in answer.cancelled] == [("1", "SKU-A", 1)]
    assert cancels(world) == [(SHIPMENT, f"{SHIPMENT}:cancel")]
    assert world.at("SKU-A", "DC-EAST") == inventory.LocationStock(on_hand=5, reserved=0)
    assert world.at("SKU-B", "DC-EAST") == inventory.LocationStock(on_hand=5, reserved=1)
    last = world.last_status()
    assert last.status.value == "ALLOCATED"
    [(shipment_id, location, lines)] = [
        (s.shipment_id, s.location_id, [(x.line_id, x.quantity) for x in s.lines])
        for s in last.shipments
    ]
    assert (location, lines) == ("DC-EAST", [("2", 1)])
    fulfil = world.fulfillment()[-1]
    assert (fulfil.action, fulfil.shipment_id) == (FulfillmentAction.FULFIL, shipment_id)


def test_cancelling_some_units_keeps_the_rest_of_the_line() -> None:
    world = allocated([("SKU-1", 3)], {"SKU-1": {"DC-EAST": 5}})

    cancel_lines(world, "A-1", ("1", 2))

    assert world.at("SKU-1", "DC-EAST").reserved == 1
    assert [(x.line_id, x.quantity) for x in world.last_status().shipments[0].lines] == [("1", 1)]


def test_cancelling_units_of_an_accepted_shipment_waits_for_the_location() -> None:
    world = allocated([("SKU-1", 3)], {"SKU-1": {"DC-EAST": 5}})
    accept(world)

    cancel_lines(world, "A-1", ("1", 1))

    assert world.at("SKU-1", "DC-EAST").reserved == 3 + 2  # the old hold, and the rest anew
    tell(world, CANCELLED)
    assert world.at("SKU-1", "DC-EAST").reserved == 2


def test_cancelling_every_open_unit_cancels_the_order() -> None:
    world = allocated(
        [("SKU-A", 1), ("SKU-B", 2)], {"SKU-A": {"DC-EAST": 5}, "SKU-B": {"DC-EAST": 5}}
    )

    cancel_lines(world, "A-1", ("1", 1), ("2", 2))

    answer = answers(world)[-1]
    assert answer.action_result is ActionResult.APPLIED
    assert answer.status.value == "CANCELLED"
    assert "the order is cancelled" in answer.reason
    assert world.reserved_total() == 0
    assert world.sku_commands(SkuAction.RESERVE)[2:] == []


def test_cancelling_backordered_units_needs_no_location() -> None:
    world = allocated([("SKU-A", 1), ("SKU-B", 2)], {"SKU-A": {"DC-EAST": 5}, "SKU-B": {}})
    assert world.statuses()[-1] == "PARTIALLY_ALLOCATED"

    cancel_lines(world, "A-1", ("2", 2))

    answer = answers(world)[-1]
    assert answer.status.value == "ALLOCATED"
    assert answer.backordered == ()
    assert cancels(world) == []
    assert world.at("SKU-A", "DC-EAST").reserved == 1


def test_a_shipped_line_cannot_be_cancelled() -> None:
    world = allocated([("SKU-1", 1)], {"SKU-1": {"DC-EAST": 5}})
    tell(world, SHIPPED)

    cancel_lines(world, "A-1", ("1", 1))

    answer = answers(world)[-1]
    assert (answer.action_result, answer.reason) == (ActionResult.REFUSED, "line 1 already shipped")


def test_refused_line_cancels_change_nothing() -> None:
    world = allocated([("SKU-1", 2)], {"SKU-1": {"DC-EAST": 5}})
    published = len(world.published)

    cancel_lines(world, "A-1", ("9", 1))
    cancel_lines(world, "A-2", ("1", 3))
    cancel_lines(world, "A-3")

    got = [(a.action_result, a.reason) for a in answers(world)]
    assert got == [
        (ActionResult.REFUSED, "order ORD-1 has no line 9 (its lines: 1)"),
        (ActionResult.REFUSED, "only 2 units of line 1 are open, 3 asked"),
        (ActionResult.REFUSED, "name at least one line to cancel (line id and units)"),
    ]
    assert len(world.published) == published + 3  # the three answers, nothing else
    assert all(a.cancelled == () for a in answers(world))
    assert world.at("SKU-1", "DC-EAST").reserved == 2
    assert world.orders["ORD-1"].cancelled_units == {}


def test_a_line_cancel_while_the_order_is_being_routed_waits_for_the_routing() -> None:
    """Reservations in flight: the cancel is answered when the routing ends, and applied to
    what it allocated (the stage passes every input through `apply_input`, which does it)."""
    world = World({"SKU-1": {"DC-EAST": 5}})
    world.place(make_order(lines=[("SKU-1", 2)]))

    wanted = [ActionLine(line_id="1", quantity=1)]
    action = make_order_action(
        kind=OrderActionKind.CANCEL_LINES, action_id="A-1", lines=wanted, reason="customer call"
    )
    state, outputs = apply_input(world.orders["ORD-1"], action, world.ctx)
    assert state is not None and outputs == []  # nothing to say yet
    assert apply_input(state, action, world.ctx)[1] == []  # a redelivery waits no second time
    assert [a.action_id for a in state.deferred] == ["A-1"]
    world.apply_commands()
    [result] = list(world.results)
    state, outputs = apply_input(state, result, world.ctx)
    world.send(outputs)

    assert world.statuses() == ["RECEIVED", "ALLOCATED", "ALLOCATED"]
    answer = answers(world)[-1]
    assert (answer.action_id, answer.action_result) == ("A-1", ActionResult.APPLIED)
    assert answer.cancelled == (ShipmentLine(line_id="1", sku="SKU-1", quantity=1),)
    assert state.deferred == [] and state.cancelled_units == {"1": 1}


def test_actions_beyond_what_an_order_keeps_waiting_are_refused() -> None:
    world = World({"SKU-1": {"DC-EAST": 5}})
    world.place(make_order(lines=[("SKU-1", 2)]))
    state = world.orders["ORD-1"]
    for n in range(MAX_DEFERRED + 1):
        action = make_order_action(kind=OrderActionKind.RETRY_BACKORDER, action_id=f"A-{n}")
        _, outputs = apply_input(state, action, world.ctx)
    [refusal] = outputs
    assert isinstance(refusal, OrderStatusChanged)
    assert refusal.action_result is ActionResult.REFUSED
    assert refusal.reason == "order ORD-1 is being routed right now; look again in a moment"
    assert len(state.deferred) == MAX_DEFERRED


def test_actions_waiting_on_an_order_cancelled_meanwhile_are_refused_saying_so() -> None:
    world = World({"SKU-1": {"DC-EAST": 5}})
    world.place(make_order(lines=[("SKU-1", 2)]))
    wanted = [ActionLine(line_id="1", quantity=1)]
    action = make_order_action(kind=OrderActionKind.CANCEL_LINES, action_id="A-1", lines=wanted)
    state, _ = apply_input(world.orders["ORD-1"], action, world.ctx)
    assert state is not None

    _, outputs = apply_input(state, make_cancel(), world.ctx)

    answers_ = [x for x in outputs if isinstance(x, OrderStatusChanged) and x.action_id]
    assert [(a.action_id, a.action_result, a.reason) for a in answers_] == [
        ("A-1", ActionResult.REFUSED, "order ORD-1 is cancelled")
    ]


def test_a_line_cancel_too_late_counts_the_units_as_shipped() -> None:
    world = allocated([("SKU-1", 2)], {"SKU-1": {"DC-EAST": 5}})
    cancel_lines(world, "A-1", ("1", 2))
    assert world.statuses()[-1] == "CANCELLED"

    tell(world, SHIPPED)

    assert world.statuses()[-1] == "COMPLETED"
    assert "action A-1 cancelling lines" in world.last_status().reason
    assert world.orders["ORD-1"].cancelled_units == {"1": 0}
    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=3, reserved=0)


def test_a_cancelled_order_that_shipped_anyway_can_be_returned() -> None:
    world = shipped(ship=False)
    world.cancel(make_cancel())
    world.run()
    assert apply_returns(world, make_return_request(return_id="RET-0"))[0].reason.endswith(
        "the order was cancelled"
    )

    tell(world, SHIPPED)
    [status] = apply_returns(world, make_return_request())[:1]

    assert status.status.value == "RETURN_AUTHORIZED"


def test_the_rest_of_a_cut_shipment_is_routed_with_the_lines_still_waiting() -> None:
    world = allocated([("SKU-A", 3), ("SKU-B", 2)], {"SKU-A": {"DC-EAST": 5}, "SKU-B": {}})
    assert world.statuses()[-1] == "PARTIALLY_ALLOCATED"

    cancel_lines(world, "A-1", ("1", 1))

    last = world.last_status()
    assert last.status.value == "PARTIALLY_ALLOCATED"
    assert [(x.line_id, x.quantity) for x in last.shipments[0].lines] == [("1", 2)]
    assert [(x.line_id, x.quantity) for x in last.backordered] == [("2", 2)]
    assert world.at("SKU-A", "DC-EAST").reserved == 2

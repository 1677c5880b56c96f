"""Actions on a live order: typed holds placed and released, each action answered once."""

from __future__ import annotations

import dataclasses
from typing import Any

from schemas.internal import SkuAction
from schemas.models import (
    ActionResult,
    FulfillmentAction,
    FulfillmentStatus,
    OrderAction,
    OrderActionKind,
    OrderHoldKind,
    OrderStatusChanged,
    RuleAction,
)
from streams.core.rules.ruleset import RuleSet
from streams.core.saga.apply import apply_input
from tests.unit.factories import (
    make_cancel,
    make_fulfillment_update,
    make_order_action,
    make_rule,
)
from tests.unit.test_saga import World, placed
from tests.unit.test_saga_rules import default_rules, order_of, ruled

LARGE = ("6000.00", [("SKU-1", 1)])  # the default rules hold orders of 5000 or more


def held_world(rules: RuleSet | None = None) -> World:
    world = ruled(World({"SKU-1": {"DC-EAST": 10, "DC-WEST": 10}}), rules or default_rules())
    return placed(world, order_of(*LARGE))


def act(world: World, kind: OrderActionKind, action_id: str, **fields: Any) -> OrderAction:
    action = make_order_action(kind=kind, action_id=action_id, **fields)
    state, outputs = apply_input(world.orders[action.order_id], action, world.ctx)
    assert state is not None
    world.send(outputs)
    world.run()
    return action


def answers(world: World) -> list[OrderStatusChanged]:
    return [x for x in world.status_records() if x.action_id is not None]


def test_a_rule_hold_is_typed_and_listed_on_the_status() -> None:
    world = held_world()

    [hold] = world.last_status().holds
    assert hold.kind is OrderHoldKind.RULE
    assert hold.rule_id == "hold-very-large-orders"
    assert hold.placed_by is None
    assert "manual review" in hold.reason
    assert hold.hold_id == "ORD-1-H1"


def test_releasing_the_last_hold_routes_the_order() -> None:
    world = held_world()

    act(world, OrderActionKind.RELEASE_HOLD, "A-1", hold_id="ORD-1-H1")

    [answer] = answers(world)
    assert answer.action_result is ActionResult.APPLIED
    assert answer.event_id == "ORD-1:action:A-1"
    assert "released ORD-1-H1 by alice" in answer.reason
    assert answer.holds == ()
    assert world.statuses()[-1] == "ALLOCATED"
    assert world.last_status().holds == ()
    assert world.reserved_total() == 1
    assert [c.action for c in world.fulfillment()] == [FulfillmentAction.FULFIL]


def test_the_same_rule_version_does_not_hold_a_released_order_again() -> None:
    world = held_world()
    act(world, OrderActionKind.RELEASE_HOLD, "A-1")
    [shipment] = world.last_status().shipments

    # The location rejects: the order is routed again, and the rule still matches it.
    rejected = make_fulfillment_update(
        shipment_id=shipment.shipment_id,
        location_id=shipment.location_id,
        status=FulfillmentStatus.REJECTED,
    )
    world.update(rejected)
    world.run()

    assert world.statuses()[-1] == "ALLOCATED"
    assert world.last_status().holds == ()


def test_a_new_version_of_the_rule_holds_a_released_order_again() -> None:
    world = held_world()
    act(world, OrderActionKind.RELEASE_HOLD, "A-1")
    [shipment] = world.last_status().shipments
    tighter = make_rule(
        "hold-very-large-orders",
        version=99,
        condition="order.total >= 5000.0",
        actions=(RuleAction(type="hold", params={"reason": "still too large"}),),
    )
    world.ctx = dataclasses.replace(world.ctx, rules=world.ctx.rules.with_rule(tighter))

    world.update(
        make_fulfillment_update(
            shipment_id=shipment.shipment_id,
            location_id=shipment.location_id,
            status=FulfillmentStatus.REJECTED,
        )
    )
    world.run()

    assert world.statuses()[-1] == "ON_HOLD"
    assert [h.reason for h in world.last_status().holds] == ["still too large"]


def test_an_order_with_two_holds_is_routed_only_when_both_are_released() -> None:
    world = held_world()
    act(world, OrderActionKind.PLACE_HOLD, "A-1", reason="fraud check", requested_by="bob")
    placed_hold = answers(world)[-1]
    assert placed_hold.status.value == "ON_HOLD"
    manual = placed_hold.holds[-1]
    assert (manual.kind, manual.placed_by, manual.reason) == (
        OrderHoldKind.MANUAL,
        "bob",
        "fraud check",
    )

    act(world, OrderActionKind.RELEASE_HOLD, "A-2", hold_id="ORD-1-H1")

    still = answers(world)[-1]
    assert still.action_result is ActionResult.APPLIED
    assert still.status.value == "ON_HOLD"
    assert [h.hold_id for h in still.holds] == [manual.hold_id]
    assert world.reserved_total() == 0 and not world.fulfillment()

    act(world, OrderActionKind.RELEASE_HOLD, "A-3", hold_id=manual.hold_id)

    assert world.statuses()[-1] == "ALLOCATED"
    assert world.reserved_total() == 1


def test_a_repeated_action_is_answered_once_and_applied_once() -> None:
    world = held_world()
    act(world, OrderActionKind.RELEASE_HOLD, "A-1")
    published = len(world.published)
    state = world.orders["ORD-1"].model_copy(deep=True)

    # A redelivery gets the first answer again (same ids): nothing new is decided.
    again = make_order_action(kind=OrderActionKind.RELEASE_HOLD, action_id="A-1")
    _, replayed = apply_input(world.orders["ORD-1"], again, world.ctx)
    assert [getattr(x, "event_id", None) for x in replayed][:1] == ["ORD-1:action:A-1"]
    # Once its replies are no longer kept, a repeat is not applied nor answered again.
    world.orders["ORD-1"].replies.clear()
    _, late = apply_input(world.orders["ORD-1"], again, world.ctx)

    assert late == []
    assert len(world.published) == published
    assert world.orders["ORD-1"].holds == state.holds
    assert world.orders["ORD-1"].shipments == state.shipments


def test_releasing_a_hold_the_order_does_not_have_is_refused_and_changes_nothing() -> None:
    world = held_world()
    before = world.orders["ORD-1"].model_copy(deep=True)

    act(world, OrderActionKind.RELEASE_HOLD, "A-1", hold_id="H-9")

    [answer] = answers(world)
    assert answer.action_result is ActionResult.REFUSED
    assert answer.reason == "order ORD-1 has no hold H-9 (its holds: ORD-1-H1)"
    assert answer.status.value == "ON_HOLD"
    after = world.orders["ORD-1"]
    assert (after.holds, after.shipments, after.status) == (
        before.holds,
        before.shipments,
        before.status,
    )
    assert not world.sku_commands()


def test_releasing_an_order_without_holds_is_refused() -> None:
    world = placed(World({"SKU-1": {"DC-EAST": 10}}), order_of("10.00", [("SKU-1", 1)]))

    act(world, OrderActionKind.RELEASE_HOLD, "A-1")

    [answer] = answers(world)
    assert answer.action_result is ActionResult.REFUSED
    assert answer.reason == "order ORD-1 has no hold to release"
    assert answer.status.value == "ALLOCATED"


def test_placing_a_hold_on_an_allocated_order_cancels_its_shipment_and_releases_units() -> None:
    world = placed(World({"SKU-1": {"DC-EAST": 10}}), order_of("10.00", [("SKU-1", 2)]))
    [fulfil] = world.fulfillment()
    assert world.reserved_total() == 2

    act(world, OrderActionKind.PLACE_HOLD, "A-1", reason="address check")

    cancel = world.fulfillment()[-1]
    assert cancel.action is FulfillmentAction.CANCEL
    assert (cancel.shipment_id, cancel.location_id) == (fulfil.shipment_id, fulfil.location_id)
    assert cancel.command_id != fulfil.command_id
    assert world.sku_commands(SkuAction.RELEASE)
    assert world.reserved_total() == 0
    answer = answers(world)[-1]
    assert answer.status.value == "ON_HOLD"
    assert f"cancelled {fulfil.shipment_id}" in answer.reason

    act(world, OrderActionKind.RELEASE_HOLD, "A-2")

    assert world.statuses()[-1] == "ALLOCATED"
    assert world.reserved_total() == 2


def test_a_shipped_order_cannot_be_held() -> None:
    world = placed(World({"SKU-1": {"DC-EAST": 10}}), order_of("10.00", [("SKU-1", 1)]))
    [fulfil] = world.fulfillment()
    world.update(
        make_fulfillment_update(shipment_id=fulfil.shipment_id, location_id=fulfil.location_id)
    )
    world.run()

    act(world, OrderActionKind.PLACE_HOLD, "A-1")

    answer = answers(world)[-1]
    assert answer.action_result is ActionResult.REFUSED
    assert answer.reason == f"order ORD-1 has already shipped ({fulfil.shipment_id})"
    assert world.orders["ORD-1"].holds == []


def test_an_action_on_an_unknown_order_is_refused() -> None:
    world = World({"SKU-1": {"DC-EAST": 10}})
    action = make_order_action("ORD-404", action_id="A-1")

    state, outputs = apply_input(None, action, world.ctx)

    assert state is None
    [answer] = outputs
    assert isinstance(answer, OrderStatusChanged)
    assert (answer.action_id, answer.action_result) == ("A-1", ActionResult.REFUSED)
    assert answer.reason.startswith("no order ORD-404 is known")


def test_a_cancelled_order_refuses_actions_and_lists_no_holds() -> None:
    world = held_world()
    world.cancel(make_cancel())

    act(world, OrderActionKind.RELEASE_HOLD, "A-1")

    answer = answers(world)[-1]
    assert answer.action_result is ActionResult.REFUSED
    assert answer.reason == "order ORD-1 is cancelled"
    assert answer.status.value == "CANCELLED" and answer.holds == ()


def test_an_order_held_before_typed_holds_can_be_released() -> None:
    world = held_world()
    state = world.orders["ORD-1"]
    state.holds, state.hold_versions, state.holds_placed = [], {}, 0  # as an older worker kept it

    act(world, OrderActionKind.RELEASE_HOLD, "A-1")

    assert answers(world)[-1].action_result is ActionResult.APPLIED
    # The rule was not remembered with its version: it holds the order again, typed this time.
    assert world.statuses()[-1] == "ON_HOLD"
    assert world.last_status().holds[0].rule_id == "hold-very-large-orders"

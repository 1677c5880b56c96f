"""Retention, in memory: when an order is finished, which stored values the scan asks to remove
(and which it never decodes), and what a removed order's note answers.

Orders are driven through the saga and the sku owners of ``test_saga.World`` (the shipped order
of ``test_returns``); the order stage's side (the key deleted, the note kept and answered from)
is in ``test_order_stage_retention``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

import tests.unit.test_returns as returns_world  # the module, so its tests are not collected twice
from schemas.enums import OrderStatus
from schemas.models import (
    ActionResult,
    FulfillmentStatus,
    OrderActionKind,
    OrderStatusChanged,
)
from streams.core.saga.retention import (
    RemovedOrder,
    Retention,
    finished_at,
    purge_due,
    purges,
    removal_note,
    removed_answer,
    removed_key,
)
from streams.core.saga.state import OrderState
from tests.unit.factories import (
    T0,
    make_cancel,
    make_fulfillment_update,
    make_order,
    make_order_action,
    make_received_line,
    make_return_line,
    make_return_received,
    make_return_request,
)

POLICY = Retention(return_window_days=30, retention_days=90)
DAY = timedelta(days=1)


def at_day(days: float) -> datetime:
    return T0 + timedelta(days=days)


def delivered(days: float = 1) -> returns_world.saga_world.World:
    """ORD-1 shipped whole from DC-EAST ``days`` after T0 (COMPLETED)."""
    world = returns_world.shipped(ship=False)
    world.ctx = replace(world.ctx, now=at_day(days))
    [command] = world.fulfillment()
    world.update(make_fulfillment_update("ORD-1", command.shipment_id, "DC-EAST"))
    world.run()
    return world


def order(world: returns_world.saga_world.World) -> OrderState:
    return world.orders["ORD-1"]


def stored(*states: OrderState) -> list[tuple[bytes, bytes | None]]:
    return [(s.order.order_id.encode(), s.model_dump_json().encode()) for s in states]


# ---- when an order is finished -------------------------------------------------------------------


def test_a_delivered_order_finishes_when_the_return_window_ends_after_its_last_delivery() -> None:
    world = delivered(days=2)

    assert order(world).status == "COMPLETED"
    assert finished_at(order(world), POLICY.window) == at_day(2 + 30)
    assert not purge_due(order(world), at_day(2 + 30 + 90) - timedelta(seconds=1), POLICY)
    assert purge_due(order(world), at_day(2 + 30 + 90), POLICY)


def test_an_allocated_order_never_finishes() -> None:
    world = returns_world.shipped(ship=False)

    assert order(world).status == "ALLOCATED"
    assert finished_at(order(world), POLICY.window) is None
    assert not purge_due(order(world), at_day(10_000), POLICY)


def test_a_cancelled_order_finishes_at_its_cancel_and_a_rejected_one_at_once() -> None:
    world = returns_world.shipped(ship=False)
    world.ctx = replace(world.ctx, now=at_day(3))
    returns_world.apply(world, make_cancel("ORD-1"))
    world.run()
    assert order(world).status == "CANCELLED"
    assert finished_at(order(world), POLICY.window) == at_day(3)

    rejected = returns_world.saga_world.World({"SKU-1": {"DC-EAST": 10}})
    rejected.ctx = replace(rejected.ctx, now=at_day(5))
    too_many = make_order("ORD-9", lines=[("SKU-1", 1_000_000)])  # past DOM_MAX_LINE_QUANTITY
    returns_world.saga_world.placed(rejected, too_many)
    assert rejected.orders["ORD-9"].status == "REJECTED"
    assert finished_at(rejected.orders["ORD-9"], POLICY.window) == at_day(5)


def test_a_backordered_order_never_finishes() -> None:
    world = returns_world.saga_world.World({"SKU-1": {"DC-EAST": 1}})
    world.ctx = replace(world.ctx, now=at_day(5))
    returns_world.saga_world.placed(world, make_order("ORD-8", lines=[("SKU-7", 1)]))

    assert world.orders["ORD-8"].status == "BACKORDERED"
    assert finished_at(world.orders["ORD-8"], POLICY.window) is None


def test_a_cancel_the_location_has_not_confirmed_keeps_the_order_open() -> None:
    world = returns_world.shipped(ship=False)
    [command] = world.fulfillment()
    accepted = make_fulfillment_update(
        "ORD-1", command.shipment_id, "DC-EAST", FulfillmentStatus.ACCEPTED
    )
    world.update(accepted)
    world.run()
    returns_world.apply(world, make_cancel("ORD-1"))
    world.run()

    assert order(world).cancelled
    assert finished_at(order(world), POLICY.window) is None  # units held until it confirms


def test_an_open_return_keeps_the_order_and_its_receipt_finishes_it() -> None:
    world = delivered(days=1)
    world.ctx = replace(world.ctx, now=at_day(10))
    returns_world.apply(world, make_return_request())
    assert order(world).status == "RETURN_AUTHORIZED"
    assert finished_at(order(world), POLICY.window) is None

    world.ctx = replace(world.ctx, now=at_day(20))
    returns_world.apply(world, make_return_received())
    # One unit of three came back: the rest may still come back until the window ends.
    assert order(world).status == "RETURNED"
    assert finished_at(order(world), POLICY.window) == at_day(1 + 30)


def test_an_order_whose_every_unit_came_back_finishes_at_once() -> None:
    world = delivered(days=1)
    world.ctx = replace(world.ctx, now=at_day(4))
    whole = make_return_request(
        lines=tuple(make_return_line(sku, n) for sku, n in (("SKU-1", 2), ("SKU-2", 1)))
    )
    returns_world.apply(world, whole)
    world.ctx = replace(world.ctx, now=at_day(6))
    receipt = make_return_received(
        lines=tuple(make_received_line(sku, n) for sku, n in (("SKU-1", 2), ("SKU-2", 1)))
    )
    returns_world.apply(world, receipt)

    assert order(world).status == "RETURNED"
    assert finished_at(order(world), POLICY.window) == at_day(6)


# ---- the scan -----------------------------------------------------------------------------------


def test_the_scan_asks_for_expired_orders_only_with_a_stable_id() -> None:
    done = order(delivered(days=1))
    busy = order(returns_world.shipped(ship=False)).model_copy(
        update={"order": make_order("ORD-2")}
    )
    now = at_day(1 + 30 + 90)

    commands = purges(stored(done, busy), now, POLICY)

    assert [(c.order_id, c.forget) for c in commands] == [("ORD-1", False)]
    again = purges(stored(done), now + DAY, POLICY)
    assert [c.command_id for c in again] == [c.command_id for c in commands]


def test_the_scan_does_not_decode_orders_placed_within_the_retention() -> None:
    garbage_but_recent = b'{"order":{"placed_at":"' + T0.isoformat().encode() + b'"}, not json'

    assert purges([(b"ORD-X", garbage_but_recent)], at_day(89), POLICY) == []
    with pytest.raises(ValueError):  # past the retention it is read, and this one is broken
        purges([(b"ORD-X", garbage_but_recent)], at_day(91), POLICY)


def test_a_note_is_forgotten_one_retention_after_the_removal() -> None:
    note = RemovedOrder(
        order_id="ORD-1", status="COMPLETED", finished_at=at_day(31), removed_at=at_day(121)
    )
    items = [(removed_key("ORD-1"), note.stored())]

    assert purges(items, at_day(121 + 89), POLICY) == []
    [forget] = purges(items, at_day(121 + 90), POLICY)
    assert forget.forget and forget.order_id == "ORD-1"


def test_the_scan_interval_is_a_24th_of_the_retention_within_a_second_and_an_hour() -> None:
    assert POLICY.scan_interval() == 3600.0
    assert Retention(retention_days=1).scan_interval() == 3600.0
    assert Retention(retention_days=0.1).scan_interval() == pytest.approx(360.0)
    assert Retention(retention_days=1e-6).scan_interval() == 1.0


# ---- answers about a removed order ------------------------------------------------------------


def test_a_return_for_a_removed_order_is_refused_with_its_last_status_and_the_reason() -> None:
    state = order(delivered(days=1))
    note = removal_note(state, at_day(121), POLICY)
    assert (note.status, note.finished_at) == ("COMPLETED", at_day(31))

    [answer] = removed_answer(make_return_request(return_id="RET-9"), note, at_day(200), POLICY)

    assert isinstance(answer, OrderStatusChanged)
    assert answer.order_id == "ORD-1" and answer.status == OrderStatus.COMPLETED
    assert answer.reason.startswith("return RET-9 refused: order ORD-1 was closed (COMPLETED")
    assert "removed 2024-08-30 12:00:00 UTC after the retention of 90 days" in answer.reason
    assert "DOM_ORDER_RETENTION_DAYS" in answer.reason


def test_an_action_on_a_removed_order_is_refused_and_a_late_update_has_no_answer() -> None:
    note = RemovedOrder(
        order_id="ORD-1", status="CANCELLED", finished_at=at_day(3), removed_at=at_day(93)
    )
    action = make_order_action("ORD-1", OrderActionKind.CANCEL_LINES)

    [answer] = removed_answer(action, note, at_day(100), POLICY)
    late = make_fulfillment_update("ORD-1", "ORD-1-1-1", "DC-EAST")

    assert isinstance(answer, OrderStatusChanged)
    assert answer.action_id == action.action_id
    assert answer.action_result == ActionResult.REFUSED
    assert answer.status == OrderStatus.CANCELLED and "was closed (CANCELLED" in answer.reason
    assert removed_answer(late, note, at_day(100), POLICY) == []

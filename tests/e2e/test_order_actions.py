"""Operators act on live orders through ``dom orders``, on the real broker: a held order is
released and allocated, an order with two holds is routed only once both are released, and a
hold placed on an allocated order cancels its shipment at the warehouse and gives its units
back. Every action is answered on dom.order-status.v1, APPLIED or REFUSED."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from decimal import Decimal

from click.testing import CliRunner, Result

from config.settings import Settings
from dom.cli import main
from schemas.models import (
    FulfillmentAction,
    FulfillmentCommand,
    Message,
    OrderStatusChanged,
    RuleAction,
)
from tests.e2e.harness import Pipeline
from tests.unit.factories import (
    make_location,
    make_order,
    make_product,
    make_rule,
    make_stock_event,
)

HOLD_LARGE = make_rule(
    "hold-very-large-orders",
    condition="order.total >= 5000.0",
    actions=(RuleAction(type="hold", params={"reason": "needs a manual review"}),),
)


def dom(settings: Settings, *args: str) -> Result:
    env = {
        "DOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "DOM_TOPIC_PREFIX": settings.topic_prefix,
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def statuses_until(
    pipeline: Pipeline, done: Callable[[list[OrderStatusChanged]], bool]
) -> list[OrderStatusChanged]:
    def only(records: list[Message]) -> list[OrderStatusChanged]:
        return [r for r in records if isinstance(r, OrderStatusChanged)]

    return only(pipeline.read("dom.order-status.v1", lambda r: done(only(r))))


def reached(status: str) -> Callable[[list[OrderStatusChanged]], bool]:
    return lambda records: any(r.status == status and r.action_id is None for r in records)


def start(pipeline: Pipeline, hold_rule: bool = True) -> None:
    """One DC with 10 units of SKU-1, and (when asked) the rule holding large orders, live."""
    pipeline.produce(
        [
            make_location("DC-EAST"),
            make_product("SKU-1"),
            make_stock_event("SKU-1", "DC-EAST", 10, event_id="s-east"),
            *([HOLD_LARGE] if hold_rule else []),
        ]
    )
    pipeline.availability_where("SKU-1", lambda f: "DC-EAST" in f)
    if hold_rule:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with urllib.request.urlopen(pipeline.url("w1", "/rules/")) as response:
                if b"hold-very-large-orders" in response.read():
                    return
            time.sleep(0.2)
        raise AssertionError("the hold rule never reached the worker")


def place_large(pipeline: Pipeline) -> OrderStatusChanged:
    pipeline.produce([make_order("ORD-1", lines=[("SKU-1", 2)], order_total=Decimal("6000.00"))])
    held = statuses_until(pipeline, reached("ON_HOLD"))[-1]
    assert held.status == "ON_HOLD"
    return held


def test_a_held_order_is_released_through_the_cli_and_allocated(
    pipeline: Pipeline, settings: Settings
) -> None:
    start(pipeline)
    held = place_large(pipeline)
    [hold] = held.holds
    assert (hold.kind, hold.rule_id) == ("RULE", "hold-very-large-orders")

    unknown = dom(settings, "orders", "release", "ORD-1", "--hold", "H-9", "--by", "alice",
                  "--reason", "typo")  # fmt: skip
    assert unknown.exit_code == 1
    assert "REFUSED" in unknown.output and "has no hold H-9" in unknown.output

    released = dom(settings, "orders", "release", "ORD-1", "--by", "alice", "--reason", "approved")
    assert released.exit_code == 0, released.output
    assert released.output.startswith("APPLIED")

    allocated = statuses_until(pipeline, reached("ALLOCATED"))[-1]
    assert allocated.holds == () and allocated.shipments[0].location_id == "DC-EAST"
    reserved = pipeline.availability_where("SKU-1", lambda f: f["DC-EAST"].reserved == 2)
    assert reserved["DC-EAST"].available == 8

    shown = dom(settings, "orders", "show", "ORD-1", "--url", pipeline.url("w1", ""))
    assert shown.exit_code == 0, shown.output
    assert "RELEASE_HOLD by alice: APPLIED" in shown.output
    assert "RELEASE_HOLD by alice: REFUSED" in shown.output


def test_an_order_with_two_holds_is_routed_only_after_both_are_released(
    pipeline: Pipeline, settings: Settings
) -> None:
    start(pipeline)
    place_large(pipeline)
    placed = dom(settings, "orders", "hold", "ORD-1", "--by", "bob", "--reason", "fraud check")
    assert placed.exit_code == 0, placed.output
    assert "still held: ORD-1-H2 MANUAL fraud check" in placed.output

    first = dom(settings, "orders", "release", "ORD-1", "--hold", "ORD-1-H1", "--by", "alice",
                "--reason", "total is fine")  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "ON_HOLD" in first.output and "still held by ORD-1-H2" in first.output

    second = dom(settings, "orders", "release", "ORD-1", "--hold", "ORD-1-H2", "--by", "bob",
                 "--reason", "not fraud")  # fmt: skip
    assert second.exit_code == 0, second.output

    records = statuses_until(pipeline, reached("ALLOCATED"))
    outcomes = [r.status for r in records if r.action_id is None]
    assert outcomes == ["RECEIVED", "ON_HOLD", "ALLOCATED"]
    answers = [r.action_result for r in records if r.action_id is not None]
    assert answers == ["APPLIED", "APPLIED", "APPLIED"]


def test_a_hold_on_an_allocated_order_cancels_its_shipment_at_the_warehouse(
    pipeline: Pipeline, settings: Settings
) -> None:
    start(pipeline, hold_rule=False)
    pipeline.produce([make_order("ORD-1", lines=[("SKU-1", 3)])])
    [shipment] = statuses_until(pipeline, reached("ALLOCATED"))[-1].shipments
    pipeline.availability_where("SKU-1", lambda f: f["DC-EAST"].reserved == 3)

    placed = dom(settings, "orders", "hold", "ORD-1", "--by", "carol", "--reason", "address?")
    assert placed.exit_code == 0, placed.output
    assert f"cancelled {shipment.shipment_id}" in placed.output

    commands = pipeline.read("dom.fulfillment.commands.v1", lambda r: len(r) >= 2)
    assert [
        (c.action, c.location_id, c.shipment_id)
        for c in commands
        if isinstance(c, FulfillmentCommand)
    ] == [
        (FulfillmentAction.FULFIL, "DC-EAST", shipment.shipment_id),
        (FulfillmentAction.CANCEL, "DC-EAST", shipment.shipment_id),
    ]
    back = pipeline.availability_where("SKU-1", lambda f: f["DC-EAST"].reserved == 0)
    assert back["DC-EAST"].available == 10

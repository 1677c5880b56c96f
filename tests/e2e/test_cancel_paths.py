"""Cancels reach the warehouse, on the real broker: cancelling one line of a two-line order
releases only that sku and sends a CANCEL for it; a cancel before the location accepts releases
at once; after it accepts, the units wait for its CANCELLED; and a SHIPPED after a cancel takes
the units off on-hand and reports the cancel refused."""

from __future__ import annotations

import json
import time
import urllib.request

from config.settings import Settings
from schemas.models import FulfillmentCommand, FulfillmentStatus, Message, OrderStatusChanged
from tests.e2e.harness import Pipeline
from tests.e2e.test_order_actions import dom, reached, statuses_until
from tests.unit.factories import (
    make_cancel,
    make_fulfillment_update,
    make_location,
    make_order,
    make_product,
    make_stock_event,
)


def start(pipeline: Pipeline, *skus: str) -> None:
    """One DC with 10 units of each sku."""
    pipeline.produce(
        [
            make_location("DC-EAST"),
            *(make_product(sku) for sku in skus),
            *(make_stock_event(sku, "DC-EAST", 10, event_id=f"s-{sku}") for sku in skus),
        ]
    )
    for sku in skus:
        pipeline.availability_where(sku, lambda f: "DC-EAST" in f)


def allocate(pipeline: Pipeline, lines: list[tuple[str, int]]) -> str:
    pipeline.produce([make_order("ORD-1", lines=lines)])
    [shipment] = statuses_until(pipeline, reached("ALLOCATED"))[-1].shipments
    return shipment.shipment_id


def report(pipeline: Pipeline, shipment_id: str, status: FulfillmentStatus) -> None:
    pipeline.produce([make_fulfillment_update("ORD-1", shipment_id, "DC-EAST", status=status)])


def commands(pipeline: Pipeline, count: int) -> list[tuple[str, str, list[str]]]:
    def fulfilment(records: list[Message]) -> list[FulfillmentCommand]:
        return [r for r in records if isinstance(r, FulfillmentCommand)]

    found = fulfilment(
        pipeline.read("dom.fulfillment.commands.v1", lambda r: len(fulfilment(r)) >= count)
    )
    return [(c.action.value, c.shipment_id, [x.sku for x in c.lines]) for c in found]


def routings(records: list[OrderStatusChanged]) -> list[OrderStatusChanged]:
    """The statuses that name the order's new shipments."""
    return [r for r in records if r.shipments and r.action_id is None]


def accepted(pipeline: Pipeline, shipment_id: str) -> None:
    """Wait until the order's worker has taken the location's ACCEPTED in (it emits nothing)."""
    report(pipeline, shipment_id, FulfillmentStatus.ACCEPTED)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with urllib.request.urlopen(pipeline.url("w1", "/orders/ORD-1/")) as response:
            page = json.loads(response.read())
        if any(s["shipment_id"] == shipment_id and s["accepted"] for s in page["shipments"]):
            return
        time.sleep(0.2)
    raise AssertionError("the worker never took the ACCEPTED in")


def test_cancelling_one_line_releases_only_its_sku_and_cancels_it_at_the_warehouse(
    pipeline: Pipeline, settings: Settings
) -> None:
    start(pipeline, "SKU-1", "SKU-2")
    shipment = allocate(pipeline, [("SKU-1", 2), ("SKU-2", 3)])
    pipeline.availability_where("SKU-2", lambda f: f["DC-EAST"].reserved == 3)

    answer = dom(settings, "orders", "cancel-lines", "ORD-1", "--line", "1:2", "--by", "dave",
                 "--reason", "customer changed their mind")  # fmt: skip

    assert answer.exit_code == 0, answer.output
    assert answer.output.startswith("APPLIED")
    assert "cancelled 2 of line 1 by dave" in answer.output
    [fulfil, cancel, rest] = commands(pipeline, 3)
    assert fulfil == ("FULFIL", shipment, ["SKU-1", "SKU-2"])
    assert cancel == ("CANCEL", shipment, ["SKU-1", "SKU-2"])
    assert rest[0] == "FULFIL" and rest[2] == ["SKU-2"]
    released = pipeline.availability_where("SKU-1", lambda f: f["DC-EAST"].reserved == 0)
    assert released["DC-EAST"].available == 10
    routed = [r for r in statuses_until(pipeline, lambda r: len(routings(r)) >= 2) if r.shipments]
    assert [x.sku for x in routed[-1].shipments[0].lines] == ["SKU-2"]
    kept = pipeline.availability_where("SKU-2", lambda f: f["DC-EAST"].reserved == 3)
    assert kept["DC-EAST"].on_hand == 10


def test_a_cancel_before_the_location_accepts_releases_at_once(pipeline: Pipeline) -> None:
    start(pipeline, "SKU-1")
    shipment = allocate(pipeline, [("SKU-1", 2)])

    pipeline.produce([make_cancel("ORD-1")])

    assert commands(pipeline, 2)[1] == ("CANCEL", shipment, ["SKU-1"])
    back = pipeline.availability_where("SKU-1", lambda f: f["DC-EAST"].reserved == 0)
    assert back["DC-EAST"].available == 10


def test_a_cancel_after_the_location_accepts_waits_for_its_cancelled(pipeline: Pipeline) -> None:
    start(pipeline, "SKU-1")
    shipment = allocate(pipeline, [("SKU-1", 2)])
    accepted(pipeline, shipment)

    pipeline.produce([make_cancel("ORD-1")])
    statuses_until(pipeline, reached("CANCELLED"))
    assert commands(pipeline, 2)[1] == ("CANCEL", shipment, ["SKU-1"])
    # A later stock event of the sku goes through its owner: the hold is still there.
    pipeline.produce([make_stock_event("SKU-1", "DC-EAST", 11, event_id="s-recount")])
    held = pipeline.availability_where("SKU-1", lambda f: f["DC-EAST"].on_hand == 11)
    assert held["DC-EAST"].reserved == 2

    report(pipeline, shipment, FulfillmentStatus.CANCELLED)

    back = pipeline.availability_where("SKU-1", lambda f: f["DC-EAST"].reserved == 0)
    assert back["DC-EAST"].available == 11
    confirmed = statuses_until(pipeline, lambda r: any("confirmed the" in x.reason for x in r))
    assert confirmed[-1].status == "CANCELLED"


def test_a_shipped_after_a_cancel_takes_the_units_off_on_hand_and_refuses_the_cancel(
    pipeline: Pipeline,
) -> None:
    start(pipeline, "SKU-1")
    shipment = allocate(pipeline, [("SKU-1", 2)])
    pipeline.produce([make_cancel("ORD-1")])
    pipeline.availability_where("SKU-1", lambda f: f["DC-EAST"].reserved == 0)

    report(pipeline, shipment, FulfillmentStatus.SHIPPED)

    gone = pipeline.availability_where("SKU-1", lambda f: f["DC-EAST"].on_hand == 8)
    assert (gone["DC-EAST"].reserved, gone["DC-EAST"].available) == (0, 8)
    late = statuses_until(pipeline, reached("COMPLETED"))[-1]
    assert late.reason.startswith(f"cancel REFUSED, too late: {shipment} was shipped")

"""``dom orders list`` on the real broker: an order held by a rule, one backordered, one a
warehouse has not accepted and a pickup not collected are each listed in their queue; an
accepted shipment leaves the acceptance queue; and asking one of two workers lists the orders
the other owns too, each once."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from config.settings import Settings
from schemas.enums import Capability, FulfillmentStatus, LocationKind
from tests.e2e.harness import Pipeline
from tests.e2e.test_backorders import all_at, latest, statuses
from tests.e2e.test_order_actions import HOLD_LARGE, dom
from tests.unit.factories import (
    make_fulfillment_update,
    make_location,
    make_order,
    make_pickup_order,
    make_product,
    make_stock_event,
)

Page = dict[str, Any]


def world(pipeline: Pipeline, hold_rule: bool = True) -> None:
    """DC-EAST with no SKU-1 and 10 of SKU-2, STORE-1 (pickup only) with 5 of SKU-2, and the
    rule holding large orders, live on the first worker."""
    store = make_location("STORE-1", kind=LocationKind.STORE, capabilities=(Capability.PICKUP,))
    pipeline.produce(
        [
            make_location("DC-EAST"),
            store,
            make_product("SKU-1"),
            make_product("SKU-2"),
            make_stock_event("SKU-1", "DC-EAST", 0, event_id="s-1"),
            make_stock_event("SKU-2", "DC-EAST", 10, event_id="s-2"),
            make_stock_event("SKU-2", "STORE-1", 5, event_id="s-3"),
            *([HOLD_LARGE] if hold_rule else []),
        ]
    )
    pipeline.availability_where("SKU-1", lambda f: "DC-EAST" in f)
    pipeline.availability_where("SKU-2", lambda f: {"DC-EAST", "STORE-1"} <= set(f))
    if hold_rule:
        rules = _until(lambda: _get(pipeline.url("w1", "/rules/")), lambda r: bool(r["rules"]))
        assert [r["rule_id"] for r in rules["rules"]] == ["hold-very-large-orders"]


def listed(settings: Settings, url: str, *args: str) -> Page:
    result = dom(settings, "orders", "list", "--url", url, "--json", *args)
    assert result.exit_code == 0, result.output
    page: Page = json.loads(result.output)
    return page


def ids(page: Page, queue: str) -> list[str]:
    return [e["order_id"] for e in page["queues"][queue]]


def test_each_order_that_needs_someone_is_listed_in_its_queue(
    pipeline: Pipeline, settings: Settings
) -> None:
    world(pipeline)
    pipeline.produce(
        [
            make_order("ORD-HELD", lines=[("SKU-2", 1)], order_total=Decimal("6000.00")),
            make_order("ORD-SHORT", lines=[("SKU-1", 2)]),
            make_order("ORD-SHIP", lines=[("SKU-2", 1)]),
            make_pickup_order("ORD-PICK", "STORE-1", lines=[("SKU-2", 1)]),
        ]
    )
    records = statuses(pipeline, all_at(["ORD-SHIP", "ORD-PICK"], "ALLOCATED"))
    statuses(pipeline, all_at(["ORD-HELD"], "ON_HOLD"))
    statuses(pipeline, all_at(["ORD-SHORT"], "BACKORDERED"))
    w1 = pipeline.url("w1", "")

    page = listed(settings, w1)
    assert ids(page, "held") == ["ORD-HELD"]
    assert ids(page, "backordered") == ["ORD-SHORT"]
    assert sorted(ids(page, "acceptance")) == ["ORD-PICK", "ORD-SHIP"]
    assert ids(page, "pickup") == ["ORD-PICK"]
    assert page["workers"] == [w1] and page["unanswered"] == []

    text = dom(settings, "orders", "list", "--url", w1).output
    assert "RULE by hold-very-large-orders: needs a manual review" in text
    assert "SKU-1 x2" in text
    assert "at DC-EAST" in text and "at STORE-1: " in text

    [shipment] = latest(records, "ORD-SHIP").shipments  # type: ignore[union-attr]
    accepted = FulfillmentStatus.ACCEPTED
    pipeline.produce([make_fulfillment_update("ORD-SHIP", shipment.shipment_id, status=accepted)])
    after = _until(
        lambda: listed(settings, w1, "--queue", "acceptance"),
        lambda p: "ORD-SHIP" not in ids(p, "acceptance"),
    )
    assert list(after["queues"]) == ["acceptance"]
    assert ids(after, "acceptance") == ["ORD-PICK"]


def test_one_worker_lists_the_orders_the_other_worker_owns(
    pipeline: Pipeline, settings: Settings
) -> None:
    world(pipeline, hold_rule=False)
    pipeline.start_worker("w2")
    # order ids whose keys fall on all three partitions, so each worker owns some
    placed = [f"ORD-Q{i:02}" for i in range(1, 13)]
    pipeline.produce([make_order(o, lines=[("SKU-1", 1)]) for o in placed])
    statuses(pipeline, all_at(placed, "BACKORDERED"))

    page = _until(
        lambda: listed(settings, pipeline.url("w1", ""), "--queue", "backordered"),
        lambda p: len(ids(p, "backordered")) == len(placed) and not p["unanswered"],
    )
    assert sorted(ids(page, "backordered")) == placed
    assert page["workers"] == [pipeline.url("w1", ""), pipeline.url("w2", "")]
    assert page["unanswered"] == []

    own = {
        name: ids(_get(pipeline.url(name, "/orders/?local=1&queue=backordered")), "backordered")
        for name in ("w1", "w2")
    }
    assert own["w1"] and own["w2"], own
    assert sorted(own["w1"] + own["w2"]) == placed  # each order on one worker only


def _get(url: str) -> Page:
    with urllib.request.urlopen(url, timeout=30) as response:
        page: Page = json.load(response)
        return page


def _until(read: Callable[[], Page], done: Callable[[Page], bool], timeout: float = 30) -> Page:
    """The first page ``done`` accepts, or the last one read when time runs out."""
    deadline = time.monotonic() + timeout
    page = read()
    while not done(page) and time.monotonic() < deadline:
        time.sleep(0.5)
        page = read()
    return page

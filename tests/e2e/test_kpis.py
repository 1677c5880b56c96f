"""KPI reports end to end: a scripted day of traffic through the real pipeline, then
``dom report ... --csv`` prints exactly the expected numbers; redelivered events change none of
them, and neither does a worker restart with its consumer group rewound to the start (every
input, and every delta between the KPI stages, read again)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from schemas.enums import Capability, Channel, FulfillmentStatus, LocationKind
from schemas.models import Message, OrderStatusChanged
from tests.e2e.conftest import one_worker
from tests.e2e.harness import Pipeline
from tests.e2e.test_rewound_group import behind, rewind_to_start, wait_until
from tests.e2e.test_rules_live import dom
from tests.unit.factories import (
    make_address,
    make_cancel,
    make_fulfillment_update,
    make_location,
    make_order,
    make_pickup_order,
    make_product,
    make_received_line,
    make_return_line,
    make_return_received,
    make_return_request,
    make_stock_event,
)

DAY = datetime.now(UTC).date()
NINE = datetime(DAY.year, DAY.month, DAY.day, 9, tzinfo=UTC)
NEWARK = make_address(name="Newark store", city="Newark", region="NJ", lat=40.7357, lon=-74.1724)


def at(minutes: float) -> datetime:
    """Minutes after 09:00 of the scripted day (today, UTC)."""
    return NINE + timedelta(minutes=minutes)


def network() -> list[Message]:
    """DC-EAST ships SKU-A and SKU-B; STORE-NJ ships from store and hands out pickups, and
    alone holds SKU-C (so an order of SKU-A and SKU-C splits)."""
    store = make_location(
        "STORE-NJ",
        kind=LocationKind.STORE,
        address=NEWARK,
        capabilities=(Capability.SHIP_FROM_STORE, Capability.PICKUP),
    )
    stock = [("SKU-A", "DC-EAST"), ("SKU-B", "DC-EAST"), ("SKU-B", "STORE-NJ")]
    stock += [("SKU-C", "STORE-NJ")]
    return [
        make_location("DC-EAST"),
        store,
        *(make_product(sku) for sku in ("SKU-A", "SKU-B", "SKU-C")),
        *(make_stock_event(sku, where, 100, occurred_at=at(-60)) for sku, where in stock),
    ]


def order(order_id: str, channel: Channel, lines: list[tuple[str, int]], minute: int) -> Message:
    return make_order(order_id, lines=lines, channel=channel, placed_at=at(minute))


ORDERS = [
    order("O-WEB", Channel.WEB, [("SKU-A", 2)], 0),  # shipped, then one unit returned
    order("O-MKT", Channel.MARKETPLACE, [("SKU-A", 1), ("SKU-C", 1)], 1),  # the split
    order("O-POS", Channel.POS, [("SKU-C", 1)], 2),  # ship from store
    make_pickup_order(
        "O-WHS", "STORE-NJ", lines=[("SKU-C", 2)], channel=Channel.WHOLESALE, placed_at=at(3)
    ),
    order("O-CC", Channel.CALL_CENTER, [("SKU-A", 1)], 4),  # cancelled
    order("O-WEB2", Channel.WEB, [("SKU-B", 1)], 5),  # DC-EAST rejects it, the store ships
    order("O-BAD", Channel.MARKETPLACE, [("SKU-A", 200_000)], 6),  # routing: REJECTED
]


def window() -> tuple[str, str]:
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    return start.isoformat(), (start + timedelta(days=1)).isoformat()


def expected() -> dict[tuple[str, ...], str]:
    """The CSV ``dom report`` prints, per command line."""
    start, end = window()

    def csv(kpi: str, unit: str, by: str | None, *rows: str) -> str:
        head = f"kpi,unit,grain,window_start,window_end,{by + ',' if by else ''}"
        lines = [head + "value,numerator,denominator"]
        lines += [f"{kpi},{unit},day,{start},{end},{row}" for row in rows]
        return "\n".join(lines) + "\n"

    return {
        ("orders_placed", "--by", "channel"): csv(
            "orders_placed",
            "count",
            "channel",
            "CALL_CENTER,1,,",
            "MARKETPLACE,2,,",
            "POS,1,,",
            "WEB,2,,",
            "WHOLESALE,1,,",
        ),
        ("routing_outcomes", "--by", "outcome"): csv(
            "routing_outcomes", "count", "outcome", "ALLOCATED,6,,", "REJECTED,1,,"
        ),
        ("split_rate",): csv("split_rate", "ratio", None, "0.1667,1,6"),
        ("pickup_orders", "--by", "location"): csv(
            "pickup_orders", "count", "location", "STORE-NJ,1,,"
        ),
        ("ship_from_store_share",): csv("ship_from_store_share", "ratio", None, "0.6000,3,5"),
        ("units_shipped", "--by", "location"): csv(
            "units_shipped", "units", "location", "DC-EAST,3,,", "STORE-NJ,5,,"
        ),
        ("fulfillment_rejections", "--by", "location"): csv(
            "fulfillment_rejections", "count", "location", "DC-EAST,1,,"
        ),
        ("cancellations",): csv("cancellations", "count", None, "1,,"),
        ("returns_requested", "--by", "reason"): csv(
            "returns_requested", "units", "reason", "too small,1,,"
        ),
        ("returns_received", "--by", "condition"): csv(
            "returns_received", "units", "condition", "SELLABLE,1,,"
        ),
    }


def report(pipeline: Pipeline, args: tuple[str, ...]) -> str:
    return dom(pipeline.settings, "report", *args, "--period", "today", "--grain", "day", "--csv")


def reports(pipeline: Pipeline) -> dict[tuple[str, ...], str]:
    return {args: report(pipeline, args) for args in expected()}


def settled_reports(pipeline: Pipeline, timeout: float = 60.0) -> dict[tuple[str, ...], str]:
    """The reports once they equal the expected ones (or as they are when time runs out)."""
    deadline = time.monotonic() + timeout
    while True:
        found = reports(pipeline)
        if found == expected() or time.monotonic() > deadline:
            return found
        time.sleep(1.0)


def status_of(
    pipeline: Pipeline, order_id: str, done: Callable[[OrderStatusChanged], bool]
) -> OrderStatusChanged:
    """The first status of ``order_id`` that ``done`` accepts."""

    def found(records: list[Message]) -> OrderStatusChanged | None:
        return next(
            (
                r
                for r in records
                if isinstance(r, OrderStatusChanged) and r.order_id == order_id and done(r)
            ),
            None,
        )

    records = pipeline.read("dom.order-status.v1", lambda r: found(r) is not None)
    status = found(records)
    assert status is not None, f"no such status of {order_id}"
    return status


def shipments(pipeline: Pipeline, order_id: str) -> dict[str, str]:
    """Location -> shipment id of the order's first allocation."""
    allocated = status_of(pipeline, order_id, lambda s: s.status.value == "ALLOCATED")
    return {s.location_id: s.shipment_id for s in allocated.shipments}


def shipped(order_id: str, shipment: str, where: str, minute: int, **more: Any) -> Message:
    return make_fulfillment_update(order_id, shipment, where, occurred_at=at(minute), **more)


@pytest.fixture
def pipeline(settings: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    """One worker, ``w1``, with the KPI stages on (``DOM_KPIS``; off by default)."""
    with one_worker(settings, tmp_path, DOM_KPIS="true") as pipeline:
        yield pipeline


def test_a_day_of_traffic_reports_exact_numbers_through_redelivery_and_restart(
    pipeline: Pipeline,
) -> None:
    pipeline.produce(network())
    pipeline.availability_where("SKU-C", lambda f: "STORE-NJ" in f)
    pipeline.availability_where("SKU-B", lambda f: {"DC-EAST", "STORE-NJ"} <= set(f))
    pipeline.produce(ORDERS)
    status_of(pipeline, "O-BAD", lambda s: s.status.value == "REJECTED")
    web, mkt, pos = (shipments(pipeline, o) for o in ("O-WEB", "O-MKT", "O-POS"))
    whs, _cc, web2 = (shipments(pipeline, o) for o in ("O-WHS", "O-CC", "O-WEB2"))
    assert set(mkt) == {"DC-EAST", "STORE-NJ"} and set(pos) == {"STORE-NJ"}
    assert set(web2) == {"DC-EAST"} and set(whs) == {"STORE-NJ"}
    accepted, picked = FulfillmentStatus.ACCEPTED, FulfillmentStatus.PICKED_UP
    rejected = FulfillmentStatus.REJECTED
    pipeline.produce(
        [
            shipped("O-WEB", web["DC-EAST"], "DC-EAST", 60),
            shipped("O-MKT", mkt["DC-EAST"], "DC-EAST", 61),
            shipped("O-MKT", mkt["STORE-NJ"], "STORE-NJ", 62),
            shipped("O-POS", pos["STORE-NJ"], "STORE-NJ", 63),
            shipped("O-WHS", whs["STORE-NJ"], "STORE-NJ", 64, status=accepted),
            shipped("O-WHS", whs["STORE-NJ"], "STORE-NJ", 90, status=picked),
            shipped("O-WEB2", web2["DC-EAST"], "DC-EAST", 65, status=rejected),
            make_cancel("O-CC", cancelled_at=at(66)),
        ]
    )
    moved = status_of(
        pipeline, "O-WEB2", lambda s: any(x.location_id == "STORE-NJ" for x in s.shipments)
    )
    [again] = [s.shipment_id for s in moved.shipments if s.location_id == "STORE-NJ"]
    status_of(pipeline, "O-WEB", lambda s: s.status.value == "COMPLETED")
    lines = (make_return_line("SKU-A", 1, "too small"),)
    pipeline.produce(
        [
            shipped("O-WEB2", again, "STORE-NJ", 70),
            make_return_request("O-WEB", lines=lines, requested_at=at(120)),
        ]
    )
    status_of(pipeline, "O-WEB", lambda s: s.status.value == "RETURN_AUTHORIZED")
    received = make_return_received(
        "O-WEB", lines=(make_received_line("SKU-A"),), received_at=at(180)
    )
    # Redeliveries: the same events again (same ids) must change no number.
    pipeline.produce([received, ORDERS[0], shipped("O-POS", pos["STORE-NJ"], "STORE-NJ", 63)])
    pipeline.produce([received, shipped("O-WHS", whs["STORE-NJ"], "STORE-NJ", 90, status=picked)])

    before = settled_reports(pipeline)
    assert before == expected()

    # A worker restart, with its consumer group rewound to the start: every input read again.
    wait_until(lambda: behind(pipeline.settings) == {}, "the worker to commit what it read")
    pipeline.workers["w1"].stop()
    rewind_to_start(pipeline.settings)
    pipeline.start_worker("w1")
    pipeline.produce([ORDERS[1], shipped("O-MKT", mkt["DC-EAST"], "DC-EAST", 61)])
    wait_until(lambda: behind(pipeline.settings) == {}, "the worker to read everything again")
    pipeline.wait_until_idle()
    assert reports(pipeline) == before

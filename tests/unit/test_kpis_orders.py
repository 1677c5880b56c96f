"""Each fulfilment KPI's arithmetic on hand-made event sequences, as the report shows it:
orders, routing outcomes and fill rate, splits, shipping, pickups, cancellations, rejections
and acceptance timeouts; every number counted once, however often an event comes, and in the
window of when it happened."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from schemas.enums import (
    Capability,
    Channel,
    FulfillmentKind,
    FulfillmentStatus,
    LocationKind,
    OrderStatus,
)
from schemas.models import (
    ActionResult,
    Location,
    Message,
    OrderStatusChanged,
    Shipment,
    ShipmentLine,
)
from streams.core.kpis import (
    BucketKey,
    Grain,
    KpiBucket,
    OrderFacts,
    Row,
    build_report,
    deltas,
    merge,
    observe,
)
from streams.core.kpis.histogram import RELATIVE_ERROR
from tests.unit.factories import (
    T0,
    make_address,
    make_fulfillment_update,
    make_location,
    make_order,
    make_pickup_order,
    make_return_received,
    make_return_request,
)

BERLIN = ZoneInfo("Europe/Berlin")
TODAY = "2024-05-01T00:00:00+02:00"  # T0 is 14:00 in Berlin
YESTERDAY = "2024-04-30T00:00:00+02:00"
EAST = make_location("DC-EAST", address=make_address(lat=40.0, lon=-74.0))
STORE = make_location(
    "STORE-1",
    kind=LocationKind.STORE,
    capabilities=(Capability.SHIP_FROM_STORE, Capability.PICKUP),
    address=make_address(lat=41.0, lon=-73.0),
)
SHIPPED, PICKED_UP = FulfillmentStatus.SHIPPED, FulfillmentStatus.PICKED_UP


class Kpis:
    """The KPI core as the stage runs it: facts per order, buckets merged per key."""

    def __init__(self, *locations: Location) -> None:
        self.locations = {x.location_id: x for x in (locations or (EAST, STORE))}
        self.facts: dict[str, OrderFacts] = {}
        self.buckets: dict[BucketKey, KpiBucket] = {}

    def feed(self, *events: Message) -> Kpis:
        for event in events:
            order_id: str = getattr(event, "order_id")  # noqa: B009
            facts = self.facts.get(order_id) or OrderFacts(order_id=order_id)
            facts, increments = observe(facts, event, location=self.locations.get)
            self.facts[order_id] = facts
            for key, delta in deltas(increments, BERLIN).items():
                self.buckets[key] = merge(self.buckets.get(key), delta)
        return self

    def rows(self, name: str, *, grain: Grain = Grain.DAY, by: Iterable[str] = ()) -> list[Row]:
        start, end = T0 - timedelta(days=10), T0 + timedelta(days=10)
        report = build_report(
            self.buckets, name, start=start, end=end, grain=grain, tz=BERLIN, breakdown=tuple(by)
        )
        return list(report.rows)

    def today(self, name: str, *, by: Iterable[str] = ()) -> dict[tuple[str, ...], Decimal]:
        """Today's values by dimension (every row must be today's)."""
        rows = self.rows(name, by=by)
        assert {r.window_start.isoformat() for r in rows} <= {TODAY}
        return {r.dimension: r.value for r in rows}

    def row(self, name: str) -> Row:
        [only] = self.rows(name)
        return only


def later(**delta: float) -> datetime:
    return T0 + timedelta(**delta)


def status(
    order_id: str,
    kind: OrderStatus,
    n: int,
    at: datetime = T0,
    *shipments: Shipment,
    reason: str = "",
    **fields: object,
) -> OrderStatusChanged:
    return OrderStatusChanged(
        event_id=f"{order_id}:status:{n}",
        order_id=order_id,
        status=kind,
        reason=reason or kind.value,
        shipments=shipments,
        at=at,
        **fields,  # type: ignore[arg-type]
    )


def shipment(
    shipment_id: str,
    location_id: str = "DC-EAST",
    kind: FulfillmentKind = FulfillmentKind.SHIP,
    lines: tuple[tuple[str, int], ...] = (("1", 1),),
) -> Shipment:
    return Shipment(
        shipment_id=shipment_id,
        location_id=location_id,
        kind=kind,
        lines=tuple(ShipmentLine(line_id=i, sku=f"SKU-{i}", quantity=q) for i, q in lines),
    )


def allocated(order_id: str, *shipments: Shipment, at: datetime = T0) -> list[Message]:
    """An order placed at T0 and allocated at ``at`` to ``shipments``."""
    ships = shipments or (shipment(f"{order_id}-1"),)
    return [make_order(order_id), status(order_id, OrderStatus.ALLOCATED, 1, at, *ships)]


def update(
    order_id: str, shipment_id: str, location_id: str, kind: FulfillmentStatus, at: datetime
) -> Message:
    return make_fulfillment_update(order_id, shipment_id, location_id, kind, occurred_at=at)


# ---- orders ------------------------------------------------------------------------------------


def test_orders_placed_by_channel_and_pickup_orders_by_store() -> None:
    kpis = Kpis().feed(
        make_order("A"),
        make_order("B"),
        make_order("C", channel=Channel.POS),
        make_pickup_order("D", store_id="STORE-1"),
    )
    assert kpis.today("orders_placed", by=["channel"]) == {("WEB",): 3, ("POS",): 1}
    assert kpis.today("orders_placed") == {(): 4}
    assert kpis.today("pickup_orders", by=["location"]) == {("STORE-1",): 1}


def test_a_redelivered_order_is_counted_once() -> None:
    kpis = Kpis().feed(make_order("A"), make_order("A"), make_order("B"))
    assert kpis.today("orders_placed") == {(): 2}


def test_a_late_order_lands_in_the_window_it_was_placed_in() -> None:
    # 21:00 UTC on 30 April is 23:00 in Berlin: that day, in the retailer's zone
    kpis = Kpis().feed(make_order("A"), make_order("LATE", placed_at=later(hours=-15)))
    rows = kpis.rows("orders_placed")
    assert [(r.window_start.isoformat(), r.value) for r in rows] == [(YESTERDAY, 1), (TODAY, 1)]
    hours = kpis.rows("orders_placed", grain=Grain.HOUR)
    assert [r.window_start.isoformat() for r in hours] == [
        "2024-04-30T23:00:00+02:00",
        "2024-05-01T14:00:00+02:00",
    ]


# ---- routing -----------------------------------------------------------------------------------


def test_the_first_routing_outcome_of_each_order_by_kind_and_the_fill_rate() -> None:
    kpis = Kpis().feed(
        *allocated("A"),
        make_order("B"),
        status("B", OrderStatus.BACKORDERED, 1),
        status("B", OrderStatus.ALLOCATED, 2, later(hours=2), shipment("B-2-1")),
        make_order("C", lines=[("SKU-1", 1), ("SKU-2", 1)]),
        status("C", OrderStatus.PARTIALLY_ALLOCATED, 1, T0, shipment("C-1-1")),
        make_order("D"),
        status("D", OrderStatus.RECEIVED, 1),  # not an outcome
        status("D", OrderStatus.REJECTED, 2),
        status("D", OrderStatus.REJECTED, 2),  # redelivered
    )
    assert kpis.today("routing_outcomes", by=["outcome"]) == {
        ("ALLOCATED",): 1,
        ("BACKORDERED",): 1,
        ("PARTIALLY_ALLOCATED",): 1,
        ("REJECTED",): 1,
    }
    fill = kpis.row("fill_rate")
    assert (fill.value, fill.numerator, fill.denominator) == (Decimal("0.2500"), 1, 4)


def test_fill_rate_is_summed_parts_not_an_average_of_ratios() -> None:
    pos = [make_order(o, channel=Channel.POS) for o in ("P1", "P2", "P3")]
    kpis = Kpis().feed(
        *allocated("W1"),
        *pos,
        status("P1", OrderStatus.ALLOCATED, 1, T0, shipment("P1-1")),
        status("P2", OrderStatus.BACKORDERED, 1),
        status("P3", OrderStatus.ON_HOLD, 1),
    )
    assert kpis.today("fill_rate", by=["channel"]) == {
        ("WEB",): Decimal("1.0000"),
        ("POS",): Decimal("0.3333"),
    }
    total = kpis.row("fill_rate")
    assert (total.value, total.numerator, total.denominator) == (Decimal("0.5000"), 2, 4)


def test_split_rate_and_shipments_per_order_count_each_orders_first_allocation() -> None:
    kpis = Kpis().feed(
        *allocated("A"),
        *allocated("B", shipment("B-1"), shipment("B-2", "STORE-1")),
        *allocated("C", shipment("C-1"), shipment("C-2"), shipment("C-3")),
        # A's shipment rejected and re-routed to two locations: not a first allocation
        status("A", OrderStatus.ALLOCATED, 2, later(hours=1), shipment("A-2"), shipment("A-3")),
    )
    split = kpis.row("split_rate")
    assert (split.value, split.numerator, split.denominator) == (Decimal("0.6667"), 2, 3)
    per_order = kpis.row("shipments_per_order")
    assert (per_order.value, per_order.numerator, per_order.denominator) == (
        Decimal("2.00"),
        6,
        3,
    )


def test_split_rate_by_channel_is_each_channels_own_share() -> None:
    kpis = Kpis().feed(
        *allocated("A"),
        *allocated("B", shipment("B-1"), shipment("B-2", "STORE-1")),
        make_order("M", channel=Channel.MARKETPLACE),
        status("M", OrderStatus.ALLOCATED, 1, T0, shipment("M-1"), shipment("M-2", "STORE-1")),
    )
    assert kpis.today("split_rate", by=["channel"]) == {
        ("WEB",): Decimal("0.5000"),
        ("MARKETPLACE",): Decimal("1.0000"),
    }
    assert kpis.today("shipments_per_order", by=["channel"]) == {
        ("WEB",): Decimal("1.50"),
        ("MARKETPLACE",): Decimal("2.00"),
    }
    assert kpis.today("split_rate") == {(): Decimal("0.6667")}  # channels summed, not averaged


def test_placed_to_allocated_percentiles_include_a_backorders_wait() -> None:
    events: list[Message] = []
    for n in range(1, 10):  # allocated 1 to 9 minutes after being placed
        events += allocated(f"O{n}", at=later(minutes=n))
    events += [make_order("B"), status("B", OrderStatus.BACKORDERED, 1)]
    events += [status("B", OrderStatus.ALLOCATED, 2, later(hours=5), shipment("B-1"))]
    kpis = Kpis().feed(*events)
    p50, p90 = kpis.row("placed_to_allocated_p50"), kpis.row("placed_to_allocated_p90")
    assert p50.denominator == p90.denominator == 10
    assert float(p50.value) == pytest.approx(300, rel=RELATIVE_ERROR)  # 5th of 10
    assert float(p90.value) == pytest.approx(540, rel=RELATIVE_ERROR)  # 9th of 10
    assert kpis.today("placed_to_allocated_p90", by=["channel"]).keys() == {("WEB",)}
    late = Kpis().feed(*events, status("B", OrderStatus.ALLOCATED, 2, later(hours=5)))
    assert late.buckets == kpis.buckets


# ---- cancellations, rejections, timeouts -------------------------------------------------------


def test_cancellations_by_reason_name_the_pipelines_own_cancels() -> None:
    expired = "backordered lines cancelled: 1 (2 of SKU-1): waited past DOM_BACKORDER_EXPIRY_S"
    kpis = Kpis().feed(
        *(make_order(o) for o in ("A", "B", "C", "D")),
        status("A", OrderStatus.CANCELLED, 2, reason="customer  request"),
        status("A", OrderStatus.CANCELLED, 2, reason="customer  request"),
        status("B", OrderStatus.CANCELLED, 2, reason="customer request"),
        status("C", OrderStatus.CANCELLED, 3, reason=expired),
        status("D", OrderStatus.CANCELLED, 3, reason="not picked up from STORE-1 within 7 days"),
    )
    assert kpis.today("cancellations", by=["reason"]) == {
        ("customer request",): 2,
        ("backorder expired",): 1,
        ("pickup expired",): 1,
    }
    assert kpis.today("cancellations", by=["channel"]) == {("WEB",): 4}


def test_rejections_and_acceptance_timeouts_by_location() -> None:
    moved = "accept-timeout:A-1:1"
    kpis = Kpis().feed(
        *allocated("A", shipment("A-1"), shipment("A-2", "STORE-1")),
        update("A", "A-2", "STORE-1", FulfillmentStatus.REJECTED, later(hours=1)),
        update("A", "A-2", "STORE-1", FulfillmentStatus.REJECTED, later(hours=1)),
        update("Z", "Z-1", "STORE-1", FulfillmentStatus.REJECTED, later(hours=1)),
        status("A", OrderStatus.ALLOCATED, 2, later(hours=8), action_id="accept-timeout:A-1:0",
               action_result=ActionResult.REFUSED),
        status("A", OrderStatus.ALLOCATED, 3, later(hours=8), action_id=moved,
               action_result=ActionResult.APPLIED),
        status("A", OrderStatus.ALLOCATED, 4, later(hours=9), action_id="accept-timeout:A-1:2",
               action_result=ActionResult.APPLIED),
    )  # fmt: skip
    assert kpis.today("fulfillment_rejections", by=["location"]) == {("STORE-1",): 2}
    assert kpis.today("acceptance_timeouts", by=["location"]) == {("DC-EAST",): 1}
    assert kpis.today("fulfillment_rejections", by=["location_kind"]) == {("STORE",): 2}
    assert kpis.today("acceptance_timeouts", by=["location_kind"]) == {("DC",): 1}
    assert kpis.today("routing_outcomes") == {(): 1}  # an action's answer is no outcome


# ---- events read out of order ------------------------------------------------------------------


def test_a_status_read_before_its_order_waits_for_it() -> None:
    kpis = Kpis().feed(status("A", OrderStatus.ALLOCATED, 1, later(hours=1), shipment("A-1")))
    assert kpis.buckets == {}
    kpis.feed(make_order("A", channel=Channel.MARKETPLACE))
    assert kpis.today("fill_rate", by=["channel"]) == {("MARKETPLACE",): 1}
    assert float(kpis.row("placed_to_allocated_p50").value) == pytest.approx(3600, rel=0.01)
    assert kpis.facts["A"].parked == ()


def test_a_shipped_report_read_before_its_allocation_counts_in_its_own_window() -> None:
    kpis = Kpis().feed(
        make_order("A"),
        update("A", "A-1", "DC-EAST", SHIPPED, later(days=1)),
        status("A", OrderStatus.ALLOCATED, 1, T0, shipment("A-1")),
    )
    [row] = kpis.rows("units_shipped")
    assert row.window_start.isoformat() == "2024-05-02T00:00:00+02:00"
    assert row.value == 1


def test_facts_read_back_from_their_stored_json() -> None:
    kpis = Kpis().feed(
        status("A", OrderStatus.ALLOCATED, 1, T0, shipment("A-1")),
        update("A", "A-1", "DC-EAST", SHIPPED, later(hours=1)),
        make_order("B"),
        status("B", OrderStatus.BACKORDERED, 1),
    )
    for facts in kpis.facts.values():
        assert OrderFacts.model_validate_json(facts.model_dump_json()) == facts
    assert len(kpis.facts["A"].parked) == 2


def test_feeding_everything_twice_changes_no_number() -> None:
    events = [
        *allocated("A", shipment("A-1"), shipment("A-2", "STORE-1")),
        update("A", "A-1", "DC-EAST", SHIPPED, later(hours=1)),
        update("A", "A-2", "STORE-1", FulfillmentStatus.REJECTED, later(hours=1)),
        make_order("B"),
        status("B", OrderStatus.BACKORDERED, 1),
        status("B", OrderStatus.CANCELLED, 2, later(days=2), reason="customer request"),
        make_return_request("A", requested_at=later(days=3)),
        make_return_received("A", received_at=later(days=4)),  # counted by its id alone
    ]
    once = Kpis().feed(*events)
    twice = Kpis().feed(*events, *events)
    twice_interleaved = Kpis().feed(*(e for event in events for e in (event, event)))
    assert once.buckets == twice.buckets == twice_interleaved.buckets
    assert len(once.buckets) > 20

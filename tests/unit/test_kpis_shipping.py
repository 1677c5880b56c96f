"""Shipping and pickup KPIs on hand-made event sequences: time from allocation to shipping,
units and value that left each location, the share sent from stores, distance per order, and
pickup time from ready to picked up."""

from __future__ import annotations

from decimal import Decimal

import pytest

from schemas.enums import FulfillmentKind, FulfillmentStatus, OrderStatus
from streams.core.kpis.histogram import RELATIVE_ERROR
from streams.core.routing.geo import haversine_km
from tests.unit.factories import T0, make_address, make_line, make_order, make_pickup_order
from tests.unit.test_kpis_orders import (
    EAST,
    PICKED_UP,
    SHIPPED,
    Kpis,
    allocated,
    later,
    shipment,
    status,
    update,
)

# ---- shipping ----------------------------------------------------------------------------------


def test_allocated_to_shipped_is_measured_per_shipment_by_location() -> None:
    kpis = Kpis().feed(
        *allocated("A", shipment("A-1"), shipment("A-2", "STORE-1")),
        update("A", "A-1", "DC-EAST", SHIPPED, later(hours=2)),
        update("A", "A-2", "STORE-1", SHIPPED, later(hours=6)),
        update("A", "A-2", "STORE-1", SHIPPED, later(hours=7)),  # same report again
    )
    by_location = kpis.today("allocated_to_shipped_p50", by=["location"])
    assert float(by_location[("DC-EAST",)]) == pytest.approx(7200, rel=RELATIVE_ERROR)
    assert float(by_location[("STORE-1",)]) == pytest.approx(21600, rel=RELATIVE_ERROR)
    assert kpis.row("allocated_to_shipped_p90").denominator == 2


def test_units_and_value_shipped_by_location_at_the_order_line_prices() -> None:
    order = make_order(
        "A",
        lines=[
            make_line("1", "SKU-1", 3, unit_price=Decimal("10.00")),
            make_line("2", "SKU-2", 1, unit_price=Decimal("25.50")),
        ],
    )
    euro = make_order("E", currency="EUR", lines=[make_line("1", "SKU-1", 1)])
    kpis = Kpis().feed(
        order,
        status(
            "A",
            OrderStatus.ALLOCATED,
            1,
            T0,
            shipment("A-1", lines=(("1", 2),)),
            shipment("A-2", "STORE-1", FulfillmentKind.SHIP_FROM_STORE, (("1", 1), ("2", 1))),
        ),
        update("A", "A-1", "DC-EAST", SHIPPED, later(hours=1)),
        update("A", "A-2", "STORE-1", SHIPPED, later(hours=1)),
        *allocated("E")[1:],
        euro,
        update("E", "E-1", "DC-EAST", SHIPPED, later(hours=1)),
    )
    assert kpis.today("units_shipped", by=["location"]) == {("DC-EAST",): 3, ("STORE-1",): 2}
    assert kpis.today("value_shipped", by=["location"]) == {
        ("DC-EAST", "USD"): Decimal("20.00"),
        ("DC-EAST", "EUR"): Decimal("10.00"),
        ("STORE-1", "USD"): Decimal("35.50"),
    }
    assert kpis.today("value_shipped") == {("USD",): Decimal("55.50"), ("EUR",): Decimal("10.00")}
    assert kpis.today("units_shipped", by=["location_kind"]) == {("DC",): 3, ("STORE",): 2}
    assert kpis.today("value_shipped", by=["location_kind"]) == {
        ("DC", "USD"): Decimal("20.00"),
        ("DC", "EUR"): Decimal("10.00"),
        ("STORE", "USD"): Decimal("35.50"),
    }


def test_a_location_not_in_the_network_is_a_store_only_when_its_shipment_says_so() -> None:
    kpis = Kpis(EAST).feed(  # STORE-1 and DC-NEW not among the locations read
        *allocated(
            "A",
            shipment("A-1", "DC-NEW"),
            shipment("A-2", "STORE-1", FulfillmentKind.SHIP_FROM_STORE),
        ),
        update("A", "A-1", "DC-NEW", SHIPPED, later(hours=1)),
        update("A", "A-2", "STORE-1", SHIPPED, later(hours=1)),
    )
    assert kpis.today("units_shipped", by=["location", "location_kind"]) == {
        ("DC-NEW", "(none)"): 1,
        ("STORE-1", "STORE"): 1,
    }


def test_ship_from_store_share_counts_the_shipments_sent_to_customers() -> None:
    kpis = Kpis().feed(
        *allocated(
            "A",
            shipment("A-1"),
            shipment("A-2", "STORE-1"),
            # a store the lookup does not know: its shipment kind says where it is from
            shipment("A-3", "STORE-9", FulfillmentKind.SHIP_FROM_STORE),
            shipment("A-4", "DC-EAST", FulfillmentKind.TRANSFER),
        ),
        *(update("A", f"A-{n}", "X", SHIPPED, later(hours=1)) for n in (1, 2, 3, 4)),
    )
    share = kpis.row("ship_from_store_share")
    assert (share.value, share.numerator, share.denominator) == (Decimal("0.6667"), 2, 3)


def test_distance_per_order_is_km_shipped_over_the_orders_shipped() -> None:
    to = make_address(lat=40.5, lon=-74.5)
    kpis = Kpis().feed(
        make_order("A", ship_to=to),
        status("A", OrderStatus.ALLOCATED, 1, T0, shipment("A-1"), shipment("A-2", "STORE-1")),
        update("A", "A-1", "DC-EAST", SHIPPED, later(hours=1)),
        update("A", "A-2", "STORE-1", SHIPPED, later(hours=2)),
        make_order("B", ship_to=to),
        status("B", OrderStatus.ALLOCATED, 1, T0, shipment("B-1")),
        update("B", "B-1", "DC-EAST", SHIPPED, later(hours=1)),
        # an address without coordinates: no distance, and not an order of the mean
        make_order("C", ship_to=make_address(lat=None, lon=None)),
        status("C", OrderStatus.ALLOCATED, 1, T0, shipment("C-1")),
        update("C", "C-1", "DC-EAST", SHIPPED, later(hours=1)),
    )
    east = haversine_km(40.0, -74.0, 40.5, -74.5)
    store = haversine_km(41.0, -73.0, 40.5, -74.5)
    row = kpis.row("distance_per_order")
    assert row.denominator == 2
    assert float(row.numerator or 0) == pytest.approx(2 * east + store, abs=0.003)
    assert float(row.value) == pytest.approx((2 * east + store) / 2, abs=0.05)


# ---- pickups -----------------------------------------------------------------------------------


def test_pickup_time_runs_from_ready_at_the_store_to_picked_up() -> None:
    pickup = FulfillmentKind.PICKUP
    kpis = Kpis().feed(
        make_pickup_order("P", store_id="STORE-1"),
        status("P", OrderStatus.ALLOCATED, 1, T0, shipment("P-1", "STORE-1", pickup)),
        update("P", "P-1", "STORE-1", FulfillmentStatus.ACCEPTED, later(minutes=20)),
        update("P", "P-1", "STORE-1", PICKED_UP, later(minutes=50)),
        update("P", "P-1", "STORE-1", PICKED_UP, later(minutes=90)),  # again: counted once
    )
    [(where, took)] = kpis.today("pickup_time_p50", by=["location"]).items()
    assert where == ("STORE-1",)
    assert float(took) == pytest.approx(1800, rel=RELATIVE_ERROR)
    assert kpis.today("units_shipped", by=["location"]) == {("STORE-1",): 1}
    assert kpis.today("ship_from_store_share") == {}  # a pickup is not a shipment to a customer

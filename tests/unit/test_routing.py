"""Routing decisions, case by case: what a user of the order-status feed would see."""

import random
from collections.abc import Iterable

import pytest

from streams.core.routing.geo import Destination, Rate, RateTable
from streams.core.routing.model import (
    AllocatedLine,
    Capability,
    FulfillmentMethod,
    LocationInfo,
    LocationKind,
    OrderLine,
    RoutingDecision,
    RoutingOutcome,
    RoutingPolicy,
    RoutingRequest,
    ShipmentKind,
    ShortfallPolicy,
)
from streams.core.routing.route import decide_route

ALLOCATED = RoutingOutcome.ALLOCATED
PARTIAL = RoutingOutcome.PARTIALLY_ALLOCATED
BACKORDERED = RoutingOutcome.BACKORDERED
REJECTED = RoutingOutcome.REJECTED

NYC = Destination(lat=40.7128, lon=-74.0060, country="US", region="NY", postal_code="10001")
# Rough distances from NYC: Newark 14 km, Philadelphia 130, Boston 306, Chicago 1145, LA 3936.
NEWARK = (40.7357, -74.1724)
PHILLY = (39.9526, -75.1652)
BOSTON = (42.3601, -71.0589)
CHICAGO = (41.8781, -87.6298)
LA = (34.0522, -118.2437)

Stock = dict[str, dict[str, int]]


def dc(location_id: str, at: tuple[float, float] | None, **kw: object) -> LocationInfo:
    caps = kw.pop("capabilities", frozenset({Capability.SHIP, Capability.RETURNS}))
    lat, lon = at if at else (None, None)
    return LocationInfo(location_id, LocationKind.DC, caps, lat=lat, lon=lon, **kw)  # type: ignore[arg-type]


def store(location_id: str, at: tuple[float, float] | None, **kw: object) -> LocationInfo:
    default = frozenset({Capability.SHIP_FROM_STORE, Capability.PICKUP, Capability.RETURNS})
    caps = kw.pop("capabilities", default)
    lat, lon = at if at else (None, None)
    return LocationInfo(location_id, LocationKind.STORE, caps, lat=lat, lon=lon, **kw)  # type: ignore[arg-type]


def lines(*specs: tuple[str, int]) -> tuple[OrderLine, ...]:
    return tuple(OrderLine(f"L{i + 1}", sku, qty) for i, (sku, qty) in enumerate(specs))


def ship(*specs: tuple[str, int], **kw: object) -> RoutingRequest:
    kw.setdefault("ship_to", NYC)
    return RoutingRequest("o-1", FulfillmentMethod.SHIP, lines(*specs), **kw)  # type: ignore[arg-type]


def pickup(store_id: str | None, *specs: tuple[str, int], **kw: object) -> RoutingRequest:
    return RoutingRequest(
        "o-1",
        FulfillmentMethod.PICKUP,
        lines(*specs),
        pickup_location_id=store_id,
        **kw,  # type: ignore[arg-type]
    )


def stock(**by_location: dict[str, int]) -> Stock:
    """stock(DC_1={"A": 3}) -> {"A": {"DC-1": 3}}: written per location, read per SKU."""
    out: Stock = {}
    for loc, skus in by_location.items():
        for sku, qty in skus.items():
            out.setdefault(sku, {})[loc.replace("_", "-")] = qty
    return out


POLICY = RoutingPolicy()


def route(
    request: RoutingRequest,
    locations: Iterable[LocationInfo],
    available: Stock,
    policy: RoutingPolicy = POLICY,
) -> RoutingDecision:
    return decide_route(request, list(locations), available, policy)


def where(decision: RoutingDecision) -> list[str]:
    return [s.location_id for s in decision.shipments]


def units(decision: RoutingDecision) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for shipment in decision.shipments:
        for line in shipment.lines:
            key = (shipment.location_id, line.line_id)
            out[key] = out.get(key, 0) + line.quantity
    return out


# --- ship orders: single location -------------------------------------------------------


def test_single_location_ships_everything() -> None:
    net = [dc("DC-1", PHILLY)]
    decision = route(ship(("A", 2), ("B", 1)), net, stock(DC_1={"A": 5, "B": 5}))
    assert decision.outcome == ALLOCATED
    assert len(decision.shipments) == 1
    (only,) = decision.shipments
    assert only.location_id == "DC-1" and only.kind == ShipmentKind.SHIP
    assert only.lines == (AllocatedLine("L1", "A", 2), AllocatedLine("L2", "B", 1))
    assert only.destination_location_id is None
    assert decision.backordered == ()
    assert "DC-1" in decision.explanation


def test_nearest_full_holder_wins() -> None:
    net = [dc("DC-LA", LA), dc("DC-CHI", CHICAGO), dc("DC-PHL", PHILLY)]
    available = stock(DC_LA={"A": 9}, DC_CHI={"A": 9}, DC_PHL={"A": 9})
    decision = route(ship(("A", 1)), net, available)
    assert where(decision) == ["DC-PHL"]
    assert "3 candidates" in decision.explanation
    assert "130 km" in decision.explanation


def test_single_location_beats_a_cheaper_split() -> None:
    net = [dc("DC-NEAR", NEWARK), store("ST-NEAR", PHILLY), dc("DC-FAR", LA)]
    available = stock(DC_NEAR={"A": 5}, ST_NEAR={"B": 5}, DC_FAR={"A": 5, "B": 5})
    decision = route(ship(("A", 1), ("B", 1)), net, available)
    assert decision.outcome == ALLOCATED
    assert where(decision) == ["DC-FAR"]
    assert "single shipment beats split" in decision.explanation


def test_equal_cost_goes_to_priority_then_location_id() -> None:
    same = PHILLY
    net = [dc("DC-B", same, priority=20), dc("DC-C", same, priority=10), dc("DC-A", same)]
    available = stock(DC_A={"A": 1}, DC_B={"A": 1}, DC_C={"A": 1})
    decision = route(ship(("A", 1)), net, available)
    assert where(decision) == ["DC-C"]
    assert "won on priority" in decision.explanation
    tie = [dc("DC-B", same), dc("DC-A", same)]
    decision = route(ship(("A", 1)), tie, available)
    assert where(decision) == ["DC-A"]
    assert "won on location id" in decision.explanation


def test_distance_beats_priority() -> None:
    net = [dc("DC-FAR", LA, priority=1), dc("DC-NEAR", PHILLY, priority=500)]
    decision = route(ship(("A", 1)), net, stock(DC_FAR={"A": 1}, DC_NEAR={"A": 1}))
    assert where(decision) == ["DC-NEAR"]


def test_store_ships_as_ship_from_store() -> None:
    decision = route(ship(("A", 1)), [store("ST-1", NEWARK)], stock(ST_1={"A": 1}))
    assert decision.shipments[0].kind == ShipmentKind.SHIP_FROM_STORE


# --- eligibility --------------------------------------------------------------------------


def test_ineligible_locations_are_skipped_and_explained() -> None:
    net = [
        dc("DC-OFF", NEWARK, active=False),
        dc("DC-NOSHIP", NEWARK, capabilities=frozenset({Capability.RETURNS})),
        store("ST-PICKONLY", NEWARK, capabilities=frozenset({Capability.PICKUP})),
        dc("DC-FULL", NEWARK, daily_order_capacity=50, orders_today=50),
        dc("DC-OK", LA, daily_order_capacity=50, orders_today=49),
    ]
    everywhere = {n.location_id.replace("-", "_"): {"A": 5} for n in net}
    decision = route(ship(("A", 1)), net, stock(**everywhere))
    assert where(decision) == ["DC-OK"]
    text = decision.explanation
    assert "1 candidate " in text
    assert "inactive: DC-OFF" in text
    assert "no SHIP: DC-NOSHIP" in text
    assert "no SHIP_FROM_STORE: ST-PICKONLY" in text
    assert "capacity full: DC-FULL (50/50)" in text


def test_unlimited_capacity_when_none() -> None:
    net = [dc("DC-1", PHILLY, daily_order_capacity=None, orders_today=10_000)]
    assert route(ship(("A", 1)), net, stock(DC_1={"A": 1})).outcome == ALLOCATED


def test_no_eligible_location_backorders_rather_than_rejects() -> None:
    net = [dc("DC-1", PHILLY, active=False), dc("DC-2", PHILLY, daily_order_capacity=0)]
    decision = route(ship(("A", 1)), net, stock(DC_1={"A": 5}, DC_2={"A": 5}))
    assert decision.outcome == BACKORDERED
    assert decision.backordered == (AllocatedLine("L1", "A", 1),)
    assert "0 candidates" in decision.explanation


def test_exclusions_forced_and_kinds_from_rules() -> None:
    net = [dc("DC-NEAR", NEWARK), store("ST-NEAR", NEWARK), dc("DC-FAR", LA)]
    available = stock(DC_NEAR={"A": 1}, ST_NEAR={"A": 1}, DC_FAR={"A": 1})
    excluded = route(ship(("A", 1), excluded_locations=frozenset({"DC-NEAR"})), net, available)
    assert where(excluded) == ["ST-NEAR"]
    assert "excluded by rule: DC-NEAR" in excluded.explanation
    no_stores = route(
        ship(
            ("A", 1),
            excluded_locations=frozenset({"DC-NEAR"}),
            excluded_kinds=frozenset({LocationKind.STORE}),
        ),
        net,
        available,
    )
    assert where(no_stores) == ["DC-FAR"]
    assert "STORE excluded by rule: ST-NEAR" in no_stores.explanation
    forced = route(ship(("A", 1), forced_location="DC-FAR"), net, available)
    assert where(forced) == ["DC-FAR"]
    assert "forced by rule" in forced.explanation


def test_forced_location_that_cannot_ship_backorders() -> None:
    net = [dc("DC-1", NEWARK), dc("DC-OFF", PHILLY, active=False)]
    available = stock(DC_1={"A": 1}, DC_OFF={"A": 1})
    off = route(ship(("A", 1), forced_location="DC-OFF"), net, available)
    assert off.outcome == BACKORDERED
    assert "inactive: DC-OFF" in off.explanation
    ghost = route(ship(("A", 1), forced_location="DC-GHOST"), net, available)
    assert ghost.outcome == BACKORDERED
    assert "forced but unknown: DC-GHOST" in ghost.explanation


def test_preferred_location_beats_cost() -> None:
    net = [dc("DC-NEAR", NEWARK), dc("DC-MID", CHICAGO), dc("DC-FAR", LA)]
    available = stock(DC_NEAR={"A": 1}, DC_MID={"A": 1}, DC_FAR={"A": 1})
    decision = route(ship(("A", 1), preferred_locations=("DC-FAR",)), net, available)
    assert where(decision) == ["DC-FAR"]
    assert "preferred by rule" in decision.explanation
    ordered = route(ship(("A", 1), preferred_locations=("DC-MID", "DC-FAR")), net, available)
    assert where(ordered) == ["DC-MID"]


def test_preference_does_not_beat_fewer_shipments() -> None:
    net = [dc("DC-PREF", NEWARK), dc("DC-ALL", LA)]
    available = stock(DC_PREF={"A": 1}, DC_ALL={"A": 1, "B": 1})
    decision = route(ship(("A", 1), ("B", 1), preferred_locations=("DC-PREF",)), net, available)
    assert where(decision) == ["DC-ALL"]


def test_preferred_locations_win_among_splits() -> None:
    net = [dc("DC-A1", NEWARK), dc("DC-B1", NEWARK), dc("DC-A2", LA), dc("DC-B2", LA)]
    available = stock(DC_A1={"A": 1}, DC_B1={"B": 1}, DC_A2={"A": 1}, DC_B2={"B": 1})
    plain = route(ship(("A", 1), ("B", 1)), net, available)
    assert sorted(where(plain)) == ["DC-A1", "DC-B1"]
    steered = route(ship(("A", 1), ("B", 1), preferred_locations=("DC-B2",)), net, available)
    assert sorted(where(steered)) == ["DC-A1", "DC-B2"]


# --- splits -------------------------------------------------------------------------------


def test_split_when_no_single_location_holds_everything() -> None:
    net = [dc("DC-1", PHILLY), store("ST-2", BOSTON), dc("DC-3", LA)]
    available = stock(DC_1={"A": 5}, ST_2={"B": 5}, DC_3={"C": 1})
    decision = route(ship(("A", 2), ("B", 1)), net, available)
    assert decision.outcome == ALLOCATED
    assert units(decision) == {("DC-1", "L1"): 2, ("ST-2", "L2"): 1}
    kinds = {s.location_id: s.kind for s in decision.shipments}
    assert kinds == {"DC-1": ShipmentKind.SHIP, "ST-2": ShipmentKind.SHIP_FROM_STORE}
    assert "no single location holds all 2 lines" in decision.explanation


def test_split_picks_the_cheapest_pair() -> None:
    net = [
        dc("DC-A-FAR", LA),
        dc("DC-A-NEAR", PHILLY),
        dc("DC-B-FAR", CHICAGO),
        dc("DC-B-NEAR", BOSTON),
    ]
    available = stock(DC_A_FAR={"A": 1}, DC_A_NEAR={"A": 1}, DC_B_FAR={"B": 1}, DC_B_NEAR={"B": 1})
    decision = route(ship(("A", 1), ("B", 1)), net, available)
    assert sorted(where(decision)) == ["DC-A-NEAR", "DC-B-NEAR"]


def test_whole_lines_are_preferred_over_splitting_a_line() -> None:
    # DC-1 and DC-2 could each take part of L1; DC-3 takes L1 whole, DC-1 takes L2 whole.
    net = [dc("DC-1", NEWARK), dc("DC-2", NEWARK), dc("DC-3", LA)]
    available = stock(DC_1={"A": 3, "B": 1}, DC_2={"A": 3}, DC_3={"A": 5})
    decision = route(ship(("A", 5), ("B", 1)), net, available)
    assert decision.outcome == ALLOCATED
    assert units(decision) == {("DC-3", "L1"): 5, ("DC-1", "L2"): 1}


def test_a_line_is_split_only_when_no_location_has_enough() -> None:
    net = [dc("DC-1", NEWARK), dc("DC-2", PHILLY)]
    decision = route(ship(("A", 10)), net, stock(DC_1={"A": 6}, DC_2={"A": 7}))
    assert decision.outcome == ALLOCATED
    assert sum(units(decision).values()) == 10
    assert len(decision.shipments) == 2
    assert "1 line split" in decision.explanation
    # The piece from the location with more stock is taken first: fewest pieces.
    assert units(decision)[("DC-2", "L1")] == 7


def test_three_way_split() -> None:
    net = [dc("DC-1", NEWARK), dc("DC-2", PHILLY), dc("DC-3", BOSTON), dc("DC-4", LA)]
    available = stock(DC_1={"A": 1}, DC_2={"B": 1}, DC_3={"C": 1}, DC_4={"A": 1, "B": 1})
    decision = route(ship(("A", 1), ("B", 1), ("C", 1)), net, available)
    assert decision.outcome == ALLOCATED
    # Two shipments (DC-4 + DC-3) beat three nearer ones.
    assert sorted(where(decision)) == ["DC-3", "DC-4"]


def test_same_sku_on_two_lines_is_not_allocated_twice() -> None:
    net = [dc("DC-1", NEWARK)]
    decision = route(ship(("A", 3), ("A", 2)), net, stock(DC_1={"A": 4}))
    assert decision.outcome == PARTIAL
    assert sum(units(decision).values()) == 4
    assert sum(b.quantity for b in decision.backordered) == 1


def test_max_shipments_from_policy_and_request() -> None:
    net = [dc("DC-1", NEWARK), dc("DC-2", PHILLY), dc("DC-3", BOSTON)]
    available = stock(DC_1={"A": 1}, DC_2={"B": 2}, DC_3={"C": 1})
    order = (("A", 1), ("B", 2), ("C", 1))
    full = route(ship(*order), net, available)
    assert full.outcome == ALLOCATED and len(full.shipments) == 3
    one = route(ship(*order), net, available, RoutingPolicy(max_shipments=1))
    assert one.outcome == PARTIAL
    assert where(one) == ["DC-2"]  # covers the most units alone
    two = route(ship(*order, max_shipments=2), net, available)
    assert two.outcome == PARTIAL and len(two.shipments) == 2
    assert "DC-2" in where(two)


# --- shortfall ----------------------------------------------------------------------------


def test_allocate_available_backorders_the_rest() -> None:
    net = [dc("DC-1", NEWARK)]
    decision = route(ship(("A", 5), ("B", 2)), net, stock(DC_1={"A": 3, "B": 2}))
    assert decision.outcome == PARTIAL
    assert units(decision) == {("DC-1", "L1"): 3, ("DC-1", "L2"): 2}
    assert decision.backordered == (AllocatedLine("L1", "A", 2),)
    assert "backordered 2 units of 1 line (short: A)" in decision.explanation


def test_backorder_whole_allocates_nothing_when_anything_is_short() -> None:
    net = [dc("DC-1", NEWARK)]
    policy = RoutingPolicy(shortfall=ShortfallPolicy.BACKORDER_WHOLE)
    decision = route(ship(("A", 5), ("B", 2)), net, stock(DC_1={"A": 3, "B": 2}), policy)
    assert decision.outcome == BACKORDERED
    assert decision.shipments == ()
    assert decision.backordered == (AllocatedLine("L1", "A", 5), AllocatedLine("L2", "B", 2))
    assert "BACKORDER_WHOLE" in decision.explanation
    enough = route(ship(("A", 3)), net, stock(DC_1={"A": 3}), policy)
    assert enough.outcome == ALLOCATED


@pytest.mark.parametrize("shortfall", list(ShortfallPolicy))
def test_nothing_in_stock_backorders(shortfall: ShortfallPolicy) -> None:
    net = [dc("DC-1", NEWARK), store("ST-1", PHILLY)]
    decision = route(ship(("A", 1)), net, stock(DC_1={"B": 9}), RoutingPolicy(shortfall=shortfall))
    assert decision.outcome == BACKORDERED
    assert decision.backordered == (AllocatedLine("L1", "A", 1),)
    assert "no eligible location holds any ordered unit" in decision.explanation


def test_negative_or_missing_stock_counts_as_none() -> None:
    net = [dc("DC-1", NEWARK), dc("DC-2", PHILLY)]
    decision = route(ship(("A", 2)), net, stock(DC_1={"A": -5}, DC_2={"A": 1}))
    assert decision.outcome == PARTIAL
    assert units(decision) == {("DC-2", "L1"): 1}


# --- cost ---------------------------------------------------------------------------------


def test_rate_table_overrides_distance() -> None:
    net = [dc("DC-NEAR", NEWARK, region="EAST"), dc("DC-FAR", LA, region="WEST")]
    table = RateTable((Rate(12.0, origin="EAST"), Rate(4.0, origin="DC-FAR", country="US")))
    available = stock(DC_NEAR={"A": 1}, DC_FAR={"A": 1})
    decision = route(ship(("A", 1)), net, available, RoutingPolicy(cost=table))
    assert where(decision) == ["DC-FAR"]
    assert "cost 4.00" in decision.explanation


def test_rate_table_prices_an_address_without_coordinates() -> None:
    no_coords = Destination(country="US", region="NY", postal_code="10001")
    net = [dc("DC-1", NEWARK), dc("DC-2", LA)]
    available = stock(DC_1={"A": 1}, DC_2={"A": 1})
    table = RateTable((Rate(3.0, origin="DC-2", postal_prefix="100"),), fallback_per_km=None)
    decision = route(ship(("A", 1), ship_to=no_coords), net, available, RoutingPolicy(cost=table))
    # DC-1 has no rate for this lane: still a candidate, ranked after every priced one.
    assert where(decision) == ["DC-2"]
    assert "unpriced" in decision.explanation


def test_an_address_without_coordinates_is_routed_by_zone_not_rejected() -> None:
    # Marketplaces often send no coordinates: same region first, then same country.
    no_coords = Destination(country="US", region="CA", postal_code="90001")
    net = [
        dc("DC-NJ", NEWARK, region="NJ", country="US"),
        dc("DC-CA", LA, region="CA", country="US"),
        dc("DC-UK", (51.5, -0.1), region="LDN", country="GB"),
    ]
    everywhere = stock(DC_NJ={"A": 1}, DC_CA={"A": 1}, DC_UK={"A": 1})
    decision = route(ship(("A", 1), ship_to=no_coords), net, everywhere)
    assert where(decision) == ["DC-CA"]
    assert "no coordinates: cost by zone" in decision.explanation
    not_in_region = stock(DC_NJ={"A": 1}, DC_UK={"A": 1})
    assert where(route(ship(("A", 1), ship_to=no_coords), net, not_in_region)) == ["DC-NJ"]


def test_location_without_coordinates_ranks_last_but_still_ships() -> None:
    net = [dc("DC-NOWHERE", None), dc("DC-LA", LA)]
    both = stock(DC_NOWHERE={"A": 1}, DC_LA={"A": 1})
    assert where(route(ship(("A", 1)), net, both)) == ["DC-LA"]
    assert where(route(ship(("A", 1)), net, stock(DC_NOWHERE={"A": 1}))) == ["DC-NOWHERE"]


def test_custom_cost_callable() -> None:
    net = [dc("DC-1", NEWARK), dc("DC-2", LA)]
    policy = RoutingPolicy(cost=lambda loc, dest: 1.0 if loc.location_id == "DC-2" else 2.0)
    decision = route(ship(("A", 1)), net, stock(DC_1={"A": 1}, DC_2={"A": 1}), policy)
    assert where(decision) == ["DC-2"]


# --- rejections ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (RoutingRequest("o", FulfillmentMethod.SHIP, (), ship_to=NYC), "no lines"),
        (ship(("A", 0)), "non-positive quantity"),
        (
            RoutingRequest(
                "o",
                FulfillmentMethod.SHIP,
                (OrderLine("L1", "A", 1), OrderLine("L1", "B", 1)),
                ship_to=NYC,
            ),
            "appears twice",
        ),
        (ship(("A", 1), ship_to=None), "without a ship-to address"),
    ],
)
def test_rejections(request_: RoutingRequest, reason: str) -> None:
    decision = route(request_, [dc("DC-1", NEWARK)], stock(DC_1={"A": 9, "B": 9}))
    assert decision.outcome == REJECTED
    assert decision.shipments == () and decision.backordered == ()
    assert reason in decision.explanation


# --- pickup -------------------------------------------------------------------------------


def test_pickup_at_the_store_when_it_holds_everything() -> None:
    net = [store("ST-1", NEWARK), dc("DC-1", NEWARK)]
    decision = route(pickup("ST-1", ("A", 2)), net, stock(ST_1={"A": 2}, DC_1={"A": 9}))
    assert decision.outcome == ALLOCATED
    (only,) = decision.shipments
    assert (only.location_id, only.kind) == ("ST-1", ShipmentKind.PICKUP)
    assert "pickup at store" in decision.explanation


def test_pickup_transfer_from_the_nearest_holder_to_the_store() -> None:
    # Nearest to the store (in Boston), not to anyone else.
    net = [store("ST-BOS", BOSTON), dc("DC-PHL", PHILLY), dc("DC-CHI", CHICAGO), dc("DC-LA", LA)]
    available = stock(
        ST_BOS={"A": 1}, DC_PHL={"A": 1}, DC_CHI={"A": 5, "B": 5}, DC_LA={"A": 5, "B": 5}
    )
    decision = route(pickup("ST-BOS", ("A", 1), ("B", 1)), net, available)
    assert decision.outcome == ALLOCATED
    (only,) = decision.shipments
    assert only.location_id == "DC-CHI"
    assert only.kind == ShipmentKind.TRANSFER
    assert only.destination_location_id == "ST-BOS"
    assert "ST-BOS short of B" in decision.explanation
    assert "nearest of 2 locations holding everything" in decision.explanation


def test_pickup_store_at_capacity_still_picks_up() -> None:
    net = [store("ST-1", NEWARK, daily_order_capacity=1, orders_today=1)]
    decision = route(pickup("ST-1", ("A", 1)), net, stock(ST_1={"A": 1}))
    assert decision.outcome == ALLOCATED and where(decision) == ["ST-1"]


def test_pickup_transfer_sources_must_be_able_to_ship() -> None:
    net = [
        store("ST-1", NEWARK),
        store("ST-2", NEWARK, capabilities=frozenset({Capability.PICKUP})),
        dc("DC-1", LA),
    ]
    decision = route(pickup("ST-1", ("A", 1)), net, stock(ST_2={"A": 1}, DC_1={"A": 1}))
    assert where(decision) == ["DC-1"]
    assert decision.shipments[0].kind == ShipmentKind.TRANSFER


def test_pickup_shortfall_mixes_pickup_and_transfer() -> None:
    net = [store("ST-1", NEWARK), dc("DC-1", PHILLY), store("ST-2", BOSTON)]
    available = stock(ST_1={"A": 1}, DC_1={"B": 1}, ST_2={"C": 1})
    decision = route(pickup("ST-1", ("A", 1), ("B", 1)), net, available)
    assert decision.outcome == ALLOCATED
    kinds = {s.location_id: (s.kind, s.destination_location_id) for s in decision.shipments}
    assert kinds == {
        "ST-1": (ShipmentKind.PICKUP, None),
        "DC-1": (ShipmentKind.TRANSFER, "ST-1"),
    }


def test_pickup_shortfall_policies() -> None:
    net = [store("ST-1", NEWARK), dc("DC-1", PHILLY)]
    available = stock(ST_1={"A": 1}, DC_1={"A": 1})
    order = pickup("ST-1", ("A", 1), ("B", 1))
    partial = route(order, net, available)
    assert partial.outcome == PARTIAL
    assert where(partial) == ["ST-1"]
    assert partial.backordered == (AllocatedLine("L2", "B", 1),)
    whole = route(order, net, available, RoutingPolicy(shortfall=ShortfallPolicy.BACKORDER_WHOLE))
    assert whole.outcome == BACKORDERED and whole.shipments == ()
    nothing = route(pickup("ST-1", ("Z", 1)), net, available)
    assert nothing.outcome == BACKORDERED


def test_pickup_store_excluded_by_rule_gets_a_transfer() -> None:
    net = [store("ST-1", NEWARK), dc("DC-1", PHILLY)]
    available = stock(ST_1={"A": 1}, DC_1={"A": 1})
    decision = route(
        pickup("ST-1", ("A", 1), excluded_locations=frozenset({"ST-1"})), net, available
    )
    assert [(s.location_id, s.kind) for s in decision.shipments] == [
        ("DC-1", ShipmentKind.TRANSFER)
    ]
    assert "ST-1 not used as a source" in decision.explanation
    forced = route(pickup("ST-1", ("A", 1), forced_location="DC-1"), net, available)
    assert where(forced) == ["DC-1"]


@pytest.mark.parametrize(
    ("net", "store_id", "reason"),
    [
        ([store("ST-1", NEWARK)], None, "without a pickup location"),
        ([store("ST-1", NEWARK)], "ST-404", "unknown"),
        ([store("ST-1", NEWARK, active=False)], "ST-1", "inactive"),
        (
            [store("ST-1", NEWARK, capabilities=frozenset({Capability.SHIP_FROM_STORE}))],
            "ST-1",
            "does not offer PICKUP",
        ),
    ],
)
def test_pickup_rejections(net: list[LocationInfo], store_id: str | None, reason: str) -> None:
    decision = route(pickup(store_id, ("A", 1)), [*net, dc("DC-1", PHILLY)], stock(DC_1={"A": 1}))
    assert decision.outcome == REJECTED
    assert reason in decision.explanation


# --- determinism, helpers, budget ---------------------------------------------------------


def test_decision_does_not_depend_on_location_order() -> None:
    net = [dc(f"DC-{i}", (40 + i / 10, -75 + i / 7), priority=i % 3) for i in range(12)]
    rnd = random.Random(4)
    available: Stock = {
        sku: {n.location_id: rnd.randint(0, 3) for n in net} for sku in ("A", "B", "C", "D")
    }
    order = ship(("A", 3), ("B", 2), ("C", 4), ("D", 1))
    first = route(order, net, available)
    for _ in range(5):
        rnd.shuffle(net)
        assert route(order, net, available) == first


def test_allocated_quantity_sums_what_to_reserve() -> None:
    net = [dc("DC-1", NEWARK), dc("DC-2", PHILLY)]
    decision = route(ship(("A", 10), ("B", 1)), net, stock(DC_1={"A": 6, "B": 1}, DC_2={"A": 7}))
    assert decision.allocated_quantity("A", "DC-1") + decision.allocated_quantity("A", "DC-2") == 10
    assert decision.allocated_quantity("B", "DC-1") == 1
    assert decision.allocated_quantity("B", "DC-2") == 0


def test_tiny_search_budget_still_gives_a_valid_plan() -> None:
    net = [dc(f"DC-{i}", (40 + i / 10, -75)) for i in range(10)]
    available = stock(**{f"DC_{i}": {"ABCDE"[i % 5]: 1} for i in range(10)})
    order = ship(("A", 1), ("B", 1), ("C", 1))
    exact = route(order, net, available)
    rough = route(order, net, available, RoutingPolicy(search_budget=1))
    assert exact.outcome == rough.outcome == ALLOCATED
    assert len(rough.shipments) == 3
    assert "budget" in rough.explanation and "budget" not in exact.explanation


def test_explanation_caps_long_lists() -> None:
    net = [store(f"ST-{i}", NEWARK, active=False) for i in range(10)]
    net += [dc(f"DC-{i}", (40.0 + i, -75.0)) for i in range(5)]
    available = stock(**{f"DC_{i}": {"A": 1} for i in range(5)})
    decision = route(ship(("A", 1)), net, available, RoutingPolicy(explain_top=2))
    assert "inactive: ST-0, ST-1, ST-2 +7 more" in decision.explanation
    best = decision.explanation.split("best: ")[1].split(")")[0]
    assert "5 candidates" in decision.explanation
    assert best == "DC-1 89 km, DC-0 116 km"

"""Properties of routing over random networks, orders and rule steering (hypothesis)."""

import itertools
import math
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.routing.geo import Destination
from streams.core.routing.model import (
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
from streams.core.routing.plan import Candidate, build_problem, draft, plan_key
from streams.core.routing.route import decide_route
from streams.core.routing.search import search_plan

SKUS = ("A", "B", "C", "D")
SHIP_TO = Destination(lat=40.7, lon=-74.0, country="US")


@st.composite
def locations(draw: st.DrawFn) -> list[LocationInfo]:
    count = draw(st.integers(1, 8))
    out = []
    for i in range(count):
        kind = draw(st.sampled_from(list(LocationKind)))
        caps = draw(st.frozensets(st.sampled_from(list(Capability))))
        located = draw(st.booleans()) or i == 0
        capacity = draw(st.one_of(st.none(), st.integers(0, 3)))
        out.append(
            LocationInfo(
                location_id=f"{kind.value}-{i}",
                kind=kind,
                # Mostly able to ship, so that interesting plans exist.
                capabilities=caps
                | ({Capability.SHIP, Capability.SHIP_FROM_STORE} if i % 3 else set()),
                lat=draw(st.floats(25, 48)) if located else None,
                lon=draw(st.floats(-120, -70)) if located else None,
                priority=draw(st.integers(0, 3)),
                daily_order_capacity=capacity,
                orders_today=draw(st.integers(0, 3)),
                active=draw(st.integers(0, 5)) > 0,
            )
        )
    return out


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[RoutingRequest, list[LocationInfo], dict[str, dict[str, int]], RoutingPolicy]:
    net = draw(locations())
    ids = [loc.location_id for loc in net]
    stock = {
        sku: {lid: draw(st.integers(-1, 5)) for lid in ids if draw(st.booleans())} for sku in SKUS
    }
    n_lines = draw(st.integers(1, 4))
    lines = tuple(
        OrderLine(f"L{i}", draw(st.sampled_from(SKUS)), draw(st.integers(1, 5)))
        for i in range(n_lines)
    )
    method = draw(st.sampled_from(list(FulfillmentMethod)))
    request = RoutingRequest(
        order_id="o",
        method=method,
        lines=lines,
        ship_to=SHIP_TO,
        pickup_location_id=draw(st.sampled_from(ids))
        if method == FulfillmentMethod.PICKUP
        else None,
        excluded_locations=draw(st.frozensets(st.sampled_from(ids), max_size=2)),
        excluded_kinds=draw(st.frozensets(st.sampled_from(list(LocationKind)), max_size=1)),
        preferred_locations=tuple(draw(st.lists(st.sampled_from(ids), max_size=2))),
        forced_location=draw(st.one_of(st.none(), st.none(), st.sampled_from(ids))),
        max_shipments=draw(st.one_of(st.none(), st.integers(1, 3))),
    )
    policy = RoutingPolicy(
        max_shipments=draw(st.integers(1, 4)),
        shortfall=draw(st.sampled_from(list(ShortfallPolicy))),
    )
    return request, net, stock, policy


def _eligible_to_ship(loc: LocationInfo, request: RoutingRequest) -> bool:
    need = Capability.SHIP if loc.kind == LocationKind.DC else Capability.SHIP_FROM_STORE
    return (
        loc.active
        and need in loc.capabilities
        and loc.has_free_capacity
        and loc.location_id not in request.excluded_locations
        and loc.kind not in request.excluded_kinds
        and request.forced_location in (None, loc.location_id)
    )


def _allocated(decision: RoutingDecision) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for shipment in decision.shipments:
        for line in shipment.lines:
            out[(line.sku, shipment.location_id)] += line.quantity
    return out


Scenario = tuple[RoutingRequest, list[LocationInfo], dict[str, dict[str, int]], RoutingPolicy]


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_never_promises_more_than_available_or_ordered(scenario: Scenario) -> None:
    request, net, stock, policy = scenario
    decision = decide_route(request, net, stock, policy)
    for (sku, lid), qty in _allocated(decision).items():
        assert qty <= max(0, stock.get(sku, {}).get(lid, 0))
    per_line: Counter[str] = Counter()
    for shipment in decision.shipments:
        assert shipment.lines, "no empty shipments"
        for part in shipment.lines:
            assert part.quantity > 0
            per_line[part.line_id] += part.quantity
    backordered: Counter[str] = Counter()
    for missing in decision.backordered:
        backordered[missing.line_id] += missing.quantity
    if decision.outcome == RoutingOutcome.PARTIALLY_ALLOCATED:
        assert decision.shipments and decision.backordered
    if decision.outcome in (RoutingOutcome.BACKORDERED, RoutingOutcome.REJECTED):
        assert not decision.shipments
    for line in request.lines:
        assert per_line[line.line_id] <= line.quantity
        if decision.outcome == RoutingOutcome.ALLOCATED:
            assert per_line[line.line_id] == line.quantity
        if decision.outcome in (RoutingOutcome.PARTIALLY_ALLOCATED, RoutingOutcome.BACKORDERED):
            assert per_line[line.line_id] + backordered[line.line_id] == line.quantity
    limit = min(policy.max_shipments, request.max_shipments or policy.max_shipments)
    assert len(decision.shipments) <= max(1, limit)
    assert len({s.location_id for s in decision.shipments}) == len(decision.shipments)
    assert decision.explanation


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_shipments_come_only_from_eligible_locations(scenario: Scenario) -> None:
    request, net, stock, policy = scenario
    decision = decide_route(request, net, stock, policy)
    by_id = {loc.location_id: loc for loc in net}
    for shipment in decision.shipments:
        loc = by_id[shipment.location_id]
        if shipment.kind == ShipmentKind.PICKUP:
            assert shipment.location_id == request.pickup_location_id
            continue
        assert _eligible_to_ship(loc, request)
        if request.method == FulfillmentMethod.PICKUP:
            assert shipment.kind == ShipmentKind.TRANSFER
            assert shipment.destination_location_id == request.pickup_location_id
        else:
            expected = (
                ShipmentKind.SHIP if loc.kind == LocationKind.DC else ShipmentKind.SHIP_FROM_STORE
            )
            assert shipment.kind == expected


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_a_location_that_holds_everything_means_one_shipment(scenario: Scenario) -> None:
    request, net, stock, policy = scenario
    if request.method != FulfillmentMethod.SHIP:
        return
    demand: Counter[str] = Counter()
    for line in request.lines:
        demand[line.sku] += line.quantity
    holders = [
        loc
        for loc in net
        if _eligible_to_ship(loc, request)
        and all(stock.get(sku, {}).get(loc.location_id, 0) >= qty for sku, qty in demand.items())
    ]
    decision = decide_route(request, net, stock, policy)
    if holders:
        assert decision.outcome == RoutingOutcome.ALLOCATED
        assert len(decision.shipments) == 1
        assert decision.shipments[0].location_id in {h.location_id for h in holders}


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.integers(0, 7))
def test_location_order_does_not_matter(scenario: Scenario, shift: int) -> None:
    request, net, stock, policy = scenario
    first = decide_route(request, net, stock, policy)
    shift %= len(net)
    assert decide_route(request, list(reversed(net)), stock, policy) == first
    assert decide_route(request, net[shift:] + net[:shift], stock, policy) == first


# --- the branch and bound against brute force --------------------------------------------


@st.composite
def search_cases(
    draw: st.DrawFn,
) -> tuple[tuple[OrderLine, ...], list[Candidate], dict[str, dict[str, int]], int]:
    count = draw(st.integers(1, 9))
    preferred = draw(st.integers(0, 2))
    candidates = []
    for i in range(count):
        rank = draw(st.integers(0, preferred)) if preferred else 0
        loc = LocationInfo(
            f"L{i}", LocationKind.DC, frozenset({Capability.SHIP}), priority=draw(st.integers(0, 2))
        )
        cost = draw(st.one_of(st.integers(0, 6).map(float), st.just(math.inf)))
        candidates.append(
            Candidate(loc.location_id, loc, ShipmentKind.SHIP, cost, None, rank, rank < preferred)
        )
    skus = SKUS[: draw(st.integers(1, 4))]
    stock = {sku: {c.location_id: draw(st.integers(0, 4)) for c in candidates} for sku in skus}
    lines = tuple(
        OrderLine(f"l{i}", draw(st.sampled_from(skus)), draw(st.integers(1, 4)))
        for i in range(draw(st.integers(1, 5)))
    )
    return lines, candidates, stock, draw(st.integers(1, 4))


@settings(max_examples=300, deadline=None)
@given(search_cases())
def test_branch_and_bound_matches_exhaustive_search(
    case: tuple[tuple[OrderLine, ...], list[Candidate], dict[str, dict[str, int]], int],
) -> None:
    lines, candidates, stock, limit = case
    plan = search_plan(lines, candidates, stock, limit, budget=10**9)
    assert plan.exact
    got = plan_key([c for c, _ in plan.shipments], plan.allocated_units, plan.split_lines)
    problem = build_problem(lines, candidates, stock, budget=10**9)
    best = draft(problem, [])
    for k in range(1, min(limit, len(problem.pool)) + 1):
        for subset in itertools.combinations(range(len(problem.pool)), k):
            found = draft(problem, subset)
            if found.key < best.key:
                best = found
    assert got == best.key

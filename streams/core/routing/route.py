"""Routing: which locations fulfil an order, as a pure function of the order and the network.

``decide_route(request, locations, stock, policy)`` returns one :class:`RoutingDecision`;
the caller (the order agent) reserves what it allocates and emits the commands. Nothing here
reads a clock or makes an id, so the same inputs always give the same decision.

Ship orders: candidates are active locations with the capability to ship (``SHIP`` for a DC,
``SHIP_FROM_STORE`` for a store), free daily capacity, and not excluded by a rule. Plans are
ranked by the objective in :mod:`streams.core.routing.search`: units allocated, then fewest
shipments, whole lines, rule preference, cost to the ship-to address (distance unless a rate
table is configured), priority and location id. A location whose lane cannot be priced stays
a candidate, ranked last on cost.

Pickup (BOPIS) orders: the chosen store must exist, be active and offer ``PICKUP``, or the
order is rejected. If it holds everything, one ``PICKUP`` shipment there. Otherwise the
nearest location (great-circle distance to the store) that may ship and holds everything gets
a ``TRANSFER`` to the store; failing that, the same search as for ship orders mixes a partial
pickup at the store with transfers, and the shortfall policy decides about the rest. Daily
capacity does not apply to the pickup store itself: the customer chose it, and any transfer
lands there anyway.

Channel policy (``RoutingRequest.channel_locations``): an order from a sales channel is served
only by the locations its channel's policy names (``streams.core.channels``): the others are no
candidates to ship, no transfer sources and no pickup source, excluded with that reason. When
the locations left cannot serve a line some other location could, the explanation says that
the channel's policy limited it.

Rule steering (``RoutingRequest``): ``excluded_locations`` / ``excluded_kinds`` remove
sources, ``forced_location`` leaves only that source (an ineligible forced location means a
backorder, not a rejection: it may come back), ``preferred_locations`` beat cost among plans
with as few shipments, ``max_shipments`` tightens the policy's limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from streams.core.routing.explain import (
    Exclusion,
    PickupContext,
    ShipContext,
    explain_pickup,
    explain_ship,
)
from streams.core.routing.geo import Destination, km_to, zone_cost
from streams.core.routing.model import (
    AllocatedLine,
    Capability,
    FulfillmentMethod,
    LocationInfo,
    LocationKind,
    OrderLine,
    PlannedShipment,
    RoutingDecision,
    RoutingOutcome,
    RoutingPolicy,
    RoutingRequest,
    ShipmentKind,
    ShortfallPolicy,
)
from streams.core.routing.search import Candidate, Plan, search_plan

# The agents need only this module: the function and every type it takes or returns.
__all__ = [
    "AllocatedLine",
    "Capability",
    "Destination",
    "FulfillmentMethod",
    "LocationInfo",
    "LocationKind",
    "OrderLine",
    "PlannedShipment",
    "RoutingDecision",
    "RoutingOutcome",
    "RoutingPolicy",
    "RoutingRequest",
    "ShipmentKind",
    "ShortfallPolicy",
    "decide_route",
]

Stock = Mapping[str, Mapping[str, int]]
IDS_SHOWN = 3
"""Locations a channel-policy note names before "and more"."""


def decide_route(
    request: RoutingRequest,
    locations: Sequence[LocationInfo],
    stock: Stock,
    policy: RoutingPolicy,
) -> RoutingDecision:
    """Route one order. ``stock`` is sku -> location_id -> available-to-promise units."""
    problem = _invalid_lines(request.lines)
    if problem is not None:
        return _rejected(problem)
    if request.method == FulfillmentMethod.PICKUP:
        return _route_pickup(request, locations, stock, policy)
    return _route_ship(request, locations, stock, policy)


def _invalid_lines(lines: tuple[OrderLine, ...]) -> str | None:
    if not lines:
        return "order has no lines"
    seen: set[str] = set()
    for line in lines:
        if line.quantity <= 0:
            return f"line {line.line_id} has non-positive quantity {line.quantity}"
        if line.line_id in seen:
            return f"line id {line.line_id} appears twice"
        seen.add(line.line_id)
    return None


def _rejected(reason: str) -> RoutingDecision:
    return RoutingDecision(RoutingOutcome.REJECTED, explanation=f"rejected: {reason}")


def _exclusion_reason(location: LocationInfo, request: RoutingRequest) -> str | None:
    """Why ``location`` cannot ship for this order, or None when it is a candidate."""
    if not location.active:
        return "inactive"
    capability = location.ship_capability
    if capability not in location.capabilities:
        return f"no {capability.value}"
    if request.outside_channel(location.location_id):
        return request.channel_limit
    if request.forced_location is not None and location.location_id != request.forced_location:
        return "not the forced location"
    if location.location_id in request.excluded_locations:
        return "excluded by rule"
    if location.kind in request.excluded_kinds:
        return f"{location.kind.value} excluded by rule"
    if not location.has_free_capacity:
        return f"capacity full ({location.orders_today}/{location.daily_order_capacity})"
    return None


def _screen(
    locations: Sequence[LocationInfo], request: RoutingRequest, skip: str | None = None
) -> tuple[list[LocationInfo], list[Exclusion]]:
    eligible: list[LocationInfo] = []
    excluded: list[Exclusion] = []
    for location in locations:
        if location.location_id == skip:
            continue
        reason = _exclusion_reason(location, request)
        if reason is None:
            eligible.append(location)
        else:
            excluded.append(Exclusion(location.location_id, reason))
    if request.forced_location is not None and not any(
        loc.location_id == request.forced_location for loc in locations
    ):
        excluded.append(Exclusion(request.forced_location, "forced but unknown"))
    return eligible, excluded


class _Pricing:
    """Turns eligible locations into candidates carrying cost and rule preference."""

    def __init__(self, request: RoutingRequest) -> None:
        self.ranks: dict[str, int] = {}
        for index, location_id in enumerate(request.preferred_locations):
            self.ranks.setdefault(location_id, index)
        self.unpreferred = len(request.preferred_locations)

    def candidate(
        self,
        location: LocationInfo,
        kind: ShipmentKind,
        cost: float | None,
        km: float | None,
        destination_location_id: str | None = None,
    ) -> Candidate:
        rank = self.ranks.get(location.location_id, self.unpreferred)
        return Candidate(
            location.location_id,
            location,
            kind,
            math.inf if cost is None else cost,
            km,
            rank,
            rank < self.unpreferred,
            destination_location_id,
        )


def _max_shipments(request: RoutingRequest, policy: RoutingPolicy) -> int:
    limit = policy.max_shipments
    if request.max_shipments is not None:
        limit = min(limit, request.max_shipments)
    return max(1, limit)


def _route_ship(
    request: RoutingRequest,
    locations: Sequence[LocationInfo],
    stock: Stock,
    policy: RoutingPolicy,
) -> RoutingDecision:
    ship_to = request.ship_to
    if ship_to is None:
        return _rejected("ship order without a ship-to address")
    note = ""
    if not ship_to.has_coordinates and not _any_priceable(locations, ship_to, policy):
        policy = replace(policy, cost=zone_cost)
        note = "ship-to has no coordinates: cost by zone (same region 0, country 1, abroad 2). "
    eligible, excluded = _screen(locations, request)
    candidates = _ship_candidates(request, eligible, ship_to, policy)
    plan = search_plan(
        request.lines, candidates, stock, _max_shipments(request, policy), policy.search_budget
    )
    decision = _decide(request, plan, policy)
    text = explain_ship(
        ShipContext(request, plan, decision.outcome, policy.cost_is_distance, policy.explain_top),
        candidates,
        excluded,
    )
    limited = _channel_note(request, decision, locations, stock)
    return _with_explanation(decision, limited + note + text)


def _ship_candidates(
    request: RoutingRequest,
    eligible: Sequence[LocationInfo],
    ship_to: Destination,
    policy: RoutingPolicy,
) -> list[Candidate]:
    pricing = _Pricing(request)
    km = km_to(ship_to)
    by_distance = policy.cost_is_distance
    out = []
    for loc in eligible:
        distance = km(loc)
        cost = distance if by_distance else policy.cost(loc, ship_to)
        kind = ShipmentKind.SHIP if loc.kind == LocationKind.DC else ShipmentKind.SHIP_FROM_STORE
        out.append(pricing.candidate(loc, kind, cost, distance))
    out.sort(key=lambda c: c.rank_key)
    return out


def _any_priceable(
    locations: Sequence[LocationInfo], ship_to: Destination, policy: RoutingPolicy
) -> bool:
    return any(
        policy.cost(loc, ship_to) is not None
        for loc in locations
        if loc.ship_capability in loc.capabilities
    )


def _route_pickup(
    request: RoutingRequest,
    locations: Sequence[LocationInfo],
    stock: Stock,
    policy: RoutingPolicy,
) -> RoutingDecision:
    store = _pickup_store(request, locations)
    if isinstance(store, str):
        return _rejected(store)
    pricing = _Pricing(request)
    at_store = _store_candidate(request, store, pricing)
    eligible, excluded = _screen(locations, request, skip=store.location_id)
    sources = _transfer_candidates(eligible, store, pricing)
    short = _short_skus(request.lines, store.location_id, stock)
    if at_store is not None and not short:
        plan = search_plan(request.lines, [at_store], stock, 1, policy.search_budget)
    else:
        pool = sources if at_store is None else [at_store, *sources]
        limit = _max_shipments(request, policy)
        plan = search_plan(request.lines, pool, stock, limit, policy.search_budget)
    decision = _decide(request, plan, policy)
    note = _store_note(request, store, at_store)
    context = PickupContext(request, plan, decision.outcome, store, short, note, policy.explain_top)
    limited = _channel_note(request, decision, locations, stock)
    return _with_explanation(decision, limited + explain_pickup(context, sources, excluded))


def _transfer_candidates(
    eligible: Sequence[LocationInfo], store: LocationInfo, pricing: _Pricing
) -> list[Candidate]:
    # "Nearest" is literal: transfer sources are ranked by great-circle distance to the store.
    km = km_to(store.as_destination())
    out = []
    for loc in eligible:
        distance = km(loc)
        out.append(
            pricing.candidate(loc, ShipmentKind.TRANSFER, distance, distance, store.location_id)
        )
    out.sort(key=lambda c: c.rank_key)
    return out


def _pickup_store(request: RoutingRequest, locations: Sequence[LocationInfo]) -> LocationInfo | str:
    """The pickup store, or why the order can never be fulfilled there."""
    store_id = request.pickup_location_id
    if store_id is None:
        return "pickup order without a pickup location"
    store = next((loc for loc in locations if loc.location_id == store_id), None)
    if store is None:
        return f"pickup location {store_id} is unknown"
    if not store.active:
        return f"pickup location {store_id} is inactive"
    if Capability.PICKUP not in store.capabilities:
        return f"pickup location {store_id} does not offer PICKUP"
    return store


def _store_candidate(
    request: RoutingRequest, store: LocationInfo, pricing: _Pricing
) -> Candidate | None:
    """The store as the source of its own pickup, unless a rule took it out."""
    if _store_note(request, store, None) is not None:
        return None
    # Cost 0: units already at the store need no trip.
    return pricing.candidate(store, ShipmentKind.PICKUP, 0.0, 0.0)


def _store_note(
    request: RoutingRequest, store: LocationInfo, at_store: Candidate | None
) -> str | None:
    """Why the store's own stock is not used, or None when it is."""
    if at_store is not None:
        return None
    if request.outside_channel(store.location_id):
        return request.channel_limit
    if request.forced_location not in (None, store.location_id):
        return f"{request.forced_location} forced by rule"
    if store.location_id in request.excluded_locations:
        return "excluded by rule"
    if store.kind in request.excluded_kinds:
        return f"{store.kind.value} excluded by rule"
    return None


def _channel_note(
    request: RoutingRequest,
    decision: RoutingDecision,
    locations: Sequence[LocationInfo],
    stock: Stock,
) -> str:
    """When the order's channel policy kept stock out that its backordered lines could have
    used: which locations hold it, for the reason the customer's channel hears."""
    if not decision.backordered or request.channel_locations is None:
        return ""
    short = {line.sku for line in decision.backordered}
    holders = sorted(
        loc.location_id
        for loc in locations
        if loc.active
        and request.outside_channel(loc.location_id)
        and any((stock.get(sku) or {}).get(loc.location_id, 0) > 0 for sku in short)
    )
    if not holders:
        return ""
    shown = ", ".join(holders[:IDS_SHOWN]) + (" and more" if len(holders) > IDS_SHOWN else "")
    return (
        f"limited by the {request.channel} channel policy: {shown} "
        f"{'holds' if len(holders) == 1 else 'hold'} {', '.join(sorted(short))} but "
        f"{'does' if len(holders) == 1 else 'do'} not serve {request.channel}; "
    )


def _short_skus(lines: tuple[OrderLine, ...], location_id: str, stock: Stock) -> tuple[str, ...]:
    """SKUs of which ``location_id`` has fewer units than the order needs."""
    demand: dict[str, int] = {}
    for line in lines:
        demand[line.sku] = demand.get(line.sku, 0) + line.quantity
    return tuple(
        sku for sku, qty in demand.items() if (stock.get(sku) or {}).get(location_id, 0) < qty
    )


def _decide(request: RoutingRequest, plan: Plan, policy: RoutingPolicy) -> RoutingDecision:
    total = sum(line.quantity for line in request.lines)
    if plan.allocated_units == 0 or (
        plan.allocated_units < total and policy.shortfall == ShortfallPolicy.BACKORDER_WHOLE
    ):
        whole = tuple(AllocatedLine(ln.line_id, ln.sku, ln.quantity) for ln in request.lines)
        return RoutingDecision(RoutingOutcome.BACKORDERED, backordered=whole)
    shipments = tuple(
        PlannedShipment(
            location_id=candidate.location_id,
            kind=candidate.kind,
            lines=lines,
            destination_location_id=candidate.destination_location_id,
        )
        for candidate, lines in plan.shipments
    )
    if plan.allocated_units == total:
        return RoutingDecision(RoutingOutcome.ALLOCATED, shipments)
    return RoutingDecision(RoutingOutcome.PARTIALLY_ALLOCATED, shipments, plan.backordered)


def _with_explanation(decision: RoutingDecision, text: str) -> RoutingDecision:
    return RoutingDecision(decision.outcome, decision.shipments, decision.backordered, text)

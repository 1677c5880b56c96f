"""Human-readable reasons for routing decisions.

An explanation is one line an operator can read in a status feed: who fulfils the order and
why they won, how many candidates there were (the best few with their cost), and which
locations were left out and why. Lists are capped so a 500-store network stays one line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from streams.core.routing.model import LocationInfo, RoutingOutcome, RoutingRequest, ShipmentKind
from streams.core.routing.search import Candidate, Plan

IDS_PER_REASON = 3


@dataclass(frozen=True, slots=True)
class Exclusion:
    location_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ShipContext:
    request: RoutingRequest
    plan: Plan
    outcome: RoutingOutcome
    cost_is_distance: bool
    top: int = 3
    """How many of the best candidates to name."""


@dataclass(frozen=True, slots=True)
class PickupContext:
    request: RoutingRequest
    plan: Plan
    outcome: RoutingOutcome
    store: LocationInfo
    store_short: tuple[str, ...]
    store_note: str | None
    top: int = 3


def format_cost(candidate: Candidate, cost_is_distance: bool = True) -> str:
    if math.isinf(candidate.cost):
        return "unpriced"
    if cost_is_distance:
        return f"{candidate.cost:.0f} km"
    if candidate.km is None:
        return f"cost {candidate.cost:.2f}"
    return f"cost {candidate.cost:.2f}, {candidate.km:.0f} km"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _excluded_text(excluded: Sequence[Exclusion]) -> str | None:
    if not excluded:
        return None
    # Group by reason, dropping the "(12/12)" detail, so one reason reads as one clause.
    groups: dict[str, list[str]] = {}
    # Sorted so the text does not depend on the order the network table was read in.
    for item in sorted(excluded, key=lambda e: e.location_id):
        label = item.reason.split(" (")[0]
        detail = item.reason[len(label) :].strip()
        groups.setdefault(label, []).append(f"{item.location_id}{' ' + detail if detail else ''}")
    parts = []
    for label, ids in groups.items():
        shown = ", ".join(ids[:IDS_PER_REASON])
        more = f" +{len(ids) - IDS_PER_REASON} more" if len(ids) > IDS_PER_REASON else ""
        parts.append(f"{label}: {shown}{more}")
    return "excluded: " + "; ".join(parts)


def _candidates_text(
    candidates: Sequence[Candidate], noun: str, cost_is_distance: bool, top: int
) -> str:
    """``candidates`` come in rank order, so the first few are the best."""
    ranked = candidates[: max(0, top)]
    best = ", ".join(f"{c.location_id} {format_cost(c, cost_is_distance)}" for c in ranked)
    head = _plural(len(candidates), noun)
    return f"{head} (best: {best})" if best else head


def _shipments_text(plan: Plan, cost_is_distance: bool) -> str:
    parts = []
    for candidate, lines in plan.shipments:
        verb = candidate.kind.value
        size = _plural(len(lines), "line")
        cost = format_cost(candidate, cost_is_distance)
        parts.append(f"{verb} {candidate.location_id} ({size}, {cost})")
    return " + ".join(parts)


def _backorder_text(plan: Plan) -> str:
    units = sum(line.quantity for line in plan.backordered)
    skus = ", ".join(dict.fromkeys(line.sku for line in plan.backordered))
    lines = _plural(len(plan.backordered), "line")
    return f"backordered {_plural(units, 'unit')} of {lines} (short: {skus})"


def _why_single(
    request: RoutingRequest, winner: Candidate, holders: Sequence[Candidate], best: str
) -> str:
    if request.forced_location == winner.location_id:
        return "forced by rule"
    if winner.preferred:
        return "preferred by rule"
    if len(holders) < 2:
        return "only location holding everything"
    runner = holders[1]
    if runner.cost == winner.cost:
        if runner.location.priority != winner.location.priority:
            return f"tied on cost with {runner.location_id}, won on priority"
        return f"tied on cost and priority with {runner.location_id}, won on location id"
    return f"{best} of {len(holders)} locations holding everything"


VERBS = {
    ShipmentKind.SHIP: "ships",
    ShipmentKind.SHIP_FROM_STORE: "ships from store",
    ShipmentKind.PICKUP: "hands over",
    ShipmentKind.TRANSFER: "transfers",
}


def _all_lines(count: int) -> str:
    return "the 1 line" if count == 1 else f"all {count} lines"


def _single_text(
    request: RoutingRequest,
    winner: Candidate,
    holders: Sequence[Candidate],
    cost_is_distance: bool,
) -> str:
    best = "nearest" if cost_is_distance else "cheapest"
    why = _why_single(request, winner, holders, best) if holders else "holds everything"
    target = f" to {winner.destination_location_id}" if winner.destination_location_id else ""
    return (
        f"{winner.location_id} {VERBS[winner.kind]} {_all_lines(len(request.lines))}{target} "
        f"({format_cost(winner, cost_is_distance)}); {why}"
    )


def _head(
    request: RoutingRequest, plan: Plan, outcome: RoutingOutcome, cost_is_distance: bool
) -> str:
    n_lines = len(request.lines)
    if outcome == RoutingOutcome.BACKORDERED:
        total = sum(line.quantity for line in request.lines)
        if plan.allocated_units == 0:
            return "no eligible location holds any ordered unit"
        return (
            f"policy BACKORDER_WHOLE and the best plan covers only "
            f"{plan.allocated_units} of {total} units"
        )
    if outcome == RoutingOutcome.ALLOCATED and len(plan.shipments) == 1:
        winner, _ = plan.shipments[0]
        single = _single_text(request, winner, plan.holders, cost_is_distance)
        return f"{single}; single shipment beats split"
    text = _shipments_text(plan, cost_is_distance)
    if outcome == RoutingOutcome.ALLOCATED:
        split = f"; {_plural(plan.split_lines, 'line')} split" if plan.split_lines else ""
        return f"no single location holds all {_plural(n_lines, 'line')}: {text}{split}"
    return f"{text}; {_backorder_text(plan)}"


def _join(parts: Sequence[str | None]) -> str:
    return "; ".join(part for part in parts if part)


def explain_ship(
    context: ShipContext, candidates: Sequence[Candidate], excluded: Sequence[Exclusion]
) -> str:
    """The reason for a ship order's decision; ``candidates`` in rank order."""
    plan = context.plan
    head = _head(context.request, plan, context.outcome, context.cost_is_distance)
    return _join(
        [
            f"{context.outcome.value}: {head}",
            _candidates_text(candidates, "candidate", context.cost_is_distance, context.top),
            None if plan.exact else "split search hit its budget: greedy answer",
            _excluded_text(excluded),
        ]
    )


def explain_pickup(
    context: PickupContext, sources: Sequence[Candidate], excluded: Sequence[Exclusion]
) -> str:
    """The reason for a pickup order's decision; ``sources`` in rank order."""
    store_id = context.store.location_id
    plan = context.plan
    if context.store_note is not None:
        store_part = f"{store_id} not used as a source: {context.store_note}"
    elif context.store_short:
        store_part = f"{store_id} short of {', '.join(context.store_short)}"
    else:
        store_part = None
    request = context.request
    if context.outcome == RoutingOutcome.ALLOCATED and len(plan.shipments) == 1:
        winner, _ = plan.shipments[0]
        if winner.location_id == store_id:
            head = f"{store_id} holds {_all_lines(len(request.lines))}: pickup at store"
        else:
            head = _single_text(request, winner, plan.holders, True)
    else:
        head = _head(request, plan, context.outcome, True)
    return _join(
        [
            f"{context.outcome.value}: {head}",
            store_part,
            _candidates_text(sources, "transfer source", True, context.top),
            None if plan.exact else "split search hit its budget: greedy answer",
            _excluded_text(excluded),
        ]
    )

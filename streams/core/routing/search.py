"""Choosing which locations fulfil an order, and which units each one sends.

The objective, compared lexicographically (smaller is better; see ``routing.plan.PlanKey``):

1. most units allocated (so a split that ships everything beats one location that ships part);
2. fewest shipments (a single location that ships everything beats any split);
3. fewest lines split across locations (whole lines where possible);
4. fewest non-preferred locations, then the best preference ranks (rules steer here);
5. lowest total cost, then lowest summed priority, then location ids (determinism).

Search strategy. Only candidates holding at least one ordered unit take part, in rank order
(preference, cost, priority, id). The *ceiling* is what the whole network could allocate
(pooled supply, capped by demand).

1. One shipment: the first candidate in rank order with the highest coverage. Done if it
   reaches the ceiling, which is the usual case: a linear scan.
2. k = 2, 3, ... up to max_shipments: an exact branch and bound (``routing.bnb``) over
   k-subsets looking for subsets that reach the ceiling; the first k that has one wins, with
   its best subset by the objective.
3. If no allowed k reaches the ceiling: the same search finds the highest coverage C for
   k = max_shipments, then the smallest k reaching C (fewest shipments for that coverage).

The exact search stops after ``budget`` node evaluations (big networks of look-alike
locations); the answer is then the better of what it found and a greedy set cover run from
each of the best few single locations, and the plan says ``exact=False``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from streams.core.routing.bnb import Bounds, BranchAndBound, greedy
from streams.core.routing.model import OrderLine
from streams.core.routing.plan import (
    Candidate,
    Draft,
    Plan,
    SearchProblem,
    build_problem,
    draft,
    materialize,
)

__all__ = ["Candidate", "Plan", "search_plan"]

GREEDY_SEEDS = 3


def search_plan(
    lines: tuple[OrderLine, ...],
    candidates: Sequence[Candidate],
    stock: Mapping[str, Mapping[str, int]],
    max_shipments: int,
    budget: int,
) -> Plan:
    """The best plan over ``candidates`` with at most ``max_shipments`` shipments."""
    problem = build_problem(lines, candidates, stock, budget)
    if not problem.pool:
        return materialize(problem, draft(problem, []))
    best = draft(problem, [problem.cover.index(max(problem.cover))])
    limit = min(max(1, max_shipments), len(problem.pool))
    if limit > 1 and best.allocated < problem.total:
        bounds = Bounds(problem, limit)
        if best.allocated < bounds.ceiling:
            best = _search_splits(problem, bounds, limit, best)
    if not problem.over_budget:
        return materialize(problem, best)
    wider = greedy(problem, limit, GREEDY_SEEDS)
    return materialize(problem, wider if wider.key < best.key else best, exact=False)


def _search_splits(problem: SearchProblem, bounds: Bounds, limit: int, single: Draft) -> Draft:
    for k in range(2, limit + 1):
        found = BranchAndBound(problem, bounds, k, bounds.ceiling).run()
        if found is not None or problem.over_budget:
            return found or single
    # Nothing reaches the ceiling: the most that max_shipments can do, in as few as possible.
    widest = BranchAndBound(problem, bounds, limit, single.allocated + 1).run()
    if widest is None:
        return single
    for k in range(2, limit):
        found = BranchAndBound(problem, bounds, k, widest.allocated).run()
        if found is not None or problem.over_budget:
            return found or widest
    return widest

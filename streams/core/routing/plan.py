"""The data the routing search works on, and turning a set of locations into shipments.

A :class:`SearchProblem` is one order against its priced candidates, reduced to small integer
tuples (units per ordered SKU, capped at demand) so the search in
:mod:`streams.core.routing.bnb` can compare thousands of location subsets cheaply. A subset is
turned into a :class:`Draft` (lines per location, not yet as records) to be ranked, and only
the winning draft becomes a :class:`Plan`.

Line assignment within a chosen set: whole lines first, largest first, each to the best
ranked location that can take it whole; lines no location can take whole are split, drawing
from the location with the most left first so a split line has as few pieces as possible.
Per SKU this allocates min(ordered, pooled supply), so the set's coverage is always realised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import NamedTuple

from streams.core.routing.model import AllocatedLine, LocationInfo, OrderLine, ShipmentKind


class Candidate(NamedTuple):
    """An eligible source location, priced for this order (a tuple: built 50x per order)."""

    location_id: str
    location: LocationInfo
    kind: ShipmentKind
    cost: float
    """math.inf when the lane cannot be priced: ranks last, is never excluded for it."""
    km: float | None
    pref_rank: int
    """Index in the request's preferred_locations; their count when not preferred."""
    preferred: bool
    destination_location_id: str | None = None

    @property
    def rank_key(self) -> tuple[int, float, int, str]:
        return (self.pref_rank, self.cost, self.location.priority, self.location_id)


TailKey = tuple[int, int, float, int, tuple[str, ...]]
PlanKey = tuple[int, int, int, TailKey]
"""(-units allocated, shipments, split lines, (non-preferred, preference ranks, cost,
priority, location ids)): the routing objective; smaller is better."""


def cost_sum(members: Sequence[Candidate]) -> float:
    # Added one by one in rank order, exactly as the branch and bound accumulates it, so
    # equal plans compare equal (sum() compensates rounding on newer Pythons).
    acc = 0.0
    for member in members:
        acc += member.cost
    return acc


def plan_key(members: Sequence[Candidate], allocated: int, split_lines: int) -> PlanKey:
    tail: TailKey = (
        sum(1 for m in members if not m.preferred),
        sum(m.pref_rank for m in members),
        cost_sum(members),
        sum(m.location.priority for m in members),
        tuple(sorted(m.location_id for m in members)),
    )
    return (-allocated, len(members), split_lines, tail)


@dataclass(frozen=True, slots=True)
class Plan:
    """The chosen shipments, as the decision will carry them."""

    shipments: tuple[tuple[Candidate, tuple[AllocatedLine, ...]], ...]
    backordered: tuple[AllocatedLine, ...]
    allocated_units: int
    split_lines: int
    holders: tuple[Candidate, ...] = ()
    """Candidates that could ship everything alone, in rank order (for explanations)."""
    exact: bool = True
    """False when the exact search ran out of budget and a greedy answer may have been used."""


@dataclass(slots=True)
class SearchProblem:
    lines: tuple[OrderLine, ...]
    skus: tuple[str, ...]
    need: tuple[int, ...]
    total: int
    pool: list[Candidate]
    """Candidates holding at least one ordered unit, in rank order."""
    supply: list[tuple[int, ...]]
    """Per pool entry, units per ordered SKU, capped at the order's demand for it."""
    cover: list[int]
    budget: int
    holders: tuple[Candidate, ...] = ()
    evaluations: int = 0
    _masks: list[int] = field(default_factory=list)

    @property
    def over_budget(self) -> bool:
        return self.evaluations >= self.budget

    @property
    def masks(self) -> list[int]:
        """Per pool entry, a bit per ordered SKU it holds; built only when a split is searched."""
        if not self._masks and self.pool:
            self._masks = [mask(row) for row in self.supply]
        return self._masks

    @property
    def gap(self) -> tuple[int, ...]:
        """Per SKU, units no candidate can supply: the deficit a ceiling plan ends with."""
        pooled = [sum(column) for column in zip(*self.supply, strict=True)] or [0] * len(self.need)
        return tuple(n - a if a < n else 0 for n, a in zip(self.need, pooled, strict=True))

    def residual(self, deficit: tuple[int, ...], i: int) -> tuple[int, ...]:
        """What is still missing after adding pool entry ``i``."""
        return tuple([d - s if d > s else 0 for d, s in zip(deficit, self.supply[i], strict=True)])


def mask(values: Sequence[int]) -> int:
    """A bit per non-zero position."""
    return sum([1 << j for j, v in enumerate(values) if v])


def build_problem(
    lines: tuple[OrderLine, ...],
    candidates: Sequence[Candidate],
    stock: Mapping[str, Mapping[str, int]],
    budget: int,
) -> SearchProblem:
    demand: dict[str, int] = {}
    for line in lines:
        demand[line.sku] = demand.get(line.sku, 0) + line.quantity
    ranked = sorted(candidates, key=lambda c: c.rank_key)
    ids = [c.location_id for c in ranked]
    columns = []
    for sku, n in demand.items():
        get = (stock.get(sku) or {}).get
        # Column by column is ~3x faster than candidate by candidate. Capped at demand: no
        # plan needs more; floored at 0 so a negative figure cannot cancel another location.
        columns.append([(a if a < n else n) if a > 0 else 0 for a in map(get, ids, repeat(0))])
    rows = list(zip(*columns, strict=True)) if columns else []
    covers = [sum(row) for row in rows]
    useful = [i for i, got in enumerate(covers) if got]
    total = sum(demand.values())
    return SearchProblem(
        lines=lines,
        skus=tuple(demand),
        need=tuple(demand.values()),
        total=total,
        pool=[ranked[i] for i in useful],
        supply=[rows[i] for i in useful],
        cover=[covers[i] for i in useful],
        budget=budget,
        holders=tuple(ranked[i] for i in useful if covers[i] == total),
    )


@dataclass(frozen=True, slots=True)
class Draft:
    """A subset with its lines assigned (as indices), ready to be ranked."""

    members: tuple[int, ...]
    given: tuple[dict[int, int], ...]
    """Per member, line index -> units; only members that got something."""
    short: dict[int, int]
    split_lines: int
    allocated: int
    key: PlanKey


def draft(problem: SearchProblem, subset: Sequence[int]) -> Draft:
    """Concrete lines per location for one subset of the pool."""
    members = sorted(subset)  # pool order is rank order
    left = [dict(zip(problem.skus, problem.supply[i], strict=True)) for i in members]
    given: list[dict[int, int]] = [{} for _ in members]
    pending = _whole_lines(problem.lines, left, given)
    split_lines, short = _split_lines(problem.lines, pending, left, given)
    used = [(index, got) for index, got in zip(members, given, strict=True) if got]
    allocated = problem.total - sum(short.values())
    key = plan_key([problem.pool[index] for index, _ in used], allocated, split_lines)
    return Draft(
        tuple(index for index, _ in used),
        tuple(got for _, got in used),
        short,
        split_lines,
        allocated,
        key,
    )


def _whole_lines(
    lines: tuple[OrderLine, ...], left: list[dict[str, int]], given: list[dict[int, int]]
) -> list[int]:
    """Give each line, largest first, whole to the best ranked member that can take it;
    return the lines no member can take whole."""
    pending: list[int] = []
    for li in sorted(range(len(lines)), key=lambda li: -lines[li].quantity):
        sku, qty = lines[li].sku, lines[li].quantity
        for mi, units in enumerate(left):
            if units[sku] >= qty:
                units[sku] -= qty
                given[mi][li] = qty
                break
        else:
            pending.append(li)
    return pending


def _split_lines(
    lines: tuple[OrderLine, ...],
    pending: list[int],
    left: list[dict[str, int]],
    given: list[dict[int, int]],
) -> tuple[int, dict[int, int]]:
    """Spread each pending line over the members with the most left first (fewest pieces);
    return how many lines were split and what stays short per line."""
    split_lines = 0
    short: dict[int, int] = {}
    for li in pending:
        sku, wanted = lines[li].sku, lines[li].quantity
        pieces = 0
        for mi in sorted(range(len(left)), key=lambda mi: -left[mi][sku]):
            take = min(wanted, left[mi][sku])
            if take <= 0:
                break
            left[mi][sku] -= take
            given[mi][li] = take
            wanted -= take
            pieces += 1
            if wanted == 0:
                break
        split_lines += pieces > 1
        if wanted:
            short[li] = wanted
    return split_lines, short


def materialize(problem: SearchProblem, chosen: Draft, exact: bool = True) -> Plan:
    lines = problem.lines
    shipments = tuple(
        (
            problem.pool[index],
            tuple(
                AllocatedLine(lines[li].line_id, lines[li].sku, qty)
                for li, qty in sorted(got.items())
            ),
        )
        for index, got in zip(chosen.members, chosen.given, strict=True)
    )
    backordered = tuple(
        AllocatedLine(lines[li].line_id, lines[li].sku, qty)
        for li, qty in sorted(chosen.short.items())
    )
    return Plan(
        shipments, backordered, chosen.allocated, chosen.split_lines, problem.holders, exact
    )

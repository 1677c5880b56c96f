"""Exact and greedy search for the best set of locations to split an order across.

Both work on a :class:`~streams.core.routing.plan.SearchProblem` and return a
:class:`~streams.core.routing.plan.Draft`; :mod:`streams.core.routing.search` decides which
search runs when.

The branch and bound walks k-subsets of the pool depth first in rank order (preference, cost,
priority, id) and cuts a branch, together with the rest of its loop, when

(a) the best single coverages left cannot lift it to the target coverage,
(b) (ceiling searches) some SKU still owed is held by no later candidate, or
(c) a plan with no split line is known and the branch's (non-preferred count, preference
    ranks, cost) sums, plus the least the picks still to come must add, already exceed it;
    those sums only grow as locations are added and along the rank order, provided no cost
    is negative (else this cut is off).

All three only worsen as the loop index grows, hence "the rest of its loop". A candidate that
holds none of what is still missing is skipped: the plan without it is smaller. Only leaves
that could win get a line assignment.
"""

from __future__ import annotations

from bisect import insort

from streams.core.routing.plan import Draft, SearchProblem, draft, mask

Tail = tuple[int, int, float]
SHAVE = 1 - 1e-9


class Bounds:
    """Per-problem tables for the cuts, built once however many searches run."""

    def __init__(self, problem: SearchProblem, k: int) -> None:
        n = len(problem.pool)
        self.gap = problem.gap
        self.ceiling = problem.total - sum(self.gap)
        self.masks = problem.masks
        # suffix_or[i]: every SKU held by some candidate at position i or later.
        self.suffix_or = [0] * (n + 1)
        for i in range(n - 1, -1, -1):
            self.suffix_or[i] = self.suffix_or[i + 1] | self.masks[i]
        self.tail_prunes = all(c.cost >= 0 for c in problem.pool)
        self.top, self.least = _suffix_tables(problem, k)


def _suffix_tables(problem: SearchProblem, k: int) -> tuple[list[list[int]], list[list[Tail]]]:
    """Two tables over r <= k picks among the candidates at positions i and later.

    top[r][i]: the r largest single coverages summed (bounds what r picks can add).
    least[r][i]: a lower bound on the r picks' tail sums. Each part is its own minimum: the
    first r in rank order have the fewest non-preferred and the lowest preference ranks; the
    cost is that of the r cheapest. A componentwise lower bound is also a lexicographic one.
    """
    pool = problem.pool
    n = len(pool)
    unpreferred, ranks = [0], [0]
    for c in pool:
        unpreferred.append(unpreferred[-1] + (not c.preferred))
        ranks.append(ranks[-1] + c.pref_rank)
    top = [[0] * (n + 1) for _ in range(k + 1)]
    least: list[list[Tail]] = [[(0, 0, 0.0)] * (n + 1) for _ in range(k + 1)]
    largest: list[int] = []
    cheapest: list[float] = []
    for i in range(n - 1, -1, -1):
        insort(largest, -problem.cover[i])
        insort(cheapest, pool[i].cost)
        del largest[k:], cheapest[k:]
        units, cost = 0, 0.0
        for r in range(1, k + 1):
            if r <= len(largest):
                units -= largest[r - 1]
                cost += cheapest[r - 1]
            j = min(n, i + r)
            top[r][i] = units
            # Shaved by a hair: sums of the same costs in another order may differ in the
            # last bit, and a bound must never exceed a real plan that ties.
            least[r][i] = (unpreferred[j] - unpreferred[i], ranks[j] - ranks[i], cost * SHAVE)
    return top, least


class BranchAndBound:
    """The best k-subset allocating at least ``target`` units, or None.

    When a subset beats the target, the target rises to it, so a target below what is
    reachable finds the highest coverage for this k.
    """

    def __init__(self, problem: SearchProblem, bounds: Bounds, k: int, target: int) -> None:
        self.p = problem
        self.b = bounds
        self.k = k
        self.target = target
        self.at_ceiling = target >= bounds.ceiling
        self.best: Draft | None = None
        self.best_tail: Tail | None = None
        self.chosen: list[int] = []

    def run(self) -> Draft | None:
        self._walk(0, self.p.need, (0, 0, 0.0))
        return self.best

    def _beaten(self, bound: int, tail: Tail) -> bool:
        if bound < self.target:
            return True
        best = self.best
        return (
            best is not None
            and self.b.tail_prunes
            and best.split_lines == 0
            and bound == best.allocated
            and self.best_tail is not None
            and tail > self.best_tail
        )

    def _walk(self, start: int, deficit: tuple[int, ...], acc_tail: Tail) -> None:
        p, b = self.p, self.b
        remaining = self.k - len(self.chosen)
        covered = p.total - sum(deficit)
        wanted = mask(deficit)
        owed = mask([d - g for d, g in zip(deficit, b.gap, strict=True)]) if self.at_ceiling else 0
        masks = b.masks
        end = len(p.pool) - remaining + 1
        if remaining == 1 and owed:
            # The last pick of a ceiling plan must hold every SKU still owed.
            picks = [i for i in range(start, end) if masks[i] & owed == owed]
        else:
            picks = [i for i in range(start, end) if masks[i] & wanted]
        top = b.top[remaining]
        least = b.least
        for i in picks:
            if owed & ~b.suffix_or[i]:
                return
            cand = p.pool[i]
            tail = (
                acc_tail[0] + (not cand.preferred),
                acc_tail[1] + cand.pref_rank,
                acc_tail[2] + cand.cost,
            )
            bound = covered + top[i]
            rest = least[remaining - 1][i + 1]
            completed = (tail[0] + rest[0], tail[1] + rest[1], tail[2] + rest[2])
            if self._beaten(p.total if bound > p.total else bound, completed) or p.over_budget:
                return
            p.evaluations += 1
            after = p.residual(deficit, i)
            self.chosen.append(i)
            if remaining == 1:
                self._leaf(p.total - sum(after), tail)
            else:
                self._walk(i + 1, after, tail)
            self.chosen.pop()

    def _leaf(self, cover: int, tail: Tail) -> None:
        if self._beaten(cover, tail):
            return
        found = draft(self.p, self.chosen)
        if self.best is None or found.key < self.best.key:
            self.best = found
            self.best_tail = tail
            self.target = max(self.target, cover)


def greedy(problem: SearchProblem, limit: int, seeds: int) -> Draft:
    """Greedy set cover from each of the best few single locations; the best result.

    Each step adds the location leaving the fewest units missing (best rank on ties).
    """
    order = sorted(range(len(problem.pool)), key=lambda i: -problem.cover[i])
    best: Draft | None = None
    for seed in order[: max(1, seeds)]:
        chosen = [seed]
        deficit = problem.residual(problem.need, seed)
        while len(chosen) < limit and any(deficit):
            pick = _best_addition(problem, deficit, chosen)
            if pick is None:
                break
            chosen.append(pick)
            deficit = problem.residual(deficit, pick)
        found = draft(problem, chosen)
        if best is None or found.key < best.key:
            best = found
    assert best is not None, "greedy needs a non-empty pool"
    return best


def _best_addition(
    problem: SearchProblem, deficit: tuple[int, ...], chosen: list[int]
) -> int | None:
    wanted = mask(deficit)
    pick, fewest = None, sum(deficit)
    for i, held in enumerate(problem.masks):
        if held & wanted and i not in chosen:
            missing = sum(problem.residual(deficit, i))
            if missing < fewest:  # strict: the earlier, better ranked location keeps ties
                pick, fewest = i, missing
    return pick

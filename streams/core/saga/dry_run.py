"""Dry-run of a rule change: the same orders routed under the live rules and under the
proposed ones, and what an operator would see change (outcome, where, packaging, inserts)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.commands import PackagingCommand
from schemas.enums import ROUTING_OUTCOMES
from schemas.models import Message, OrderPlaced, OrderStatusChanged
from streams.core.saga.simulate import Simulation


@dataclass(frozen=True, slots=True)
class Decision:
    """What users would see of one order's routing, in comparable form."""

    outcome: str
    locations: tuple[str, ...]
    packaging: tuple[str, ...]
    cartons: tuple[str, ...]
    inserts: tuple[str, ...]
    rules_fired: tuple[str, ...]

    @classmethod
    def of(cls, published: Iterable[Message]) -> Decision:
        records = list(published)
        outcome = next(
            (
                r
                for r in records
                if isinstance(r, OrderStatusChanged) and r.status.value in ROUTING_OUTCOMES
            ),
            None,
        )
        packs = [r for r in records if isinstance(r, PackagingCommand)]
        return cls(
            outcome=outcome.status.value if outcome else "NONE",
            locations=tuple(s.location_id for s in outcome.shipments) if outcome else (),
            packaging=tuple(p.packaging for p in packs),
            cartons=tuple(c.box_type for p in packs for c in p.cartons),
            inserts=tuple(f"{i.kind.value}:{i.value}" for p in packs for i in p.inserts),
            rules_fired=outcome.rules_fired if outcome else (),
        )


@dataclass(frozen=True, slots=True)
class Change:
    order_id: str
    field: str
    live: str
    proposed: str


FIELDS = ("outcome", "locations", "packaging", "cartons", "inserts", "rules_fired")


def compare(
    orders: Iterable[OrderPlaced], live: Simulation, proposed: Simulation
) -> tuple[int, list[Change]]:
    """Route every order in both worlds; return how many orders ran and what differs."""
    changes: list[Change] = []
    count = 0
    for order in orders:
        count += 1
        before, after = Decision.of(live.route(order)), Decision.of(proposed.route(order))
        for name in FIELDS:
            old, new = getattr(before, name), getattr(after, name)
            if old != new:
                changes.append(Change(order.order_id, name, _show(old), _show(new)))
    return count, changes


def render(count: int, changes: list[Change]) -> str:
    """A report a person reads: one line per change, then a summary by field."""
    lines = [f"{c.order_id:<16} {c.field:<11} {c.live}  ->  {c.proposed}" for c in changes]
    orders = len({c.order_id for c in changes})
    by_field = {name: sum(1 for c in changes if c.field == name) for name in FIELDS}
    summary = ", ".join(f"{name} {n}" for name, n in by_field.items() if n)
    lines.append(
        f"{count} orders replayed; {orders} would change" + (f" ({summary})" if summary else "")
    )
    return "\n".join(lines)


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]" if value else "[]"
    return str(value)

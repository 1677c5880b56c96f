"""Where the saga meets the operators' rules and the carton catalogue.

Routing rules steer each routing attempt (or hold the order); packaging and marketing rules,
with cartonization, decide how each shipment of a routing outcome is packed. Every rule that
fired is added to the order's ``rules_fired``, which every later status and command carries.

Each rule's cost per order is bounded when it is loaded (``rules.cost``). An order larger than
the rules judge (``rules.context.MAX_RULE_LINES`` and the tag caps) comes back from the routing
rules held, with the reason; a condition that fails on the order does not fire, and the rule
set's watch tells the worker's log and metrics, as it does of one that ran over its budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from schemas.commands import Carton, Insert
from schemas.models import Product
from streams.core.packing.cartons import BoxCatalogue, cartonize_shipment
from streams.core.routing.model import RoutingRequest
from streams.core.rules.context import rule_context
from streams.core.rules.directives import RoutingDirectives, apply_routing
from streams.core.rules.ruleset import RuleSet
from streams.core.saga.state import OrderState, SagaShipment

DEFAULT_PACKAGING = "STANDARD"
PROTECTIVE = "PROTECTIVE"


@dataclass(frozen=True, slots=True)
class PackingPlan:
    """How one shipment is packed: the packaging command's variable part."""

    packaging: str
    cartons: tuple[Carton, ...]
    inserts: tuple[Insert, ...]
    explanation: str = ""


HOLD_ACTION = "hold"
UNJUDGED = "(rules not run)"
"""Stands for the rule of a hold placed because the rules could not judge the order."""


@dataclass(frozen=True, slots=True)
class RuleHold:
    """A routing rule that holds the order: which one, which version and why."""

    rule_id: str | None  # None: the order is too large for the rules to judge
    version: int
    reason: str

    def key(self) -> str:
        """How the order's state remembers a released hold: the rule and its version."""
        return f"{self.rule_id or UNJUDGED}@v{self.version}"


def steer(
    state: OrderState, request: RoutingRequest, rules: RuleSet, products: Mapping[str, Product]
) -> tuple[RoutingRequest, RoutingDirectives, RuleHold | None]:
    """The routing rules' verdict on this order, the request they steer, and the rule that
    holds it. A hold a person released does not come back from the same rule version."""
    directives = rules.routing(rule_context(state.order, products))
    note_fired(state, directives.fired)
    if directives.service_level is not None:
        state.service_level = directives.service_level.value
    holds = [h for h in rule_holds(directives, rules) if h.key() not in state.released_rules]
    hold = holds[0] if holds else None
    directives = dataclasses.replace(directives, hold_reason=hold.reason if hold else None)
    return apply_routing(request, directives), directives, hold


def rule_holds(directives: RoutingDirectives, rules: RuleSet) -> list[RuleHold]:
    """Every fired rule that holds the order, in evaluation order (the first one's reason is
    the hold's)."""
    if directives.hold_reason is None:
        return []
    holds = []
    for rule_id in directives.fired:
        rule = rules.get(rule_id)
        actions = rule.actions if rule is not None else ()
        action = next((a for a in actions if a.type == HOLD_ACTION), None)
        if rule is not None and action is not None:
            reason = action.params.get("reason", "").strip() or directives.hold_reason
            holds.append(RuleHold(rule_id, rule.version, reason))
    return holds or [RuleHold(None, 0, directives.hold_reason)]


def rules_note(directives: RoutingDirectives) -> str:
    """A sentence for the explanation: which routing rules fired and how conflicts ended."""
    if not directives.fired:
        return ""
    settled = f" ({'; '.join(directives.explanation)})" if directives.explanation else ""
    return f"routing rules fired: {', '.join(directives.fired)}{settled}. "


def plan_packing(
    state: OrderState,
    shipments: Sequence[SagaShipment],
    rules: RuleSet,
    products: Mapping[str, Product],
    catalogue: BoxCatalogue,
) -> dict[str, PackingPlan]:
    """Packing per shipment: the packaging rules apply to every parcel, marketing inserts (one
    sample, one code per order) go in the first, and cartons come from the catalogue."""
    context = rule_context(state.order, products)
    packaging = rules.packaging(context)
    marketing = rules.marketing(context)
    note_fired(state, packaging.fired + marketing.fired)
    kind = packaging.packaging or DEFAULT_PACKAGING
    plans: dict[str, PackingPlan] = {}
    for n, shipment in enumerate(shipments):
        cartons = cartonize_shipment(
            shipment.lines, products, catalogue, protective=kind == PROTECTIVE
        )
        inserts = packaging.inserts() + (marketing.inserts() if n == 0 else ())
        plans[shipment.shipment_id] = PackingPlan(
            packaging=kind,
            cartons=cartons.cartons,
            inserts=inserts,
            explanation="; ".join((*packaging.explanation, *marketing.explanation)),
        )
    return plans


def note_fired(state: OrderState, fired: Sequence[str]) -> None:
    for rule_id in fired:
        if rule_id not in state.rules_fired:
            state.rules_fired.append(rule_id)

"""Where the saga meets the operators' rules and the carton catalogue.

Routing rules steer each routing attempt (or hold the order); packaging and marketing rules,
with cartonization, decide how each shipment of a routing outcome is packed. Every rule that
fired is added to the order's ``rules_fired``, which every later status and command carries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from schemas.commands import Carton, Insert
from schemas.models import Product
from streams.core.cartons import BoxCatalogue, cartonize_shipment
from streams.core.routing_model import RoutingRequest
from streams.core.rules import RuleSet
from streams.core.rules_context import rule_context
from streams.core.rules_directives import RoutingDirectives, apply_routing
from streams.core.saga_state import OrderState, SagaShipment

DEFAULT_PACKAGING = "STANDARD"
PROTECTIVE = "PROTECTIVE"


@dataclass(frozen=True, slots=True)
class PackingPlan:
    """How one shipment is packed: the packaging command's variable part."""

    packaging: str
    cartons: tuple[Carton, ...]
    inserts: tuple[Insert, ...]
    explanation: str = ""


def steer(
    state: OrderState, request: RoutingRequest, rules: RuleSet, products: Mapping[str, Product]
) -> tuple[RoutingRequest, RoutingDirectives]:
    """The routing rules' verdict on this order, and the request they steer."""
    directives = rules.routing(rule_context(state.order, products))
    note_fired(state, directives.fired)
    if directives.service_level is not None:
        state.service_level = directives.service_level.value
    return apply_routing(request, directives), directives


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

"""What a rule condition can see about an order: the operator's vocabulary.

A condition is a CEL expression (https://cel.dev) over four variables. Text is compared
exactly (``customer.tier == "GOLD"``); a value that is missing is ``""``, never null,
so a condition never has to test for null.

``order``
    ``order_id``, ``channel_order_ref``, ``channel`` (``WEB``, ``MARKETPLACE``, ``POS``,
    ``WHOLESALE``, ``CALL_CENTER``), ``total`` (number, in ``currency``), ``currency``
    (like ``"USD"``), ``tags`` (list of text), ``service_level`` (``STANDARD``,
    ``EXPRESS``, ``NEXT_DAY``), ``method`` (``SHIP`` or ``PICKUP``), ``line_count``
    (whole number).
``customer``
    ``id``, ``tier`` (loyalty tier, upper case whatever case the channel sent: ``"gold"``
    and ``"Gold"`` both read ``"GOLD"``; ``""`` when none), ``email``.
``destination``
    ``country`` (ISO code, like ``"US"``), ``region``, ``postal_code``: where the order
    ships to; all ``""`` for a pickup order without an address.
``lines``
    a list; each line has ``sku``, ``category``, ``unit_price`` (number), ``quantity``
    (whole number), ``line_total`` (number: unit_price x quantity), ``fragile`` and
    ``hazmat`` (true/false), ``tags`` (list of text), ``weight`` (grams of one unit,
    whole number, 0 when unknown). Product facts come from the products table; a sku
    it does not know has category ``""``, no tags, weight 0, and is neither fragile
    nor hazmat.

Money is a number with decimals (a double); counts and weights are whole numbers
(ints). They compare with each other freely (``order.total > 500``), and arithmetic
that mixes them is made decimal when the rule is loaded (``order.total * 2``).

Examples::

    order.total >= 500
    customer.tier == "GOLD" && order.channel in ["WEB", "CALL_CENTER"]
    lines.exists(l, l.hazmat)
    "gift" in order.tags || lines.all(l, l.category == "books")
    destination.country != "US" && lines.exists(l, l.weight * l.quantity > 20000)

The context of an order is built once (``rule_context``) and reused by every rule of
every stage.

Caps. The cost of a rule is bounded before it goes live (``rules.cost``) over the largest order
the rules judge: ``MAX_RULE_LINES`` lines, ``MAX_ORDER_TAGS`` tags on the order and
``MAX_PRODUCT_TAGS`` on each line's product. An order past a cap that the rules in force read
(more lines, when a rule reads ``lines``) is not judged on a part of it, which could miss the
hazardous line: the rules do not run on it and it is held (``ON_HOLD``) with the reason, for a
person to route. The caps are where one pass over the lines stays near 0.15 ms (the library
copies each line it visits, 1.5 µs for a line whose product has 20 tags).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import cel

from schemas.models import OrderLine, OrderPlaced, Product
from streams.core.rules.check import (
    ALL,
    BOOL,
    DOUBLE,
    INT,
    STRING,
    VARIABLE,
    CelType,
    list_of,
    record,
)

MAX_RULE_LINES = 100
"""The most lines an order may have for rules that read ``lines`` to judge it."""
MAX_ORDER_TAGS = 100
"""The most tags an order may have for rules that read ``order.tags`` to judge it."""
MAX_PRODUCT_TAGS = 20
"""The most tags a line's product may have for rules that read a line's ``tags``."""

_ORDER = record(
    "order",
    order_id=STRING,
    channel_order_ref=STRING,
    channel=STRING,
    total=DOUBLE,
    currency=STRING,
    tags=list_of(STRING, MAX_ORDER_TAGS),
    service_level=STRING,
    method=STRING,
    line_count=INT,
)
_CUSTOMER = record("customer", id=STRING, tier=STRING, email=STRING)
_DESTINATION = record("destination", country=STRING, region=STRING, postal_code=STRING)
_LINE = record(
    "line",
    sku=STRING,
    category=STRING,
    unit_price=DOUBLE,
    quantity=INT,
    line_total=DOUBLE,
    fragile=BOOL,
    hazmat=BOOL,
    tags=list_of(STRING, MAX_PRODUCT_TAGS),
    weight=INT,
)

CONTEXT_SCHEMA: Mapping[str, CelType] = MappingProxyType(
    {
        "order": _ORDER,
        "customer": _CUSTOMER,
        "destination": _DESTINATION,
        "lines": list_of(_LINE, MAX_RULE_LINES),
    }
)
"""The type of every variable a condition may use; the static checker's declarations."""


Uses = frozenset[tuple[str, str]]
"""What a set of conditions reads, as ``rules.check.Checked.uses`` describes it."""


@dataclass(frozen=True, slots=True, eq=False)
class RuleContext:
    """The facts about one order as plain data, and as CEL values on demand.

    Converting Python values to CEL costs about as much as evaluating a few dozen
    conditions, so it is done once per order and rule set, and only for what the
    rules of the set read (``uses``): a set whose rules test two fields converts two.
    """

    values: Mapping[str, Any]
    _converted: dict[Uses | None, cel.Context] = field(default_factory=dict)

    def too_large(self, uses: Uses) -> str | None:
        """Why rules reading ``uses`` cannot judge this order (a list past its cap), or None."""
        lines: list[Mapping[str, Any]] = self.values["lines"]
        if (VARIABLE, "lines") in uses and len(lines) > MAX_RULE_LINES:
            return f"the order has {len(lines)} lines; rules judge at most {MAX_RULE_LINES}"
        order_tags = len(self.values["order"]["tags"])
        if _reads(uses, "order", "tags") and order_tags > MAX_ORDER_TAGS:
            return f"the order has {order_tags} tags; rules judge at most {MAX_ORDER_TAGS}"
        if (VARIABLE, "lines") in uses and _reads(uses, "line", "tags"):
            for line in lines:
                if len(line["tags"]) > MAX_PRODUCT_TAGS:
                    return (
                        f"product {line['sku']} has {len(line['tags'])} tags; "
                        f"rules judge at most {MAX_PRODUCT_TAGS}"
                    )
        return None

    def cel_context(self, uses: Uses | None = None) -> cel.Context:
        """The CEL context holding what ``uses`` names (everything when None)."""
        converted = self._converted.get(uses)
        if converted is None:
            converted = cel.Context(
                dict(self.values) if uses is None else project(self.values, uses)
            )
            self._converted.clear()  # one rule set at a time: keep only the latest
            self._converted[uses] = converted
        return converted


def _reads(uses: Uses, record_name: str, field_name: str) -> bool:
    return (record_name, field_name) in uses or (record_name, ALL) in uses


def project(values: Mapping[str, Any], uses: Uses) -> dict[str, Any]:
    """The part of ``values`` that conditions reading ``uses`` can see."""
    return {
        name: _project(value, CONTEXT_SCHEMA[name], uses)
        for name, value in values.items()
        if (VARIABLE, name) in uses
    }


def _project(value: Any, kind: CelType, uses: Uses) -> Any:
    if kind.name == "list" and kind.elem is not None and kind.elem.fields:
        return [_project(item, kind.elem, uses) for item in value]
    if not kind.fields or (kind.name, ALL) in uses:
        return value
    return {name: value[name] for name, _ in kind.fields if (kind.name, name) in uses}


def rule_context(order: OrderPlaced, products: Mapping[str, Product]) -> RuleContext:
    """The context of ``order``, with product facts from ``products`` (keyed by sku)."""
    ship_to = order.ship_to
    return RuleContext(
        {
            "order": {
                "order_id": order.order_id,
                "channel_order_ref": order.channel_order_ref,
                "channel": order.channel.value,
                "total": float(order.order_total),
                "currency": order.currency,
                "tags": list(order.tags),
                "service_level": order.service_level.value,
                "method": order.fulfillment_method.value,
                "line_count": len(order.lines),
            },
            "customer": {
                "id": order.customer.customer_id,
                "tier": (order.customer.loyalty_tier or "").strip().upper(),
                "email": order.customer.email or "",
            },
            "destination": {
                "country": ship_to.country if ship_to else "",
                "region": ship_to.region if ship_to else "",
                "postal_code": ship_to.postal_code if ship_to else "",
            },
            "lines": [_line(line, products.get(line.sku)) for line in order.lines],
        }
    )


def _line(line: OrderLine, product: Product | None) -> dict[str, Any]:
    return {
        "sku": line.sku,
        "category": product.category if product else "",
        "unit_price": float(line.unit_price),
        "quantity": line.quantity,
        "line_total": float(line.unit_price * line.quantity),
        "fragile": product.fragile if product else False,
        "hazmat": product.hazmat if product else False,
        "tags": list(product.tags) if product else [],
        "weight": (product.weight_grams or 0) if product else 0,
    }


def probe_context() -> RuleContext:
    """A made-up order with every field filled, to try a condition on when it is loaded."""
    line = {
        "sku": "PROBE-SKU",
        "category": "probe",
        "unit_price": 10.5,
        "quantity": 2,
        "line_total": 21.0,
        "fragile": True,
        "hazmat": False,
        "tags": ["probe"],
        "weight": 500,
    }
    return RuleContext(
        {
            "order": {
                "order_id": "PROBE",
                "channel_order_ref": "PROBE",
                "channel": "WEB",
                "total": 21.0,
                "currency": "USD",
                "tags": ["probe"],
                "service_level": "STANDARD",
                "method": "SHIP",
                "line_count": 1,
            },
            "customer": {"id": "PROBE", "tier": "GOLD", "email": "probe@example.com"},
            "destination": {"country": "US", "region": "NY", "postal_code": "10001"},
            "lines": [line],
        }
    )

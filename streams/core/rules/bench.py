"""How long rules take per order: a measurement to run by hand, not a test.

``measure_rule_cost()`` builds a set of rules of the shapes operators write (numeric
thresholds, text equality, list membership, ``exists`` over lines), spread over the
three stages, and times building the context of an order and evaluating every stage
on it. Run it with::

    python -m streams.core.rules.bench [rules] [orders]
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from schemas.enums import Channel, FulfillmentMethod, RuleStage, ServiceLevel
from schemas.models import Address, Customer, OrderLine, OrderPlaced, Product, Rule, RuleAction
from streams.core.rules.context import rule_context
from streams.core.rules.ruleset import RuleSet

_T0 = datetime(2024, 5, 1, tzinfo=UTC)
_SHAPES = (
    ("order.total >= {n}0", RuleStage.PACKAGING, "set_packaging", {"type": "PROTECTIVE"}),
    ('customer.tier == "GOLD" && order.channel == "WEB"', RuleStage.MARKETING, "add_sample",
     {"sku": "SAMPLE-{n}"}),
    ("lines.exists(l, l.hazmat)", RuleStage.ROUTING, "exclude_location_kinds", {"kinds": "STORE"}),
    ('"vip" in order.tags && destination.country == "US"', RuleStage.MARKETING,
     "add_discount_code", {"code": "VIP{n}"}),
    ("lines.exists(l, l.fragile) || order.line_count > {n}", RuleStage.PACKAGING, "add_note",
     {"text": "note {n}"}),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RuleCost:
    rules: int
    orders: int
    context_us: float
    """Microseconds to build the context of one order."""
    evaluate_us: float
    """Microseconds to evaluate all rules of all three stages on one order."""
    fired: float
    """Rules fired per order, on average (firing rules cost more: actions, conflicts)."""

    def __str__(self) -> str:
        total = self.context_us + self.evaluate_us
        return (
            f"{self.rules} rules, {self.orders} orders: context {self.context_us:.1f} us + "
            f"evaluation {self.evaluate_us:.1f} us = {total:.1f} us per order "
            f"({self.fired:.0f} rules fired per order)"
        )


def bench_rules(count: int) -> RuleSet:
    rules = []
    for n in range(count):
        condition, stage, action, params = _SHAPES[n % len(_SHAPES)]
        rules.append(
            Rule(
                rule_id=f"bench-{n:03d}",
                version=1,
                stage=stage,
                priority=n,
                condition=condition.format(n=n),
                actions=(
                    RuleAction(type=action, params={k: v.format(n=n) for k, v in params.items()}),
                ),
                updated_by="bench",
                updated_at=_T0,
            )
        )
    rule_set, errors = RuleSet.of(rules)
    assert not errors, errors
    return rule_set


def bench_order(n: int) -> tuple[OrderPlaced, dict[str, Product]]:
    skus = [f"SKU-{n % 7}", f"SKU-{(n + 1) % 7}", f"SKU-{(n + 2) % 7}"]
    products = {
        sku: Product(sku=sku, name=sku, category="toys", unit_price=Decimal("25.00"),
                     weight_grams=400, fragile=sku.endswith("3"), hazmat=sku.endswith("5"))
        for sku in skus
    }  # fmt: skip
    lines = tuple(
        OrderLine(line_id=str(i), sku=sku, quantity=1 + i, unit_price=Decimal("25.00"))
        for i, sku in enumerate(skus)
    )
    order = OrderPlaced(
        event_id=f"evt-{n}", order_id=f"ORD-{n}", channel=Channel.WEB,
        channel_order_ref=f"W-{n}", placed_at=_T0,
        customer=Customer(customer_id="C1", loyalty_tier="GOLD" if n % 2 else None),
        fulfillment_method=FulfillmentMethod.SHIP,
        ship_to=Address(name="A", line1="1 Main St", city="New York", region="NY",
                        postal_code="10001", country="US"),
        lines=lines, currency="USD", order_total=Decimal(50 * (n % 40)),
        service_level=ServiceLevel.STANDARD, tags=("vip",) if n % 3 else (),
    )  # fmt: skip
    return order, products


def measure_rule_cost(rules: int = 100, orders: int = 2000) -> RuleCost:
    """Average cost per order of ``rules`` rules over ``orders`` synthetic orders."""
    rule_set = bench_rules(rules)
    inputs = [bench_order(n) for n in range(orders)]
    started = time.perf_counter()
    contexts = [rule_context(order, products) for order, products in inputs]
    built = time.perf_counter()
    fired = 0
    for context in contexts:
        for stage in RuleStage:
            fired += len(rule_set.evaluate(stage, context).fired)
    done = time.perf_counter()
    return RuleCost(
        rules=rules,
        orders=orders,
        context_us=(built - started) / orders * 1e6,
        evaluate_us=(done - built) / orders * 1e6,
        fired=fired / orders,
    )


if __name__ == "__main__":
    arguments = [int(arg) for arg in sys.argv[1:3]]
    print(measure_rule_cost(*arguments))

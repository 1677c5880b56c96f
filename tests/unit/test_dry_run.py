"""Dry-run: the same orders under the live and the proposed rules, in memory, and the report
of what would change."""

from __future__ import annotations

from decimal import Decimal

from schemas.enums import RuleStage
from schemas.models import OrderPlaced, RuleAction
from streams.core.rules.ruleset import RuleSet
from streams.core.saga.context import SagaContext
from streams.core.saga.dry_run import compare, render
from streams.core.saga.simulate import Simulation, inventory_from
from tests.unit.factories import T0, make_availability, make_order, make_product, make_rule
from tests.unit.test_saga import NETWORK

PRODUCTS = {"SKU-1": make_product("SKU-1")}
PROTECT_OVER_100 = make_rule(
    "protect-over-100",
    stage=RuleStage.PACKAGING,
    condition="order.total > 100",
    actions=(RuleAction(type="set_packaging", params={"type": "PROTECTIVE"}),),
)
HOLD_OVER_1000 = make_rule("hold-over-1000")  # the factory's rule: hold orders over 1000


def simulation(rules: RuleSet) -> Simulation:
    ctx = SagaContext(
        locations=NETWORK, stock=lambda sku: {}, now=T0, rules=rules, products=PRODUCTS
    )
    return Simulation(inventory_from([make_availability("SKU-1")]), ctx)


def orders() -> list[OrderPlaced]:
    return [
        make_order("SMALL", lines=[("SKU-1", 1)], order_total=Decimal("10.00")),
        make_order("MEDIUM", lines=[("SKU-1", 1)], order_total=Decimal("150.00")),
        make_order("LARGE", lines=[("SKU-1", 1)], order_total=Decimal("2000.00")),
    ]


def test_the_report_names_every_order_and_field_that_would_change() -> None:
    live = RuleSet()
    proposed = live.with_rule(PROTECT_OVER_100).with_rule(HOLD_OVER_1000)

    count, changes = compare(orders(), simulation(live), simulation(proposed))

    assert count == 3
    changed = {(c.order_id, c.field): (c.live, c.proposed) for c in changes}
    assert changed[("MEDIUM", "packaging")] == ("[STANDARD]", "[PROTECTIVE]")
    assert changed[("LARGE", "outcome")] == ("ALLOCATED", "ON_HOLD")
    assert changed[("LARGE", "locations")] == ("[DC-EAST]", "[]")
    assert not any(c.order_id == "SMALL" for c in changes)
    report = render(count, changes)
    assert "3 orders replayed; 2 would change" in report
    assert "MEDIUM" in report and "PROTECTIVE" in report


def test_stock_taken_by_one_order_is_gone_for_the_next_in_both_worlds() -> None:
    # 7 available: the second order of 5 finds only 2 left, the same under both rule sets.
    many = [make_order(f"O-{n}", lines=[("SKU-1", 5)]) for n in (1, 2)]

    count, changes = compare(many, simulation(RuleSet()), simulation(RuleSet()))

    assert (count, changes) == (2, [])
    sim = simulation(RuleSet())
    for order in many:
        sim.route(order)
    assert [sim.orders[o.order_id].status for o in many] == ["ALLOCATED", "PARTIALLY_ALLOCATED"]
    assert sim.inventory["SKU-1"].at("DC-EAST").reserved == 2 + 5 + 2

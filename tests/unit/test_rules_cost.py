"""Rules whose cost is bounded (issue 17): a condition's worst-case cost on one order is
estimated before the rule goes live and refused above ``MAX_RULE_COST`` on every path (the
compiler, the network view, the rules stage, the command line); an order larger than the rules
judge is held instead of judged in part; and a rule that fails or runs slow on an order is
reported without stopping anything.

Five nested ``all()`` over a 26-item list took 7 to 17 s to validate (the trial run on a made-up
order), and would have taken as long on every order once published."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.enums import RuleStage
from schemas.models import RuleAction
from streams.core.rules import ruleset as rules_module
from streams.core.rules.check import check
from streams.core.rules.context import (
    CONTEXT_SCHEMA,
    MAX_ORDER_TAGS,
    MAX_PRODUCT_TAGS,
    MAX_RULE_LINES,
    rule_context,
)
from streams.core.rules.cost import MAX_RULE_COST, regex_cost
from streams.core.rules.directives import ERROR, SLOW, RuleFailure
from streams.core.rules.ruleset import RuleError, RuleSet, RuleWatch, compile_rule
from streams.metrics import PipelineMetrics
from streams.rules_stage import RuleReporter, _refusal
from streams.views import NetworkView
from tests.unit.factories import make_order, make_product, make_rule
from tests.unit.test_rules_limits import dom_rules_validate, rule_file

LIST_26 = "[" + ",".join(str(n) for n in range(26)) + "]"
SEVENTEEN_SECONDS = (
    f"{LIST_26}.all(a, {LIST_26}.all(b, {LIST_26}.all(c, {LIST_26}.all(d, "
    f"{LIST_26}.all(e, a + b + c + d + e >= 0 || a == e)))))"
)
FIVE_OVER_LINES = (
    "lines.all(a, lines.all(b, lines.all(c, lines.all(d, lines.all(e, "
    "a.sku != e.sku || b.sku != d.sku || c.quantity > 0)))))"
)
NEST = " > ".join([f"{LIST_26[:27]}....all (up to 26 items)"] * 5)


def refusal(condition: str) -> str:
    with pytest.raises(RuleError) as raised:
        compile_rule(make_rule("costly", condition=condition))
    return raised.value.message


def cost(condition: str) -> int:
    return check(condition, CONTEXT_SCHEMA).cost.steps


# --- the estimate and the compiler ------------------------------------------------------


def test_the_seventeen_second_condition_is_refused_without_being_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(*args: Any) -> None:
        raise AssertionError("the condition was run")

    monkeypatch.setattr(rules_module, "_try_on_probe", never)
    steps = cost(SEVENTEEN_SECONDS)
    assert steps > 26**5 * 10 > MAX_RULE_COST  # each of 26^5 runs of its expression: 10+ steps
    assert refusal(SEVENTEEN_SECONDS) == (
        f"condition is too costly to run on every order: up to {steps:,} steps on the largest "
        f"order the rules judge, the limit is {MAX_RULE_COST:,} "
        f"(its comprehensions nest 5 deep: {NEST})"
    )


def test_nested_comprehensions_over_the_lines_are_refused_with_the_nest() -> None:
    nest = " > ".join(["lines.all (up to 100 items)"] * 5)
    assert refusal(FIVE_OVER_LINES).endswith(f"(its comprehensions nest 5 deep: {nest})")
    assert "nest 2 deep: lines.exists (up to 100 items) > lines.exists (up to 100 items)" in (
        refusal("lines.exists(a, lines.exists(b, a.sku == b.sku && a != b))")
    )


def test_a_rule_just_inside_the_limit_compiles_and_one_just_past_it_is_refused() -> None:
    def condition(skus: int) -> str:
        listed = ", ".join(f'"S{n}"' for n in range(skus))
        return f"lines.exists(l, l.sku in [{listed}])"

    inside = max(n for n in range(60) if cost(condition(n)) <= MAX_RULE_COST)
    assert cost(condition(inside)) > MAX_RULE_COST * 0.95
    rule_set, errors = RuleSet.of([make_rule("near", condition=condition(inside))])
    assert errors == ()
    order = make_order(lines=[(f"S{n}", 1) for n in range(MAX_RULE_LINES)])
    assert rule_set.routing(rule_context(order, {})).fired == ("near",)
    assert refusal(condition(inside + 1)).startswith(
        f"condition is too costly to run on every order: up to {cost(condition(inside + 1)):,}"
    )


@pytest.mark.parametrize(
    "condition",
    [
        "order.total >= 500",
        '"gift" in order.tags',
        "lines.exists(l, l.hazmat)",
        'lines.exists(l, "glass" in l.tags)',
        'lines.exists(l, l.sku in ["VASE", "FUEL"] && !(l.quantity > 2)) || '
        '(customer.tier == "GOLD" ? order.total > 100 : order.total > 500)',
        'destination.country != "US" && lines.exists(l, l.weight * l.quantity > 20000)',
        'destination.postal_code.matches("^9[0-9]{4}$")',
        'order.tags.exists(t, t.startsWith("promo-"))',
        'size(lines) > 3 && order.tags.exists_one(t, t == "vip")',
    ],
)
def test_everyday_rules_are_inside_the_limit(condition: str) -> None:
    assert 0 < compile_rule(make_rule("everyday", condition=condition)).cost <= MAX_RULE_COST


@pytest.mark.parametrize(
    ("condition", "part"),
    [
        # the library copies the result so far at every item: 100 lines filtered took 27 ms
        ("size(lines.filter(l, l.fragile)) > 2", "is lines.filter (up to 100 items)"),
        ('size(order.tags.filter(t, t.startsWith("x"))) > 0', "order.tags.filter (up to 100"),
        ("size(lines.map(l, l.quantity)) > 2", "lines.map (up to 100 items)"),
        ("lines.exists(l, l.tags.exists(t, t in order.tags))", "nest 2 deep"),
        ("(lines + lines + lines).exists(l, l.hazmat)", "(lines + lines + lines).exists"),
    ],
)
def test_quadratic_and_copying_parts_are_priced(condition: str, part: str) -> None:
    assert part in refusal(condition)


def test_matches_is_priced_by_its_pattern_which_must_be_written_in_the_rule() -> None:
    assert regex_cost("^9") < regex_cost("\\d") < regex_cost("\\w") < regex_cost("\\w{10}")
    message = refusal('lines.exists(l, l.sku.matches("^\\\\w+-\\\\d+$"))')
    assert 'its costliest part is l.sku.matches("^\\\\w+-\\\\d+$"), in lines.exists' in message
    assert message.endswith(
        "; \\w, \\d, \\s, \\b and \\p{...} are Unicode classes, rebuilt at every call: "
        "write [A-Za-z0-9_], [0-9] or [ \\t] instead"
    )
    assert refusal('destination.region.matches("\\\\p{L}{200}")').startswith(
        "condition is too costly to run on every order"
    )
    assert refusal("destination.region.matches(order.tags[0])") == (
        "matches() needs its pattern written in the rule, in quotes (it is compiled at every "
        "call) (column 28)"
    )
    # even the simplest pattern, compiled once per line, costs 0.7 ms on 100 lines
    assert 'its costliest part is l.sku.matches("^A"), in lines.exists (up to 100 items)' in (
        refusal('lines.exists(l, l.sku.matches("^A"))')
    )
    assert compile_rule(make_rule("ok", condition='order.channel_order_ref.matches("^A")')).cost


def test_every_path_refuses_a_costly_rule_with_the_reason(tmp_path: Path) -> None:
    view = NetworkView()
    view.apply(make_rule("r", version=1))
    view.apply(make_rule("r", version=2, condition=FIVE_OVER_LINES))
    assert view.rules.get("r") == make_rule("r", version=1)
    version, reason = view.rule_errors["r"]
    assert version == 2 and reason.startswith("condition is too costly to run on every order")
    assert (_refusal(make_rule("r", condition=FIVE_OVER_LINES)) or "").startswith(
        'rule "r": condition is too costly to run on every order'
    )
    path = rule_file(tmp_path, FIVE_OVER_LINES)
    result = dom_rules_validate(path)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f'{path}:9: rule "poison": condition is too costly to run on every order: up to '
    )


# --- orders larger than the rules judge -------------------------------------------------


def hazmat_rule_set() -> RuleSet:
    rule_set, errors = RuleSet.of(
        [
            make_rule("hazmat", condition="lines.exists(l, l.hazmat)"),
            make_rule(
                "pack",
                stage=RuleStage.PACKAGING,
                condition="order.total > 0",
                actions=(RuleAction(type="set_packaging", params={"type": "PROTECTIVE"}),),
            ),
        ]
    )
    assert errors == ()
    return rule_set


def test_an_order_with_more_lines_than_the_rules_judge_is_held_not_judged_in_part() -> None:
    big = make_order(lines=[(f"S{n}", 1) for n in range(MAX_RULE_LINES + 1)])
    directives = hazmat_rule_set().routing(rule_context(big, {}))
    assert directives.hold_reason == (
        f"the order has {MAX_RULE_LINES + 1} lines; rules judge at most {MAX_RULE_LINES}"
    )
    assert directives.fired == ()
    at_the_cap = make_order(lines=[(f"S{n}", 1) for n in range(MAX_RULE_LINES)])
    assert hazmat_rule_set().routing(rule_context(at_the_cap, {})).hold_reason is None
    # a packaging rule reading the lines holds it too: it could not pack it as the rules say
    fragile, _ = RuleSet.of(
        [
            make_rule(
                "fragile",
                stage=RuleStage.PACKAGING,
                condition="lines.exists(l, l.fragile)",
                actions=(RuleAction(type="add_note", params={"text": "careful"}),),
            )
        ]
    )
    assert fragile.routing(rule_context(big, {})).hold_reason is not None
    # rules that do not read the lines judge any order
    only_total, _ = RuleSet.of([make_rule("total", condition="order.total > 5000")])
    assert only_total.routing(rule_context(big, {})).hold_reason is None


def test_orders_and_products_with_more_tags_than_the_rules_judge_are_held() -> None:
    tagged = make_order(tags=tuple(f"t{n}" for n in range(MAX_ORDER_TAGS + 1)))
    gift, _ = RuleSet.of([make_rule("gift", condition='"gift" in order.tags')])
    assert gift.routing(rule_context(tagged, {})).hold_reason == (
        f"the order has {MAX_ORDER_TAGS + 1} tags; rules judge at most {MAX_ORDER_TAGS}"
    )
    products = {"SKU-1": make_product(tags=tuple(f"t{n}" for n in range(MAX_PRODUCT_TAGS + 1)))}
    glass, _ = RuleSet.of([make_rule("glass", condition='lines.exists(l, "glass" in l.tags)')])
    assert glass.routing(rule_context(make_order(), products)).hold_reason == (
        f"product SKU-1 has {MAX_PRODUCT_TAGS + 1} tags; rules judge at most {MAX_PRODUCT_TAGS}"
    )
    assert hazmat_rule_set().routing(rule_context(make_order(), products)).hold_reason is None


def test_the_saga_holds_an_order_too_large_for_the_rules_with_the_reason() -> None:
    from tests.unit.test_saga import World, placed
    from tests.unit.test_saga_rules import ruled

    world = ruled(World({"SKU-1": {"DC-EAST": 500}}), hazmat_rule_set())
    lines = [("SKU-1", 1)] * (MAX_RULE_LINES + 1)
    placed(world, make_order(lines=lines, order_total=Decimal("1010.00")))
    assert world.statuses() == ["RECEIVED", "ON_HOLD"]
    assert world.last_status().reason == (
        f"on hold: the order has {MAX_RULE_LINES + 1} lines; rules judge at most {MAX_RULE_LINES}."
    )
    assert world.reserved_total() == 0


# --- failing and slow rules on an order -------------------------------------------------


def test_a_rule_that_fails_on_an_order_does_not_fire_and_is_reported() -> None:
    heard: list[RuleFailure] = []
    rule_set, _ = RuleSet.of([make_rule("third-line", condition="lines[2].hazmat")])
    rule_set = rule_set.with_rule(make_rule("big", condition="order.total > 5"))
    rule_set.watch.listen(heard.append)
    directives = rule_set.routing(rule_context(make_order(order_total=Decimal("10.00")), {}))
    assert directives.fired == ("big",)
    assert [(f.rule_id, f.kind) for f in heard] == [("third-line", ERROR)]
    assert heard == list(directives.failures)


class Ticks:
    """A clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_rule_over_the_budget_is_reported_and_its_verdict_kept() -> None:
    heard: list[RuleFailure] = []
    watch = RuleWatch(budget=0.005, clock=Ticks(0.02))  # every run "takes" 20 ms
    watch.listen(heard.append)
    rule_set = RuleSet(watch=watch).with_rule(make_rule("big", condition="order.total > 5"))
    directives = rule_set.routing(rule_context(make_order(order_total=Decimal("10.00")), {}))
    assert directives.fired == ("big",) and directives.failures == ()
    assert heard == [RuleFailure("big", "took 20.0 ms on one order, over the budget of 5 ms", SLOW)]
    # the watch outlives changes of the set: the worker listens once
    assert rule_set.without("big").with_rule(make_rule("x")).watch is watch


def test_a_listener_that_fails_changes_nothing_for_the_order() -> None:
    def broken(failure: RuleFailure) -> None:
        raise RuntimeError("a bug of the reporter")

    rule_set, _ = RuleSet.of([make_rule("third-line", condition="lines[2].hazmat")])
    rule_set.watch.listen(broken)
    assert rule_set.routing(rule_context(make_order(), {})).fired == ()


def test_the_worker_counts_every_failure_and_logs_once_a_minute_per_rule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics, clock = PipelineMetrics(), Ticks(1.0)
    reporter = RuleReporter(metrics, clock)
    with caplog.at_level(logging.WARNING, logger="streams.rules_stage"):
        for _ in range(70):  # one failure a second
            reporter(RuleFailure("third-line", "no such key: 2"))
        reporter(RuleFailure("big", "took 20.0 ms on one order, over the budget of 5 ms", SLOW))
    count = metrics.registry.get_sample_value
    assert count("dom_rule_errors_total", {"rule_id": "third-line", "kind": ERROR}) == 70
    assert count("dom_rule_errors_total", {"rule_id": "big", "kind": SLOW}) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "rule third-line failed on an order and did not fire: no such key: 2",
        "rule third-line failed on an order and did not fire: no such key: 2 "
        "(59 more since the last line)",
        "rule big ran slow: took 20.0 ms on one order, over the budget of 5 ms",
    ]

"""The rules engine's pure core: checking rules when loaded, and evaluating them per order."""

from decimal import Decimal
from typing import Any

import pytest

from schemas.models import LocationKind, Rule, RuleAction, RuleStage, ServiceLevel
from streams.core.routing.model import FulfillmentMethod, RoutingRequest
from streams.core.rules.context import project, rule_context
from streams.core.rules.directives import RoutingDirectives, apply_routing
from streams.core.rules.ruleset import RuleError, RuleSet, compile_rule
from tests.unit.factories import make_line, make_order, make_pickup_order, make_product, make_rule

PRODUCTS = {
    "VASE": make_product("VASE", category="home", fragile=True, tags=("glass",)),
    "FUEL": make_product("FUEL", category="camping", hazmat=True, weight_grams=None),
}


def rule(rule_id: str, condition: str = "true", *actions: tuple[str, str], **fields: Any) -> Rule:
    """A rule whose actions are (type, value) pairs of the action's one parameter."""
    params = {
        "hold": "reason",
        "exclude_locations": "locations",
        "exclude_location_kinds": "kinds",
        "prefer_locations": "locations",
        "force_location": "location",
        "set_service_level": "level",
        "cap_shipments": "max",
        "set_packaging": "type",
        "add_note": "text",
        "add_gift_insert": "text",
        "add_sample": "sku",
        "add_discount_code": "code",
    }
    built = tuple(RuleAction(type=kind, params={params[kind]: value}) for kind, value in actions)
    return make_rule(rule_id, condition=condition, actions=built, **fields)


def routing(*actions: tuple[str, str], **fields: Any) -> Rule:
    return rule(fields.pop("rule_id", "r"), fields.pop("condition", "true"), *actions, **fields)


def rule_set(*rules: Rule) -> RuleSet:
    result, errors = RuleSet.of(rules)
    assert errors == ()
    return result


def error_of(condition: str, stage: RuleStage = RuleStage.ROUTING) -> str:
    with pytest.raises(RuleError) as raised:
        compile_rule(rule("x", condition, stage=stage))
    return str(raised.value)


CONTEXT = rule_context(make_order(lines=[("VASE", 2), ("FUEL", 1)]), PRODUCTS)


# --- the context -------------------------------------------------------------


def test_context_describes_order_customer_destination_and_lines() -> None:
    order = make_order(lines=[("VASE", 2), ("NOPE", 1)], tags=("gift",))
    values = rule_context(order, PRODUCTS).values
    assert values["order"] == {
        "order_id": "ORD-1",
        "channel_order_ref": "WEB-ORD-1",
        "channel": "WEB",
        "total": 30.0,
        "currency": "USD",
        "tags": ["gift"],
        "service_level": "STANDARD",
        "method": "SHIP",
        "line_count": 2,
    }
    assert values["customer"] == {"id": "CUST-1", "tier": "GOLD", "email": "ada@example.com"}
    assert values["destination"] == {"country": "US", "region": "NY", "postal_code": "10001"}
    vase, unknown = values["lines"]
    assert vase == {
        "sku": "VASE",
        "category": "home",
        "unit_price": 10.0,
        "quantity": 2,
        "line_total": 20.0,
        "fragile": True,
        "hazmat": False,
        "tags": ["glass"],
        "weight": 500,
    }
    assert (unknown["category"], unknown["fragile"], unknown["weight"], unknown["tags"]) == (
        "",
        False,
        0,
        [],
    )


def test_pickup_order_without_address_and_customer_without_tier_read_as_empty() -> None:
    customer = make_order().customer.model_copy(update={"loyalty_tier": None, "email": None})
    values = rule_context(make_pickup_order(customer=customer), {}).values
    assert values["destination"] == {"country": "", "region": "", "postal_code": ""}
    assert values["customer"]["tier"] == values["customer"]["email"] == ""
    assert values["order"]["method"] == "PICKUP"


@pytest.mark.parametrize("sent", ["gold", "Gold", " GOLD "])
def test_a_tier_in_any_case_reads_upper_case_so_the_default_rule_matches(sent: str) -> None:
    customer = make_order().customer.model_copy(update={"loyalty_tier": sent})
    context = rule_context(make_order(customer=customer), {})
    assert context.values["customer"]["tier"] == "GOLD"
    directives = rule_set(routing(("hold", "x"), condition='customer.tier == "GOLD"'))
    assert directives.routing(context).fired == ("r",)


def test_a_context_converts_only_what_the_rules_read() -> None:
    uses = compile_rule(rule("x", 'lines.exists(l, l.hazmat) && customer.tier == "GOLD"')).uses
    projected = project(CONTEXT.values, uses)
    assert projected == {
        "lines": [{"hazmat": False}, {"hazmat": True}],
        "customer": {"tier": "GOLD"},
    }


# --- conditions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "fires"),
    [
        ("order.total >= 30", True),
        ("order.total > 30", False),
        ('customer.tier == "GOLD" && order.channel in ["WEB", "POS"]', True),
        ("lines.exists(l, l.hazmat)", True),
        ("lines.all(l, l.fragile)", False),
        ('lines.exists(l, "glass" in l.tags)', True),
        ('destination.country == "US" && order.method == "SHIP"', True),
        ("order.line_count == 2 && size(lines) == 2", True),
        ('customer.email.endsWith("@example.com")', True),
        ("lines.exists(l, l.weight * l.quantity >= 1000)", True),
    ],
)
def test_condition_over_the_vocabulary(condition: str, fires: bool) -> None:
    directives = rule_set(routing(("hold", "x"), condition=condition)).routing(CONTEXT)
    assert directives.fired == (("r",) if fires else ())


def test_int_and_double_mix_as_operators_expect() -> None:
    order = make_order(lines=[make_line(unit_price=Decimal("612.50"))])
    context = rule_context(order, {})
    for condition in (
        "order.total > 500",
        "order.total * 2 > 1000",
        "order.total + order.line_count > 613",
        "lines.exists(l, l.unit_price * l.quantity == 612.5)",
        "order.line_count < 1.5",
    ):
        directives = rule_set(routing(("hold", "x"), condition=condition)).routing(context)
        assert directives.fired == ("r",), condition
    compiled = compile_rule(rule("x", "order.total + order.line_count * 2 > 613"))
    assert compiled.expression == "order.total + double(order.line_count * 2) > 613"


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("order.total >", 'rule "x": syntax error at column 14: mismatched input'),
        ("1 = 2", 'rule "x": syntax error at column 3: token recognition error'),
        (
            'customer.teir == "GOLD"',
            'rule "x": unknown field customer.teir (did you mean customer.tier? '
            "known: customer.id, customer.tier, customer.email) (column 1)",
        ),
        ("lines.exists(l, l.weigth > 1)", "unknown field l.weigth (did you mean l.weight?"),
        ("custmer.tier == 'x'", "unknown name custmer (known: customer, destination"),
        (
            'order.total > "abc"',
            'rule "x": cannot compare order.total (double) with "abc" (string) '
            "using '>' (column 13)",
        ),
        ("customer.tier == 1", "cannot compare customer.tier (string) with 1 (int)"),
        ("order.line_count + 1", 'rule "x": condition must be a boolean, got int'),
        ("order.channel", "condition must be a boolean, got string"),
        ("order.total && true", "each side of '&&' must be true/false, got order.total"),
        ('"vip" in order.channel', "use order.channel.contains(...)"),
        ('order.tags.contains("vip")', 'to test a list use "..." in order.tags'),
        ("order.channel.lowerAscii() == 'web'", "unknown function lowerAscii()"),
        ("lines.exists(l, l.quantity)", "the expression of exists() must be true/false"),
        ("order.total > 1 &&\n  order.x", "unknown field order.x (known: order.order_id"),
        ("   ", "condition is empty"),
    ],
)
def test_invalid_conditions_are_refused_with_a_clear_message(condition: str, message: str) -> None:
    assert message in error_of(condition)


def test_multiline_condition_errors_name_the_line() -> None:
    assert "(line 2, column 3)" in error_of("order.total > 1 &&\n  order.x")


# --- actions -------------------------------------------------------------------


def test_every_routing_action() -> None:
    directives = rule_set(
        routing(
            ("hold", "manual review"),
            ("exclude_locations", "DC-1, STORE-7"),
            ("exclude_location_kinds", "store"),
            ("prefer_locations", "DC-2,DC-3"),
            ("force_location", "DC-9"),
            ("set_service_level", "EXPRESS"),
            ("cap_shipments", "2"),
        )
    ).routing(CONTEXT)
    assert directives == RoutingDirectives(
        hold_reason="manual review",
        excluded_locations=("DC-1", "STORE-7"),
        excluded_kinds=(LocationKind.STORE,),
        preferred_locations=("DC-2", "DC-3"),
        forced_location="DC-9",
        service_level=ServiceLevel.EXPRESS,
        max_shipments=2,
        fired=("r",),
    )


def test_packaging_and_marketing_actions_become_inserts() -> None:
    rules = rule_set(
        rule(
            "p",
            "true",
            ("set_packaging", "protective"),
            ("add_note", "Handle with care"),
            ("add_gift_insert", "Happy birthday"),
            stage=RuleStage.PACKAGING,
        ),
        rule(
            "m",
            "true",
            ("add_sample", "SAMPLE-001"),
            ("add_discount_code", "GOLD10"),
            stage=RuleStage.MARKETING,
        ),
    )
    packaging, marketing = rules.packaging(CONTEXT), rules.marketing(CONTEXT)
    assert packaging.packaging == "PROTECTIVE"
    assert [(i.kind, i.value) for i in packaging.inserts()] == [
        ("NOTE", "Handle with care"),
        ("GIFT", "Happy birthday"),
    ]
    assert [(i.kind, i.value) for i in marketing.inserts()] == [
        ("SAMPLE", "SAMPLE-001"),
        ("DISCOUNT_CODE", "GOLD10"),
    ]
    assert (packaging.fired, marketing.fired) == (("p",), ("m",))


@pytest.mark.parametrize(
    ("action", "params", "message"),
    [
        ("holdd", {"reason": "x"}, "action 1: unknown action 'holdd' (did you mean hold?"),
        ("hold", {}, "action 1: action hold: missing parameter 'reason'"),
        ("hold", {"reason": "x", "why": "y"}, "unknown parameter 'why' (it takes 'reason')"),
        ("hold", {"reason": "  "}, "action hold: reason must not be empty"),
        ("set_service_level", {"level": "FAST"}, "'FAST' is not one of STANDARD, EXPRESS"),
        ("exclude_location_kinds", {"kinds": "DC,MALL"}, "'MALL' is not one of DC, STORE"),
        ("cap_shipments", {"max": "0"}, "max must be at least 1, got 0"),
        ("cap_shipments", {"max": "two"}, "max 'two' is not a whole number"),
        ("exclude_locations", {"locations": " , "}, "must list at least one"),
        ("set_packaging", {"type": "GIFT"}, "action set_packaging belongs to PACKAGING rules"),
    ],
)
def test_invalid_actions_are_refused(action: str, params: dict[str, str], message: str) -> None:
    invalid = make_rule("x", condition="true", actions=(RuleAction(type=action, params=params),))
    with pytest.raises(RuleError) as raised:
        compile_rule(invalid)
    assert message in str(raised.value)
    assert raised.value.part == "actions"


# --- evaluation order and conflicts ----------------------------------------------


def test_rules_run_in_priority_order_then_by_id_and_disabled_rules_never_fire() -> None:
    rules = rule_set(
        routing(("exclude_locations", "C"), rule_id="c", priority=5),
        routing(("exclude_locations", "B"), rule_id="b", priority=1),
        routing(("exclude_locations", "A"), rule_id="a", priority=5),
        routing(("exclude_locations", "OFF"), rule_id="off", priority=0, enabled=False),
    )
    directives = rules.routing(CONTEXT)
    assert directives.fired == ("b", "a", "c")
    assert directives.excluded_locations == ("B", "A", "C")


def test_stop_processing_ends_the_stage_only_when_the_rule_fires() -> None:
    rules = rule_set(
        routing(
            ("prefer_locations", "A"),
            rule_id="a",
            priority=1,
            condition="false",
            stop_processing=True,
        ),
        routing(("prefer_locations", "B"), rule_id="b", priority=2, stop_processing=True),
        routing(("prefer_locations", "C"), rule_id="c", priority=3),
        rule("p", "true", ("add_note", "packed"), stage=RuleStage.PACKAGING),
    )
    directives = rules.routing(CONTEXT)
    assert directives.fired == ("b",)
    assert directives.preferred_locations == ("B",)
    assert directives.explanation == ("'b' stopped further ROUTING rules",)
    assert rules.packaging(CONTEXT).fired == ("p",)


def test_first_rule_wins_a_single_setting_and_the_explanation_says_why() -> None:
    rules = rule_set(
        rule(
            "gift-wrap", "true", ("set_packaging", "GIFT"), stage=RuleStage.PACKAGING, priority=50
        ),
        rule(
            "high-value",
            "true",
            ("set_packaging", "PROTECTIVE"),
            stage=RuleStage.PACKAGING,
            priority=10,
        ),
    )
    directives = rules.packaging(CONTEXT)
    assert directives.packaging == "PROTECTIVE"
    assert directives.fired == ("high-value", "gift-wrap")
    assert directives.explanation == (
        "packaging GIFT from 'gift-wrap' overridden by PROTECTIVE from 'high-value' "
        "(priority 10 < 50)",
    )


def test_conflicts_on_hold_force_and_service_level_and_ties() -> None:
    rules = rule_set(
        routing(("hold", "first"), ("force_location", "DC-1"), rule_id="a"),
        routing(
            ("hold", "second"),
            ("force_location", "DC-2"),
            ("set_service_level", "NEXT_DAY"),
            rule_id="b",
        ),
        routing(("set_service_level", "STANDARD"), rule_id="c"),
    )
    directives = rules.routing(CONTEXT)
    assert (directives.hold_reason, directives.forced_location) == ("first", "DC-1")
    assert directives.service_level is ServiceLevel.NEXT_DAY
    assert directives.explanation == (
        "hold reason second from 'b' overridden by first from 'a' "
        "(same priority 10, rule id 'a' sorts first)",
        "forced location DC-2 from 'b' overridden by DC-1 from 'a' "
        "(same priority 10, rule id 'a' sorts first)",
        "service level STANDARD from 'c' overridden by NEXT_DAY from 'b' "
        "(same priority 10, rule id 'b' sorts first)",
    )


def test_lists_accumulate_without_duplicates_and_the_smallest_cap_wins() -> None:
    rules = rule_set(
        routing(("exclude_locations", "DC-1,DC-2"), ("cap_shipments", "3"), rule_id="a"),
        routing(("exclude_locations", "DC-2,DC-3"), ("cap_shipments", "1"), rule_id="b"),
        routing(("exclude_location_kinds", "STORE"), ("cap_shipments", "2"), rule_id="c"),
        routing(("exclude_location_kinds", "STORE,DC"), rule_id="d"),
    )
    directives = rules.routing(CONTEXT)
    assert directives.excluded_locations == ("DC-1", "DC-2", "DC-3")
    assert directives.excluded_kinds == (LocationKind.STORE, LocationKind.DC)
    assert directives.max_shipments == 1
    assert directives.explanation == (
        "max shipments 3 from 'a' set aside for 1 from 'b' (the smallest cap wins)",
        "max shipments 2 from 'c' set aside for 1 from 'b' (the smallest cap wins)",
    )


def test_a_condition_failing_on_one_order_does_not_fire_and_is_reported() -> None:
    rules = rule_set(
        routing(("hold", "second line"), rule_id="bad", condition='lines[1].sku == "FUEL"'),
        routing(("exclude_locations", "DC-1"), rule_id="good"),
    )
    one_line = rule_context(make_order(), PRODUCTS)
    directives = rules.routing(one_line)
    assert directives.fired == ("good",)
    assert directives.hold_reason is None
    ((failure,),) = (directives.failures,)
    assert failure.rule_id == "bad"
    assert failure.message == "index out of bounds: 1"
    assert str(failure) == "rule 'bad': index out of bounds: 1"
    assert rules.routing(CONTEXT).fired == ("bad", "good")


# --- the rule set --------------------------------------------------------------


def test_version_guard_and_replacing_a_rule() -> None:
    v2 = routing(("hold", "v2"), rule_id="r", version=2)
    rules = rule_set(v2)
    assert rules.with_rule(routing(("hold", "v1"), rule_id="r", version=1)) is rules
    assert rules.with_rule(v2) is rules
    v3 = routing(("hold", "v3"), rule_id="r", version=3)
    assert rules.with_rule(v3).routing(CONTEXT).hold_reason == "v3"
    assert rules.routing(CONTEXT).hold_reason == "v2"


def test_an_invalid_rule_never_replaces_a_valid_one() -> None:
    rules = rule_set(routing(("hold", "ok"), rule_id="r"))
    with pytest.raises(RuleError, match=r'rule "r": unknown field order.totl'):
        rules.with_rule(routing(("hold", "x"), rule_id="r", version=2, condition="order.totl > 1"))
    assert rules.routing(CONTEXT).hold_reason == "ok"


def test_of_keeps_valid_rules_and_reports_invalid_ones() -> None:
    rules, errors = RuleSet.of(
        [routing(("hold", "x"), rule_id="ok"), routing(rule_id="bad", condition="1")]
    )
    assert "ok" in rules and "bad" not in rules
    assert [error.rule_id for error in errors] == ["bad"]


def test_without_and_listing() -> None:
    rules = rule_set(
        rule("m", "true", stage=RuleStage.MARKETING, priority=1),
        routing(rule_id="b", priority=2),
        routing(rule_id="a", priority=2, enabled=False),
    )
    assert [r.rule_id for r in rules.rules()] == ["a", "b", "m"]
    assert [r.rule_id for r in rules.rules(RuleStage.MARKETING)] == ["m"]
    smaller = rules.without("b")
    assert [r.rule_id for r in smaller.rules()] == ["a", "m"]
    assert len(rules) == 3
    assert smaller.without("nope") is smaller
    assert smaller.get("m") is not None and smaller.get("b") is None


def test_empty_set_decides_nothing() -> None:
    assert RuleSet().routing(CONTEXT) == RoutingDirectives()


# --- applying routing directives -------------------------------------------------


def test_apply_routing_adds_the_rules_steering_to_a_request() -> None:
    request = RoutingRequest(
        order_id="ORD-1",
        method=FulfillmentMethod.SHIP,
        lines=(),
        excluded_locations=frozenset({"DC-0"}),
        preferred_locations=("DC-3",),
        max_shipments=2,
    )
    directives = RoutingDirectives(
        excluded_locations=("DC-1",),
        excluded_kinds=(LocationKind.STORE,),
        preferred_locations=("DC-2", "DC-3"),
        forced_location="DC-9",
        max_shipments=3,
    )
    applied = apply_routing(request, directives)
    assert applied.excluded_locations == {"DC-0", "DC-1"}
    assert applied.excluded_kinds == {LocationKind.STORE}
    assert applied.preferred_locations == ("DC-3", "DC-2")
    assert (applied.forced_location, applied.max_shipments) == ("DC-9", 2)
    assert apply_routing(request, RoutingDirectives()) == request


def test_the_cost_measurement_runs() -> None:
    from streams.core.rules.bench import measure_rule_cost

    cost = measure_rule_cost(rules=10, orders=3)
    assert (cost.rules, cost.orders) == (10, 3)
    assert cost.fired > 0

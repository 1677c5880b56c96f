"""Rule files: reading what operators write, the errors they see, and the default rules."""

from decimal import Decimal
from pathlib import Path

import pytest

from schemas.models import LocationKind, Rule, RuleAction, RuleStage
from streams.core.rules.context import rule_context
from streams.core.rules.files import RuleFileError, dump_rules, load_rule_file
from streams.core.rules.ruleset import RuleSet
from tests.unit.factories import T0, make_line, make_order, make_product

DEFAULT_RULES = Path(__file__).parents[2] / "deploy" / "rules" / "default.yaml"


def load(text: str) -> list[Rule]:
    return load_rule_file(text, "rules.yaml", updated_by="ops@example.com", now=T0)


def problems(text: str) -> list[str]:
    with pytest.raises(RuleFileError) as raised:
        load(text)
    return list(raised.value.problems)


def test_short_and_long_action_forms_and_defaults() -> None:
    (rule,) = load(
        """
rules:
  - id: big
    stage: routing
    when: order.total >= 500
    then:
      - hold: needs review
      - cap_shipments: {max: 2}
"""
    )
    assert rule.rule_id == "big"
    assert rule.stage is RuleStage.ROUTING
    assert (rule.version, rule.priority, rule.enabled, rule.stop_processing) == (
        1,
        100,
        True,
        False,
    )
    assert rule.condition == "order.total >= 500"
    assert rule.actions == (
        RuleAction(type="hold", params={"reason": "needs review"}),
        RuleAction(type="cap_shipments", params={"max": "2"}),
    )
    assert (rule.updated_by, rule.updated_at, rule.description) == ("ops@example.com", T0, None)


def test_every_optional_key() -> None:
    (rule,) = load(
        """
rules:
  - id: gifts
    stage: PACKAGING
    priority: 5
    when: '"gift" in order.tags'
    then: [{set_packaging: GIFT}]
    description: Gift wrap
    stop: true
    enabled: false
    version: 4
"""
    )
    assert (rule.priority, rule.stop_processing, rule.enabled, rule.version) == (5, True, False, 4)
    assert rule.description == "Gift wrap"


def test_yaml_syntax_error_names_the_line() -> None:
    assert problems("rules:\n  - id: x\n    when: [unclosed\n") == [
        "rules.yaml:4: not valid YAML: expected ',' or ']', but got '<stream end>'"
    ]


def test_a_file_that_is_not_a_list_of_rules() -> None:
    assert problems("hello: world\n") == ["rules.yaml: expected a list of rules under 'rules:'"]


def test_every_problem_is_reported_with_line_and_rule() -> None:
    found = problems(
        """rules:
  - id: typo
    stage: PACKAGING
    when: customer.teir == "GOLD"
    then:
      - set_packaging: GIFT
  - id: wrong-stage
    stage: MARKETING
    when: "true"
    then:
      - set_packaging: GIFT
  - id: misspelt-key
    stage: MARKETING
    whn: "true"
    then: []
  - stage: ROUTING
    when: "true"
    then: []
  - id: typo
    stage: SHIPPING
    when: "true"
    then: []
"""
    )
    assert found[0].startswith('rules.yaml:4: rule "typo": unknown field customer.teir')
    assert found[1].startswith(
        'rules.yaml:11: rule "wrong-stage": action 1: action set_packaging belongs to PACKAGING'
    )
    assert found[2].startswith(
        "rules.yaml:14: rule \"misspelt-key\": unknown key 'whn' (did you mean when?"
    )
    assert found[3] == "rules.yaml:16: rule #4: missing 'id'"
    assert found[4].startswith('rules.yaml:20: rule "typo": stage: input should be')
    assert len(found) == 5


def test_duplicate_ids_in_one_file() -> None:
    text = "rules:\n" + "  - {id: same, stage: ROUTING, when: 'true', then: []}\n" * 2
    assert problems(text) == ['rules.yaml:3: rule "same": the id is used by an earlier rule']


def test_action_written_wrongly() -> None:
    (found,) = problems(
        "rules:\n  - id: x\n    stage: ROUTING\n    when: 'true'\n    then:\n      - hold\n"
    )
    assert found == 'rules.yaml:6: rule "x": action 1: write it as `- action_name: value`'


def test_dump_reads_back_to_equal_rules() -> None:
    rules = load(DEFAULT_RULES.read_text())
    changed = rules[0].model_copy(update={"enabled": False, "stop_processing": True, "version": 3})
    text = dump_rules([changed, *rules[1:]])
    assert load(text) == [changed, *rules[1:]]
    assert "  - set_packaging: PROTECTIVE\n" in text


def test_the_default_rules_all_load_and_compile() -> None:
    rules = load(DEFAULT_RULES.read_text())
    rule_set, errors = RuleSet.of(rules)
    assert errors == ()
    assert {r.rule_id for r in rule_set.rules()} == {
        "hold-very-large-orders",
        "hazmat-not-from-stores",
        "high-value-protective",
        "fragile-handle-with-care",
        "gift-wrap",
        "free-sample-over-150",
        "gold-discount",
    }


def test_the_default_rules_on_orders() -> None:
    rule_set, _ = RuleSet.of(load(DEFAULT_RULES.read_text()))
    products = {
        "TV": make_product("TV", unit_price=Decimal("600.00"), fragile=True),
        "FUEL": make_product("FUEL", hazmat=True),
    }
    lines = [make_line("1", "TV", 1, unit_price=Decimal("600.00")), make_line("2", "FUEL", 1)]
    big = rule_context(make_order(lines=lines, tags=("gift",)), products)
    routing, packaging = rule_set.routing(big), rule_set.packaging(big)
    assert routing.hold_reason is None
    assert routing.excluded_kinds == (LocationKind.STORE,)
    assert packaging.packaging == "PROTECTIVE"
    assert packaging.notes == ("Fragile - handle with care",)
    assert packaging.gift_inserts == ("A gift for you - enjoy!",)
    assert packaging.explanation == (
        "packaging GIFT from 'gift-wrap' overridden by PROTECTIVE from 'high-value-protective' "
        "(priority 10 < 50)",
    )
    marketing = rule_set.marketing(big)
    assert (marketing.samples, marketing.discount_codes) == (("SAMPLE-001",), ("GOLD10",))

    small = rule_context(
        make_order(customer=make_order().customer.model_copy(update={"loyalty_tier": None})), {}
    )
    assert rule_set.marketing(small).fired == ()
    assert rule_set.packaging(small).packaging is None

    huge = rule_context(make_order(lines=[make_line(unit_price=Decimal("5000.00"))]), {})
    assert rule_set.routing(huge).hold_reason == "order total of 5000 or more needs a manual review"

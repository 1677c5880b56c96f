"""Rules too large or too deeply nested to read are refused with the limit they break, and no
rule, whatever it holds, stops a worker's network view, the rules stage, the command line or
the console (issue 14: ``!`` written 3,000 times stopped every worker, again at each restart).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import cel
import pytest

from schemas.codec import Codec
from streams.core.rules import ruleset as rules_module
from streams.core.rules.context import rule_context
from streams.core.rules.expr import MAX_CONDITION_CHARS, MAX_CONDITION_TOKENS, MAX_DEPTH
from streams.core.rules.ruleset import RuleError, RuleSet, compile_rule
from streams.rules_stage import _refusal
from streams.views import NetworkView, _fold
from tests.conftest import REPO_ROOT
from tests.unit.factories import make_order, make_rule
from tests.unit.test_console_api import GOOD, FakeStore, post, run

NOT_3000 = "!" * 3000 + "true"
NEGATE_3000 = "-" * 3000 + "order.total > 0"
OR_1500 = "order.total > 1 || " * 1500 + "true"
PLUS_3000 = "1 + " * 3000 + "1 > 0"


def refusal(condition: str) -> str:
    with pytest.raises(RuleError) as raised:
        compile_rule(make_rule("deep", condition=condition))
    return raised.value.message


# --- the compiler ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (NOT_3000, "condition is nested 3000 deep; the limit is 64"),
        (NEGATE_3000, "condition is nested 3000 deep; the limit is 64"),
        (OR_1500, "condition is 28,504 characters long; the limit is 10,000"),
        (PLUS_3000, "condition is 12,005 characters long; the limit is 10,000"),
    ],
    ids=["not-x3000", "minus-x3000", "or-chain-1500", "plus-chain-3000"],
)
def test_the_rules_that_stopped_every_worker_are_refused_with_the_limit(
    condition: str, message: str
) -> None:
    assert refusal(condition) == message


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        # binary chains nest in the tree (a || b || c is (a || b) || c), found once parsed
        ("order.total > 1 || " * 100 + "true", "nested 102 deep"),
        ("1 + " * 100 + "1 > 0", "nested 101 deep"),
        ("(" * 65 + "true" + ")" * 65, "nested 65 deep"),
        ("!(" * 40 + "true" + ")" * 40, "nested 80 deep"),
        ("true ? true : " * 70 + "false", "nested 70 deep"),
        ("size([" * 33 + "1" + "])" * 33 + " > 0", "nested 66 deep"),
        # a unary operator reads the whole operand: !x[!y[...]] nests in the brackets too
        ("!lines[" * 33 + "0" + "].fragile" * 33, "nested 66 deep"),
    ],
)
def test_deep_nesting_within_the_length_limit_is_refused(condition: str, message: str) -> None:
    assert len(condition) < MAX_CONDITION_CHARS
    assert refusal(condition) == f"condition is {message}; the limit is {MAX_DEPTH}"


def test_too_many_parts_are_refused() -> None:
    skus = ", ".join(f'"S{n}"' for n in range(1001))
    assert refusal(f"order.channel in [{skus}]") == (
        f"condition has 2,007 names, values and operators; the limit is {MAX_CONDITION_TOKENS:,}"
    )


@pytest.mark.parametrize(
    "condition",
    [
        "!" * MAX_DEPTH + "true",
        "-" * (MAX_DEPTH - 1) + "1 < 0",
        "(" * MAX_DEPTH + "true" + ")" * MAX_DEPTH,
        "order.total > 1 || " * (MAX_DEPTH - 2) + "true",
        "order.total > 0" + " " * (MAX_CONDITION_CHARS - 15),
        "order.channel in [" + ", ".join(f'"S{n}"' for n in range(996)) + "]",
        'lines.exists(l, l.sku in ["VASE", "FUEL"] && !(l.quantity > 2)) || '
        '(customer.tier == "GOLD" ? order.total > 100 : order.total > 500)',
    ],
    ids=["not", "minus", "brackets", "or-chain", "chars", "tokens", "everyday"],
)
def test_a_rule_just_inside_the_limits_compiles_and_runs(condition: str) -> None:
    rule = make_rule("near-limit", condition=condition)
    rule_set, errors = RuleSet.of([rule])
    assert errors == ()
    directives = rule_set.routing(rule_context(make_order(), {}))
    assert directives.failures == ()


def test_the_default_rules_are_far_inside_the_limits() -> None:
    import yaml

    default = yaml.safe_load((REPO_ROOT / "deploy/rules/default.yaml").read_text())
    for entry in default["rules"]:
        assert len(str(entry["when"])) < MAX_CONDITION_CHARS // 50


def test_a_panic_of_the_cel_library_refuses_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    class PanicException(BaseException):  # pyo3's, a BaseException: not an Exception
        pass

    def panics(expression: str) -> Any:
        raise PanicException("Formatting argument out of range")

    monkeypatch.setattr(cel, "compile", panics)
    assert refusal("true") == (
        "the CEL library cannot compile it (Formatting argument out of range)"
    )


def test_a_panic_while_evaluating_is_that_rules_failure_only() -> None:
    class PanicException(BaseException):
        pass

    class PanickingProgram:
        def execute(self, context: Any) -> Any:
            raise PanicException("boom")

    compiled = compile_rule(make_rule("panics", condition="true"))
    broken = dataclasses.replace(compiled, program=cast(Any, PanickingProgram()))
    directives = RuleSet({"panics": broken}).routing(rule_context(make_order(), {}))
    assert [(f.rule_id, f.message) for f in directives.failures] == [("panics", "boom")]


# --- the network view and the rules stage ------------------------------------------


def test_the_view_refuses_a_deep_rule_and_keeps_the_version_in_force() -> None:
    view = NetworkView()
    view.apply(make_rule("r", version=1))
    view.apply(make_rule("r", version=2, condition=NOT_3000))
    assert view.rules.get("r") == make_rule("r", version=1)
    assert view.rule_errors == {"r": (2, "condition is nested 3000 deep; the limit is 64")}


def test_any_failure_of_checking_refuses_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    def checker_bug(*args: Any) -> Any:
        raise KeyError("a bug of the checker")

    view = NetworkView()
    view.apply(make_rule("r", version=1))
    monkeypatch.setattr(rules_module, "check", checker_bug)
    view.apply(make_rule("r", version=2, condition="order.total > 5"))
    assert view.rules.get("r") == make_rule("r", version=1)
    version, reason = view.rule_errors["r"]
    assert version == 2 and "could not be checked: KeyError('a bug of the checker')" in reason
    assert _refusal(make_rule("r", version=2)) == (
        "rule \"r\": could not be checked: KeyError('a bug of the checker')"
    )


def test_the_rules_stage_refuses_a_deep_rule_with_the_limit() -> None:
    assert _refusal(make_rule("r", condition=NOT_3000)) == (
        'rule "r": condition is nested 3000 deep; the limit is 64'
    )
    assert _refusal(make_rule("r")) is None


class BrokenView(NetworkView):
    def apply(self, record: object) -> None:
        raise RuntimeError("a bug while applying")


def message(value: bytes | None, key: bytes = b"r", topic: str = "rules") -> Any:
    return SimpleNamespace(topic=topic, key=key, value=value, partition=0, offset=7)


def test_the_follower_skips_a_record_it_cannot_apply(caplog: pytest.LogCaptureFixture) -> None:
    codec = Codec()
    _fold(BrokenView(), codec, message(codec.encode(make_rule("r"))), "locations", "rules")
    assert "view skips a record it cannot apply: rules partition 0 offset 7" in caplog.text
    # a tombstone whose key is not text
    _fold(NetworkView(), codec, message(None, key=b"\xff\xfe"), "locations", "rules")
    view = NetworkView()
    _fold(view, codec, message(codec.encode(make_rule("r", condition=NOT_3000))), "l", "rules")
    assert "r" in view.rule_errors and len(view.rules) == 0


# --- the command line and the console ----------------------------------------------


def rule_file(tmp_path: Path, condition: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - id: fine\n"
        "    stage: ROUTING\n"
        "    when: order.total > 10\n"
        "    then:\n"
        "      - hold: big\n"
        "  - id: poison\n"
        "    stage: ROUTING\n"
        f"    when: {condition}\n"
        "    then:\n"
        "      - hold: never\n"
    )
    return path


def dom_rules_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dom.cli", "rules", "validate", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("condition", "error"),
    [
        (f'"{NOT_3000}"', 'rule "poison": condition is nested 3000 deep; the limit is 64'),
        (
            f'"{OR_1500}"',
            'rule "poison": condition is 28,504 characters long; the limit is 10,000',
        ),
    ],
    ids=["not-x3000", "or-chain-1500"],
)
def test_dom_rules_validate_refuses_a_deep_rule_clearly(
    tmp_path: Path, condition: str, error: str
) -> None:
    path = rule_file(tmp_path, condition)
    result = dom_rules_validate(path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"{path}:9: {error}"
    assert "Traceback" not in result.stdout + result.stderr


def test_dom_rules_validate_refuses_yaml_nested_too_deeply(tmp_path: Path) -> None:
    path = rule_file(tmp_path, "[" * 3000 + "]" * 3000)
    result = dom_rules_validate(path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"{path}: YAML nested too deeply to read"
    assert "Traceback" not in result.stdout + result.stderr


def test_the_console_refuses_a_deep_rule_with_the_reason() -> None:
    deep = {**GOOD, "condition": "!" * 1500 + "true"}

    async def scenario(client: Any, store: FakeStore, feed: Any) -> None:
        status, body = await post(client, "/api/rules/validate", deep)
        assert status == 200 and body["ok"] is False, body
        assert body["error"] == "condition is nested 1500 deep; the limit is 64"
        status, body = await post(client, "/api/rules/publish", {**deep, "updated_by": "anna"})
        assert status == 422, body
        assert body["errors"] == [
            {"field": "condition", "message": "condition is nested 1500 deep; the limit is 64"}
        ]
        assert store.records == []

    run(scenario)

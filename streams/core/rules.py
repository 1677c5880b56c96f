"""Operator-editable business rules: compiled once, evaluated per order and stage.

A rule (the contract's ``Rule`` record) has a CEL condition over the vocabulary of
``streams.core.rules_context`` and actions from ``streams.core.rules_actions``. A
``RuleSet`` holds compiled rules and never changes: adding or removing a rule returns
a new set, so an agent can swap sets between orders and an invalid rule, which raises
``RuleError`` when added, never replaces a valid one.

Conditions are evaluated by the ``cel`` library (package common-expression-language,
Rust-backed; no Python ``eval``). A rule is checked when it is added, in this order:
CEL syntax (the library's parser), the static type check of ``rules_check`` (unknown
fields and names, comparisons of the wrong types, a result that is not true/false),
a trial run on a made-up order (``probe_context``) that catches functions the library
lacks, and its actions' parameters.

Evaluation of a stage: enabled rules in priority order (lower first, ties by rule id);
a rule fires when its condition is true; a fired rule with ``stop_processing`` ends
the stage. A condition that fails on one order (say, indexing past the end of
``lines``) does not fire and is reported in the result's ``failures``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import cel

from schemas.enums import RuleStage
from schemas.models import Rule
from streams.core.rules_actions import (
    Accumulator,
    ActionError,
    CompiledAction,
    FiredBy,
    compile_action,
)
from streams.core.rules_check import Checked, CheckError, check
from streams.core.rules_context import CONTEXT_SCHEMA, RuleContext, Uses, probe_context
from streams.core.rules_directives import (
    MarketingDirectives,
    PackagingDirectives,
    RoutingDirectives,
    RuleFailure,
    StageDirectives,
    build_directives,
)
from streams.core.rules_expr import ExprSyntaxError

_SYNTAX_ERROR = re.compile(r"<input>:(\d+):(\d+): Syntax error: (.*)")
_PROBE = probe_context()


class RuleError(ValueError):
    """A rule that cannot be used, with a message for the operator who wrote it."""

    def __init__(self, rule_id: str, message: str, part: str = "condition") -> None:
        super().__init__(f'rule "{rule_id}": {message}')
        self.rule_id = rule_id
        self.message = message
        self.part = part
        """What is wrong: "condition" or "actions"."""


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    """A rule with its condition compiled and its actions read.

    ``expression`` is the CEL the library runs: the condition with any int/double
    arithmetic made explicit (see ``rules_check``); usually the condition itself.
    """

    rule: Rule
    expression: str
    program: cel.Program
    actions: tuple[CompiledAction, ...]
    uses: Uses
    fired_by: FiredBy

    @property
    def order_key(self) -> tuple[int, str]:
        return (self.rule.priority, self.rule.rule_id)


def compile_rule(rule: Rule) -> CompiledRule:
    """Check and compile ``rule``; raise RuleError saying what is wrong."""
    checked = _check_condition(rule.rule_id, rule.condition)
    program = _compile(rule.rule_id, checked.source)
    _try_on_probe(rule.rule_id, program)
    actions = []
    for number, action in enumerate(rule.actions, start=1):
        try:
            actions.append(compile_action(rule.stage, action.type, action.params))
        except ActionError as error:
            raise RuleError(rule.rule_id, f"action {number}: {error}", "actions") from None
    fired_by = FiredBy(rule.rule_id, rule.priority)
    return CompiledRule(rule, checked.source, program, tuple(actions), checked.uses, fired_by)


def _compile(rule_id: str, expression: str) -> cel.Program:
    try:
        return cel.compile(expression)
    except ValueError as error:
        raise RuleError(rule_id, _syntax_message(expression, str(error))) from None


def _syntax_message(expression: str, library_message: str) -> str:
    found = _SYNTAX_ERROR.search(library_message)
    if found is None:
        return f"syntax error: {library_message.splitlines()[0]}"
    line, column, problem = int(found[1]), int(found[2]), found[3].strip()
    where = f"column {column}" if "\n" not in expression else f"line {line}, column {column}"
    return f"syntax error at {where}: {problem}"


def _check_condition(rule_id: str, condition: str) -> Checked:
    if not condition.strip():
        raise RuleError(rule_id, "condition is empty (write true to always fire)")
    _compile(rule_id, condition)  # the library's parser is the judge of syntax
    try:
        checked = check(condition, CONTEXT_SCHEMA)
    except CheckError as error:
        raise RuleError(rule_id, f"{error} ({_where(condition, error.position)})") from None
    except ExprSyntaxError as error:
        where = _where(condition, error.position)
        raise RuleError(rule_id, f"unsupported syntax for a rule: {error} ({where})") from None
    if checked.type.name not in ("bool", "dyn"):
        raise RuleError(rule_id, f"condition must be a boolean, got {checked.type}")
    return checked


def _where(source: str, position: int) -> str:
    line = source.count("\n", 0, position) + 1
    column = position - (source.rfind("\n", 0, position) + 1) + 1
    return f"column {column}" if line == 1 else f"line {line}, column {column}"


def _try_on_probe(rule_id: str, program: cel.Program) -> None:
    try:
        result = program.execute(_PROBE.cel_context())
    except RuntimeError as error:
        # Unknown functions only show when run; other errors may depend on the order.
        if "Undefined variable or function" in str(error):
            raise RuleError(rule_id, _runtime_message(error)) from None
        return
    except Exception:
        # Errors such as a missing key depend on the order: judged per order, not here.
        return
    if not isinstance(result, bool):
        raise RuleError(rule_id, f"condition must be a boolean, got {_cel_type(result)}")


def _cel_type(value: Any) -> str:
    names = {int: "int", float: "double", str: "string", list: "list", dict: "map"}
    return names.get(type(value), type(value).__name__)


def _runtime_message(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"no such field or key {error}"
    # The library's messages end with general advice; the first sentence is the news.
    text = str(error).split(". ")[0].rstrip(".")
    return text[0].lower() + text[1:] if text else type(error).__name__


class RuleSet:
    """An immutable set of compiled rules, keyed by rule id."""

    __slots__ = ("_by_stage", "_rules", "_uses")

    def __init__(self, rules: Mapping[str, CompiledRule] | None = None) -> None:
        self._rules: Mapping[str, CompiledRule] = MappingProxyType(dict(rules or {}))
        # Evaluation order is fixed here, once per change, not once per order.
        self._by_stage: Mapping[RuleStage, tuple[CompiledRule, ...]] = {
            stage: tuple(
                sorted(
                    (r for r in self._rules.values() if r.rule.stage is stage and r.rule.enabled),
                    key=lambda compiled: compiled.order_key,
                )
            )
            for stage in RuleStage
        }
        self._uses: Uses = frozenset().union(*(r.uses for r in self._rules.values()))

    @classmethod
    def of(cls, rules: Iterable[Rule]) -> tuple[RuleSet, tuple[RuleError, ...]]:
        """A set of every valid rule of ``rules``, and the errors of the invalid ones."""
        rule_set, errors = cls(), []
        for rule in rules:
            try:
                rule_set = rule_set.with_rule(rule)
            except RuleError as error:
                errors.append(error)
        return rule_set, tuple(errors)

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def get(self, rule_id: str) -> Rule | None:
        compiled = self._rules.get(rule_id)
        return None if compiled is None else compiled.rule

    def rules(self, stage: RuleStage | None = None) -> tuple[Rule, ...]:
        """The rules held (disabled ones too), by stage and then in evaluation order."""
        ordered = sorted(
            self._rules.values(),
            key=lambda c: (list(RuleStage).index(c.rule.stage), c.order_key),
        )
        return tuple(c.rule for c in ordered if stage is None or c.rule.stage is stage)

    def with_rule(self, rule: Rule) -> RuleSet:
        """This set with ``rule`` added or replacing its older version.

        A version older than the one held is ignored (a replayed old edit must not
        win) and returns this same set. Raises RuleError if the rule is invalid.
        """
        held = self._rules.get(rule.rule_id)
        if held is not None and (rule.version < held.rule.version or rule == held.rule):
            return self
        compiled = compile_rule(rule)
        return RuleSet({**self._rules, rule.rule_id: compiled})

    def without(self, rule_id: str) -> RuleSet:
        """This set without ``rule_id`` (a tombstone); the same set if it is not held."""
        if rule_id not in self._rules:
            return self
        return RuleSet({key: value for key, value in self._rules.items() if key != rule_id})

    def evaluate(self, stage: RuleStage, context: RuleContext) -> StageDirectives:
        """What the rules of ``stage`` decide for the order of ``context``."""
        settings = Accumulator()
        fired: list[str] = []
        failures: list[RuleFailure] = []
        values = context.cel_context(self._uses)
        for compiled in self._by_stage[stage]:
            try:
                result = compiled.program.execute(values)
            except Exception as error:
                # Whatever the library raises, one bad condition must not stop an order.
                failures.append(RuleFailure(compiled.rule.rule_id, _runtime_message(error)))
                continue
            if result is not True:
                if result is not False:
                    message = f"condition gave {_cel_type(result)}, not bool"
                    failures.append(RuleFailure(compiled.rule.rule_id, message))
                continue
            rule = compiled.rule
            fired.append(rule.rule_id)
            for action in compiled.actions:
                settings.apply(action, compiled.fired_by)
            if rule.stop_processing:
                settings.explanation.append(f"{rule.rule_id!r} stopped further {stage} rules")
                break
        return build_directives(stage, settings, tuple(fired), tuple(failures))

    def routing(self, context: RuleContext) -> RoutingDirectives:
        result = self.evaluate(RuleStage.ROUTING, context)
        assert isinstance(result, RoutingDirectives)
        return result

    def packaging(self, context: RuleContext) -> PackagingDirectives:
        result = self.evaluate(RuleStage.PACKAGING, context)
        assert isinstance(result, PackagingDirectives)
        return result

    def marketing(self, context: RuleContext) -> MarketingDirectives:
        result = self.evaluate(RuleStage.MARKETING, context)
        assert isinstance(result, MarketingDirectives)
        return result

"""Operator-editable business rules: compiled once, evaluated per order and stage.

A rule (the contract's ``Rule`` record) has a CEL condition over the vocabulary of
``streams.core.rules.context`` and actions from ``streams.core.rules.actions``. A
``RuleSet`` holds compiled rules and never changes: adding or removing a rule returns
a new set, so an agent can swap sets between orders and an invalid rule, which raises
``RuleError`` when added, never replaces a valid one.

Conditions are evaluated by the ``cel`` library (package common-expression-language,
Rust-backed; no Python ``eval``). A rule is checked when it is added, in this order:
CEL syntax (the library's parser), the static type check of ``rules.check`` (unknown
fields and names, comparisons of the wrong types, a result that is not true/false),
a trial run on a made-up order (``probe_context``) that catches functions the library
lacks, and its actions' parameters.

A condition past a size limit of ``rules.expr`` (``MAX_CONDITION_CHARS`` characters,
``MAX_CONDITION_TOKENS`` tokens, nested ``MAX_DEPTH`` deep) is refused before the library or
the checker reads it: both read trees recursively, and a deep enough tree overflows a stack.
A panic of the library (a Rust bug, raised as a BaseException) is refused the same way. A
condition whose worst-case cost on one order (estimated by the checker, ``rules.cost``) is
above ``MAX_RULE_COST`` is refused before anything runs it, the trial run included.

Evaluation of a stage: enabled rules in priority order (lower first, ties by rule id);
a rule fires when its condition is true; a fired rule with ``stop_processing`` ends
the stage. A condition that fails on one order (say, indexing past the end of
``lines``) does not fire and is reported in the result's ``failures`` and to the set's
``watch``, which also hears of a condition that ran over ``EVALUATION_BUDGET`` on one order.
An order past a cap of ``rules.context`` that the set's rules read is judged by none of them:
its routing directives hold it, with the reason.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import cel

from schemas.enums import RuleStage
from schemas.models import Rule
from streams.core.rules.actions import (
    Accumulator,
    ActionError,
    CompiledAction,
    FiredBy,
    compile_action,
)
from streams.core.rules.check import Checked, CheckError, check
from streams.core.rules.context import CONTEXT_SCHEMA, RuleContext, Uses, probe_context
from streams.core.rules.cost import too_costly
from streams.core.rules.directives import (
    SLOW,
    MarketingDirectives,
    PackagingDirectives,
    RoutingDirectives,
    RuleFailure,
    StageDirectives,
    build_directives,
)
from streams.core.rules.expr import MAX_DEPTH, ExprSyntaxError, ExprTooLarge, measure

_SYNTAX_ERROR = re.compile(r"<input>:(\d+):(\d+): Syntax error: (.*)")
_PROBE = probe_context()
EVALUATION_BUDGET = 0.005
"""Seconds one condition may take on one order before it is reported as slow (the cost limit
keeps every accepted condition under about 0.5 ms; a pause of the whole process shows too)."""


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
    arithmetic made explicit (see ``rules.check``); usually the condition itself.
    """

    rule: Rule
    expression: str
    program: cel.Program
    actions: tuple[CompiledAction, ...]
    uses: Uses
    fired_by: FiredBy
    cost: int = 0
    """Steps it takes on one order at worst (``rules.cost``)."""

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
    return CompiledRule(
        rule, checked.source, program, tuple(actions), checked.uses, fired_by, checked.cost.steps
    )


def _compile(rule_id: str, expression: str) -> cel.Program:
    try:
        return cel.compile(expression)
    except ValueError as error:
        raise RuleError(rule_id, _syntax_message(expression, str(error))) from None
    except BaseException as error:
        if not _is_panic(error):
            raise
        raise RuleError(rule_id, f"the CEL library cannot compile it ({error})") from None


def _is_panic(error: BaseException) -> bool:
    # pyo3 raises a Rust panic as PanicException, a BaseException that `except Exception`
    # lets through; its class is made at run time, so it is known by name.
    return type(error).__name__ == "PanicException"


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
    try:
        measure(condition)  # before the library's parser, which a deep tree can crash
    except ExprTooLarge as error:
        raise RuleError(rule_id, str(error)) from None
    _compile(rule_id, condition)  # the library's parser is the judge of syntax
    try:
        checked = check(condition, CONTEXT_SCHEMA)
    except ExprTooLarge as error:
        raise RuleError(rule_id, str(error)) from None
    except RecursionError:
        # Cannot happen within the limits; if it ever does, it is this rule's fault alone.
        message = f"condition is nested too deeply to check; the limit is {MAX_DEPTH}"
        raise RuleError(rule_id, message) from None
    except CheckError as error:
        raise RuleError(rule_id, f"{error} ({_where(condition, error.position)})") from None
    except ExprSyntaxError as error:
        where = _where(condition, error.position)
        raise RuleError(rule_id, f"unsupported syntax for a rule: {error} ({where})") from None
    if checked.type.name not in ("bool", "dyn"):
        raise RuleError(rule_id, f"condition must be a boolean, got {checked.type}")
    refusal = too_costly(checked.cost)
    if refusal is not None:  # before the trial run, which would pay that cost
        raise RuleError(rule_id, refusal)
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
    except BaseException as error:
        if not _is_panic(error):
            raise
        raise RuleError(rule_id, f"the CEL library fails running it ({error})") from None
    if not isinstance(result, bool):
        raise RuleError(rule_id, f"condition must be a boolean, got {_cel_type(result)}")


def _cel_type(value: Any) -> str:
    names = {int: "int", float: "double", str: "string", list: "list", dict: "map"}
    return names.get(type(value), type(value).__name__)


def _runtime_message(error: BaseException) -> str:
    if isinstance(error, KeyError):
        return f"no such field or key {error}"
    # The library's messages end with general advice; the first sentence is the news.
    text = str(error).split(". ")[0].rstrip(".")
    return text[0].lower() + text[1:] if text else type(error).__name__


Listener = Callable[[RuleFailure], None]


class RuleWatch:
    """Who hears of a condition that failed or ran slow on an order (the worker's log and
    metrics), and how slow is slow; shared by a rule set and every set made from it."""

    def __init__(
        self, budget: float = EVALUATION_BUDGET, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.budget = budget
        self.clock = clock
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def report(self, failure: RuleFailure) -> None:
        for listener in self._listeners:
            with contextlib.suppress(Exception):  # telling must never change what an order gets
                listener(failure)


class RuleSet:
    """An immutable set of compiled rules, keyed by rule id."""

    __slots__ = ("_by_stage", "_judged", "_rules", "_uses", "watch")

    def __init__(
        self, rules: Mapping[str, CompiledRule] | None = None, watch: RuleWatch | None = None
    ) -> None:
        self.watch = watch or RuleWatch()
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
        # What the rules that run read: an order past a cap of it is not theirs to judge.
        self._judged: Uses = frozenset().union(
            *(r.uses for r in self._rules.values() if r.rule.enabled)
        )

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
        return RuleSet({**self._rules, rule.rule_id: compiled}, self.watch)

    def without(self, rule_id: str) -> RuleSet:
        """This set without ``rule_id`` (a tombstone); the same set if it is not held."""
        if rule_id not in self._rules:
            return self
        kept = {key: value for key, value in self._rules.items() if key != rule_id}
        return RuleSet(kept, self.watch)

    def too_large(self, context: RuleContext) -> str | None:
        """Why the rules of this set cannot judge the order of ``context``, or None."""
        return context.too_large(self._judged)

    def evaluate(self, stage: RuleStage, context: RuleContext) -> StageDirectives:
        """What the rules of ``stage`` decide for the order of ``context``."""
        settings = Accumulator()
        fired: list[str] = []
        failures: list[RuleFailure] = []
        too_large = self.too_large(context)  # whichever stage reads it: routing holds the order
        if too_large is not None:
            return _unjudged(stage, too_large)
        if not self._by_stage[stage]:
            return build_directives(stage, settings, (), ())
        values = context.cel_context(self._uses)
        for compiled in self._by_stage[stage]:
            result = self._run(compiled, values)
            if isinstance(result, RuleFailure):
                failures.append(result)
                self.watch.report(result)
                continue
            if not result:
                continue
            rule = compiled.rule
            fired.append(rule.rule_id)
            for action in compiled.actions:
                settings.apply(action, compiled.fired_by)
            if rule.stop_processing:
                settings.explanation.append(f"{rule.rule_id!r} stopped further {stage} rules")
                break
        return build_directives(stage, settings, tuple(fired), tuple(failures))

    def _run(self, compiled: CompiledRule, values: cel.Context) -> bool | RuleFailure:
        """Whether the condition holds on the order; a RuleFailure when it cannot say."""
        rule_id = compiled.rule.rule_id
        started = self.watch.clock()
        try:
            result = compiled.program.execute(values)
        except BaseException as error:
            # Whatever the library raises, a panic too, one condition must not stop an order.
            if not isinstance(error, Exception) and not _is_panic(error):
                raise
            return RuleFailure(rule_id, _runtime_message(error))
        spent = self.watch.clock() - started
        if spent > self.watch.budget:
            # Reported, not dropped: the time is spent, and a verdict that depended on how busy
            # the machine was (a garbage collection) would route the same order two ways.
            message = (
                f"took {spent * 1000:.1f} ms on one order, over the budget of "
                f"{self.watch.budget * 1000:g} ms"
            )
            self.watch.report(RuleFailure(rule_id, message, SLOW))
        if result is True or result is False:
            return result
        return RuleFailure(rule_id, f"condition gave {_cel_type(result)}, not bool")

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


def _unjudged(stage: RuleStage, reason: str) -> StageDirectives:
    """The result of a stage whose rules cannot judge the order: routing holds it."""
    if stage is RuleStage.ROUTING:
        return RoutingDirectives(hold_reason=reason, explanation=(f"rules not run: {reason}",))
    return build_directives(stage, Accumulator(), (), ())

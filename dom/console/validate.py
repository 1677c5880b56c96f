"""What the console accepts from a page, checked on the server: ids in paths, filters, and
rule forms. Everything a browser sends is untrusted; a problem is reported per field, in
words an operator understands, and a rule is judged by the same ``compile_rule`` the
workers use (CEL, never ``eval``), with the same limits: length, nesting and worst-case cost."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from schemas.enums import Channel, RuleStage
from schemas.models import OrderStatus, Rule, RuleAction
from streams.core.rules.actions import ACTIONS
from streams.core.rules.expr import MAX_CONDITION_CHARS
from streams.core.rules.ruleset import RuleError, compile_rule

KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,79}")
"""A sku or an order id as the console lets one be looked up (no slashes, no spaces)."""
RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
AUTHOR = re.compile(r"[\w][\w .@'\-]{0,63}")
MAX_CONDITION = MAX_CONDITION_CHARS  # the workers' limit: a rule the CLI publishes can be edited
MAX_DESCRIPTION = 500
MAX_ACTIONS = 20
MAX_PARAM = 500
PRIORITY_RANGE = (0, 1_000_000)
MAX_DRY_RUN_ORDERS = 2000
CHANNELS = frozenset(c.value for c in Channel)
STATUSES = frozenset(s.value for s in OrderStatus)


class InputError(ValueError):
    """Input the console refuses; ``errors`` names each field and what is wrong with it."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def problem(field: str, message: str) -> InputError:
    return InputError([{"field": field, "message": message}])


def key(value: str, what: str) -> str:
    """A sku or order id from a path; InputError when it cannot be one."""
    value = value.strip()
    if not KEY.fullmatch(value):
        raise problem(
            what,
            f"{what} must be 1 to 80 letters, digits, '.', '_', ':' or '-' "
            "(starting with a letter or digit)",
        )
    return value


def choice(value: str | None, allowed: frozenset[str], what: str) -> str | None:
    """An optional filter value from a fixed list (empty: no filter)."""
    if not value:
        return None
    value = value.strip().upper()
    if value not in allowed:
        raise problem(what, f"{what} must be one of {', '.join(sorted(allowed))}")
    return value


def bounded_int(raw: Any, what: str, low: int, high: int, default: int) -> int:
    """A whole number in [low, high] from a query string or JSON; the default when absent."""
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        raise problem(what, f"{what} must be a whole number")
    try:
        value = int(raw)
    except (TypeError, ValueError, OverflowError):  # OverflowError: JSON's Infinity
        raise problem(what, f"{what} must be a whole number, not {str(raw)[:20]!r}") from None
    if not low <= value <= high:
        raise problem(what, f"{what} must be between {low} and {high}")
    return value


def author(raw: Any) -> str:
    """Who makes a change: required, so every change records a person."""
    if not isinstance(raw, str) or not raw.strip():
        raise problem("updated_by", "your name is required: every change records who made it")
    value = raw.strip()
    if not AUTHOR.fullmatch(value):
        raise problem(
            "updated_by",
            "your name must be 1 to 64 letters, digits, spaces, '.', '@', \"'\" or '-'",
        )
    return value


@dataclass(frozen=True, slots=True)
class RuleForm:
    """A rule as the form describes it, before it gets a version and an author."""

    rule_id: str
    stage: RuleStage
    priority: int
    condition: str
    actions: tuple[RuleAction, ...]
    enabled: bool
    stop_processing: bool
    description: str | None

    def rule(self, *, version: int, updated_by: str, now: datetime | None = None) -> Rule:
        return Rule(
            rule_id=self.rule_id,
            version=version,
            stage=self.stage,
            priority=self.priority,
            condition=self.condition,
            actions=self.actions,
            enabled=self.enabled,
            stop_processing=self.stop_processing,
            description=self.description,
            updated_by=updated_by,
            updated_at=now or datetime.now(UTC),
        )


def rule_form(body: Any) -> RuleForm:
    """The rule of a form's JSON body, its fields checked one by one (all problems at once),
    then compiled as a worker would compile it; InputError says what is wrong."""
    if not isinstance(body, dict):
        raise problem("body", "expected a JSON object with the rule's fields")
    errors: list[dict[str, str]] = []

    def field(name: str, read: Any) -> Any:
        try:
            return read(body.get(name))
        except InputError as error:
            errors.extend(error.errors)
            return None

    rule_id = field("rule_id", _rule_id)
    stage = field("stage", _stage)
    priority = field("priority", lambda v: bounded_int(v, "priority", *PRIORITY_RANGE, 100))
    condition = field("condition", _condition)
    actions = field("actions", _actions)
    description = field("description", _description)
    enabled = field("enabled", lambda v: _flag(v, "enabled", True))
    stop = field("stop_processing", lambda v: _flag(v, "stop_processing", False))
    if errors:
        raise InputError(errors)
    form = RuleForm(rule_id, stage, priority, condition, actions, enabled, stop, description)
    check_rule(form.rule(version=1, updated_by="console"))
    return form


def check_rule(rule: Rule) -> None:
    """Compile ``rule`` as every worker would; InputError on the condition or the actions."""
    try:
        compile_rule(rule)
    except RuleError as error:
        raise problem(error.part, error.message) from None


def _rule_id(raw: Any) -> str:
    if not isinstance(raw, str) or not RULE_ID.fullmatch(raw.strip()):
        raise problem(
            "rule_id",
            "rule id must be 1 to 64 letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit)",
        )
    return raw.strip()


def _stage(raw: Any) -> RuleStage:
    try:
        return RuleStage(str(raw).strip().upper())
    except ValueError:
        raise problem("stage", "stage must be ROUTING, PACKAGING or MARKETING") from None


def _condition(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise problem("condition", "condition is empty (write true to always fire)")
    if len(raw) > MAX_CONDITION:
        message = f"condition is {len(raw):,} characters long; the limit is {MAX_CONDITION:,}"
        raise problem("condition", message)
    return raw.strip()


def _description(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > MAX_DESCRIPTION:
        raise problem("description", f"description must be text of at most {MAX_DESCRIPTION}")
    return raw.strip() or None


def _flag(raw: Any, what: str, default: bool) -> bool:
    if raw is None:
        return default
    if not isinstance(raw, bool):
        raise problem(what, f"{what} must be true or false")
    return raw


def _actions(raw: Any) -> tuple[RuleAction, ...]:
    if not isinstance(raw, list) or not raw:
        raise problem("actions", "add at least one action")
    if len(raw) > MAX_ACTIONS:
        raise problem("actions", f"at most {MAX_ACTIONS} actions")
    actions = []
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise problem("actions", f"action {number}: expected {{type, params}}")
        action_type = item["type"].strip()
        if action_type not in ACTIONS:
            raise problem("actions", f"action {number}: unknown action {action_type[:40]!r}")
        params = item.get("params") or {}
        if not isinstance(params, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_PARAM
            for k, v in params.items()
        ):
            raise problem("actions", f"action {number}: parameters must be short texts")
        try:
            actions.append(RuleAction(type=action_type, params=params))
        except ValidationError:
            raise problem("actions", f"action {number}: not a valid action") from None
    return tuple(actions)

"""Rule files: the YAML operators write, read into contract ``Rule`` records and back.

A file holds a list under ``rules``::

    rules:
      - id: high-value-protective       # required: the rule id
        stage: PACKAGING                # required: ROUTING, PACKAGING or MARKETING
        priority: 10                    # lower runs first; default 100
        when: order.total >= 500        # required: a CEL condition (see rules/context.py)
        then:                           # the actions, in order (see rules/actions.py)
          - set_packaging: PROTECTIVE   # an action's one parameter, given directly,
          - add_note: {text: Fragile}   # or by name
        description: High-value orders get protective packaging
        stop: false                     # true: a firing ends this stage's rules
        enabled: true
        version: 1

Every rule is checked as ``RuleSet.with_rule`` would check it (size limits included: see
``streams.core.rules.expr``), so a file that loads is a file whose rules all work. All
problems of a file are reported at once, each with the file, line, rule and what is wrong.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import yaml
from pydantic import ValidationError

from schemas.models import Rule, RuleAction
from streams.core.rules.actions import ACTIONS
from streams.core.rules.ruleset import RuleError, compile_rule

_FIELDS = ("id", "stage", "priority", "when", "then", "description", "stop", "enabled", "version")
_ALIASES = {"stop_processing": "stop", "condition": "when", "actions": "then", "rule_id": "id"}
DEFAULT_PRIORITY = 100


class RuleFileError(ValueError):
    """A rule file with problems; ``problems`` has one line per problem."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n" + "\n".join(self.problems))


def load_rule_file(text: str, source: str, *, updated_by: str, now: datetime) -> list[Rule]:
    """The rules of a YAML rule file; raise RuleFileError naming every problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise RuleFileError(source, [f"{where}: not valid YAML: {error.problem}"]) from None
    except RecursionError:
        # PyYAML reads nested lists and mappings recursively; no rule file nests like that.
        raise RuleFileError(source, [f"{source}: YAML nested too deeply to read"]) from None
    entries, nodes = _rule_entries(data, root)
    if entries is None:
        raise RuleFileError(source, [f"{source}: expected a list of rules under 'rules:'"])
    rules: list[Rule] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, (entry, node) in enumerate(zip(entries, nodes, strict=True), start=1):
        lines = _lines(node)
        label = _label(entry, index)
        try:
            rule = _rule(entry, updated_by=updated_by, now=now)
            compile_rule(rule)
        except _EntryError as error:
            line = lines.get(error.field, lines.get("", 0))
            problems.append(f"{source}:{line}: {label}: {error}")
            continue
        except RuleError as error:
            field = "when" if error.part == "condition" else "then"
            problems.append(f"{source}:{lines.get(field, lines[''])}: {label}: {error.message}")
            continue
        except Exception as error:  # a bug of the checker: still this rule's problem, reported
            problems.append(f"{source}:{lines['']}: {label}: could not be checked: {error!r}")
            continue
        if rule.rule_id in seen:
            problems.append(f"{source}:{lines['']}: {label}: the id is used by an earlier rule")
        seen.add(rule.rule_id)
        rules.append(rule)
    if problems:
        raise RuleFileError(source, problems)
    return rules


class _EntryError(ValueError):
    """A problem with one key of a rule entry (``field``, "" for the entry itself)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _rule_entries(data: Any, root: yaml.Node | None) -> tuple[list[Any] | None, list[yaml.Node]]:
    if isinstance(data, dict) and isinstance(root, yaml.MappingNode):
        data = data.get("rules")
        root = next((v for k, v in root.value if k.value == "rules"), None)
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        return None, []
    return data, list(root.value)


def _lines(node: yaml.Node) -> dict[str, int]:
    """1-based line of the entry ("") and of the value of each of its keys."""
    lines = {"": node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[_ALIASES.get(str(key.value), str(key.value))] = value.start_mark.line + 1
    return lines


def _label(entry: Any, index: int) -> str:
    if isinstance(entry, dict) and entry.get("id") is not None:
        return f'rule "{entry["id"]}"'
    return f"rule #{index}"


def _rule(entry: Any, *, updated_by: str, now: datetime) -> Rule:
    if not isinstance(entry, dict):
        raise _EntryError("", "expected a mapping with id, stage, when and then")
    fields = {_ALIASES.get(str(key), str(key)): value for key, value in entry.items()}
    for key in fields:
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, _FIELDS, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise _EntryError(key, f"unknown key {key!r} ({hint}keys: {', '.join(_FIELDS)})")
    for key in ("id", "stage", "when"):
        if fields.get(key) is None:
            raise _EntryError("", f"missing {key!r}")
    values = {
        "rule_id": _scalar(fields["id"], "id"),
        "version": fields.get("version", 1),
        "stage": _scalar(fields["stage"], "stage").upper(),
        "priority": fields.get("priority", DEFAULT_PRIORITY),
        "condition": _scalar(fields["when"], "when"),
        "actions": _actions(fields.get("then")),
        "enabled": fields.get("enabled", True),
        "stop_processing": fields.get("stop", False),
        "description": fields.get("description"),
        "updated_by": updated_by,
        "updated_at": now,
    }
    try:
        return Rule.model_validate(values, strict=False)
    except ValidationError as error:
        first = error.errors()[0]
        key = _FILE_KEYS.get(str(first["loc"][0]), str(first["loc"][0])) if first["loc"] else ""
        message = str(first["msg"])
        raise _EntryError(key, f"{key}: {message[:1].lower()}{message[1:]}") from None


_FILE_KEYS = {"rule_id": "id", "condition": "when", "actions": "then", "stop_processing": "stop"}


def _scalar(value: Any, field: str = "then") -> str:
    # YAML reads `when: true` as a boolean and `max: 2` as a number; CEL wants text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        raise _EntryError(field, f"{field}: expected a single value, got {value!r}")
    return str(value)


def _actions(raw: Any) -> list[RuleAction]:
    if raw is None:
        raise _EntryError("then", "missing 'then': the list of actions")
    if not isinstance(raw, list):
        raw = [raw]
    return [_action(item, number) for number, item in enumerate(raw, start=1)]


def _action(item: Any, number: int) -> RuleAction:
    if not isinstance(item, dict) or len(item) != 1:
        raise _EntryError("then", f"action {number}: write it as `- action_name: value`")
    ((name, argument),) = item.items()
    spec = ACTIONS.get(str(name))
    if isinstance(argument, dict):
        params = {str(key): _scalar(value) for key, value in argument.items()}
    elif spec is not None and argument is not None:
        params = {spec.param: _scalar(argument)}
    else:
        params = {}
    return RuleAction(type=str(name), params=params)


def dump_rules(rules: Iterable[Rule]) -> str:
    """``rules`` as a rule file that ``load_rule_file`` reads back to equal rules."""
    entries = [_entry(rule) for rule in rules]
    return yaml.dump(
        {"rules": entries}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )


class _Dumper(yaml.SafeDumper):
    """Indents lists under their key (``then:`` then ``  - action``), as people write."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _entry(rule: Rule) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": rule.rule_id,
        "stage": rule.stage.value,
        "priority": rule.priority,
        "when": rule.condition,
        "then": [_dumped_action(action.type, action.params) for action in rule.actions],
    }
    if rule.description is not None:
        entry["description"] = rule.description
    if rule.stop_processing:
        entry["stop"] = True
    if not rule.enabled:
        entry["enabled"] = False
    if rule.version != 1:
        entry["version"] = rule.version
    return entry


def _dumped_action(action_type: str, params: Mapping[str, str]) -> dict[str, Any]:
    spec = ACTIONS.get(action_type)
    if spec is not None and list(params) == [spec.param]:
        return {action_type: params[spec.param]}
    return {action_type: dict(params)}

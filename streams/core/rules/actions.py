"""The actions a rule can take, how their parameters are read, and how they combine.

Every action belongs to one stage and takes string parameters (the contract's
``RuleAction.params``); ``compile_action`` checks them when a rule is loaded so a typo
never reaches an order. When several fired rules touch the same setting, the outcome
is deterministic and explained:

- one-value settings (``hold``, ``force_location``, ``set_service_level``,
  ``set_packaging``): the first rule in evaluation order (lowest priority number, then
  rule id) wins; each later one is noted as overridden;
- list settings (exclusions, preferences, notes, inserts): accumulate in evaluation
  order, without duplicates;
- ``cap_shipments``: the smallest cap wins.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from schemas.enums import LocationKind, RuleStage, ServiceLevel

Value = str | int | tuple[str, ...]


class Combine(Enum):
    FIRST_WINS = "first wins"
    ACCUMULATE = "accumulate"
    MINIMUM = "minimum"


class ActionError(ValueError):
    """An action whose type or parameters are not valid."""


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One kind of action: its stage, the setting it writes and its one parameter."""

    stage: RuleStage
    setting: str
    combine: Combine
    param: str
    read: Callable[[str], Value]


@dataclass(frozen=True, slots=True)
class CompiledAction:
    """An action with its parameter already read into the value it sets."""

    type: str
    spec: ActionSpec
    value: Value


def _text(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


def _names(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not names:
        raise ValueError("must list at least one, separated by commas")
    return names


def _choice(choices: type[Enum]) -> Callable[[str], Value]:
    allowed = [str(member.value) for member in choices]

    def read(raw: str) -> tuple[str, ...]:
        values = tuple(part.upper() for part in _names(raw))
        for value in values:
            if value not in allowed:
                raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
        return values

    return read


def _one_choice(choices: type[Enum]) -> Callable[[str], Value]:
    read_many = _choice(choices)

    def read(raw: str) -> str:
        values = read_many(raw)
        if not isinstance(values, tuple) or len(values) != 1:
            raise ValueError("must be exactly one value")
        return values[0]

    return read


def _positive_int(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def _packaging(raw: str) -> str:
    return _text(raw).upper()


_R, _P, _M = RuleStage.ROUTING, RuleStage.PACKAGING, RuleStage.MARKETING
_FIRST, _ALL, _MIN = Combine.FIRST_WINS, Combine.ACCUMULATE, Combine.MINIMUM
ACTIONS: Mapping[str, ActionSpec] = {
    "hold": ActionSpec(_R, "hold_reason", _FIRST, "reason", _text),
    "exclude_locations": ActionSpec(_R, "excluded_locations", _ALL, "locations", _names),
    "exclude_location_kinds": ActionSpec(
        _R, "excluded_kinds", _ALL, "kinds", _choice(LocationKind)
    ),
    "prefer_locations": ActionSpec(_R, "preferred_locations", _ALL, "locations", _names),
    "force_location": ActionSpec(_R, "forced_location", _FIRST, "location", _text),
    "set_service_level": ActionSpec(
        _R, "service_level", _FIRST, "level", _one_choice(ServiceLevel)
    ),
    "cap_shipments": ActionSpec(_R, "max_shipments", _MIN, "max", _positive_int),
    "set_packaging": ActionSpec(_P, "packaging", _FIRST, "type", _packaging),
    "add_note": ActionSpec(_P, "notes", _ALL, "text", _text),
    "add_gift_insert": ActionSpec(_P, "gift_inserts", _ALL, "text", _text),
    "add_sample": ActionSpec(_M, "samples", _ALL, "sku", _names),
    "add_discount_code": ActionSpec(_M, "discount_codes", _ALL, "code", _names),
}
"""Every action type by name, as operators write it."""


def actions_of(stage: RuleStage) -> list[str]:
    return [name for name, spec in ACTIONS.items() if spec.stage is stage]


def compile_action(stage: RuleStage, action_type: str, params: Mapping[str, str]) -> CompiledAction:
    """Check an action of a ``stage`` rule and read its parameter; raise ActionError."""
    spec = ACTIONS.get(action_type)
    if spec is None:
        close = difflib.get_close_matches(action_type, ACTIONS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        known = ", ".join(actions_of(stage))
        raise ActionError(f"unknown action {action_type!r} ({hint}{stage} actions: {known})")
    if spec.stage is not stage:
        raise ActionError(
            f"action {action_type} belongs to {spec.stage} rules, not {stage} "
            f"({stage} actions: {', '.join(actions_of(stage))})"
        )
    unknown = sorted(set(params) - {spec.param})
    if unknown:
        raise ActionError(
            f"action {action_type}: unknown parameter {unknown[0]!r} (it takes {spec.param!r})"
        )
    if spec.param not in params:
        raise ActionError(f"action {action_type}: missing parameter {spec.param!r}")
    try:
        value = spec.read(params[spec.param])
    except ValueError as error:
        raise ActionError(f"action {action_type}: {spec.param} {error}") from None
    return CompiledAction(action_type, spec, value)


@dataclass(frozen=True, slots=True)
class FiredBy:
    """The rule an action came from, to explain who won a conflict."""

    rule_id: str
    priority: int


@dataclass
class Accumulator:
    """Settings of one stage as fired rules set them, in evaluation order."""

    singles: dict[str, tuple[Value, FiredBy]] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    minimums: dict[str, tuple[int, FiredBy]] = field(default_factory=dict)
    explanation: list[str] = field(default_factory=list)

    def apply(self, action: CompiledAction, by: FiredBy) -> None:
        spec, value = action.spec, action.value
        if spec.combine is Combine.ACCUMULATE:
            values = self.lists.setdefault(spec.setting, [])
            items = value if isinstance(value, tuple) else (str(value),)
            values.extend(item for item in items if item not in values)
        elif spec.combine is Combine.MINIMUM and isinstance(value, int):
            self._minimum(spec.setting, value, by)
        elif spec.setting not in self.singles:
            self.singles[spec.setting] = (value, by)
        else:
            kept, winner = self.singles[spec.setting]
            self.explanation.append(_overridden(spec.setting, value, by, kept, winner))

    def _minimum(self, setting: str, value: int, by: FiredBy) -> None:
        held = self.minimums.get(setting)
        if held is None:
            self.minimums[setting] = (value, by)
            return
        kept, loser = (held, (value, by)) if held[0] <= value else ((value, by), held)
        self.minimums[setting] = kept
        self.explanation.append(
            f"{_label(setting)} {loser[0]} from {loser[1].rule_id!r} set aside for "
            f"{kept[0]} from {kept[1].rule_id!r} (the smallest cap wins)"
        )

    def single(self, setting: str) -> Value | None:
        held = self.singles.get(setting)
        return None if held is None else held[0]

    def many(self, setting: str) -> tuple[str, ...]:
        return tuple(self.lists.get(setting, ()))

    def minimum(self, setting: str) -> int | None:
        held = self.minimums.get(setting)
        return None if held is None else held[0]


def _label(setting: str) -> str:
    return setting.replace("_", " ")


def _shown(value: Value) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


def _overridden(setting: str, value: Value, by: FiredBy, kept: Value, winner: FiredBy) -> str:
    if winner.priority != by.priority:
        reason = f"priority {winner.priority} < {by.priority}"
    else:
        reason = f"same priority {by.priority}, rule id {winner.rule_id!r} sorts first"
    return (
        f"{_label(setting)} {_shown(value)} from {by.rule_id!r} overridden by "
        f"{_shown(kept)} from {winner.rule_id!r} ({reason})"
    )

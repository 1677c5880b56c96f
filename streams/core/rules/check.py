"""Static type checking of rule conditions against the operator's vocabulary.

The CEL library evaluates conditions but has no checker for declared variables, so
this module infers the type of every node of the tree from ``rules.expr`` against a
schema (``rules.context.CONTEXT_SCHEMA``). A misspelt field, a comparison of a number
with text or a condition that is not true/false is then reported when a rule is
loaded, with the column it is at, instead of silently never firing.

It also makes numbers friendly: CEL compares ints with doubles but refuses to add or
multiply them, so ``order.total * 2`` or ``order.total + order.line_count`` would fail
on every order. The checker returns the source rewritten with the int side made a
double (``2`` becomes ``2.0``, ``x`` becomes ``double(x)``), which is what the operator
meant; nothing else in the expression changes.

And it estimates what the condition costs on one order at worst (``rules.cost``): types carry
the most items a list can hold (``CelType.bound``: the vocabulary's caps, a literal's length,
sums for ``+``), and the walk counts every node, comprehension and copy as it infers types.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce

import cel

from streams.core.rules.cost import (
    ITEM,
    NODE,
    PER_VALUE_COPIED,
    RESULT_ITEM,
    Cost,
    Meter,
    regex_cost,
)
from streams.core.rules.expr import Node, parse


@dataclass(frozen=True, slots=True)
class CelType:
    """A CEL type; a ``record`` is a map whose keys the schema fixes (``fields``)."""

    name: str
    elem: CelType | None = None
    fields: tuple[tuple[str, CelType], ...] = ()
    bound: int = dataclasses.field(default=1, compare=False)
    """A list's (or map's) most items; a dyn's most values. Not part of the type: a list of
    strings is one type however long; the cost estimate reads it."""

    def __str__(self) -> str:
        if self.name == "list" and self.elem is not None:
            return f"list({self.elem})"
        return self.name

    def field(self, name: str) -> CelType | None:
        return dict(self.fields).get(name)


BOOL, INT, UINT, DOUBLE = CelType("bool"), CelType("int"), CelType("uint"), CelType("double")
STRING, BYTES, NULL, DYN = CelType("string"), CelType("bytes"), CelType("null"), CelType("dyn")
TIMESTAMP, DURATION = CelType("timestamp"), CelType("duration")
VARIABLE, ALL = "$variable", "*"
_NUMBERS = frozenset({"int", "uint", "double"})
_ORDERED = _NUMBERS | {"string", "bytes", "timestamp", "duration", "bool"}
_MACROS = frozenset({"exists", "all", "exists_one", "filter", "map"})
_STRING_METHODS = frozenset({"contains", "startsWith", "endsWith", "matches"})
_CONVERSIONS = {"int": INT, "uint": UINT, "double": DOUBLE, "string": STRING}
_KNOWN_FUNCTIONS = sorted(
    {"size", "has", "timestamp", "duration", *_MACROS, *_STRING_METHODS, *_CONVERSIONS}
)


def list_of(elem: CelType, bound: int = 1) -> CelType:
    """A list of ``elem`` holding at most ``bound`` items."""
    return CelType("list", elem, (), bound)


def dyn(values: int) -> CelType:
    """A value of a type known only when it runs, holding at most ``values`` values."""
    return CelType("dyn", None, (), max(1, values))


def values(t: CelType) -> int:
    """The most values a value of type ``t`` holds: what copying or comparing it costs."""
    if t.name in ("list", "map"):
        return 1 + t.bound * values(t.elem or DYN)
    if t.fields:
        return 1 + sum(values(field) for _, field in t.fields)
    return t.bound if t.name == "dyn" else 1


def _join(a: CelType, b: CelType) -> CelType:
    """The type of a value that is either ``a`` or ``b``, with the larger bounds."""
    if a != b:
        return dyn(max(values(a), values(b)))
    if a.name in ("list", "map"):
        elem = _join(a.elem or DYN, b.elem or DYN)
        return CelType(a.name, elem, a.fields, max(a.bound, b.bound))
    return dyn(max(a.bound, b.bound)) if a.name == "dyn" else a


def record(name: str, **fields: CelType) -> CelType:
    return CelType(name, None, tuple(fields.items()))


class CheckError(ValueError):
    """A condition that cannot work; ``position`` is a 0-based offset into the source."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


@dataclass(frozen=True, slots=True)
class Checked:
    """What the check of a condition found.

    ``source`` is the condition with int/double arithmetic made explicit. ``uses`` names
    what it reads: ``(VARIABLE, name)`` for each variable, ``(record, field)`` for each
    field read, ``(record, ALL)`` where a record is used as a whole; it lets a context
    convert only what the rules read. ``cost`` is what it costs on one order at worst.
    """

    type: CelType
    source: str
    uses: frozenset[tuple[str, str]]
    cost: Cost


def check(source: str, variables: Mapping[str, CelType]) -> Checked:
    """Infer the type of ``source``; raise CheckError for the first problem found.

    ``parse`` raises ``rules.expr.ExprTooLarge`` first for a condition past a size limit, so
    the recursive walk below never goes deeper than ``rules.expr.MAX_DEPTH``.
    """
    checker = _Checker(source, variables)
    result = checker.infer(parse(source), {})
    rewritten = source
    for position, text in sorted(checker.edits, key=lambda edit: -edit[0]):
        rewritten = rewritten[:position] + text + rewritten[position:]
    return Checked(result, rewritten, frozenset(checker.uses), checker.meter.cost())


def _is_number(t: CelType) -> bool:
    return t.name in _NUMBERS


def _dyn(*types: CelType) -> bool:
    return any(t.name == "dyn" for t in types)


def _comparable(left: CelType, right: CelType) -> bool:
    if _dyn(left, right) or "null" in (left.name, right.name) or left.name == right.name:
        return True
    return _is_number(left) and _is_number(right)


def _is_record(t: CelType) -> bool:
    return bool(t.fields)


class _Checker:
    def __init__(self, source: str, variables: Mapping[str, CelType]) -> None:
        self.source = source
        self.variables = variables
        self.edits: list[tuple[int, str]] = []
        self.uses: set[tuple[str, str]] = set()
        self.meter = Meter()
        self._rules: dict[str, Callable[[Node, dict[str, CelType]], CelType]] = {
            "literal": lambda node, _: _LITERALS[node.name],
            "ident": self._ident,
            "select": self._select,
            "index": self._index,
            "call": self._call,
            "unary": self._unary,
            "binary": self._binary,
            "cond": self._cond,
            "list": self._list,
            "map": self._map,
        }

    def infer(self, node: Node, scope: dict[str, CelType], *, selected: bool = False) -> CelType:
        """The type of ``node``; ``selected`` when the caller only reads a field of it."""
        self.meter.add(NODE)
        found = self._rules[node.kind](node, scope)
        if _is_record(found) and not selected:
            self.uses.add((found.name, ALL))
        return found

    def _all(self, nodes: tuple[Node, ...], scope: dict[str, CelType]) -> list[CelType]:
        return [self.infer(node, scope) for node in nodes]

    def text(self, node: Node) -> str:
        return self.source[node.start : node.end]

    def short(self, node: Node, limit: int = 30) -> str:
        """The text of ``node``, shortened to ``limit`` characters for a message."""
        text = self.text(node)
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def describe(self, node: Node, t: CelType) -> str:
        return f"{self.text(node)} ({t})"

    def _ident(self, node: Node, scope: dict[str, CelType]) -> CelType:
        found = scope.get(node.name)
        if found is None and node.name in self.variables:
            found = self.variables[node.name]
            self.uses.add((VARIABLE, node.name))
        if found is None:
            known = ", ".join(sorted(self.variables))
            raise CheckError(f"unknown name {node.name} (known: {known})", node.start)
        return found

    def _select(self, node: Node, scope: dict[str, CelType]) -> CelType:
        (operand,) = node.args
        owner = self.infer(operand, scope, selected=True)
        if _dyn(owner):
            return owner
        if owner.name == "map":
            return dyn(values(owner.elem or DYN))
        if not _is_record(owner):
            message = f"{self.describe(operand, owner)} has no field {node.name}"
            raise CheckError(message, node.start)
        found = owner.field(node.name)
        if found is None:
            raise CheckError(self._unknown_field(operand, owner, node.name), node.start)
        self.uses.add((owner.name, node.name))
        return found

    def _unknown_field(self, operand: Node, owner: CelType, name: str) -> str:
        prefix = self.text(operand)
        names = [field for field, _ in owner.fields]
        known = ", ".join(f"{prefix}.{field}" for field in names)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {prefix}.{close[0]}? " if close else ""
        return f"unknown field {prefix}.{name} ({hint}known: {known})"

    def _index(self, node: Node, scope: dict[str, CelType]) -> CelType:
        owner, key = self._all(node.args, scope)
        if owner.name == "list" and (key.name in ("int", "uint") or _dyn(key)):
            return owner.elem or DYN
        if owner.name == "map" or _is_record(owner) or _dyn(owner):
            return dyn(values(owner))  # a part of it holds no more values than all of it
        operand, index = node.args
        message = f"cannot index {self.describe(operand, owner)} with {self.describe(index, key)}"
        raise CheckError(message, node.start)

    def _unary(self, node: Node, scope: dict[str, CelType]) -> CelType:
        (operand,) = node.args
        t = self.infer(operand, scope)
        wanted_ok = t.name == "bool" if node.name == "!" else _is_number(t)
        if not (wanted_ok or _dyn(t)):
            wanted = "a boolean" if node.name == "!" else "a number"
            message = f"{node.name!r} needs {wanted}, got {self.describe(operand, t)}"
            raise CheckError(message, node.start)
        return t

    def _cond(self, node: Node, scope: dict[str, CelType]) -> CelType:
        condition, then, otherwise = node.args
        self._expect_bool(condition, self.infer(condition, scope), "'?' condition")
        then_type, else_type = self.infer(then, scope), self.infer(otherwise, scope)
        return _join(then_type, else_type)

    def _list(self, node: Node, scope: dict[str, CelType]) -> CelType:
        types = self._all(node.args, scope)
        return list_of(reduce(_join, types) if types else DYN, len(types))

    def _map(self, node: Node, scope: dict[str, CelType]) -> CelType:
        # Its keys and values as one element type: only the cost estimate reads it.
        types = self._all(node.args, scope)
        return CelType("map", reduce(_join, types) if types else DYN, (), len(types) // 2)

    def _expect_bool(self, node: Node, t: CelType, where: str) -> None:
        if t.name != "bool" and not _dyn(t):
            message = f"{where} must be true/false, got {self.describe(node, t)}"
            raise CheckError(message, node.start)

    def _binary(self, node: Node, scope: dict[str, CelType]) -> CelType:
        left_node, right_node = node.args
        left, right = self.infer(left_node, scope), self.infer(right_node, scope)
        op = node.name
        if op in ("&&", "||"):
            self._expect_bool(left_node, left, f"each side of {op!r}")
            self._expect_bool(right_node, right, f"each side of {op!r}")
            return BOOL
        if op in ("==", "!=", "<", "<=", ">", ">="):
            self._compare(node, left, right)
            self.meter.add(min(values(left), values(right)))  # lists and maps: every value
            return BOOL
        if op == "in":
            self._membership(node, left, right)
            return BOOL
        return self._arithmetic(node, left, right)

    def _compare(self, node: Node, left: CelType, right: CelType) -> None:
        ordered = node.name not in ("==", "!=")
        ok = _comparable(left, right)
        if ordered and not _dyn(left, right):
            ok = ok and left.name in _ORDERED and right.name != "null"
        if not ok:
            left_node, right_node = node.args
            message = (
                f"cannot compare {self.describe(left_node, left)} "
                f"with {self.describe(right_node, right)} using {node.name!r}"
            )
            raise CheckError(message, node.operator_at)

    def _membership(self, node: Node, left: CelType, right: CelType) -> None:
        right_node = node.args[1]
        if right.name == "list":
            # compared with every item, each comparison as costly as the smaller value
            each = min(values(left), values(right.elem or DYN))
            self.meter.add(right.bound * each, self.short(node, 60))
        elif _dyn(right):
            self.meter.add(right.bound)
        if right.name == "list" and _comparable(left, right.elem or DYN):
            return
        if right.name == "map" or (_dyn(right) and right.name != "list"):
            return
        if right.name == "string":
            hint = f"; to look inside text use {self.text(right_node)}.contains(...)"
        else:
            hint = ""
        message = (
            f"'in' needs a list holding {left} on its right, "
            f"got {self.describe(right_node, right)}{hint}"
        )
        raise CheckError(message, node.operator_at)

    def _arithmetic(self, node: Node, left: CelType, right: CelType) -> CelType:
        if _dyn(left, right):
            result = dyn(values(left) + values(right))  # perhaps two lists joined: a copy
            self.meter.add(values(result))
            return result
        if _is_number(left) and _is_number(right):
            return self._numbers(node, left, right)
        if left == right and node.name == "+" and left.name == "list":
            joined = list_of(_join(left.elem or DYN, right.elem or DYN), left.bound + right.bound)
            self.meter.add(values(joined), self.short(node, 60))  # a copy of both
            return joined
        if left == right and node.name == "+" and left.name in ("string", "bytes"):
            return left
        if {left.name, right.name} <= {"timestamp", "duration"} and node.name in "+-":
            both_times = left.name == right.name == "timestamp"
            return DURATION if both_times else TIMESTAMP
        left_node, right_node = node.args
        message = (
            f"cannot apply {node.name!r} to {self.describe(left_node, left)} "
            f"and {self.describe(right_node, right)}"
        )
        raise CheckError(message, node.operator_at)

    def _numbers(self, node: Node, left: CelType, right: CelType) -> CelType:
        if left != right:
            # CEL refuses int * double; the operator means a decimal calculation.
            left_node, right_node = node.args
            if left.name != "double":
                self._make_double(left_node)
            if right.name != "double":
                self._make_double(right_node)
            left = right = DOUBLE
        if node.name == "%" and left.name == "double":
            message = f"'%' needs whole numbers, got {self.text(node)} with decimals"
            raise CheckError(message, node.operator_at)
        return left

    def _make_double(self, node: Node) -> None:
        if node.kind == "literal" and self.text(node).isdigit():
            self.edits.append((node.end, ".0"))
        else:
            self.edits.extend(((node.end, ")"), (node.start, "double(")))

    def _call(self, node: Node, scope: dict[str, CelType]) -> CelType:
        if node.name in _MACROS and node.target is not None:
            return self._macro(node, scope)
        if node.name == "has" and node.target is None:
            return self._has(node, scope)
        target = None if node.target is None else self.infer(node.target, scope)
        args = self._all(node.args, scope)
        if node.name == "matches" and node.target is not None and len(node.args) == 1:
            self._pattern(node, node.args[0])
        subject = [target] if target is not None else []
        return self._function(node, [*subject, *args])

    def _pattern(self, node: Node, pattern: Node) -> None:
        """matches() compiles its pattern at every call, so the pattern is priced here, and
        must be written in the rule: one read from the order could cost anything."""
        if pattern.kind != "literal" or pattern.name != "string":
            raise CheckError(
                "matches() needs its pattern written in the rule, in quotes "
                "(it is compiled at every call)",
                pattern.start,
            )
        try:
            text = cel.evaluate(self.text(pattern), {})
        except Exception:  # the library compiled the whole condition: cannot happen
            raise CheckError("cannot read the pattern of matches()", pattern.start) from None
        self.meter.add(regex_cost(str(text)), self.short(node, 60))

    def _has(self, node: Node, scope: dict[str, CelType]) -> CelType:
        if len(node.args) != 1 or node.args[0].kind != "select":
            raise CheckError("has() needs a field, like has(customer.tier)", node.start)
        self.infer(node.args[0], scope)
        return BOOL

    def _macro(self, node: Node, scope: dict[str, CelType]) -> CelType:
        assert node.target is not None
        owner = self.infer(node.target, scope)
        if len(node.args) != 2 or node.args[0].kind != "ident":
            message = (
                f"{node.name}() needs a name and an expression, like {node.name}(l, l.fragile)"
            )
            raise CheckError(message, node.start)
        if owner.name not in ("list", "map", "dyn"):
            message = f"{node.name}() needs a list, got {self.describe(node.target, owner)}"
            raise CheckError(message, node.start)
        element = (owner.elem or DYN) if owner.name == "list" else dyn(values(owner))
        body_node = node.args[1]
        items, where = owner.bound, f"{self.short(node.target)}.{node.name}"
        part = f"{where} (up to {items:,} items)"
        self.meter.add(items * (ITEM + values(element)), part)  # each item is copied
        with self.meter.loop(where, items):
            body = self.infer(body_node, {**scope, node.args[0].name: element})
        if node.name in ("map", "filter"):
            # The library copies the result so far at every item: quadratic.
            kept = body if node.name == "map" else element
            copies = items * (items + 1) // 2
            self.meter.add(copies * (RESULT_ITEM + PER_VALUE_COPIED * values(kept)), part)
        if node.name == "map":
            return list_of(body, items)
        self._expect_bool(body_node, body, f"the expression of {node.name}()")
        return owner if node.name == "filter" else BOOL

    def _function(self, node: Node, args: list[CelType]) -> CelType:
        name, arity = node.name, len(args)
        if name == "size" and arity == 1 and args[0].name in ("string", "bytes", "list", "map"):
            return INT
        strings = all(t.name == "string" or _dyn(t) for t in args)
        if name in _STRING_METHODS and node.target is not None and arity == 2 and strings:
            return BOOL
        if name in _CONVERSIONS and node.target is None and arity == 1:
            return _CONVERSIONS[name]
        if name in ("timestamp", "duration") and arity == 1 and args[0].name == "string":
            return TIMESTAMP if name == "timestamp" else DURATION
        if any(_dyn(t) for t in args) and name in _KNOWN_FUNCTIONS:
            return DYN
        if name in _STRING_METHODS and node.target is not None and args[0].name == "list":
            hint = f'; to test a list use "..." in {self.text(node.target)}'
            raise CheckError(f"{name}() works on text, not on a list{hint}", node.start)
        if name not in _KNOWN_FUNCTIONS:
            known = ", ".join(_KNOWN_FUNCTIONS)
            raise CheckError(f"unknown function {name}() (available: {known})", node.start)
        given = ", ".join(str(t) for t in args)
        raise CheckError(f"{name}() does not take ({given})", node.start)


_LITERALS: dict[str, CelType] = {
    "int": INT,
    "uint": UINT,
    "double": DOUBLE,
    "string": STRING,
    "bytes": BYTES,
    "bool": BOOL,
    "null": NULL,
}

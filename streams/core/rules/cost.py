"""The worst-case cost of a rule condition, estimated before the rule goes live.

A published rule runs on every order, on the worker's event loop, and the CEL library cannot
be interrupted once it evaluates (it holds Python's interpreter lock too): five nested
``lines.all(...)`` over a list took 17 s to check, and would have taken as long on every order.
So the checker (``rules.check``) estimates what a condition costs on the largest order the rules
judge (``rules.context.MAX_RULE_LINES`` lines and the tag caps), and ``compile_rule`` refuses a
condition above ``MAX_RULE_COST``, on every path a rule takes (command line, console, rules
topic), before anything runs it.

The unit is a *step*: one node of the condition evaluated once, or one value copied. Measured on
the library (common-expression-language 0.10, on the 2 shared cores the pipeline is benchmarked
on, where a worker spends about 2 ms of CPU per order), a step takes 5 to 65 ns (more when the
machine is busy), 50 ns for the copies that dominate large costs. What the estimate counts:

- every node, once per run of the expression it is in;
- a comprehension (``exists``, ``all``, ``exists_one``, ``filter``, ``map``) runs its expression
  once per item of its list, at most the list's bound: nesting multiplies;
- each item a comprehension visits is copied first: 2 steps plus one per value it holds (a
  line with its tags is about 30 values);
- ``filter`` and ``map`` copy their growing result at every item: n(n+1)/2 item copies, so
  they are quadratic in the list's length (100 lines filtered: 27 ms);
- ``x in list`` compares with every item; ``==`` on lists and maps compares, and ``+`` on lists
  copies, every value;
- ``matches()`` compiles its pattern at every call, which costs from 2 µs (``"^9"``) to 40 ms
  (``"\\\\p{L}{200}"``): see ``regex_cost``. Its pattern must be written in the rule.

Not counted: the length of texts (``contains`` scans 100 KB in 6 µs) and conversions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

MAX_RULE_COST = 6_000
"""The most steps a condition may cost on one order: 0.3 ms, 0.4 ms at the dearest step
measured. Everyday rules cost 5 (``order.total > 500``) to 3,400 (``lines.exists(l, l.hazmat)``
on 100 lines: 0.15 ms)."""

NODE = 1
"""Evaluating one node of the condition once."""
ITEM = 2
"""Visiting one item of a comprehension, besides copying its values (one step each)."""
RESULT_ITEM = 4
"""Copying one item of a growing filter/map result, besides its values..."""
PER_VALUE_COPIED = 4
"""... at this many steps each (maps are dear to copy: 1 to 4.5 µs for one of 1 to 9 keys)."""
_HUGE = 10**15
"""Past this, the exact figure (up to 100^64) tells the operator nothing more."""

REGEX_BASE = 100
"""Compiling the simplest pattern (``"a"``: 2 µs, ``"^9"``: 8 µs)."""
_REGEX_ESCAPES = {
    # Unicode classes are large automata: \w alone takes 220 µs to compile, \d 40 µs.
    "w": 3_500,
    "W": 3_500,
    "p": 3_500,
    "P": 3_500,
    "b": 3_500,
    "B": 3_500,
    "d": 400,
    "D": 900,
    "s": 250,
    "S": 400,
}
_REGEX_LITERAL = 10
_REGEX_DOT = 150
_REGEX_CLASS = 30
_REGEX_NEGATED = 400
_REGEX_GROUP = 50
_REGEX_ALTERNATIVE = 60
_REGEX_IGNORE_CASE = 300
_REGEX_CASELESS_FACTOR = 5
UNICODE_HINT = (
    "\\w, \\d, \\s, \\b and \\p{...} are Unicode classes, rebuilt at every call: "
    "write [A-Za-z0-9_], [0-9] or [ \\t] instead"
)


@dataclass(frozen=True, slots=True)
class Cost:
    """What a condition costs at worst: ``steps``, and where they come from for the message."""

    steps: int
    nest: tuple[str, ...] = ()
    """The comprehensions whose list bounds multiply the most, outermost first."""
    costliest: str = ""
    """The single part that costs the most, when it is not a nest of comprehensions."""

    def explain(self) -> str:
        """Why the condition costs so much, for the operator who wrote it."""
        if len(self.nest) > 1:
            shown = self.nest if len(self.nest) <= 6 else (*self.nest[:3], "...", *self.nest[-2:])
            return f"its comprehensions nest {len(self.nest)} deep: {' > '.join(shown)}"
        return f"its costliest part is {self.costliest}" if self.costliest else ""


def too_costly(cost: Cost) -> str | None:
    """Why a condition costing ``cost`` is refused, or None when it is within the limit."""
    if cost.steps <= MAX_RULE_COST:
        return None
    why = cost.explain()
    hint = f"; {UNICODE_HINT}" if "matches(" in why and _has_unicode_class(why) else ""
    steps = f"up to {cost.steps:,}" if cost.steps < _HUGE else f"more than {_HUGE:,}"
    return (
        f"condition is too costly to run on every order: {steps} steps on the "
        f"largest order the rules judge, the limit is {MAX_RULE_COST:,}"
        + (f" ({why})" if why else "")
        + hint
    )


def _has_unicode_class(text: str) -> bool:
    return any(f"\\{letter}" in text for letter in _REGEX_ESCAPES)


@dataclass(slots=True)
class Meter:
    """Adds up steps while the checker walks a condition; ``loop`` while inside a comprehension."""

    steps: int = 0
    _factor: int = 1
    _path: list[str] = field(default_factory=list)
    _nest: tuple[str, ...] = ()
    _nest_factor: int = 1
    _costliest: tuple[int, str] = (0, "")

    def add(self, steps: int, what: str = "") -> None:
        """``steps`` for each run of the expression being walked; ``what`` names a costly part."""
        total = steps * self._factor
        self.steps += total
        if what and total > self._costliest[0]:
            where = f", in {self._path[-1]}" if self._path else ""
            self._costliest = (total, what + where)

    @contextmanager
    def loop(self, what: str, items: int) -> Iterator[None]:
        """Walk a comprehension's expression, which runs once per item (at most ``items``)."""
        saved = self._factor
        self._factor *= items
        self._path.append(f"{what} (up to {items:,} items)")
        if self._factor > self._nest_factor:
            self._nest, self._nest_factor = tuple(self._path), self._factor
        try:
            yield
        finally:
            self._factor = saved
            self._path.pop()

    def cost(self) -> Cost:
        return Cost(self.steps, self._nest, self._costliest[1])


def regex_cost(pattern: str) -> int:
    """The steps it takes the library to compile ``pattern`` (it does at every call), at worst.

    A scan of the pattern, not a parse: each atom has a weight (a Unicode class is thousands),
    a counted repetition ``{n,m}`` multiplies the atom or group before it by its largest count,
    and case-insensitivity (``(?i)``) makes what follows several times dearer.
    """
    total, _ = _regex_weight(pattern, 0, caseless=False)
    return REGEX_BASE + total


def _regex_weight(pattern: str, at: int, *, caseless: bool) -> tuple[int, int]:
    """The weight of ``pattern`` from ``at`` to the end of its group; and where that is."""
    total, last = 0, 0
    while at < len(pattern):
        char = pattern[at]
        if char == ")":
            return total, at + 1
        if char == "{":
            count, at = _repetition(pattern, at)
            total += last * (count - 1)
            last *= count
            continue
        if char == "(" and pattern.startswith("(?i", at):
            caseless = True
            total += _REGEX_IGNORE_CASE
        last, at = _atom(pattern, at, caseless)
        total += last
    return total, at


def _atom(pattern: str, at: int, caseless: bool) -> tuple[int, int]:
    """The weight of the atom at ``at`` and where the next one starts."""
    factor = _REGEX_CASELESS_FACTOR if caseless else 1
    char = pattern[at]
    if char == "(":
        inner, end = _regex_weight(pattern, at + 1, caseless=caseless)
        return _REGEX_GROUP + inner, end
    if char == "[":
        return _bracket(pattern, at, factor)
    if char == "\\" and at + 1 < len(pattern):
        return _REGEX_ESCAPES.get(pattern[at + 1], _REGEX_LITERAL) * factor, at + 2
    if char == ".":
        return _REGEX_DOT * factor, at + 1
    if char == "|":
        return _REGEX_ALTERNATIVE, at + 1
    if char in "*+?^$":
        return 0, at + 1  # quantifiers without a count and anchors cost next to nothing
    return _REGEX_LITERAL * factor, at + 1


def _bracket(pattern: str, at: int, factor: int) -> tuple[int, int]:
    weight = _REGEX_CLASS
    end = at + 1
    if pattern.startswith("^", end):
        weight += _REGEX_NEGATED
        end += 1
    if pattern.startswith("]", end):
        end += 1  # a leading ] is a member
    while end < len(pattern) and pattern[end] != "]":
        if pattern[end] == "\\" and end + 1 < len(pattern):
            weight += _REGEX_ESCAPES.get(pattern[end + 1], 0)
            end += 1
        end += 1
    return weight * factor, end + 1


def _repetition(pattern: str, at: int) -> tuple[int, int]:
    """The largest count of ``{n}``, ``{n,}`` or ``{n,m}`` at ``at`` and where it ends."""
    end = pattern.find("}", at)
    if end < 0:
        return 1, len(pattern)
    counts = [part.strip() for part in pattern[at + 1 : end].split(",")]
    numbers = [int(c) for c in counts if c.isdigit()]
    if not numbers:
        return 1, end + 1
    return max(numbers) + (1 if counts[-1] == "" else 0), end + 1

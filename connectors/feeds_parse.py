"""The common ground of every file feed: rows with their line numbers, problems, field readers.

Pure: text in, values out, no files, clock or Kafka. A feed parser reads rows with
`read_csv` (or `yaml_items`), reads each field through a `Fields` that collects every
problem of the row before giving up on it, and reports a bad row as a `Problem` naming
the file, the line, the reason and the raw row text, so the row can go to the dead-letter
topic unchanged.

Conventions every feed shares:

- Times are ISO 8601 (``2024-05-01T10:00:00Z``, ``2024-05-01 10:00:00+02:00``,
  ``2024-05-01``, ``20240501``); a time without a timezone is taken to be UTC.
- Money is a decimal with at most two decimal places, read as `Decimal`, never a float.
- Booleans are ``true/false``, ``yes/no``, ``y/n``, ``1/0`` (any case).
- A list inside one CSV cell is separated by ``|``.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

from pydantic import ValidationError

from schemas.models import Message

E = TypeVar("E", bound=StrEnum)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LIST_SEPARATOR = "|"
_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


@dataclass(frozen=True)
class Problem:
    """A row (or a whole file, at line 0) that could not become a record, and why."""

    file: str
    line: int
    reason: str
    raw: str

    @property
    def message(self) -> str:
        """``line 7: quantity 'abc' is not a whole number``."""
        return f"line {self.line}: {self.reason}"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class Parsed(NamedTuple):
    """What a parser made of a file: the records to produce, and the rows it could not use."""

    records: list[Message]
    problems: list[Problem]


@dataclass(frozen=True)
class Row:
    """One data row: the line it starts on, its text as in the file, its cells by column."""

    line: int
    raw: str
    cells: Mapping[str, Any]


class RowError(ValueError):
    """A row is unusable; the message is the reason, for people."""


def stable_id(prefix: str, *parts: object) -> str:
    """A deterministic id: the same parts give the same id, so a re-sent file dedupes."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]
    return f"{prefix}-{digest}"


def describe_validation(exc: ValidationError) -> str:
    """A pydantic error as one line: ``ship_to.country: must be an ISO 3166-1 ...``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "record"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


# ---- CSV ------------------------------------------------------------------------------------


def _normalise(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def read_csv(
    text: str, file: str, required: Sequence[str], optional: Sequence[str] = ()
) -> tuple[list[Row], list[Problem]]:
    """The data rows of a CSV file with a header row, each with its line number and raw text.

    Column names are matched without regard to case, spaces or dashes; unknown columns are
    ignored. Blank lines are skipped. A row with more or fewer cells than the header is a
    problem. A header missing a required column makes every data row a problem (each still
    carries its raw text, so nothing is lost) and the header itself one more at line 1.
    """
    lines = text.removeprefix("\ufeff").splitlines(keepends=True)
    reader = csv.reader(lines)
    rows: list[Row] = []
    problems: list[Problem] = []
    header: list[str] | None = None
    missing: list[str] = []
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raw = "".join(lines[start - 1 : reader.line_num]).rstrip("\r\n")
            problems.append(Problem(file, start, f"not valid CSV: {exc}", raw))
            continue
        raw = "".join(lines[start - 1 : reader.line_num]).rstrip("\r\n")
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = [_normalise(cell) for cell in cells]
            missing = [name for name in required if name not in header]
            if missing:
                reason = f"the header lacks column(s) {', '.join(missing)}"
                problems.append(Problem(file, start, reason, raw))
            continue
        if missing:
            reason = f"not read: the header lacks column(s) {', '.join(missing)}"
            problems.append(Problem(file, start, reason, raw))
        elif len(cells) != len(header):
            reason = f"the row has {len(cells)} cells, the header has {len(header)}"
            problems.append(Problem(file, start, reason, raw))
        else:
            wanted = set(required) | set(optional)
            values = {k: v.strip() for k, v in zip(header, cells, strict=True) if k in wanted}
            rows.append(Row(start, raw, values))
    if header is None:
        problems.append(Problem(file, 0, "the file is empty: no header row", ""))
    return rows, problems


# ---- fields ---------------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class Fields:
    """Read typed fields of one row, collecting every problem; `check` raises them together.

    A reader that fails returns a placeholder of the right type, so a parser can read all
    fields first and build its record after `check`, which then never sees a placeholder.
    """

    def __init__(self, cells: Mapping[str, Any]) -> None:
        self.cells = cells
        self.errors: list[str] = []

    def check(self) -> None:
        if self.errors:
            raise RowError("; ".join(self.errors))

    def fail(self, reason: str) -> None:
        self.errors.append(reason)

    def has(self, name: str) -> bool:
        return not _blank(self.cells.get(name))

    def text(self, name: str) -> str:
        value = self.cells.get(name)
        if _blank(value):
            self.fail(f"{name} is missing")
            return ""
        return str(value).strip()

    def optional_text(self, name: str) -> str | None:
        value = self.cells.get(name)
        return None if _blank(value) else str(value).strip()

    def whole(self, name: str, *, minimum: int | None = None, default: int | None = None) -> int:
        value = self.cells.get(name)
        if _blank(value) and default is not None:
            return default
        number = self._whole(name, value)
        if number is not None and minimum is not None and number < minimum:
            self.fail(f"{name} {number} must be at least {minimum}")
        return number or 0

    def optional_whole(self, name: str, *, minimum: int | None = None) -> int | None:
        if not self.has(name):
            return None
        return self.whole(name, minimum=minimum)

    def _whole(self, name: str, value: Any) -> int | None:
        if _blank(value):
            self.fail(f"{name} is missing")
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        try:
            return int(text)
        except ValueError:
            self.fail(f"{name} {text!r} is not a whole number")
            return None

    def money(self, name: str) -> Decimal:
        value = self.cells.get(name)
        if _blank(value):
            self.fail(f"{name} is missing")
            return Decimal(0)
        text = str(value).strip()
        try:
            amount = Decimal(text)
        except InvalidOperation:
            self.fail(f"{name} {text!r} is not an amount of money")
            return Decimal(0)
        if not amount.is_finite():
            self.fail(f"{name} {text!r} is not an amount of money")
        elif amount < 0:
            self.fail(f"{name} {text!r} must not be negative")
        elif amount.as_tuple().exponent < -2:  # type: ignore[operator]
            self.fail(f"{name} {text!r} has more than two decimal places")
        else:
            return amount
        return Decimal(0)

    def optional_float(self, name: str, low: float, high: float) -> float | None:
        value = self.cells.get(name)
        if _blank(value):
            return None
        try:
            number = float(str(value).strip())
        except ValueError:
            self.fail(f"{name} {str(value).strip()!r} is not a number")
            return None
        if not low <= number <= high:
            self.fail(f"{name} {number} is not between {low:g} and {high:g}")
            return None
        return number

    def country(self, name: str) -> str:
        """An ISO 3166-1 alpha-2 code, upper-cased."""
        return self._code(name, 2, "an ISO 3166-1 alpha-2 country code like 'US'")

    def currency(self, name: str) -> str:
        """An ISO 4217 code, upper-cased."""
        return self._code(name, 3, "an ISO 4217 currency code like 'USD'")

    def _code(self, name: str, length: int, what: str) -> str:
        text = self.text(name).upper()
        if text and not (len(text) == length and text.isascii() and text.isalpha()):
            self.fail(f"{name} {text!r} is not {what}")
        return text

    def boolean(self, name: str, default: bool) -> bool:
        value = self.cells.get(name)
        if _blank(value):
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self.fail(f"{name} {str(value).strip()!r} is not true or false")
        return default

    def timestamp(self, name: str, default: datetime | None = None) -> datetime:
        value = self.cells.get(name)
        if _blank(value) and default is not None:
            return default
        if _blank(value):
            self.fail(f"{name} is missing")
            return EPOCH
        if isinstance(value, datetime):  # YAML reads unquoted times itself
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{name} {text!r} is not an ISO 8601 date or time")
            return EPOCH
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def choice(self, name: str, enum: type[E], default: E | None = None) -> E:
        value = self.cells.get(name)
        if _blank(value) and default is not None:
            return default
        text = self.text(name)
        if not text:
            return next(iter(enum))
        try:
            return enum(text.upper())
        except ValueError:
            self.fail(f"{name} {text!r} is not one of {', '.join(enum)}")
            return next(iter(enum))

    def strings(self, name: str) -> tuple[str, ...]:
        """A list: a YAML sequence, or ``a|b|c`` in one cell."""
        value = self.cells.get(name)
        if _blank(value):
            return ()
        items = value if isinstance(value, list | tuple) else str(value).split(LIST_SEPARATOR)
        return tuple(str(item).strip() for item in items if str(item).strip())


# ---- YAML -----------------------------------------------------------------------------------


def yaml_items(text: str, file: str, section: str) -> tuple[list[Row], list[Problem]]:
    """The mappings of a YAML list (top level, or under the key `section`), with their lines.

    The raw text of an item is its slice of the file, so a bad item reaches the dead-letter
    topic as the operator wrote it.
    """
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        return [], [Problem(file, line, f"not valid YAML: {exc}".replace("\n", " "), text)]
    if isinstance(data, dict) and isinstance(node, yaml.MappingNode):
        data = data.get(section)
        node = next((v for k, v in node.value if k.value == section), None)
    if not isinstance(data, list) or not isinstance(node, yaml.SequenceNode):
        reason = f"expected a list of {section}, at the top or under the key {section!r}"
        return [], [Problem(file, 0, reason, "")]
    rows: list[Row] = []
    problems: list[Problem] = []
    for item, item_node in zip(data, node.value, strict=True):
        line = item_node.start_mark.line + 1
        raw = text[item_node.start_mark.index : item_node.end_mark.index].rstrip()
        if isinstance(item, dict):
            rows.append(Row(line, raw, {str(k): v for k, v in item.items()}))
        else:
            problems.append(Problem(file, line, "expected a mapping of fields", raw))
    return rows, problems


def iter_groups(rows: Sequence[Row], *keys: str) -> Iterator[tuple[tuple[str, ...], list[Row]]]:
    """Rows grouped by the values of columns `keys`, groups in order of first appearance."""
    groups: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        key = tuple(str(row.cells.get(k) or "").strip() for k in keys)
        groups.setdefault(key, []).append(row)
    yield from groups.items()

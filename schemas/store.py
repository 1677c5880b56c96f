"""The contract's Avro schemas: current `.avsc` files, frozen history, fingerprints.

Each named type lives in `schemas/avro/<Name>.avsc` (namespace `dom.v1`) and refers
to types of other files by full name. A top-level record, one that travels on a topic
by itself, is a record no other file refers to: the contract's records and the
pipeline's internal ones. The store expands each into a self-contained schema and
indexes every released version, current and `history/<Name>.v<N>.avsc`, by the
CRC-64-AVRO fingerprint that single-object encoding puts after `C3 01`.

After changing a schema, run `python -m schemas.store freeze` to add the new
version to the history (it refuses a change older data could not be read with);
`python -m schemas.store check` tells whether that is needed.
"""

import copy
import json
import re
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from fastavro.schema import UnknownType, fingerprint, parse_schema, to_parsing_canonical_form

from schemas.compat import check_backward_compatible

__all__ = [
    "AVRO_DIR",
    "CONTRACT_RECORDS",
    "NAMESPACE",
    "SchemaStore",
    "WriterSchema",
    "check_backward_compatible",
    "default_store",
    "freeze_all",
    "freeze_current",
    "full_name",
    "schema_fingerprint",
]

NAMESPACE = "dom.v1"
AVRO_DIR = Path(__file__).resolve().parent / "avro"
# The records of CONTRACT.md that travel on topics; the store must have each of them.
CONTRACT_RECORDS: tuple[str, ...] = tuple(
    f"{NAMESPACE}.{name}"
    for name in (
        "Location",
        "Product",
        "StockEvent",
        "OrderPlaced",
        "OrderCancelled",
        "FulfillmentUpdate",
        "ReturnRequested",
        "ReturnReceived",
        "Rule",
        "OrderStatusChanged",
        "FulfillmentCommand",
        "PackagingCommand",
        "ReturnLabelCommand",
        "Availability",
        "OrderAction",
        "ChannelCall",
        "ChannelPolicy",
        "ChannelAvailability",
    )
)
_HISTORY_FILE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.avsc")
_NAMED = frozenset({"record", "error", "enum", "fixed"})
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_FIRST_KEYS = ("name", "type", "doc", "default")

Schema = dict[str, Any]


class WriterSchema(NamedTuple):
    """A schema some writer used: the record's full name and the parsed schema."""

    name: str
    schema: Schema


def full_name(name: str) -> str:
    """`OrderPlaced` -> `dom.v1.OrderPlaced`; full names are returned as they are."""
    return name if "." in name else f"{NAMESPACE}.{name}"


def schema_fingerprint(schema: Schema | str) -> bytes:
    """CRC-64-AVRO of the schema's Parsing Canonical Form, as the 8 bytes after `C3 01`."""
    # fastavro returns the hex of the little-endian bytes, the order the wire uses.
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def _parse_record(schema: Schema | str) -> Schema:
    """A self-contained record schema, parsed by fastavro (already parsed ones as is)."""
    parsed = parse_schema(json.loads(schema) if isinstance(schema, str) else schema, {})
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise ValueError("not a record schema")
    return parsed


def _read_current(avro_dir: Path) -> dict[str, Schema]:
    """The JSON of every `<Name>.avsc`, by full name, checking name and namespace."""
    found: dict[str, Schema] = {}
    for path in sorted(avro_dir.glob("*.avsc")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        if schema.get("namespace") != NAMESPACE or schema.get("name") != path.stem:
            raise ValueError(f"{path} must define {NAMESPACE}.{path.stem}")
        found[full_name(path.stem)] = schema
    return found


def _references(schema: Any) -> set[str]:
    """Full names of the named types a schema refers to by name."""
    if isinstance(schema, list):
        return set().union(*(_references(branch) for branch in schema))
    if isinstance(schema, str):
        return set() if schema in _PRIMITIVES else {full_name(schema)}
    kind = schema["type"]
    if kind in ("record", "error"):
        return set().union(*(_references(field["type"]) for field in schema["fields"]))
    if kind == "array":
        return _references(schema["items"])
    if kind == "map":
        return _references(schema["values"])
    if kind in ("enum", "fixed"):
        return set()
    return _references(kind)  # a primitive with attributes, or {"type": <another type>}


def _top_level(raw: Mapping[str, Schema]) -> tuple[str, ...]:
    """Records that no other type refers to, contract records first."""
    used = set().union(*(_references(schema) for schema in raw.values()))
    records = [n for n, s in raw.items() if s.get("type") == "record" and n not in used]
    missing = [name for name in CONTRACT_RECORDS if name not in records]
    if missing:
        raise ValueError(f"contract records missing or used inside other types: {missing}")
    return CONTRACT_RECORDS + tuple(sorted(set(records) - set(CONTRACT_RECORDS)))


def _expand_together(raw: Mapping[str, Schema]) -> dict[str, Schema]:
    """Every type fully expanded (types it refers to inlined), by full name."""
    named: dict[str, Schema] = {}
    pending = dict(raw)
    while pending:
        parsed_any = False
        for name, schema in list(pending.items()):
            # Expanding inlines the table's entries, so each type is parsed after the
            # types it refers to; a failed attempt must leave no half-parsed entry.
            before = dict(named)
            try:
                parse_schema(schema, named, expand=True, _write_hint=False)
            except UnknownType:
                named.clear()
                named.update(before)
                continue
            del pending[name]
            parsed_any = True
        if not parsed_any:
            raise ValueError(f"schemas refer to undefined types: {sorted(pending)}")
    return named


def _readable(schema: Schema) -> Schema:
    # fastavro reorders keys when parsing; frozen files read better name first.
    return {**{key: schema[key] for key in _FIRST_KEYS if key in schema}, **schema}


def _inline_once(schema: Any, seen: set[str]) -> Any:
    """Copy of a fully expanded schema where a named type repeats by name only."""
    # Avro (and its canonical form) define a named type once, at its first use.
    if isinstance(schema, list):
        return [_inline_once(branch, seen) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    if schema["type"] in _NAMED:
        if schema["name"] in seen:
            return schema["name"]
        seen.add(schema["name"])
    out = _readable(schema)
    if "fields" in schema:
        out["fields"] = [
            _readable({**f, "type": _inline_once(f["type"], seen)}) for f in schema["fields"]
        ]
    for key in ("items", "values"):
        if key in schema:
            out[key] = _inline_once(schema[key], seen)
    return out


def _read_history(history_dir: Path) -> dict[str, list[tuple[int, Schema]]]:
    """Frozen writer schemas by record full name, oldest version first."""
    found: dict[str, list[tuple[int, Schema]]] = {}
    for path in sorted(history_dir.glob("*.avsc")):
        match = _HISTORY_FILE.fullmatch(path.name)
        if match is None:
            raise ValueError(f"{path}: history files are named <Name>.v<N>.avsc")
        name = full_name(match["name"])
        schema = json.loads(path.read_text(encoding="utf-8"))
        if schema.get("name") != name:
            raise ValueError(f"{path} must define {name}")
        found.setdefault(name, []).append((int(match["version"]), schema))
    for versions in found.values():
        versions.sort(key=lambda item: item[0])
    return found


class SchemaStore:
    """Current and historical schemas of the top-level records.

    `named_types`: every type with a file; `top_level`: the records that travel on
    topics, contract ones first; `writers`: every version, current and frozen, by
    fingerprint.
    """

    def __init__(self, avro_dir: Path = AVRO_DIR) -> None:
        self.avro_dir = avro_dir
        self.history_dir = avro_dir / "history"
        raw = _read_current(avro_dir)
        expanded = _expand_together(raw)
        self.named_types: tuple[str, ...] = tuple(sorted(raw))
        self.top_level = _top_level(raw)
        self._standalone: dict[str, Schema] = {
            name: _inline_once(expanded[name], set()) for name in self.top_level
        }
        self._reader = {n: _parse_record(s) for n, s in self._standalone.items()}
        self._fingerprint = {n: schema_fingerprint(s) for n, s in self._reader.items()}
        self._history = _read_history(self.history_dir)
        unknown = sorted(set(self._history) - set(self.top_level))
        if unknown:
            raise ValueError(f"history holds records that are not top-level: {unknown}")
        writers: dict[bytes, WriterSchema] = {}
        self._frozen: set[bytes] = set()
        for name, versions in self._history.items():
            for _, schema in versions:
                parsed = _parse_record(schema)
                fp = schema_fingerprint(parsed)
                writers[fp] = WriterSchema(name, parsed)
                self._frozen.add(fp)
        # The current version is the reader itself: decoding it needs no resolution.
        for name, parsed in self._reader.items():
            writers[self._fingerprint[name]] = WriterSchema(name, parsed)
        self.writers: Mapping[bytes, WriterSchema] = MappingProxyType(writers)

    def reader_schema(self, name: str) -> Schema:
        """The parsed current schema of a top-level record (do not modify it)."""
        return self._reader[full_name(name)]

    def standalone(self, name: str) -> Schema:
        """The current schema as self-contained JSON: what is registered and frozen."""
        return copy.deepcopy(self._standalone[full_name(name)])

    def fingerprint(self, name: str) -> bytes:
        """The 8-byte fingerprint of the current schema."""
        return self._fingerprint[full_name(name)]

    def history(self, name: str) -> list[tuple[int, Schema]]:
        """The frozen versions of a record as (version, JSON schema), oldest first."""
        return copy.deepcopy(self._history.get(full_name(name), []))

    def is_frozen(self, name: str) -> bool:
        """Whether the current schema of a record is one of its history versions."""
        return self.fingerprint(name) in self._frozen

    def writer(self, fp: bytes) -> WriterSchema | None:
        """The writer schema with this fingerprint, current or historical."""
        return self.writers.get(fp)

    def writer_from_json(self, schema: Schema | str) -> WriterSchema:
        """Identify a writer schema given in full (from a registry); ValueError if foreign."""
        parsed = _parse_record(schema)
        known = self.writers.get(schema_fingerprint(parsed))
        if known is not None:
            return known
        if parsed["name"] not in self._reader:
            raise ValueError(f"{parsed['name']} is not a top-level record of this store")
        return WriterSchema(parsed["name"], parsed)

    def incompatibilities(self, name: str) -> list[str]:
        """Why the current schema cannot read some frozen version; [] when it can."""
        reader = self.reader_schema(name)
        return [
            f"v{version}: {problem}"
            for version, schema in self._history.get(full_name(name), [])
            for problem in check_backward_compatible(reader, schema)
        ]


@cache
def default_store() -> SchemaStore:
    """The store of the schemas shipped with this package, loaded once per process."""
    return SchemaStore()


def freeze_current(name: str, avro_dir: Path = AVRO_DIR) -> Path | None:
    """Write the current schema of `name` as its next history version, if not frozen yet.

    Returns the file written, or None when the current fingerprint is already in the
    history. Raises ValueError when the current schema cannot read an older version.
    """
    return _freeze(SchemaStore(avro_dir), full_name(name))


def freeze_all(avro_dir: Path = AVRO_DIR) -> list[Path]:
    """Freeze every top-level record whose current schema is not in the history."""
    store = SchemaStore(avro_dir)
    written = (_freeze(store, name) for name in store.top_level)
    return [path for path in written if path is not None]


def _freeze(store: SchemaStore, name: str) -> Path | None:
    if store.is_frozen(name):
        return None
    problems = store.incompatibilities(name)
    if problems:
        raise ValueError(f"{name} is not backward compatible: " + "; ".join(problems))
    version = max((v for v, _ in store.history(name)), default=0) + 1
    path = store.history_dir / f"{name.rsplit('.', 1)[-1]}.v{version}.avsc"
    store.history_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(store.standalone(name), indent=2) + "\n", encoding="utf-8")
    return path


def _check(avro_dir: Path) -> list[str]:
    store = SchemaStore(avro_dir)
    problems = []
    for name in store.top_level:
        if not store.is_frozen(name):
            problems.append(f"{name}: not frozen; run python -m schemas.store freeze")
        problems.extend(f"{name} {p}" for p in store.incompatibilities(name))
    return problems


def main(argv: Sequence[str] | None = None, avro_dir: Path = AVRO_DIR) -> int:
    """`freeze`: add changed schemas to the history; `check`: report what needs doing."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["freeze"]:
        try:
            written = freeze_all(avro_dir)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 1
        for path in written:
            print(f"wrote {path}")
        return 0
    if args == ["check"]:
        problems = _check(avro_dir)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    print("usage: python -m schemas.store freeze|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

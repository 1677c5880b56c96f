"""Backward-compatibility check of two Avro schemas, by the spec's resolution rules.

"Backward compatible" means a reader using the new schema can decode everything a
writer using the old one wrote. The walk follows Avro schema resolution as fastavro
applies it: fields matched by name (or reader alias), a reader field absent from the
writer needs a default, numeric and string/bytes promotions, enum symbols the reader
lacks need a reader default, every branch of a writer union must be readable.
"""

from typing import Any

from fastavro.schema import parse_schema

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
_PROMOTIONS = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}

Schema = Any  # a parsed or JSON Avro schema: a str, a list (union) or a dict


def check_backward_compatible(reader_schema: Schema, writer_schema: Schema) -> list[str]:
    """List why `reader_schema` cannot read data written with `writer_schema`; [] if it can.

    Both must be self-contained schemas (named types defined inline on first use).
    """
    checker = _Checker(parse_schema(reader_schema, {}), parse_schema(writer_schema, {}))
    checker.check(checker.reader_root, checker.writer_root, _label(checker.reader_root))
    return checker.problems


def _label(schema: Schema) -> str:
    if isinstance(schema, dict) and "name" in schema:
        return str(schema["name"]).rsplit(".", 1)[-1]
    return "<root>"


def _named_types(schema: Schema, found: dict[str, Schema]) -> dict[str, Schema]:
    """Every named type defined inside `schema`, by full name."""
    if isinstance(schema, list):
        for branch in schema:
            _named_types(branch, found)
    elif isinstance(schema, dict):
        if schema["type"] in _NAMED:
            found[schema["name"]] = schema
        for field in schema.get("fields", ()):
            _named_types(field["type"], found)
        for key in ("items", "values"):
            if key in schema:
                _named_types(schema[key], found)
    return found


def _kind(schema: Schema) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return str(schema["type"])
    return str(schema)


def _describe(schema: Schema) -> str:
    if isinstance(schema, list):
        return "[" + ", ".join(_describe(branch) for branch in schema) + "]"
    if isinstance(schema, dict) and "name" in schema:
        return str(schema["name"])
    if isinstance(schema, dict) and schema.get("logicalType") == "decimal":
        return f"{schema['type']}/decimal({schema.get('precision')},{schema.get('scale', 0)})"
    if isinstance(schema, dict) and "logicalType" in schema:
        return f"{schema['type']}/{schema['logicalType']}"
    return _kind(schema)


class _Checker:
    """One walk over a reader and a writer schema, collecting problems."""

    def __init__(self, reader: Schema, writer: Schema) -> None:
        self.reader_root = reader
        self.writer_root = writer
        self._reader_types = _named_types(reader, {})
        self._writer_types = _named_types(writer, {})
        self._visited: set[tuple[str, str]] = set()
        self.problems: list[str] = []

    def _resolve(self, schema: Schema, types: dict[str, Schema]) -> Schema:
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            return types.get(schema, schema)
        return schema

    def check(self, reader: Schema, writer: Schema, path: str) -> None:
        reader = self._resolve(reader, self._reader_types)
        writer = self._resolve(writer, self._writer_types)
        if isinstance(writer, list):
            for branch in writer:
                self.check(reader, branch, path)
        elif isinstance(reader, list):
            match = next((b for b in reader if self._matches(b, writer)), None)
            if match is None:
                self.problems.append(
                    f"{path}: the writer's {_describe(writer)} matches no branch of "
                    f"the reader's union {_describe(reader)}"
                )
            else:
                self.check(match, writer, path)
        elif not self._matches(reader, writer):
            self.problems.append(
                f"{path}: the writer's {_describe(writer)} cannot be read as {_describe(reader)}"
            )
        else:
            self._check_same_kind(reader, writer, path)

    def _matches(self, reader: Schema, writer: Schema) -> bool:
        """Whether Avro pairs these two (not union) schemas, before looking inside."""
        reader = self._resolve(reader, self._reader_types)
        reader_kind, writer_kind = _kind(reader), _kind(writer)
        if reader_kind in _NAMED and reader_kind == writer_kind:
            # As fastavro: same unqualified name, or the writer's name is a reader alias.
            short = writer["name"].rsplit(".", 1)[-1]
            aliases = reader.get("aliases", ())
            return (
                short == reader["name"].rsplit(".", 1)[-1]
                or writer["name"] in aliases
                or short in aliases
            )
        if reader_kind == writer_kind:
            return True
        return reader_kind in _PROMOTIONS.get(writer_kind, frozenset())

    def _check_same_kind(self, reader: Schema, writer: Schema, path: str) -> None:
        kind = _kind(reader)
        self._check_logical(reader, writer, path)
        if kind in ("record", "error"):
            self._check_record(reader, writer, path)
        elif kind == "enum":
            unknown = [s for s in writer["symbols"] if s not in reader["symbols"]]
            if unknown and "default" not in reader:
                self.problems.append(
                    f"{path}: the reader's enum {reader['name']} lacks the writer's "
                    f"symbols {unknown} and has no default symbol"
                )
        elif kind == "fixed" and reader["size"] != writer["size"]:
            self.problems.append(
                f"{path}: fixed size {writer['size']} cannot be read as size {reader['size']}"
            )
        elif kind == "array":
            self.check(reader["items"], writer["items"], f"{path}[]")
        elif kind == "map":
            self.check(reader["values"], writer["values"], f"{path}{{}}")

    def _check_logical(self, reader: Schema, writer: Schema, path: str) -> None:
        # The same bytes mean something else under another logical type or scale.
        def logical(schema: Schema) -> tuple[Any, ...]:
            kind = schema.get("logicalType") if isinstance(schema, dict) else None
            if kind == "decimal":
                return (kind, schema.get("precision"), schema.get("scale", 0))
            return (kind,)

        if logical(reader) != logical(writer):
            self.problems.append(
                f"{path}: the writer's {_describe(writer)} would be read as "
                f"{_describe(reader)}, which changes its meaning"
            )

    def _check_record(self, reader: Schema, writer: Schema, path: str) -> None:
        pair = (reader["name"], writer["name"])
        if pair in self._visited:  # a type used twice, or recursive: checked once
            return
        self._visited.add(pair)
        writer_fields = {field["name"]: field for field in writer["fields"]}
        for field in reader["fields"]:
            names = [field["name"], *field.get("aliases", ())]
            match = next((writer_fields[n] for n in names if n in writer_fields), None)
            field_path = f"{path}.{field['name']}"
            if match is not None:
                self.check(field["type"], match["type"], field_path)
            elif "default" not in field:
                self.problems.append(
                    f"{field_path}: the writer has no such field and the reader's field "
                    "has no default"
                )

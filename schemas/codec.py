"""Bytes <-> models, in both wire formats of the contract.

Writes Avro single-object encoding (`C3 01`, 8-byte CRC-64-AVRO fingerprint, body)
by default, or the Confluent wire format (`00`, 4-byte big-endian schema id, body)
when given a Schema Registry client. Reads both, whatever it writes, and always
returns the current model: an older writer's record is resolved against the
current schema. Everything that cannot be decoded raises `DecodeError`.

Schemas are parsed once (store load, first use of a registry id); the per-message
path is a dictionary lookup, fastavro and pydantic.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from fastavro import schemaless_reader, schemaless_writer
from pydantic import ValidationError

from schemas.internal import RecordBatch
from schemas.models import Message, message_type
from schemas.store import Schema, SchemaStore, default_store

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

__all__ = ["CONFLUENT_MAGIC", "SINGLE_OBJECT_MAGIC", "Codec", "DecodeError", "WireFormat"]

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_SINGLE_OBJECT_HEADER = len(SINGLE_OBJECT_MAGIC) + 8
_CONFLUENT_HEADER = len(CONFLUENT_MAGIC) + 4
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})

M = TypeVar("M", bound=Message)
WireFormat = Literal["single-object", "confluent"]


class DecodeError(Exception):
    """A value that is not a valid contract record; `reason` says why, for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Writer:
    """How to write one model type: header bytes, schema, union fields to tag."""

    header: bytes
    schema: Schema
    # fastavro picks a union branch by validating the value against each branch, which
    # for a record costs more than writing it; naming the branch ("tuple notation")
    # skips that. Holds (field, type name) of top-level ["null", <named type>] fields.
    tagged: tuple[tuple[str, str], ...]


def _nullable_named_fields(schema: Schema) -> tuple[tuple[str, str], ...]:
    tagged = []
    for field in schema["fields"]:
        branches = field["type"]
        if isinstance(branches, list) and len(branches) == 2 and branches[0] == "null":
            other = branches[1]
            name = other.get("name") if isinstance(other, dict) else other
            if name and name not in _PRIMITIVES:
                tagged.append((field["name"], name))
    return tuple(tagged)


@dataclass(frozen=True, slots=True)
class _Reader:
    """How to turn one writer schema's bodies into the current model."""

    model: type[Message]
    writer: Schema
    reader: Schema | None  # None: the writer schema is the current one, no resolution


def _describe_validation(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or '(record)'}: {item['msg']}"
        for item in error.errors(include_url=False)
    )


class Codec:
    """Encodes contract models to bytes and decodes bytes back to models."""

    def __init__(
        self,
        store: SchemaStore | None = None,
        registry: "SchemaRegistryClient | None" = None,
        *,
        write_format: WireFormat | None = None,
    ) -> None:
        """Write Confluent format when given a registry, single-object otherwise.

        `write_format="single-object"` with a registry writes single-object encoding
        and still reads Confluent-format values through the registry.
        """
        self._store = store if store is not None else default_store()
        self._registry = registry
        self.write_format: WireFormat = write_format or (
            "confluent" if registry is not None else "single-object"
        )
        if self.write_format == "confluent" and registry is None:
            raise ValueError("the Confluent wire format needs a schema registry")
        # Filled on first sight of each writer schema: models of internal records
        # register when their module is imported, which may come after this codec.
        self._by_fingerprint: dict[bytes, _Reader] = {}
        self._by_schema_id: dict[int, _Reader] = {}
        self._writers: dict[type[Message], _Writer] = {}

    @classmethod
    def from_url(
        cls,
        registry_url: str | None,
        store: SchemaStore | None = None,
        *,
        write_format: WireFormat | None = None,
        **registry_conf: Any,
    ) -> "Codec":
        """A codec using the registry at `registry_url`, or none when the url is empty.

        `registry_conf` is passed to the client (e.g. `**{"basic.auth.user.info": ...}`);
        `mock://<scope>` gives confluent-kafka's in-memory registry, whose state lives in
        that one client.
        """
        if not registry_url:
            return cls(store, write_format=write_format)
        from confluent_kafka.schema_registry import SchemaRegistryClient

        client = SchemaRegistryClient.new_client({"url": registry_url, **registry_conf})
        return cls(store, client, write_format=write_format)

    @property
    def store(self) -> SchemaStore:
        return self._store

    def _reader_for(self, name: str, writer: Schema) -> _Reader:
        model = message_type(name)
        if model is None:
            raise DecodeError(f"no model for {name}: its module was not imported")
        current = self._store.reader_schema(name)
        return _Reader(model, writer, None if writer is current else current)

    # -- writing ---------------------------------------------------------------------

    def encode(self, model: Message) -> bytes:
        """The model's record in this codec's wire format."""
        writer = self._writers.get(type(model))
        if writer is None:
            writer = self._writers[type(model)] = self._writer_for(type(model))
        record = model.model_dump()
        for field, type_name in writer.tagged:
            value = record[field]
            if value is not None:
                record[field] = (type_name, value)
        out = BytesIO()
        out.write(writer.header)
        schemaless_writer(out, writer.schema, record)
        return out.getvalue()

    def encode_batch(self, records: Sequence[tuple[bytes, bytes]]) -> bytes:
        """A ``RecordBatch`` of (key, encoded value) pairs, in this codec's wire format: many
        records of one partition in one message (the outbox sends internal records so). The
        values are carried as they are; no model is built on the way."""
        writer = self._writers.get(RecordBatch)
        if writer is None:
            writer = self._writers[RecordBatch] = self._writer_for(RecordBatch)
        out = BytesIO()
        out.write(writer.header)
        entries = [{"key": key, "value": value} for key, value in records]
        schemaless_writer(out, writer.schema, {"records": entries})
        return out.getvalue()

    def unpack(self, data: bytes) -> list[tuple[bytes, bytes]] | None:
        """The (key, value) pairs of a ``RecordBatch``, in order; None when ``data`` is a
        record of another type (or no record: decoding it then says why). A batch that cannot
        be read raises :class:`DecodeError`."""
        try:
            reader, start = self._find_reader(data)
        except DecodeError:
            return None
        if reader.model is not RecordBatch:
            return None
        body = BytesIO(data)
        body.seek(start)
        try:
            batch = cast(dict[str, Any], schemaless_reader(body, reader.writer, reader.reader))
        except Exception as exc:  # fastavro raises many kinds on corrupt input
            raise DecodeError(f"corrupt RecordBatch body: {type(exc).__name__}: {exc}") from exc
        if body.tell() != len(data):
            raise DecodeError(
                f"corrupt RecordBatch body: {len(data) - body.tell()} bytes left after the record"
            )
        return [(entry["key"], entry["value"]) for entry in batch["records"]]

    def _writer_for(self, model_type: type[Message]) -> _Writer:
        name = getattr(model_type, "avro_name", None)
        if name not in self._store.top_level or message_type(name) is not model_type:
            raise TypeError(f"{model_type.__name__} is not a top-level record of the store")
        if self.write_format == "single-object":
            header = SINGLE_OBJECT_MAGIC + self._store.fingerprint(name)
        else:
            header = CONFLUENT_MAGIC + self.register(name).to_bytes(4, "big")
        schema = self._store.reader_schema(name)
        return _Writer(header, schema, _nullable_named_fields(schema))

    def register(self, name: str) -> int:
        """Register the current schema of a record with the registry; its schema id.

        The subject is the record's full name (RecordNameStrategy), so several
        record types can share a topic.
        """
        from confluent_kafka.schema_registry import Schema as RegistrySchema

        if self._registry is None:
            raise RuntimeError("this codec has no schema registry")
        standalone = self._store.standalone(name)
        text = json.dumps(standalone, separators=(",", ":"))
        schema_id = self._registry.register_schema(standalone["name"], RegistrySchema(text, "AVRO"))
        # Our own ids need no registry round trip to decode.
        self._by_schema_id[schema_id] = self._reader_at(self._store.fingerprint(name))
        return schema_id

    # -- reading ---------------------------------------------------------------------

    def decode(self, data: bytes) -> Message:
        """The current model of the record in `data`, in either wire format."""
        return self._decode(data, ())

    def decode_as(self, data: bytes, *model_types: type[M]) -> M:
        """Like `decode`, but a record of another type than `model_types` is an error."""
        # _decode checks the record type before it reads the body.
        return cast(M, self._decode(data, model_types))

    def decode_fields(self, data: bytes, model_type: type[Message]) -> dict[str, Any]:
        """The fields of a ``model_type`` record as Avro reads them (a dict, no model): for a
        reader that needs a few fields of many records it trusts, such as routing's available
        units per location from every sku's availability. The Avro schema is checked; the
        model's own constraints are not."""
        reader, record = self._read(data, (model_type,))
        if not isinstance(record, dict):  # cannot happen: every model is an Avro record
            raise DecodeError(f"{reader.model.__name__} body is not a record")
        return record

    def _decode(self, data: bytes, expected: tuple[type[Message], ...]) -> Message:
        reader, record = self._read(data, expected)
        try:
            return reader.model.model_validate(record)
        except ValidationError as exc:
            raise DecodeError(
                f"invalid {reader.model.__name__}: {_describe_validation(exc)}"
            ) from exc

    def _read(self, data: bytes, expected: tuple[type[Message], ...]) -> tuple[_Reader, Any]:
        """The record's reader and its body as Avro reads it, of one of ``expected`` (any when
        empty): the type is checked before the body is read, and every byte must belong to it."""
        reader, start = self._find_reader(data)
        name = reader.model.__name__
        if expected and reader.model not in expected:
            wanted = " or ".join(model.__name__ for model in expected)
            raise DecodeError(f"expected {wanted}, got {name}")
        body = BytesIO(data)
        body.seek(start)
        try:
            record = schemaless_reader(body, reader.writer, reader.reader)
        except Exception as exc:  # fastavro raises many kinds on corrupt input
            raise DecodeError(f"corrupt {name} body: {type(exc).__name__}: {exc}") from exc
        extra = len(data) - body.tell()
        if extra:
            raise DecodeError(f"corrupt {name} body: {extra} bytes left after the record")
        return reader, record

    def _find_reader(self, data: bytes) -> tuple[_Reader, int]:
        if not data:
            raise DecodeError("empty value: no wire format header")
        if data[:2] == SINGLE_OBJECT_MAGIC:
            if len(data) < _SINGLE_OBJECT_HEADER:
                raise DecodeError("truncated single-object header")
            fp = bytes(data[2:_SINGLE_OBJECT_HEADER])
            return self._reader_at(fp), _SINGLE_OBJECT_HEADER
        if data[:1] == CONFLUENT_MAGIC:
            if len(data) < _CONFLUENT_HEADER:
                raise DecodeError("truncated Confluent header")
            schema_id = int.from_bytes(data[1:_CONFLUENT_HEADER], "big")
            reader = self._by_schema_id.get(schema_id)
            if reader is None:
                reader = self._by_schema_id[schema_id] = self._fetch(schema_id)
            return reader, _CONFLUENT_HEADER
        raise DecodeError(
            f"unknown wire format: starts with 0x{bytes(data[:2]).hex()}, "
            "neither c301 (single-object) nor 00 (Confluent)"
        )

    def _reader_at(self, fp: bytes) -> _Reader:
        reader = self._by_fingerprint.get(fp)
        if reader is None:
            writer = self._store.writer(fp)
            if writer is None:
                raise DecodeError(f"unknown schema fingerprint 0x{fp.hex()}")
            reader = self._by_fingerprint[fp] = self._reader_for(*writer)
        return reader

    def _fetch(self, schema_id: int) -> _Reader:
        """The reader for a registry schema id, fetching and parsing its schema once."""
        if self._registry is None:
            raise DecodeError(f"schema id {schema_id} needs a schema registry; none configured")
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            registered = self._registry.get_schema(schema_id)
        except SchemaRegistryError as exc:
            # Only "not found" is the message's fault; an unreachable registry is not.
            if exc.http_status_code != 404:
                raise
            raise DecodeError(f"unknown schema id {schema_id}") from exc
        if registered.schema_type not in (None, "AVRO"):
            raise DecodeError(f"schema id {schema_id} is {registered.schema_type}, not Avro")
        try:
            name, writer = self._store.writer_from_json(registered.schema_str or "")
        except Exception as exc:  # unparsable or a foreign record
            raise DecodeError(f"schema id {schema_id}: {exc}") from exc
        return self._reader_for(name, writer)

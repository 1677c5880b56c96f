"""Table values of any size: a value too large for one record is stored in chunks.

A stage's value is one changelog record, and the broker takes at most ``max.message.bytes``
a record (1 MiB by default): a larger write cannot be delivered, so the stage stops and
replays the batch, again after every restart, and every key of its partitions waits. A
bestseller's inventory value carries each of its open holds (about 92 bytes each), so about
10,800 unshipped reservations of one sku made such a value; a 1,000,000-order bench
with its warehouses shipping was heading there (7,063 on one sku after 12 minutes).

:class:`ChunkedTable` wraps a Faust table of bytes. A value up to ``chunk_bytes`` is stored as
it is, as before. A larger one is cut into chunks of at most ``chunk_bytes``, each written
under a key of its own (:func:`chunk_key`: the value's key, a version and the chunk's number),
and the key itself then holds a small manifest (:data:`MANIFEST`: version, chunk count, size
and CRC-32 of the whole). Reads put the value back together; scans (``items``, ``values``,
``keys``) skip the chunk keys and answer whole values, so the stages and their timers see no
difference.

Every write of a key is applied to the local store and sent to the changelog in this order,
in the partition of the current event (as Faust writes any table): the new chunks, under the
version after the one the key names; then the key (the manifest, or a plain value); then
tombstones for the chunks of the version it replaced. Whatever point a crash stops that
sequence at, the key still names chunks that are all there: before the key is written, the
old manifest and its chunks are untouched; after it, the new ones are complete. A crash
between the chunks and the key leaves chunks no manifest names; the next write of that key
reuses their version and overwrites them. A changelog replayed into a new worker's store
goes through the same states in the same order, and compaction keeps the last of each key.

The size and CRC are checked on every read: a manifest whose chunks are missing or do not
add up raises :class:`ChunkedValueBroken` naming the key, rather than handing a stage half
a value.

An older release reading a manifest cannot decode it; only values that release could not
have stored at all are chunked (``DOM_TABLE_CHUNK_BYTES`` defaults to 256 KiB, far above an
order's or a usual sku's value).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

MANIFEST = b"\x00\xffdom-chunked-value\x00"
"""What a manifest starts with (never a JSON value, an Avro single object or a Confluent frame
with a schema id in use)."""

CHUNK_KEY = b"\x00\xffdom-chunk\x00"
"""What every chunk's key starts with; scans skip these keys."""

DEFAULT_CHUNK_BYTES = 256 * 1024


class ChunkedValueBroken(RuntimeError):
    """A manifest whose chunks are missing or do not add up to the value it describes."""


def chunk_key(key: bytes, version: int, index: int) -> bytes:
    """The key of chunk ``index`` of ``key``'s value at ``version``."""
    return b"%s%s\x00%d\x00%d" % (CHUNK_KEY, key, version, index)


def _manifest(version: int, count: int, value: bytes) -> bytes:
    body = {"version": version, "chunks": count, "size": len(value), "crc": zlib.crc32(value)}
    return MANIFEST + json.dumps(body, separators=(",", ":")).encode()


def _read_manifest(raw: bytes) -> dict[str, int] | None:
    if not raw.startswith(MANIFEST):
        return None
    body = json.loads(raw[len(MANIFEST) :])
    return {name: int(body[name]) for name in ("version", "chunks", "size", "crc")}


class ChunkedTable:
    """A Faust table of bytes whose values may be larger than one record (see the module)."""

    def __init__(self, table: Any, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        if chunk_bytes < 1:
            raise ValueError("chunk_bytes must be at least 1")
        self.table = table
        self.chunk_bytes = chunk_bytes

    def __getattr__(self, name: str) -> Any:
        # Everything else (the changelog topic, the store, the kept sends) is the table's own.
        return getattr(self.table, name)

    # ---- reads --------------------------------------------------------------------------

    def get(self, key: bytes, default: Any = None) -> Any:
        raw = self._read(key)
        if raw is None:
            return default
        return self._whole(key, raw)

    def _read(self, key: bytes) -> bytes | None:
        """The key's stored bytes, in one read of the store: a Faust table's own ``get`` asks
        its store twice, whether it holds the key and then for the value, each a RocksDB read
        that copies the value (and every write here reads the key first, for its chunks)."""
        store = getattr(self.table, "data", self.table)  # Faust's store; a plain mapping's self
        try:
            raw: bytes | None = store[key]
        except KeyError:
            return None
        return raw

    def __getitem__(self, key: bytes) -> bytes:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return bytes(value)

    def __contains__(self, key: object) -> bool:
        return key in self.table

    def _whole(self, key: bytes, raw: bytes) -> bytes:
        manifest = _read_manifest(raw)
        if manifest is None:
            return raw
        parts = []
        for index in range(manifest["chunks"]):
            part = self._read(chunk_key(key, manifest["version"], index))
            if part is None:
                raise ChunkedValueBroken(
                    f"value of {key!r} (version {manifest['version']}) lacks chunk {index} "
                    f"of {manifest['chunks']}"
                )
            parts.append(part)
        value = b"".join(parts)
        if len(value) != manifest["size"] or zlib.crc32(value) != manifest["crc"]:
            raise ChunkedValueBroken(
                f"value of {key!r} (version {manifest['version']}): its chunks make "
                f"{len(value)} bytes that do not match its manifest"
            )
        return value

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for key, raw in self.table.items():
            if key.startswith(CHUNK_KEY):
                continue
            if raw and raw.startswith(MANIFEST):
                # A scan read in slices (Runtime.scan) holds an iterator over an older snapshot
                # while the stage writes on: its manifest may name chunks since replaced.
                raw = self._read(key)
                if not raw:
                    continue
            yield key, (self._whole(key, raw) if raw else raw)

    def values(self) -> Iterator[bytes]:
        for _, value in self.items():
            yield value

    def keys(self) -> Iterator[bytes]:
        for key in self.table:
            if not key.startswith(CHUNK_KEY):
                yield key

    # ---- writes (in the partition of the current event, as the table's own) --------------

    def __setitem__(self, key: bytes, value: bytes) -> None:
        old = self._old_manifest(key)
        if len(value) <= self.chunk_bytes:
            self.table[key] = value
        else:
            version = old["version"] + 1 if old else 1
            size = self.chunk_bytes
            count = -(-len(value) // size)
            for index in range(count):
                self.table[chunk_key(key, version, index)] = value[
                    index * size : (index + 1) * size
                ]
            self.table[key] = _manifest(version, count, value)
        self._drop_chunks(key, old)

    def __delitem__(self, key: bytes) -> None:
        old = self._old_manifest(key)
        del self.table[key]
        self._drop_chunks(key, old)

    def _old_manifest(self, key: bytes) -> dict[str, int] | None:
        raw = self._read(key)
        return _read_manifest(raw) if raw else None

    def _drop_chunks(self, key: bytes, manifest: dict[str, int] | None) -> None:
        if manifest is None:
            return
        for index in range(manifest["chunks"]):
            del self.table[chunk_key(key, manifest["version"], index)]

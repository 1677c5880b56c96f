"""Faust topics and tables of raw bytes: the codec, not Faust, owns the wire format.

Faust's own ``Record`` serialization would add its metadata to every value and tie the wire to
Faust; the contract is Avro, so stages see bytes and decode them with the codec.
"""

from __future__ import annotations

from typing import Any

import faust

from config.settings import Settings

# RocksDB's defaults reserve large write buffers and block caches per partition database;
# these values keep a worker with a dozen partitions within a few hundred MB.
ROCKSDB_OPTIONS = {
    "write_buffer_size": 8 << 20,
    "max_write_buffer_number": 2,
    "target_file_size_base": 16 << 20,
    "block_cache_size": 16 << 20,
}


def raw_topic(app: faust.App, settings: Settings, *names: str) -> Any:
    """One Faust topic object over one or more registry topics (by unprefixed name)."""
    return app.topic(
        *(settings.topic(n) for n in names),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )


def raw_table(app: faust.App, settings: Settings, name: str) -> Any:
    """A RocksDB-backed table of bytes keyed by bytes, with as many partitions as the topics."""
    table: Any = app.Table(
        name,
        partitions=settings.topic_partitions,
        key_type=bytes,
        value_type=bytes,
        options=ROCKSDB_OPTIONS,
    )
    # Set before first use: the changelog topic is built lazily from these.
    table.key_serializer = "raw"
    table.value_serializer = "raw"
    return table

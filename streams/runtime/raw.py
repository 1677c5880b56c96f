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
    _keep_changelog_sends(table)
    return table


def _keep_changelog_sends(table: Any) -> None:
    """Keep the future of every changelog record the table sends, for :func:`table_writes`:
    Faust's ``table[k] = v`` drops it, and only logs a write the broker refused."""
    sends: list[Any] = []
    send = table.send_changelog

    def send_changelog(*args: Any, **kwargs: Any) -> Any:
        future = send(*args, **kwargs)
        sends.append(future)
        return future

    table.send_changelog = send_changelog
    table.dom_changelog_sends = sends


def table_writes(table: Any) -> list[tuple[str, Any]]:
    """The changelog records the table sent since the last call, as (topic, future) pairs whose
    futures say whether the broker took each one (none for a table not made here)."""
    sends: list[Any] | None = getattr(table, "dom_changelog_sends", None)
    if not sends:
        return []
    topic = table.changelog_topic_name
    taken = [(topic, future) for future in sends]
    sends.clear()
    return taken

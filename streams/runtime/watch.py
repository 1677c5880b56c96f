"""What the worker reports of Faust's own state: consumer lag and table sizes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from streams.metrics import LAG_INTERVAL, PipelineMetrics

log = logging.getLogger(__name__)


async def watch_lag_and_tables(app: Any, metrics: PipelineMetrics, tables: dict[str, Any]) -> None:
    """Every few seconds: lag of every assigned source partition, table sizes, GC pauses."""
    while True:
        await asyncio.sleep(LAG_INTERVAL)
        try:
            _measure(app, metrics, tables)
        except Exception:  # a metric must never take a worker down
            log.debug("lag/table metrics failed this round", exc_info=True)


def _measure(app: Any, metrics: PipelineMetrics, tables: dict[str, Any]) -> None:
    metrics.observe_gc()
    consumer = app.consumer
    assigned = {(tp.topic, str(tp.partition)) for tp in consumer.assignment()}
    for labels in metrics.lag_reported - assigned:  # moved to another worker: not ours to report
        metrics.consumer_lag.remove(*labels)
    metrics.lag_reported &= assigned
    for tp in consumer.assignment():
        if tp.topic.endswith("-changelog") or "__assignor" in tp.topic:
            continue
        highwater = consumer.highwater(tp)
        read = consumer._read_offset.get(tp)  # the last offset handed to a stream
        if highwater is None:
            continue
        lag = highwater - (read + 1 if read is not None else 0)
        metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, lag))
        metrics.lag_reported.add((tp.topic, str(tp.partition)))
    for name, table in tables.items():
        dbs = list(getattr(table.data, "_dbs", {}).values())
        metrics.table_keys.labels(name).set(_sum(dbs, "rocksdb.estimate-num-keys"))
        for kind, prop in ROCKSDB_MEMORY.items():
            metrics.table_memory.labels(name, kind).set(_sum(dbs, prop))


ROCKSDB_MEMORY = {
    "memtables": "rocksdb.size-all-mem-tables",
    "table_readers": "rocksdb.estimate-table-readers-mem",
    "block_cache": "rocksdb.block-cache-usage",
}
"""``dom_table_memory_bytes``'s kinds and the RocksDB property each one sums."""


def _sum(dbs: list[Any], prop: str) -> int:
    return sum(int(db.property_int_value(prop) or 0) for db in dbs)

"""``dom bench --history N``: N more orders in the workers' stores, without the hours it takes
to place them.

A million orders placed and shipped at the pace one 2-core machine keeps would take some 90
minutes; a restart's cost is what the worker's local stores hold, not how they came to hold it.
So the bench clones what its own run stored: the stored values of its shipped orders in the
tables keyed by order (``orders``, and ``kpi-facts`` when the reports run, ``DOM_KPIS``), each
copy under a new order id (the template's id replaced wherever it appears in the value),
written to those tables' changelogs by the producers' partitioner (murmur2, as every producer
of the pipeline), so each lands in the partition its key belongs to. The workers, stopped
meanwhile, read the copies into their stores when they start again, as a worker catching up on
a changelog does; the restart phase then kills one with them in its history.

What the copies are not: the topics' history (``dom.orders.v1`` and the statuses hold the run's
own orders only), and ids that do not contain the order id (the ids of shipments, holds and
statuses do; an input's event id, say, does not, and repeats its template's). Neither is read
by a restart, nor by an order at rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, Producer, TopicPartition

from config.settings import Settings

KEYED_BY_ORDER = ("orders", "kpi-facts")
"""The tables whose key is the order id: a copy of an order is a value in each."""
AT_REST = (b'"status":"SHIPPED"', b'"status":"COMPLETED"')
"""A stored order at rest: its timers have nothing left to do with it."""


def changelog(settings: Settings, table: str) -> str:
    return f"{settings.app_id}-{table}-changelog"


def read_templates(settings: Settings, order_ids: Iterable[str]) -> dict[str, dict[bytes, bytes]]:
    """Table -> order id -> the latest value stored for it, for the orders of ``order_ids``
    stored at rest (:data:`AT_REST`) and kept whole (a value in chunks is left out)."""
    wanted = {o.encode() for o in order_ids}
    found = {
        table: _latest(settings, changelog(settings, table), wanted) for table in KEYED_BY_ORDER
    }
    orders = {k: v for k, v in found["orders"].items() if any(s in v for s in AT_REST)}
    return {
        table: {k: v for k, v in values.items() if k in orders} for table, values in found.items()
    }


def _latest(settings: Settings, topic: str, wanted: set[bytes]) -> dict[bytes, bytes]:
    """The latest value of each key of ``wanted`` on ``topic``, read from its start to its end
    as they were when called (a tombstone removes the key)."""
    consumer = Consumer(
        settings.librdkafka_config(
            **{"group.id": f"bench-history-{time.monotonic_ns()}", "enable.auto.commit": False}
        )
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        latest: dict[bytes, bytes] = {}
        while ends:
            messages = consumer.consume(2000, 1.0)
            if not messages:  # past the end's last record (a marker, a compacted offset)?
                for tp in consumer.position([TopicPartition(topic, p) for p in list(ends)]):
                    if tp.offset >= ends[tp.partition]:
                        ends.pop(tp.partition)
            for message in messages:
                if message.error() is not None:
                    continue
                key, value = message.key(), message.value()
                if key in wanted:
                    if value is None:
                        latest.pop(key, None)
                    else:
                        latest[key] = value
                partition, offset = message.partition(), message.offset()
                if (
                    partition is not None
                    and offset is not None
                    and offset + 1 >= ends.get(partition, 0)
                ):
                    ends.pop(partition, None)
        return latest
    finally:
        consumer.close()


def write_history(
    settings: Settings,
    templates: dict[str, dict[bytes, bytes]],
    count: int,
    prefix: str,
    on_progress: Callable[[int], None],
) -> int:
    """``count`` orders cloned round the templates, ids ``{prefix}{n:07d}``, into the tables'
    changelogs; returns the records written."""
    keys = sorted(templates["orders"])
    if not keys:
        raise ValueError("no stored order at rest to clone: did the run ship any?")
    producer = Producer(settings.producer_config(**{"linger.ms": 50}))
    failed: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(str(err))

    written = 0
    for n in range(count):
        template = keys[n % len(keys)]
        new = f"{prefix}{n:07d}".encode()
        for table, values in templates.items():
            value = values.get(template)
            if value is None:
                continue
            record = value.replace(template, new)
            while True:
                try:
                    producer.produce(changelog(settings, table), record, new, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.1)
            written += 1
        if n % 5000 == 0:
            producer.poll(0)
            on_progress(n)
    producer.flush(300)
    on_progress(count)
    if failed or len(producer):
        raise RuntimeError(f"history not written: {failed[:3]} ({len(producer)} still queued)")
    return written

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

from collections.abc import Callable, Iterable

from confluent_kafka import Producer

from config.settings import Settings
from dom.topic_reader import latest_by_key, read_to_end

KEYED_BY_ORDER = ("orders", "kpi-facts")
"""The tables whose key is the order id: a copy of an order is a value in each."""
AT_REST = (b'"status":"SHIPPED"', b'"status":"COMPLETED"')
"""A stored order at rest: its timers have nothing left to do with it."""


def changelog_name(settings: Settings, table: str) -> str:
    """The table's changelog (``{app_id}-{table}-changelog``), by its name under the
    deployment's prefix, as :func:`~dom.topic_reader.read_to_end` and ``settings.topic`` take."""
    return f"{settings.app_id.removeprefix(settings.topic_prefix)}-{table}-changelog"


def read_templates(settings: Settings, order_ids: Iterable[str]) -> dict[str, dict[bytes, bytes]]:
    """Table -> order id -> the latest value stored for it, for the orders of ``order_ids``
    stored at rest (:data:`AT_REST`) and kept whole (a value in chunks is left out)."""
    wanted = {o.encode() for o in order_ids}
    found = {}
    for table in KEYED_BY_ORDER:
        latest = latest_by_key(read_to_end(settings, changelog_name(settings, table)))
        found[table] = {k: v for k, v in latest.items() if k in wanted and v is not None}
    orders = {k: v for k, v in found["orders"].items() if any(s in v for s in AT_REST)}
    return {
        table: {k: v for k, v in values.items() if k in orders} for table, values in found.items()
    }


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

    def topic(table: str) -> str:
        return settings.topic(changelog_name(settings, table))

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
                    producer.produce(topic(table), record, new, on_delivery=delivered)
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

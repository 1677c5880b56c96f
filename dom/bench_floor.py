"""The runtime floor of ``dom bench``: what Faust and aiokafka cost when a stage does nothing.

Worker processes (``python -m dom.bench_floor``, as many as the pipeline's) run one
pass-through agent on the pipeline's own Faust configuration
(:func:`streams.runtime.faust_app.faust_app`) and batch machinery: events taken as the stages
take them (:func:`streams.runtime.batches.event_batches`), each event's value written to a
table through a :class:`~streams.runtime.batch_table.BatchTable` (one changelog record), the
producer flushed, then the value sent on to an output topic. No
decoding, no business logic, no metrics.

Each event moves three messages: its input, its changelog record and its output, each
written once, as the pipeline's phase counts every record written as a message moved. The
floor's messages per second over the pipeline's messages per order is the most orders per
second this runtime could carry with the pipeline's topology and no work at all.
"""

from __future__ import annotations

import sys
from typing import Any

import faust

from config.settings import Settings
from dom.bench_kafka import FLOOR_IN, FLOOR_OUT
from streams.runtime.batch_table import BatchTable
from streams.runtime.batches import event_batches
from streams.runtime.faust_app import faust_app, run_worker
from streams.runtime.outbox import BATCH_MAX
from streams.runtime.raw import raw_table, raw_topic


def floor_app(settings: Settings) -> faust.App:
    """The pass-through app: a consumer group and changelog of its own beside the pipeline's."""
    app = faust_app(settings, f"{settings.app_id}-floor")
    source = raw_topic(app, settings, FLOOR_IN.name)
    values: BatchTable[bytes] = BatchTable(raw_table(app, settings, "floor"), bytes, bytes)
    out = settings.topic(FLOOR_OUT.name)

    @app.agent(source, name=f"{settings.app_id}.floor")
    async def floor_agent(stream: Any) -> None:
        async for events in event_batches(stream, BATCH_MAX):
            for event in events:
                values.put(event.key, event.value, event)
            values.write_back()
            await app.producer.flush()  # the changelog records are durable, as in a stage
            for event in events:
                await app.producer.send(out, event.key, event.value, None, None, None)

    return app


def main(argv: list[str]) -> None:
    """``python -m dom.bench_floor [LOGLEVEL]``: one floor worker, configured like ``dom worker``
    from the ``DOM_*`` environment."""
    run_worker(Settings(), floor_app, argv[0] if argv else "info")


if __name__ == "__main__":
    main(sys.argv[1:])

"""The stage runtime: the one package that touches Faust, aiokafka and their internals.

A stage gets a :class:`Runtime` and uses nothing else of it:

- ``runtime.table(name)``: its table (bytes by bytes, RocksDB, a changelog), read and written
  through a :class:`~streams.runtime.batch_table.BatchTable`;
- ``runtime.stage(name, topics, handle, ...)``: its inputs, applied in batches by the outbox
  (:mod:`streams.runtime.outbox`): ``handle(event, sends)`` reads and writes the table, adds
  records to ``sends`` and dead-letters what it cannot apply;
- ``runtime.every(seconds)``: a timer, skipped while the partitions move;
- ``async for part in runtime.scan(table.values())``: a timer's read of a whole table, a
  slice at a time, the worker's streams and heartbeats served between slices;
- ``runtime.task(fn)``: a background task of the worker;
- ``await runtime.send(record)``: a record sent outside any batch (a timer's command), and
  ``await runtime.send_all(records)`` for many, packed as a batch's are;
- ``runtime.generation()`` and ``runtime.rebalancing()``: whether the partitions moved or are
  moving (a timer that works across several steps checks them between steps).

The guarantees the layer gives, each checked by a test (the README's "Runtime guarantees"):
state before records, inputs acknowledged only once every record they caused is delivered,
every input of a partition applied in offset order with none skipped (the sequencer), and
Faust's own losses around rebalances patched (:mod:`streams.runtime.faust_fixes`). ``make
lint`` keeps Faust and aiokafka inside this package.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from config.settings import Settings
from schemas.codec import Codec
from streams.health import WorkerHealth
from streams.metrics import PipelineMetrics
from streams.runtime.batch_table import BatchTable
from streams.runtime.chunks import ChunkedTable
from streams.runtime.faust_app import faust_app, run_worker
from streams.runtime.faust_metrics import serve_metrics
from streams.runtime.outbox import (
    Finish,
    Handler,
    Outbox,
    Refuse,
    Sends,
    Tombstone,
    confirm_delivery,
)
from streams.runtime.raw import raw_table, raw_topic
from streams.runtime.watch import watch_lag_and_tables
from streams.runtime.web import register_pages

__all__ = ["BatchTable", "Runtime", "Sends", "Tombstone", "run_worker"]

T = TypeVar("T")

SCAN_SLICE = 500
"""Stored values a table scan reads between two turns of the event loop. Read at once,
100,000 stored orders of a long bench run took 2 s, so a million-order history (500,000 a
worker) would hold a worker's loop for 10 s and more every scan: every order in flight would
wait, and the consumer's heartbeats with it. A slice of 500 is about 10 ms of reading."""

Ready = Callable[[], contextlib.AbstractAsyncContextManager[None]]
"""What a stage waits for and holds while it runs (a view that must be ready, a reader)."""


class Runtime:
    """The worker's Faust app, as the stages use it."""

    def __init__(
        self, settings: Settings, codec: Codec, metrics: PipelineMetrics, app_id: str | None = None
    ) -> None:
        self.settings = settings
        self.app: Any = faust_app(settings, app_id)
        # One /metrics page: Faust's own figures (its prefix "faust_") and the pipeline's ("dom_").
        serve_metrics(self.app, metrics.registry)
        self.outbox = Outbox(self.app, settings, codec, metrics)
        outbox = self.outbox

        async def watch_stalls() -> None:
            await outbox.watch_stalls()

        self.app.task(watch_stalls)

    @property
    def metrics(self) -> PipelineMetrics:
        return self.outbox.metrics

    def table(self, name: str) -> Any:
        """The table ``name`` (``{app_id}-{name}-changelog``), as many partitions as the topics;
        a value larger than ``DOM_TABLE_CHUNK_BYTES`` is stored in chunks (:mod:`.chunks`)."""
        return ChunkedTable(
            raw_table(self.app, self.settings, name), self.settings.table_chunk_bytes
        )

    def stage(
        self,
        name: str,
        topics: Sequence[str],
        handle: Handler,
        *,
        table: BatchTable[Any] | None = None,
        finish: Finish | None = None,
        refuse: Refuse | None = None,
        ready: Ready | None = None,
    ) -> None:
        """Apply every input of ``topics`` (registry names) with ``handle``, in batches;
        ``table`` is written back after each batch and ``finish`` told what changed;
        ``refuse`` answers an input that could not be applied; ``ready`` is entered before
        the first input (and left when the stage stops)."""
        source = raw_topic(self.app, self.settings, *topics)
        if refuse is not None:
            self.outbox.on_refused(name, refuse)
        outbox = self.outbox

        async def agent(stream: Any) -> None:
            async with ready() if ready is not None else _nothing():
                await outbox.process(stream, handle, name, table, finish)

        agent.__name__ = agent.__qualname__ = f"{name}_agent"
        self.app.agent(source, name=f"{self.settings.app_id}.{name}")(agent)

    def every(self, seconds: float) -> Callable[[Callable[[], Awaitable[None]]], Any]:
        """A timer: the function runs every ``seconds``, except while partitions move (a
        worker that may lose the partitions must not act on them)."""

        def register(fn: Callable[[], Awaitable[None]]) -> Any:
            app = self.app

            async def tick() -> None:
                if not app.rebalancing:
                    await fn()

            tick.__name__ = tick.__qualname__ = fn.__name__
            tick.__doc__ = fn.__doc__
            return app.timer(seconds)(tick)

        return register

    def task(self, fn: Callable[[], Awaitable[None]]) -> Any:
        """Run ``fn`` once the worker has started (a background task)."""
        return self.app.task(fn)

    async def watch_lag_and_tables(self, tables: dict[str, Any]) -> None:
        """Report the consumer's lag and the tables' sizes to the metrics, for ever."""
        await watch_lag_and_tables(self.app, self.metrics, tables)

    def serve_pages(self, view: Any, orders: Any, health: WorkerHealth) -> None:
        """The worker's web pages (:mod:`streams.runtime.web`)."""
        register_pages(self.app, view, orders, health)

    async def send(self, record: Any) -> None:
        """Send ``record`` outside any batch (the producer's retries see it delivered)."""
        await self.outbox.send(record)

    async def send_all(self, records: Sequence[Any], sender: str) -> None:
        """Send ``records`` outside any batch, those of a batched topic packed per partition
        as a stage batch's are, and wait until the broker took every one (raise
        ``DeliveryFailed``, naming ``sender``, if it refused any)."""
        await confirm_delivery(sender, await self.outbox.send_all(records))

    def scan(self, items: Iterable[T], size: int = SCAN_SLICE) -> AsyncIterator[list[T]]:
        """``items`` (a table's ``values()`` or ``items()``) ``size`` at a time, the event loop
        served between slices; it ends early when the partitions move (:func:`in_slices`)."""
        generation = self.generation()
        return in_slices(items, size, lambda: self.rebalancing() or self.generation() != generation)

    def generation(self) -> int:
        """The consumer generation: it changes whenever the worker's partitions are assigned."""
        generation: int = self.app.consumer_generation_id
        return generation

    def rebalancing(self) -> bool:
        """Whether the partitions are moving (from revocation until the tables are recovered)."""
        return bool(self.app.rebalancing)


async def in_slices(
    items: Iterable[T], size: int, moved: Callable[[], bool]
) -> AsyncIterator[list[T]]:
    """``items`` ``size`` at a time, the event loop served between slices, until ``moved()``
    says the partitions moved: then the tables' stores change under the iterator and the items
    may no longer be this worker's, so the scan ends and the timer's next run reads them again.
    An item changed after the scan began may be read as it was when it began (the reader acts
    through commands its owner checks again)."""
    iterator = iter(items)
    while part := list(itertools.islice(iterator, size)):
        yield part
        await asyncio.sleep(0)
        if moved():
            return


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield

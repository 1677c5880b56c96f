"""A workaround for a Faust 0.15.3 rebalance bug that loses records.

After a rebalance, Faust's recovery resumes fetching on the stream partitions *before* it seeks
them to their committed offsets (``Recovery`` resumes, then calls ``perform_seek``). Records
fetched in that window are handed over while the flow is still suspended, so they are dropped,
yet the fetch position has moved past them. The seek then puts committed partitions back, but a
partition with no committed offset yet (a new topic, or one that was idle) is left where the
lost fetch put it: its first records are never processed (seen here as stock events and orders
that never got an answer; compare faust-streaming#216 and #629).

The fix: after Faust's seek, move every assigned stream partition that has no committed offset
to the beginning of the log, which is what ``auto_offset_reset=earliest`` promises.

A third window: ``getmany`` silently skips fetched records of a partition that is not active
(paused while tables recover, or paused between fetch and hand-over), yet the fetch position
has moved past them. Seen after a worker's restart as results that were never applied. The
fix: such records are taken out of the batch and their partition is sought back to the first
of them, so they are fetched again once the partition is active.

A fourth, the worst: while a rebalance is under way, a stream skips the messages still queued
for it (flow suspended, or fetched in an older generation) and *acknowledges* them so lag
does not grow. The commit on revocation then covers offsets nobody processed, and a worker
that keeps the partition resumes after them: seen as results and orders silently skipped
("reads sku-results[4] at 4 (after 1)"). The fix: the consumer refuses such acks (and stops
waiting for them), and seeks each such partition back to the first record it dropped once
the flow is active again; the records are applied then, which the stages make harmless.
Without the seek they waited for a later record of their partition to show the hole they
left: 53 orders at the end of a burst stayed unrouted after a SIGKILL (1 run in 7). (Faust's
pure-Python stream iterator acknowledges what it skips; its Cython one leaves it
unacknowledged. The acks the stages give a batch's events after a rebalance are refused
either way, and read again.)

Not a loss but a wrong reading: Faust's consumer reads uncommitted records unless Faust itself
runs exactly-once, so the stages acted on what an upstream producer wrote in a transaction it
then aborted. The worker's consumer reads committed records only (and :mod:`streams.runtime.gaps`
notes the offsets of the markers and aborted records it passes over, so that the sequencer
does not take them for lost records).

Not a loss but a delay: Faust creates its consumer with ``fetch_max_wait_ms=1500``, and
aiokafka leaves a partition whose records are still buffered out of the fetch it sends; while
that fetch waits at the broker, new records of the left-out partition wait too, up to 1.5 s
per hop. The worker's consumer gets ``settings.fetch_max_wait_ms`` instead (50 ms).

A second window: before committing offsets Faust flushes its producer, but the buffer that
holds table writes (changelog records) stops flushing after 0.1 s without progress. A commit can
then cover an input whose state write is still queued; a crash right after loses that write and
the input is never replayed (orders stuck waiting for answers they already got). The fix: the
buffer's flush drains it completely before the commit. While the broker is away it waits,
however long that takes, with an error line every 30 s: a stage's batch (which flushes before
it sends or acks anything) and a commit both wait, and the worker goes on once the broker is
back (an outage of 2 minutes is tested). A worker that stops while writes are still queued
gives up its last commit after 30 s (:class:`BufferNotDrained`), so those inputs are read again
at its next start. (The buffer's size counts the writes still queued, not one being handed to
the producer at that moment; in the stages, the outbox's confirmation of each batch's table
writes before its acks covers that one.)

Each fix has a test that fails without it. ``tests/integration/test_faust_fixes.py`` steps a
minimal Faust app, with nothing else between Faust and the loss, into the window of the seek,
the paused fetch, the refused acks and the drain; ``tests/e2e/test_transactional_upstream.py``
runs a worker without its committed reads, and without the gaps noted by
:mod:`streams.runtime.gaps`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.consumer.fetcher import PartitionRecords
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Producer as FaustProducer
from faust.transport.producer import ProducerBuffer
from faust.types import TP

from streams.runtime import gaps

log = logging.getLogger(__name__)
_FAUST_INTERNAL = ("-changelog", "-__assignor-__leader", "-repartition")
_original_perform_seek = Consumer.perform_seek


START_OFFSETS: dict[tuple[str, int], int] = {}
"""Where each assigned stream partition starts after the latest seek: its committed offset,
or the start of its log. The stages' sequencer holds the first record it sees against it."""


def start_offset(consumer: Any, topic: str, partition: int) -> int | None:
    """Where a stage that first sees this partition now must have started reading: the latest
    committed offset, or where the latest seek put the partition. Within one generation, a stage
    restarted after a crash starts after records it never finished; it reads them again from
    here, as a restarted worker would (and no further back: that could be a long way)."""
    start = START_OFFSETS.get((topic, partition))
    committed: int | None = consumer._committed_offset.get(TP(topic, partition))
    if committed is None:
        return start
    return committed if start is None else max(start, committed)


async def _perform_seek(self: Any) -> None:
    await _original_perform_seek(self)
    streams = [tp for tp in self.assignment() if not tp.topic.endswith(_FAUST_INTERNAL)]
    uncommitted = [tp for tp in streams if self._committed_offset.get(tp) is None]
    earliest = await self.earliest_offsets(*uncommitted) if uncommitted else {}
    for tp in streams:
        committed = self._committed_offset.get(tp)
        START_OFFSETS[(tp.topic, tp.partition)] = (
            committed if committed is not None else earliest.get(tp) or 0
        )
    if not uncommitted:
        return
    for tp in uncommitted:
        await self.seek(tp, earliest.get(tp) or 0)
    log.info(
        "partitions without a committed offset start from the beginning: %s",
        sorted((tp.topic, tp.partition) for tp in uncommitted),
    )


_original_wait_next_records = Consumer._wait_next_records


REFETCH: dict[Any, int] = {}
"""Partition -> the first offset of the records a stream dropped unprocessed (their acks were
refused by :func:`_ack`): fetched again once the flow is active (:func:`_refetch_dropped`)."""


async def _wait_next_records(self: Any, timeout: float) -> tuple[Any, Any]:
    records, active = await _original_wait_next_records(self, timeout)
    if REFETCH:
        kept = await _refetch_dropped(self, records or {})
        records = None if records is None else kept
    if not records or active is None:
        return records, active
    return await _rewind_inactive(self, records, active), active


async def _rewind_inactive(self: Any, records: Mapping[Any, Any], active: Any) -> Mapping[Any, Any]:
    """Take the records of partitions that are not active out of the fetch, and seek each
    such partition back to the first of them: Faust would skip them, fetch position past."""
    skipped = [tp for tp in records if tp not in active and tp not in self._buffered_partitions]
    if not skipped:
        return records
    kept = {tp: batch for tp, batch in records.items() if tp not in skipped}
    for tp in skipped:
        first = records[tp][0].offset
        await self._seek(tp, first)
        log.info("rewound %s[%s] to %s: fetched while not active", tp.topic, tp.partition, first)
    return kept


async def _refetch_dropped(self: Any, records: Mapping[Any, Any]) -> Mapping[Any, Any]:
    """Seek the partitions a stream dropped records of back to the first of them, once the
    flow is active again; what this fetch brought of those partitions is fetched again too."""
    if not self.app.flow_control.is_active():
        return records
    assigned = self.assignment()
    for tp, offset in list(REFETCH.items()):
        del REFETCH[tp]
        if tp not in assigned:
            continue  # another worker has it now, and reads it from the committed offset
        await self._seek(tp, offset)
        records = {k: v for k, v in records.items() if k != tp}
        log.info(
            "rewound %s[%s] to %s: records dropped unprocessed", tp.topic, tp.partition, offset
        )
    return records


def read_again(first_offsets: Mapping[tuple[str, int], int]) -> None:
    """Have the consumer seek these partitions (topic, partition) back to these offsets once the
    flow is active: a stage that stopped before acknowledging a batch reads it again at its
    restart, even when no later record of the partition comes to show the hole it left."""
    for (topic, partition), offset in first_offsets.items():
        tp = TP(topic, partition)
        REFETCH[tp] = min(REFETCH.get(tp, offset), offset)


_original_ack = Consumer.ack


def _ack(self: Any, message: Any) -> bool:
    app = self.app
    stale = getattr(message, "generation_id", None) != app.consumer_generation_id
    if stale or not app.flow_control.is_active():
        self._unacked_messages.discard(message)  # nobody will process it: don't wait for it
        # ... but read it again: it may be the last of its partition for a long while, and
        # only a later record would show the hole it leaves
        tp = message.tp
        REFETCH[tp] = min(REFETCH.get(tp, message.offset), message.offset)
        return False
    return bool(_original_ack(self, message))


DRAIN_DEADLINE = 30.0
"""Seconds between two error lines while table writes wait for the broker; and how long a
worker that is stopping waits for them before it gives up its last commit."""


class BufferNotDrained(RuntimeError):
    """Table writes are still queued while the worker stops: its last commit must not happen."""


async def _drain(self: Any) -> None:
    started = time.monotonic()
    report_at = started + DRAIN_DEADLINE
    while self.size:
        await self.flush_atmost(None)
        if not self.size:
            return
        now = time.monotonic()
        if _stopping(self) and now >= started + DRAIN_DEADLINE:
            log.error(
                "producer buffer still holds %d table writes after %.0fs and the worker stops: "
                "its last commit is given up, so they are read again at the next start",
                self.size,
                now - started,
            )
            raise BufferNotDrained(
                f"{self.size} table writes still queued in the producer buffer after "
                f"{now - started:.0f}s while the worker stops"
            )
        if now >= report_at:
            log.error(
                "producer buffer still holds %d table writes after %.0fs: waiting for the "
                "broker; no input is acknowledged or committed until they are written",
                self.size,
                now - started,
            )
            report_at = now + DRAIN_DEADLINE
        await asyncio.sleep(0.01)


def _stopping(buffer: Any) -> bool:
    """The buffer's service or its app was asked to stop."""
    app = getattr(buffer, "app", None)
    return bool(getattr(buffer, "should_stop", False) or getattr(app, "should_stop", False))


_original_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer
FETCH_MAX_WAIT_MS = [1500]
"""What the worker's consumer is created with (set by :func:`apply`)."""


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = _original_create_worker_consumer(self, transport)
    # Read by the consumer when it starts its fetcher, so set before start.
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS[0]
    # Faust reads committed records only under its exactly-once guarantee; the stages never
    # act on an upstream transaction that was aborted (see streams/runtime/gaps.py for its markers).
    consumer._isolation_level = "read_committed"
    return consumer


PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}
"""The versions these fixes were written and tested against (pyproject.toml pins the same)."""
TOUCHED: tuple[tuple[str, object, str], ...] = (
    ("faust Consumer", Consumer, "perform_seek"),
    ("faust Consumer", Consumer, "_wait_next_records"),
    ("faust Consumer", Consumer, "ack"),
    ("faust Consumer", Consumer, "_seek"),
    ("faust Consumer", Consumer, "earliest_offsets"),
    ("faust Consumer", Consumer, "highwaters"),
    ("faust Consumer", Consumer, "_to_message"),
    ("faust ProducerBuffer", ProducerBuffer, "flush"),
    ("faust ProducerBuffer", ProducerBuffer, "flush_atmost"),
    ("faust AIOKafkaConsumerThread", AIOKafkaConsumerThread, "_create_worker_consumer"),
    ("faust AIOKafkaConsumerThread", AIOKafkaConsumerThread, "_ensure_consumer"),
    ("faust AIOKafkaConsumerThread", AIOKafkaConsumerThread, "call_thread"),
    ("aiokafka PartitionRecords", PartitionRecords, "_unpack_records"),
    ("faust aiokafka Producer", FaustProducer, "_ensure_producer"),
    ("aiokafka AIOKafkaProducer", AIOKafkaProducer, "_partition"),  # the outbox's batches
)
"""Every attribute of Faust's classes the runtime patches or calls (the instance attributes it
reads, like ``_committed_offset``, are checked by the integration tests that run a worker)."""


class RuntimeMismatch(RuntimeError):
    """The installed Faust or aiokafka is not what the runtime's fixes were made for."""


def check_runtime(
    versions: dict[str, str] | None = None, touched: tuple[tuple[str, object, str], ...] = TOUCHED
) -> None:
    """Refuse to start on another Faust or aiokafka than :data:`PINNED`, or when an attribute
    the fixes patch or call is gone: each fix guards against a loss that a silent no-op would
    bring back. ``versions`` (package -> installed) is for tests."""
    from importlib.metadata import version

    found = versions or {name: version(name) for name in PINNED}
    problems = [
        f"{name} {found.get(name)} is installed, {wanted} is required"
        for name, wanted in PINNED.items()
        if found.get(name) != wanted
    ]
    problems += [
        f"{owner}.{attribute} is missing"
        for owner, cls, attribute in touched
        if not hasattr(cls, attribute)
    ]
    if problems:
        raise RuntimeMismatch(
            "the worker's runtime fixes (streams/runtime/faust_fixes.py) do not fit what is "
            "installed: "
            + "; ".join(problems)
            + ". Install the pinned versions (make install) or review every fix against the "
            "new release before changing the pins."
        )


def apply(*, fetch_max_wait_ms: int = 1500) -> None:
    """Install the fixes once (idempotent), after :func:`check_runtime`."""
    check_runtime()
    gaps.apply()
    FETCH_MAX_WAIT_MS[0] = fetch_max_wait_ms
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
    Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]
    Consumer._wait_next_records = _wait_next_records  # type: ignore[method-assign]
    Consumer.ack = _ack  # type: ignore[method-assign]
    ProducerBuffer.flush = _drain  # type: ignore[method-assign]

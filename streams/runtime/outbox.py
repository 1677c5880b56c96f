"""Where the stages' records go, and the order in which state and records become visible.

The registry names each record's topic and key, and the codec encodes at the boundary. Stages
work in batches: every input of a batch is applied and its table writes queued, the producer
is flushed so those writes are durable in the changelogs (a write the broker refused stops the
stage, as a refused record does below), and only then are the records the batch caused sent;
the inputs are acknowledged once the broker has confirmed every one of those records. So no
record is ever seen whose state could still be lost, and no input is committed whose records
could still be lost: a crash replays inputs against state that either holds their effect (the
stage answers as before, same ids, and writes its value again) or does not (and nothing they
caused was seen).

A stage's table is read and written through a :class:`BatchTable`: each key is decoded at most
once per batch and its changelog record written once, before the flush. Records go straight to the
producer (Faust's ``Topic.send`` adds a future, a callback and a channel hop per record that
nothing here uses); the batch then waits for the producer's futures of all of them, and of
its dead letters, and checks each.

A record that cannot be delivered (the broker refused it after the producer's retries) stops
the stage with :class:`DeliveryFailed`, before its batch's inputs are acknowledged: they are
never committed, Faust restarts the stage, and the restarted stage has the consumer seek the
batch's partitions back to its first inputs (a later record of the partition would show the
hole too, but a quiet partition may get none for a long while), so the records they cause are
sent again, with the same ids. Nothing undelivered is skipped over.

No input stops a stage. One that fails is dead-lettered with its reason and the stage's
refusal hook may answer it (:meth:`Outbox.on_refused`: a command's sender is waiting), while
the rest of the batch goes on. That holds for the work after the batch too, storing a changed
value and the ``finish`` hook: when either fails for a key, the key is put back to the table's
value and the batch's inputs of that key are applied again one by one, each tried alone;
those that pass take effect, with their records, and each that fails is refused. Only a
failure pays for this: on the way through, the batch keeps just where each input's records
start. The inputs of one key are those whose event has that key, as a stage's handler writes
only its input's key (the table partition is the input's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import Counter, defaultdict
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from faust.streams import _current_event

from config.settings import Settings
from schemas import packing
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.dlq import DeadLetter, dead_letter
from schemas.models import Message
from streams.metrics import PipelineMetrics
from streams.runtime import envelopes
from streams.runtime.acks import HeldAcks, Holds, hold_waiting, waiting_changes
from streams.runtime.batch_table import BatchTable
from streams.runtime.batches import event_batches
from streams.runtime.faust_fixes import read_again, start_offset
from streams.runtime.raw import table_writes
from streams.runtime.sequencer import ADMIT, HoleFiller, Sequencer
from streams.runtime.stalls import CHECK_S as STALL_CHECK_S
from streams.runtime.stalls import StallWatch
from streams.runtime.topic_check import stage_topics, wait_until_known, worker_readers

log = logging.getLogger(__name__)

BATCH_MAX = 500
"""Inputs applied before one flush; large enough to amortise the flush under load."""
PART_MAX = 20_000
"""Records of packed upstream messages one batch applies at most (a message past them starts
a part of its own, :meth:`Outbox._parts`): ``BATCH_MAX`` messages of a bulk load of stock are
250,000 counts, which a worker applied, held and sent at once."""
RETRY_PAUSE_S = 2.0
"""Seconds a stage restarted after it stopped on a batch waits before it reads it again."""

_NOT_READ: Any = object()
"""A message without an entry in ``_Batch.unpacked`` (of a topic :meth:`Outbox._parts` does
not read, or one it could not): read when it is applied."""

Delivery = tuple[str, "asyncio.Future[Any]"]
"""A record's topic and the producer's future that says whether the broker took it."""


class DeliveryFailed(RuntimeError):
    """The broker did not take a record a batch caused: the batch's inputs must not be
    acknowledged, so the stage stops here and reads them again after its restart."""


@dataclass(frozen=True)
class Tombstone:
    """Deletes ``key`` from a compacted topic of the registry (``topic``, unprefixed): what a
    stage sends, like a record, to say a key is gone."""

    topic: str
    key: bytes


Output = Message | Tombstone


@dataclass
class Sends:
    """What the inputs of one batch caused, held back until their state is durable."""

    records: list[Output] = field(default_factory=list)
    letters: list[tuple[str, DeadLetter]] = field(default_factory=list)  # (kind, letter)
    inputs: list[tuple[Any, int, int]] = field(default_factory=list)
    """Each input applied, with where its records and letters start: what is taken back when
    the work after the batch fails for the input's key."""
    unreadable: int = 0
    """Inputs dead-lettered before the stage saw them (a ``RecordBatch`` that cannot be read,
    a packed message with too many records of one key, a packed record in another partition
    than its key's)."""
    batch_from: dict[tuple[str, int], int] = field(default_factory=dict)
    """(topic, partition) -> the batch's first offset there (lowered by a hole it fills). The
    records of every input before it went out before the batch began: a stage may note that in
    the values it writes, to skip a replay of them however far back (``inventory.note_read``)."""

    @staticmethod
    def where(event: Any) -> tuple[str, int, int]:
        """Where the input was read: its partition (``topic:partition``), its offset and its
        time in ms."""
        message = event.message
        at_ms = round(float(message.timestamp) * 1000)
        return f"{message.topic}:{message.partition}", message.offset, at_ms

    def read_from(self) -> dict[str, int]:
        """:attr:`batch_from` by ``topic:partition``."""
        return {
            f"{topic}:{partition}": offset for (topic, partition), offset in self.batch_from.items()
        }

    def add(self, records: Iterable[Output]) -> None:
        self.records.extend(records)

    def mark(self) -> tuple[int, int]:
        return len(self.records), len(self.letters)

    def truncate(self, mark: tuple[int, int]) -> None:
        """Forget every record and letter added since ``mark``."""
        del self.records[mark[0] :]
        del self.letters[mark[1] :]

    def extend(self, other: Sends) -> None:
        self.records.extend(other.records)
        self.letters.extend(other.letters)

    def take_back(self, keys: Collection[bytes], end: tuple[int, int]) -> dict[bytes, list[Any]]:
        """Remove what every input with a key in ``keys`` added (the inputs' part ends at
        ``end``); return those inputs by key, in order."""
        taken: dict[bytes, list[Any]] = defaultdict(list)
        records: set[int] = set()
        letters: set[int] = set()
        ends = [(r, n) for _, r, n in self.inputs[1:]] + [end]
        for (event, r0, n0), (r1, n1) in zip(self.inputs, ends, strict=True):
            if event.key in keys:
                taken[event.key].append(event)
                records.update(range(r0, r1))
                letters.update(range(n0, n1))
        self.records = [x for i, x in enumerate(self.records) if i not in records]
        self.letters = [x for i, x in enumerate(self.letters) if i not in letters]
        self.inputs = []  # their places moved
        return taken

    def dead_letter_unread(self, event: Any, error: str, stage: str, kind: str) -> None:
        """Dead-letter an input the stage never saw (counted in :attr:`unreadable`)."""
        self.dead_letter(event, error, stage, kind)
        self.unreadable += 1

    def dead_letter(self, event: Any, error: str, stage: str, kind: str = "invalid") -> None:
        """The event's original key and bytes go to the dead-letter topic, with the reason;
        ``kind`` is a bounded word for metrics (undecodable, bad_key, unknown_order, ...)."""
        message = event.message
        log.warning(
            "dead letter from %s at %s[%s]@%s: %s",
            stage,
            message.topic,
            message.partition,
            message.offset,
            error,
        )
        self.letters.append(
            (
                kind,
                dead_letter(
                    message.key,
                    message.value,
                    error=error,
                    stage=stage,
                    source_topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                ),
            )
        )


Handler = Callable[[Any, Sends], Awaitable[None]]
Finish = Callable[[dict[bytes, Any], Sends], None]
"""Called once a batch's inputs are applied, with the values its table changed (settled, see
:class:`BatchTable`), before they are written; it may add records. It may be called again for
some of those keys (alone, after their inputs were applied again, once per value that passed):
the records of each of those calls go out, in order."""
Refuse = Callable[[Any, str, Sends], None]
"""A stage's answer to an input it could not apply (event, reason); it may add records and
write the input's key (to remember the refusal)."""


class Outbox:
    """Encodes records and sends each to the topic the registry names for its type."""

    def __init__(
        self, app: faust.App, settings: Settings, codec: Codec, metrics: PipelineMetrics
    ) -> None:
        self.codec = codec
        self.metrics = metrics
        self._app = app
        self._settings = settings
        self._topics: dict[str, tuple[str, str, bool]] = {}
        self._unpacked_topics = frozenset(
            settings.topic(topic.name) for topic in registry.ALL_TOPICS if topic.unpacked
        )
        self._placed_upstream = frozenset(
            settings.topic(topic.name)
            for topic in registry.ALL_TOPICS
            if topic.packable and not topic.batched
        )
        """Topics an upstream producer packs: each packed record's partition is checked."""
        self._dlq = settings.topic(registry.DLQ.name)
        self._refusers: dict[str, Refuse] = {}
        self.stalls = StallWatch()
        """What each stage reads: a partition that holds records it never got is read again."""
        self._unfinished: dict[str, dict[tuple[str, int], int]] = {}
        """Stage -> the first offset per partition of the batch it stopped on, unacknowledged."""
        self._acks: dict[str, HeldAcks] = {}
        """Stage -> its inputs not yet acknowledged (:mod:`.acks`); kept across its restarts."""

    def on_refused(self, stage: str, refuse: Refuse) -> None:
        """Have ``refuse`` answer every input of ``stage`` that is dead-lettered because it
        could not be applied (a bug, or the work after its batch failed for it)."""
        self._refusers[stage] = refuse

    async def watch_stalls(self) -> None:
        """Look for stalled partitions every few seconds, for ever (:mod:`.stalls`)."""
        count = self.metrics.stalls.labels
        while True:
            await asyncio.sleep(STALL_CHECK_S)
            try:
                await self.stalls.check(self._app, lambda stage: count(stage).inc())
            except Exception as exc:  # a broker away now is asked again next time
                log.info("could not look for stalled partitions now: %r", exc)

    async def send(self, record: Output) -> Delivery:
        """Hand ``record`` to the producer; what comes back says when the broker took it."""
        if isinstance(record, Tombstone):
            topic = self._settings.topic(record.topic)
            sent = await self._app.producer.send(topic, record.key, None, None, None, None)
            return topic, cast("asyncio.Future[Any]", sent)
        topic, key_field, _ = self._route(record.avro_name)
        key = str(getattr(record, key_field)).encode()
        sent = await self._app.producer.send(
            topic, key, self.codec.encode(record), None, None, None
        )
        return topic, cast("asyncio.Future[Any]", sent)

    async def send_all(self, records: Iterable[Output]) -> list[Delivery]:
        """Send a batch's records: those of a ``batched`` topic in one ``RecordBatch`` per
        partition (:mod:`.envelopes`), after the others, each alone."""
        deliveries: list[Delivery] = []
        packed: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        for record in records:
            if isinstance(record, Tombstone):
                deliveries.append(await self.send(record))
                continue
            topic, key_field, batched = self._route(record.avro_name)
            if not batched:
                deliveries.append(await self.send(record))
                continue
            key = str(getattr(record, key_field)).encode()
            where = (topic, self._partition_of(topic, key))
            packed.setdefault(where, []).append((key, self.codec.encode(record)))
        producer = self._app.producer
        for (topic, partition), entries in packed.items():
            for run in packing.batches(entries):
                value = self.codec.encode_batch(run)
                # Keyed by its first record's key, for whoever reads the topic by hand.
                sent = await producer.send(topic, run[0][0], value, partition, None, None)
                deliveries.append((topic, cast("asyncio.Future[Any]", sent)))
        return deliveries

    def _partition_of(self, topic: str, key: bytes) -> int:
        """The partition the producer's partitioner gives ``key`` (a stage reads only once
        its producer knows every topic: streams/runtime/topic_check.py)."""
        producer: Any = self._app.producer
        partition: int = producer._ensure_producer()._partition(topic, None, None, None, key, None)
        return partition

    async def send_letter(self, letter: DeadLetter) -> Delivery:
        sent = await self._app.producer.send(
            self._dlq, letter.key, letter.value, None, None, letter.headers
        )
        return self._dlq, cast("asyncio.Future[Any]", sent)

    def _route(self, avro_name: str) -> tuple[str, str, bool]:
        """The record's topic (prefixed), its key field, and whether the topic is batched."""
        route = self._topics.get(avro_name)
        if route is None:
            topic = registry.topic_for(avro_name)
            route = (self._settings.topic(topic.name), topic.key, topic.batched)
            self._topics[avro_name] = route
        return route

    async def process(
        self,
        stream: Any,
        handle: Handler,
        stage: str,
        table: BatchTable[Any] | None = None,
        finish: Finish | None = None,
    ) -> None:
        """Feed every event to ``handle`` in batches; a failure dead-letters that input only.

        ``table`` is the stage's table as ``handle`` reads and writes it; after every batch its
        changed values are written back and passed to ``finish``, which may add records.

        No input is taken before the worker's clients know every topic it uses
        (streams/runtime/topic_check.py). A crash is counted in the worker's health
        (streams/health.py) and raised on unchanged, for Faust to restart the agent.
        """
        health = self.metrics.health
        with health.stage(stage) as state:
            app, settings = self._app, self._settings
            own = table.table if table is not None else None
            await wait_until_known(worker_readers(app), stage_topics(settings, own))
            unfinished = self._unfinished.pop(stage, None)
            if unfinished:  # it stopped on a batch: read it again (after a pause, in case
                await asyncio.sleep(RETRY_PAUSE_S)  # what stopped it lasts)
                read_again(unfinished)
            health.running(stage)
            sequencer = Sequencer(stage)
            filler = HoleFiller(app, settings.aiokafka_config())
            acks = self._acks.setdefault(stage, HeldAcks())
            batch = _Batch(handle, stage, sequencer, filler, table, finish, acks)
            self.stalls.reading(stage, sequencer, stream.channel.topics)
            try:
                # Closed at once on a crash: Faust restarts the stage on the same stream.
                batches = cast(AsyncGenerator[list[Any]], event_batches(stream, BATCH_MAX))
                async with contextlib.aclosing(batches):
                    async for events in batches:
                        self.stalls.working(stage, True)
                        await self._batch(events, batch)
                        await self._acknowledge(stream, events, acks)
                        self.stalls.working(stage, False)
                        health.batch_done(state)
            finally:
                self.stalls.stopped(stage)
                await filler.close()

    async def _acknowledge(self, stream: Any, events: list[Any], acks: HeldAcks) -> None:
        """Acknowledge what may be now of a batch done and of those before it (:mod:`.acks`);
        Faust is told not to wait for the rest before a rebalance."""
        ready = acks.done(events)
        for event in ready:
            await stream.ack(event)
        if acks.waiting():  # some of this batch may be queued behind a hold
            acked = {id(event) for event in ready}
            self._not_awaited(event for event in events if id(event) not in acked)

    def _not_awaited(self, events: Iterable[Any]) -> None:
        """Faust's consumer is not to wait for these events before it gives partitions up
        (``wait_empty``): their acknowledgements wait for a batch the rebalance pauses."""
        consumer: Any = self._app.consumer
        unacked = consumer._unacked_messages
        for event in events:
            unacked.discard(event.message)

    async def _batch(self, events: list[Any], batch: _Batch) -> None:
        whole = _first_offsets(events)
        try:
            for part in self._parts(events, batch):
                first = _first_offsets(part)
                try:
                    await self._work(part, batch, first)
                finally:  # a hole it filled lowered its first offsets
                    for tp, offset in first.items():
                        whole[tp] = min(whole[tp], offset)
        except Exception:  # unacknowledged: read again when Faust restarts the stage
            self._unfinished[batch.stage] = whole
            raise
        finally:
            batch.unpacked.clear()

    def _parts(self, events: list[Any], batch: _Batch) -> list[list[Any]]:
        """The batch in parts, each applied, stored and sent as a batch of its own, so that no
        key of a topic an upstream producer packs gets more than ``BATCH_MAX`` inputs in one,
        and no part more than ``PART_MAX`` of its records.

        A sku remembers the ids of the last 1,000 stock events it applied, what a replay of its
        last batch can reach (``streams.core.inventory.stock.EVENT_MEMORY``, two partitions of
        at most a batch each). A batch holds at most ``BATCH_MAX`` messages, but a packed one
        holds hundreds of records, and a file of sales may hold thousands of one sku's. The
        cuts fall between messages, so that a message's records, which share its offset, are
        all in one part (:mod:`streams.core.replays`). The packed messages are unpacked here
        once, for :meth:`_apply_each`."""
        if not any(event.message.topic in self._placed_upstream for event in events):
            return [events]
        parts: list[list[Any]] = [[]]
        inputs: Counter[bytes] = Counter()
        total = 0
        for event in events:
            if event.message.topic not in self._placed_upstream:
                parts[-1].append(event)
                continue
            keys: Counter[bytes] = Counter([event.key])
            try:
                records = self.codec.unpack(event.value)
            except DecodeError:
                records = None  # dead-lettered whole when it is applied, unpacked again
            else:
                batch.unpacked[id(event)] = records  # None: a record sent alone
            if records is not None:
                keys = Counter(key for key, _ in records)
            count = len(records) if records is not None else 1
            if parts[-1] and (
                total + count > PART_MAX
                or any(inputs[key] + n > BATCH_MAX for key, n in keys.items())
            ):
                parts.append([])
                inputs.clear()
                total = 0
            parts[-1].append(event)
            inputs.update(keys)
            total += count
        return parts

    async def _work(
        self, events: list[Any], batch: _Batch, first: dict[tuple[str, int], int]
    ) -> None:
        """Apply, store, send and confirm one batch; a hole filled lowers its ``first``."""
        m, stage = self.metrics, batch.stage
        started = time.perf_counter()
        sends = Sends(batch_from=first)
        for event in events:
            message = event.message
            hole = batch.sequencer.admit(
                message, start_offset(self._app.consumer, message.topic, message.partition)
            )
            if hole != ADMIT:
                tp = (message.topic, message.partition)
                first[tp] = min(first[tp], hole)
                missing = await batch.filler.fill(
                    message.topic, message.partition, hole, message.offset
                )
                m.holes_filled.labels(stage).inc(len(missing))
                for lost in missing:
                    await self._apply_each(lost, batch, sends)
            await self._apply_each(event, batch, sends)
        holds: Holds = []
        if batch.table is not None:
            holds = await self._settle(batch, batch.table, sends, events)
        waited = time.perf_counter()
        producer = self._app.producer
        await producer.buffer.flush()  # the table writes, handed to the client
        send_now(producer)
        await producer.flush()
        if batch.table is not None:  # the batch's table writes are durable now, or it stops
            await confirm_delivery(stage, table_writes(batch.table.table))
        sending = time.perf_counter()
        m.broker_wait.labels(stage, "state").observe(sending - waited)
        deliveries = await self.send_all(sends.records)
        deliveries += [await self.send_letter(letter) for _, letter in sends.letters]
        send_now(producer)
        waited = time.perf_counter()
        await confirm_delivery(stage, deliveries)  # before the inputs are acked
        m.broker_wait.labels(stage, "records").observe(time.perf_counter() - waited)
        if batch.table is not None:
            held = hold_waiting(batch.acks, batch.table, holds)
            self._not_awaited(held)
            m.waiting_keys.labels(stage).set(len(batch.acks))
        for kind, _ in sends.letters:
            m.dead_letters.labels(stage, kind).inc()
        # Inputs are records: each of a RecordBatch counts, as each was applied alone.
        m.events_in.labels(stage).inc(len(sends.inputs) + sends.unreadable)
        m.events_failed.labels(stage).inc(len(sends.letters))
        m.sent(stage, sends.records)
        m.batch_size.labels(stage).observe(len(sends.inputs))
        m.batch_seconds.labels(stage).observe(time.perf_counter() - started)

    async def _apply_each(self, event: Any, batch: _Batch, sends: Sends) -> None:
        """Apply the input, or each record of a ``RecordBatch`` in turn (:mod:`.envelopes`);
        a batch that cannot be read is dead-lettered whole, with the reason. A record an
        upstream producer packed in another partition than its key's is dead-lettered alone:
        applied here, its key would have two owners."""
        if event.message.topic not in self._unpacked_topics:
            await self._apply(event, batch, sends)
            return
        records = batch.unpacked.pop(id(event), _NOT_READ)
        if records is _NOT_READ:
            try:
                records = self.codec.unpack(event.value)
            except DecodeError as exc:
                sends.dead_letter_unread(event, exc.reason, batch.stage, "undecodable")
                return
        if records is None:  # a record sent alone
            await self._apply(event, batch, sends)
            return
        topic, partition = event.message.topic, event.message.partition
        checked = topic in self._placed_upstream
        if checked and (error := _too_many_of_one_key(records)) is not None:
            sends.dead_letter_unread(event, error, batch.stage, "too_many")
            return
        for record in envelopes.unpacked(event, records):
            if checked and (owner := self._partition_of(topic, record.key)) != partition:
                error = (
                    f"packed in partition {partition} of {topic}, but its key belongs in "
                    f"partition {owner}: pack each record in its key's partition (murmur2, "
                    "as Kafka's Java client places a keyed record)"
                )
                sends.dead_letter_unread(record, error, batch.stage, "misplaced")
                continue
            await self._apply(record, batch, sends)

    async def _apply(self, event: Any, batch: _Batch, sends: Sends) -> None:
        # Tables write their changelog to the partition of the current event.
        _current_event.set(weakref.ref(event))
        generation = getattr(event.message, "generation_id", None)
        batch.acks.follow(generation)
        if batch.table is not None:
            batch.table.follow(generation)
        sends.inputs.append((event, len(sends.records), len(sends.letters)))
        try:
            await batch.handle(event, sends)
        except Exception as exc:  # a bug must not stop the stage; the input is kept
            log.exception("%s stage failed on an input", batch.stage)
            if batch.table is not None and event.key is not None:
                batch.table.rollback(event.key)
            self._refuse(event, f"internal error: {exc!r}", batch, sends)

    def _refuse(self, event: Any, reason: str, batch: _Batch, sends: Sends) -> None:
        """Dead-letter an input that could not be applied, and let the stage answer it."""
        sends.dead_letter(event, reason, batch.stage, "internal_error")
        refuse = self._refusers.get(batch.stage)
        if refuse is None:
            return
        _current_event.set(weakref.ref(event))
        try:
            refuse(event, reason, sends)
        except Exception:  # the dead letter still goes
            log.exception("%s could not answer an input it refused", batch.stage)

    async def _settle(
        self, batch: _Batch, table: BatchTable[Any], sends: Sends, events: list[Any]
    ) -> Holds:
        """Encode what the batch changed, run ``finish`` and write the table; a key that
        cannot be stored or finished has its inputs (those of earlier batches whose change
        waited too) applied again one by one, and is written. Returns the keys whose changes
        wait, with the stream events and the inputs of this batch they hold."""
        holds = waiting_changes(table, [event for event, _, _ in sends.inputs], events)
        values, failed = table.encode_changed()
        inputs_end = sends.mark()
        if batch.finish is not None and values:
            failed.update(_finish_each(batch.finish, values, sends))
        if failed:
            taken = sends.take_back(failed.keys(), inputs_end)
            for key, error in failed.items():
                inputs = batch.acks.inputs.get(key, []) + taken.get(key, [])
                log.warning(
                    "%s: %s; its %d inputs of the batch are applied again one by one",
                    batch.stage,
                    error,
                    len(inputs),
                )
                table.reset(key)
                await self._reapply(key, inputs, batch, table, sends)
            table.write_now(failed)
            holds = [hold for hold in holds if hold[0] not in failed]
        table.write_back()
        return holds

    async def _reapply(
        self, key: bytes, inputs: list[Any], batch: _Batch, table: BatchTable[Any], sends: Sends
    ) -> None:
        """Apply a key's inputs again, each tried alone: keep those the key can be stored and
        finished after, refuse the others. The key's ``finish`` records are those of each good
        value, in order: a topic that keeps the latest record per key ends on the last good
        value's, and a ``finish`` that publishes only what changed since the value before (the
        inventory's channel figures) loses none of its changes."""
        good: tuple[bytes | None, Any] = (None, None)  # the table's value
        finished = Sends()
        for event in inputs:
            own = Sends(batch_from=sends.batch_from)
            await self._apply(event, batch, own)
            error, passed = _trial(key, event, batch, table)
            if error is not None:
                table.restore(key, *good)
                own = Sends(batch_from=sends.batch_from)
                self._refuse(event, error, batch, own)
                error, passed = _trial(key, event, batch, table)  # the refusal may write the key
                if error is not None:
                    table.restore(key, *good)  # it cannot be stored: its answer still goes
            if passed is not None:
                good, out = passed
                finished.extend(out)
            sends.extend(own)
        sends.extend(finished)


def _first_offsets(events: list[Any]) -> dict[tuple[str, int], int]:
    """The first offset of each (topic, partition) among ``events``."""
    first: dict[tuple[str, int], int] = {}
    for event in events:
        first.setdefault((event.message.topic, event.message.partition), event.message.offset)
    return first


def _too_many_of_one_key(records: list[tuple[bytes, bytes]]) -> str | None:
    """Why a packed message with more than ``BATCH_MAX`` records of one key is refused."""
    if len(records) <= BATCH_MAX:
        return None
    [(key, count)] = Counter(key for key, _ in records).most_common(1)
    if count <= BATCH_MAX:
        return None
    return (
        f"a packed message carries {count} records of key {key!r}, more than the {BATCH_MAX} "
        f"a stage applies of one key at once: pack at most {BATCH_MAX} records of one key in a "
        "message"
    )


def send_now(producer: Any) -> None:
    """Send what the producer holds now instead of after its linger, as the Java client's
    ``flush`` does and aiokafka's does not (it waits out the linger of every open batch).

    A stage waits for its batch's records twice (its table writes, then its records), and
    nothing more of the batch is coming: the linger was paid twice a hop for nothing. Closed
    batches take no more records (the next ones open new batches) and the sender is woken, as
    aiokafka's own ``flush_for_commit`` does for a transaction."""
    client = producer._producer
    if client is None:
        return
    accumulator = client._message_accumulator
    for batches in accumulator._batches.values():
        for open_batch in batches:
            open_batch._builder.close()
    waiter = accumulator._waiter_future
    if not waiter.done():
        waiter.set_result(None)


async def confirm_delivery(stage: str, deliveries: list[Delivery]) -> None:
    """Wait until the broker has answered for every record; raise :class:`DeliveryFailed`,
    after logging each topic and error, if it refused any (a future fails only when the
    producer's retries are over). One wait per batch: the futures complete together."""
    pending = [future for _, future in deliveries if not future.done()]
    if pending:
        await asyncio.wait(pending)
    failed: dict[str, tuple[int, str]] = {}
    for topic, future in deliveries:
        error = _delivery_error(future)
        if error is not None:
            failed[topic] = (failed.get(topic, (0, ""))[0] + 1, error)
    if not failed:
        return
    for topic, (count, error) in failed.items():
        log.error(
            "%s stage: the broker refused %d of its records to %s: %s; the stage stops before "
            "acknowledging its inputs and reads them again after its restart",
            stage,
            count,
            topic,
            error,
        )
    raise DeliveryFailed(
        "; ".join(
            f"{count} records to {topic}: {error}" for topic, (count, error) in failed.items()
        )
    )


def _delivery_error(future: asyncio.Future[Any]) -> str | None:
    if future.cancelled():
        return "the send was cancelled"
    error = future.exception()
    return None if error is None else _describe(error)


def _finish_each(finish: Finish, values: dict[bytes, Any], sends: Sends) -> dict[bytes, str]:
    """Run ``finish`` over the batch's changed values; should it fail, key by key, to find the
    keys it fails for (what it added for those is dropped). Returns why each failed."""
    mark = sends.mark()
    try:
        finish(values, sends)
        return {}
    except Exception:
        log.warning("finishing a batch failed; trying its %d keys one by one", len(values))
        sends.truncate(mark)
    failed: dict[bytes, str] = {}
    for key, value in values.items():
        mark = sends.mark()
        try:
            finish({key: value}, sends)
        except Exception as exc:
            sends.truncate(mark)
            failed[key] = f"finishing {key!r} failed: {_describe(exc)}"
    return failed


def _trial(
    key: bytes, event: Any, batch: _Batch, table: BatchTable[Any]
) -> tuple[str | None, tuple[tuple[bytes, Any], Sends] | None]:
    """After ``event`` was applied alone: why the key cannot be stored or finished now, or
    (its encoding and event, what ``finish`` added); (None, None) if it did not change the key."""
    if table.last_input(key) is not event:
        return None, None
    try:
        raw, value = table.encode_key(key)
    except Exception as exc:
        return f"its effect on {key!r} cannot be stored: {_describe(exc)}", None
    out = Sends()
    if batch.finish is not None:
        try:
            batch.finish({key: value}, out)
        except Exception as exc:
            return f"its effect on {key!r} cannot be published: {_describe(exc)}", None
    return None, ((raw, event), out)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass
class _Batch:
    """What one stage's batches are applied with."""

    handle: Handler
    stage: str
    sequencer: Sequencer
    filler: HoleFiller
    table: BatchTable[Any] | None
    finish: Finish | None
    acks: HeldAcks = field(default_factory=HeldAcks)
    unpacked: dict[int, list[tuple[bytes, bytes]] | None] = field(default_factory=dict)
    """What the batch's messages of upstream-packed topics carry (None: a record sent alone),
    by id of the event: read once, to cut the batch (:meth:`Outbox._parts`)."""

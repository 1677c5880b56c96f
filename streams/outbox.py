"""Where the stages' records go, and the order in which state and records become visible.

The registry names each record's topic and key, and the codec encodes at the boundary. Stages
work in batches: every input of a batch is applied and its table writes queued, the producer
is flushed so those writes are durable in the changelogs, and only then are the records the
batch caused sent; the inputs are acknowledged after that. So no record is ever seen whose
state could still be lost: a crash replays inputs against state that either holds their
effect (the stage answers as before, same ids) or does not (and nothing they caused was seen).

A stage's table is read and written through a :class:`BatchTable`: each key is decoded at most
once per batch and its changelog record written once, before the flush. Records go straight to the
producer (Faust's ``Topic.send`` adds a future, a callback and a channel hop per record that
nothing here uses); the flush that follows every batch is what waits for them.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.streams import _current_event

from dom.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec
from schemas.dlq import DeadLetter, dead_letter
from schemas.models import Message
from streams.batch_table import BatchTable
from streams.batches import event_batches
from streams.faust_fixes import START_OFFSETS
from streams.metrics import PipelineMetrics
from streams.sequencer import ADMIT, HoleFiller, Sequencer

log = logging.getLogger(__name__)

BATCH_MAX = 500
"""Inputs applied before one flush; large enough to amortise the flush under load."""


@dataclass
class Sends:
    """What the inputs of one batch caused, held back until their state is durable."""

    records: list[Message] = field(default_factory=list)
    letters: list[tuple[str, DeadLetter]] = field(default_factory=list)  # (kind, letter)

    def add(self, records: Iterable[Message]) -> None:
        self.records.extend(records)

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
"""Called once a batch's inputs are applied, with the values its table changed."""


class Outbox:
    """Encodes records and sends each to the topic the registry names for its type."""

    def __init__(
        self, app: faust.App, settings: Settings, codec: Codec, metrics: PipelineMetrics
    ) -> None:
        self.codec = codec
        self.metrics = metrics
        self._app = app
        self._settings = settings
        self._topics: dict[str, tuple[str, str]] = {}
        self._dlq = settings.topic(registry.DLQ.name)

    async def send(self, record: Message) -> None:
        topic, key_field = self._route(record.avro_name)
        key = str(getattr(record, key_field)).encode()
        await self._app.producer.send(topic, key, self.codec.encode(record), None, None, None)

    async def send_all(self, records: Iterable[Message]) -> None:
        for record in records:
            await self.send(record)

    def _route(self, avro_name: str) -> tuple[str, str]:
        route = self._topics.get(avro_name)
        if route is None:
            topic = registry.topic_for(avro_name)
            route = (self._settings.topic(topic.name), topic.key)
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
        """
        sequencer = Sequencer(stage)
        filler = HoleFiller(self._app, self._settings.aiokafka_config())
        batch = _Batch(handle, stage, sequencer, filler, table, finish)
        try:
            async for events in event_batches(stream, BATCH_MAX):
                await self._batch(events, batch)
        finally:
            await filler.close()

    async def _batch(self, events: list[Any], batch: _Batch) -> None:
        m, stage = self.metrics, batch.stage
        started = time.perf_counter()
        sends = Sends()
        for event in events:
            message = event.message
            hole = batch.sequencer.admit(
                message, START_OFFSETS.get((message.topic, message.partition))
            )
            if hole != ADMIT:
                missing = await batch.filler.fill(
                    message.topic, message.partition, hole, message.offset
                )
                m.holes_filled.labels(stage).inc(len(missing))
                for lost in missing:
                    await self._apply(lost, batch, sends)
            await self._apply(event, batch, sends)
        if batch.table is not None:
            changed = batch.table.write_back()
            if batch.finish is not None:
                batch.finish(changed, sends)
        await self._app.producer.flush()  # the batch's table writes are durable now
        await self.send_all(sends.records)
        for kind, letter in sends.letters:
            await self._app.producer.send(
                self._dlq, letter.key, letter.value, None, None, letter.headers
            )
            m.dead_letters.labels(stage, kind).inc()
        m.events_in.labels(stage).inc(len(events))
        m.events_failed.labels(stage).inc(len(sends.letters))
        m.sent(stage, sends.records)
        m.batch_size.labels(stage).observe(len(events))
        m.batch_seconds.labels(stage).observe(time.perf_counter() - started)

    async def _apply(self, event: Any, batch: _Batch, sends: Sends) -> None:
        # Tables write their changelog to the partition of the current event.
        _current_event.set(weakref.ref(event))
        if batch.table is not None:
            batch.table.follow(getattr(event.message, "generation_id", None))
        try:
            await batch.handle(event, sends)
        except Exception as exc:  # a bug must not stop the stage; the input is kept
            log.exception("%s stage failed on an input", batch.stage)
            if batch.table is not None and event.key is not None:
                batch.table.rollback(event.key)
            sends.dead_letter(event, f"internal error: {exc!r}", batch.stage, "internal_error")


@dataclass
class _Batch:
    """What one stage's batches are applied with."""

    handle: Handler
    stage: str
    sequencer: Sequencer
    filler: HoleFiller
    table: BatchTable[Any] | None
    finish: Finish | None

"""Where the stages' records go: the topic registry names each record's topic and key, the
codec encodes at the boundary, and inputs that cannot be decoded or applied are dead-lettered."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import faust

from dom.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec
from schemas.dlq import dead_letter
from schemas.models import Message
from streams.raw import raw_topic

log = logging.getLogger(__name__)


class Outbox:
    """Encodes records and sends each to the topic the registry names for its type."""

    def __init__(self, app: faust.App, settings: Settings, codec: Codec) -> None:
        self.codec = codec
        self._app = app
        self._settings = settings
        self._topics: dict[str, tuple[Any, str]] = {}
        self._dlq = raw_topic(app, settings, registry.DLQ.name)

    async def send(self, record: Message) -> None:
        topic, key_field = self._route(record.avro_name)
        key = str(getattr(record, key_field)).encode()
        await topic.send(key=key, value=self.codec.encode(record))

    async def send_all(self, records: Iterable[Message]) -> None:
        for record in records:
            await self.send(record)

    def _route(self, avro_name: str) -> tuple[Any, str]:
        route = self._topics.get(avro_name)
        if route is None:
            topic = registry.topic_for(avro_name)
            route = (raw_topic(self._app, self._settings, topic.name), topic.key)
            self._topics[avro_name] = route
        return route

    async def process(self, stream: Any, handle: Any, stage: str) -> None:
        """Feed every event to ``handle``; a failure dead-letters that input, never the stage."""
        async for event in stream.events():
            try:
                await handle(event)
            except Exception as exc:  # a bug must not stop the stage; the input is kept
                log.exception("%s stage failed on an input", stage)
                await self.dead_letter(event, f"internal error: {exc!r}", stage)

    async def dead_letter(self, event: Any, error: str, stage: str) -> None:
        """Send the event's original key and bytes to the dead-letter topic, with the reason."""
        message = event.message
        letter = dead_letter(
            message.key,
            message.value,
            error=error,
            stage=stage,
            source_topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        log.warning(
            "dead letter from %s at %s[%s]@%s: %s",
            stage,
            message.topic,
            message.partition,
            message.offset,
            error,
        )
        await self._dlq.send(key=letter.key, value=letter.value, headers=letter.headers)

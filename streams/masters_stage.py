"""The masters stage: reports location, product and channel policy records that cannot be used.

Every worker's network view reads all of ``dom.locations.v1``, ``dom.products.v1`` and
``dom.channels.v1`` and skips what it cannot decode; skipping is right for a view (every worker
would otherwise report the same record), but the upstream system must hear of it. This agent,
in the group, is that one place: the worker owning the record's partition sends a value that
cannot be decoded or validated, or whose key is not its id, to the dead-letter topic with the
reason. A tombstone is a deletion (of a channel's policy: back to the default), not an error.
"""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.models import ChannelPolicy, Location, Product
from streams.runtime import Runtime, Sends

STAGE = "masters"
Master = Location | Product | ChannelPolicy


def build_masters_stage(runtime: Runtime, settings: Settings, codec: Codec) -> None:
    expected_on: dict[str, type[Master]] = {
        settings.topic(registry.LOCATIONS.name): Location,
        settings.topic(registry.PRODUCTS.name): Product,
        settings.topic(registry.CHANNELS.name): ChannelPolicy,
    }

    async def handle(event: Any, sends: Sends) -> None:
        if event.value is None:
            return  # a tombstone: the views forget the record
        expected = expected_on[event.message.topic]
        try:
            record: Master = codec.decode_as(event.value, expected)
        except DecodeError as exc:
            sends.dead_letter(event, exc.reason, STAGE, "undecodable")
            return
        what, key = _id_of(record)
        if event.key != key.encode():
            sends.dead_letter(event, f"key must be the {what} {key!r}", STAGE, "bad_key")

    topics = [registry.LOCATIONS.name, registry.PRODUCTS.name, registry.CHANNELS.name]
    runtime.stage(STAGE, topics, handle)


def _id_of(record: Master) -> tuple[str, str]:
    """The name of the record's id field, and its value: what its key must be."""
    if isinstance(record, Location):
        return "location_id", record.location_id
    if isinstance(record, Product):
        return "sku", record.sku
    return "channel", record.channel.value

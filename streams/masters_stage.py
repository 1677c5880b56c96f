"""The masters stage: reports location and product records that cannot be used.

Every worker's network view reads all of ``dom.locations.v1`` and ``dom.products.v1`` and skips
what it cannot decode; skipping is right for a view (every worker would otherwise report the
same record), but the upstream system must hear of it. This agent, in the group, is that one
place: the worker owning the record's partition sends a value that cannot be decoded or
validated, or whose key is not its id, to the dead-letter topic with the reason. A tombstone
is a deletion, not an error.
"""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.models import Location, Product
from streams.runtime import Runtime, Sends

STAGE = "masters"


def build_masters_stage(runtime: Runtime, settings: Settings, codec: Codec) -> None:
    locations_topic = settings.topic(registry.LOCATIONS.name)

    async def handle(event: Any, sends: Sends) -> None:
        if event.value is None:
            return  # a tombstone: the views forget the record
        expected: type[Location | Product] = (
            Location if event.message.topic == locations_topic else Product
        )
        try:
            record: Location | Product = codec.decode_as(event.value, expected)
        except DecodeError as exc:
            sends.dead_letter(event, exc.reason, STAGE, "undecodable")
            return
        key = record.location_id if isinstance(record, Location) else record.sku
        if event.key != key.encode():
            what = "location_id" if isinstance(record, Location) else "sku"
            sends.dead_letter(event, f"key must be the {what} {key!r}", STAGE, "bad_key")

    runtime.stage(STAGE, [registry.LOCATIONS.name, registry.PRODUCTS.name], handle)

"""The inventory stage: the only writer of each sku's inventory.

It consumes stock events and the order saga's sku commands (both keyed by sku, so both land on
the worker owning the sku's table partition), applies them with the pure core, stores the new
value, and announces the sku's availability and the command's result.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import faust

from dom.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.internal import SkuCommand
from schemas.models import Message, StockEvent
from streams.core import inventory
from streams.core.sku_owner import apply_command, apply_stock, availability_record
from streams.outbox import Outbox, Sends
from streams.raw import raw_table, raw_topic
from streams.views import NetworkView

log = logging.getLogger(__name__)
STAGE = "inventory"


def build_inventory_stage(
    app: faust.App, settings: Settings, codec: Codec, outbox: Outbox, view: NetworkView
) -> Any:
    """Register the inventory agent and table on ``app``; return the table."""
    table = raw_table(app, settings, "inventory")
    source = raw_topic(app, settings, registry.STOCK.name, registry.SKU_COMMANDS.name)

    async def handle(event: Any, sends: Sends) -> None:
        try:
            record: StockEvent | SkuCommand = codec.decode_as(  # type: ignore[assignment]
                event.value, StockEvent, SkuCommand
            )
        except DecodeError as exc:
            sends.dead_letter(event, exc.reason, STAGE, "undecodable")
            return
        if event.key != record.sku.encode():
            sends.dead_letter(event, f"key must be the sku {record.sku!r}", STAGE, "bad_key")
            return
        raw = table.get(event.key)
        state = inventory.from_dict(json.loads(raw)) if raw else inventory.empty(record.sku)
        now = datetime.fromtimestamp(event.message.timestamp, UTC)
        outputs: list[Message] = []
        if isinstance(record, StockEvent):
            new_state, _changed = apply_stock(state, record)
        else:
            new_state, result = apply_command(state, record, now)
            outputs.append(result)
        # Written and published even when nothing changed: a redelivered input may replay one
        # whose changelog write a crash lost (the local store kept it, the changelog did not).
        table[event.key] = json.dumps(inventory.to_dict(new_state)).encode()
        availability = availability_record(new_state, now)
        view.apply(availability)  # this worker routes on its own news at once
        outputs.append(availability)
        sends.add(outputs)

    @app.agent(source, name=f"{settings.app_id}.inventory")
    async def inventory_agent(stream: Any) -> None:
        await outbox.process(stream, handle, STAGE)

    return table

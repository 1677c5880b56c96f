"""The inventory stage: the only writer of each sku's inventory.

It consumes stock events and the order saga's sku commands (both keyed by sku, so both land on
the worker owning the sku's table partition), applies them with the pure core, stores the new
value, and answers each command. Once per batch it announces the availability of every sku the
batch touched: the topic is compacted, channels want the latest figures, and a burst of
reservations on one sku is one record instead of one per command.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import faust
from pydantic_core import from_json, to_json

from dom.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.internal import SkuCommand
from schemas.models import StockEvent
from streams.batch_table import BatchTable
from streams.core import inventory
from streams.core.inventory import SkuInventory
from streams.core.sku_owner import apply_command, apply_stock, availability_record
from streams.outbox import Outbox, Sends
from streams.raw import raw_table, raw_topic
from streams.views import NetworkView

log = logging.getLogger(__name__)
STAGE = "inventory"
KEEP_SKUS = 5000
"""Decoded sku inventories kept between batches: the busy skus."""


def build_inventory_stage(
    app: faust.App, settings: Settings, codec: Codec, outbox: Outbox, view: NetworkView
) -> Any:
    """Register the inventory agent and table on ``app``; return the table."""
    table = raw_table(app, settings, "inventory")
    source = raw_topic(app, settings, registry.STOCK.name, registry.SKU_COMMANDS.name)

    skus: BatchTable[SkuInventory] = BatchTable(
        table, _decode_inventory, _encode_inventory, keep=KEEP_SKUS
    )
    changed_at: dict[bytes, datetime] = {}  # sku -> time of the batch's last input about it

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
        state = skus.get(event.key) or inventory.empty(record.sku)
        now = datetime.fromtimestamp(event.message.timestamp, UTC)
        if isinstance(record, StockEvent):
            new_state, _changed = apply_stock(state, record)
        else:
            new_state, result = apply_command(state, record, now)
            sends.add([result])
        # Written and published even when nothing changed: a redelivered input may replay one
        # whose changelog write a crash lost (the local store kept it, the changelog did not).
        skus.put(event.key, new_state, event)
        changed_at[event.key] = now

    def announce(changed: dict[bytes, SkuInventory], sends: Sends) -> None:
        """One availability record per sku the batch touched, with its final figures."""
        for key, state in changed.items():
            availability = availability_record(state, changed_at[key])
            view.apply(availability)  # this worker routes on its own news at once
            sends.add([availability])
        changed_at.clear()

    @app.agent(source, name=f"{settings.app_id}.inventory")
    async def inventory_agent(stream: Any) -> None:
        await outbox.process(stream, handle, STAGE, skus, announce)

    return table


# pydantic-core's JSON (Rust) reads and writes the same JSON as the json module, several
# times faster; the value is read and written once per sku and batch.
def _decode_inventory(raw: bytes) -> SkuInventory:
    return inventory.from_dict(from_json(raw))


def _encode_inventory(state: SkuInventory) -> bytes:
    return to_json(inventory.to_dict(state))

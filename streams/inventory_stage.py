"""The inventory stage: the only writer of each sku's inventory.

It consumes stock events and the order saga's sku commands (both keyed by sku, so both land on
the worker owning the sku's table partition), applies them with the pure core, stores the new
value, and answers each command. Once per batch it announces the availability of every sku the
batch touched: the topic is compacted, channels want the latest figures, and a burst of
reservations on one sku is one record instead of one per command. It carries what each
published sales channel may sell of the sku (:mod:`streams.inventory_channels`), and a
``ChannelRefresh`` input has a sku figured again after the channel policies or the locations
changed.

Nothing an input holds stops it. A stock event is refused (dead-lettered, with the reason) when
its figures would leave the contract's range, or when its location does not exist once the
view has read every location published up to now (:mod:`streams.location_gate`). A command it
cannot apply, for whatever reason, is answered ``ok`` False all the same
(:func:`~streams.core.inventory.sku_owner.refusal`), so no order waits for it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic_core import from_json, to_json

from config.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.internal import ChannelRefresh, SkuAction, SkuCommand
from schemas.models import StockEvent
from streams.core import replays
from streams.core.channels.sku import needs_refigure, publish_again
from streams.core.inventory import backorders
from streams.core.inventory import stock as inventory
from streams.core.inventory.sku_owner import (
    EXPIRY_S,
    answer_command,
    apply_stock,
    availability_record,
    command_problem,
    refusal,
    refuse_command,
    serve_line,
    stock_cause,
)
from streams.core.inventory.stock import SkuInventory, StockRefused
from streams.inventory_channels import ChannelFigures, register_channel_refresh
from streams.location_gate import LocationGate
from streams.metrics import PipelineMetrics
from streams.runtime import BatchTable, Runtime, Sends
from streams.views import NetworkView

log = logging.getLogger(__name__)
STAGE = "inventory"
KEEP_SKUS = 5000
"""Decoded sku inventories kept between batches: the busy skus."""
INPUTS = (StockEvent, SkuCommand, ChannelRefresh)
Input = StockEvent | SkuCommand | ChannelRefresh


def build_inventory_stage(
    runtime: Runtime, settings: Settings, codec: Codec, view: NetworkView
) -> Any:
    """Register the inventory stage, its table and its timers; return the table."""
    table = runtime.table("inventory")
    figures = ChannelFigures(view, topic=settings.channel_availability_topic)
    skus = sku_table(table, figures)
    gate = LocationGate(view, settings.aiokafka_config(), settings.topic(registry.LOCATIONS.name))
    stage = InventoryStage(
        skus, figures, codec, view, gate, settings.backorder_expiry_s, runtime.metrics
    )

    @contextlib.asynccontextmanager
    async def ready() -> AsyncIterator[None]:
        # Judge stock locations on a complete picture of the network.
        await view.ready.wait()
        try:
            await gate.start()
            yield
        finally:
            await gate.close()

    runtime.stage(
        STAGE,
        [registry.STOCK.name, registry.SKU_COMMANDS.name],
        stage.handle,
        table=skus,
        finish=stage.announce,
        refuse=stage.refuse,
        ready=ready,
    )

    register_channel_refresh(runtime, table, view)

    @runtime.every(expiry_scan_interval(settings.backorder_expiry_s))
    async def expire_backorders() -> None:
        """Ask each sku's owner to take its expired backorders out of line: the timer only
        reads, the command is applied (once per id) like any input, in the stage's order."""
        now = datetime.now(UTC)
        async for stored in runtime.scan(table.items()):
            for command in expiry_commands(stored, now, settings.backorder_expiry_s):
                await runtime.send(command)

    @runtime.every(backorders.PROMISE_TTL_MS / 2000)
    async def offer_again() -> None:
        """Units set aside for a woken order that never acted on them are offered again, even
        when nothing else comes for the sku: an ``EXPIRE`` makes the owner serve its line."""
        generation = runtime.generation()
        if generation != stage.promises_read_at:  # new partitions: their promises are unknown
            stage.read_promises(table.items(), generation)
        now = datetime.now(UTC)
        for key in stage.stale_promises(now):
            raw = table.get(key)
            if raw is not None:
                await runtime.send(line_tick(_decode_inventory(raw), now))

    return table


def line_tick(state: SkuInventory, now: datetime) -> SkuCommand:
    """An ``EXPIRE`` for the sku: its expired backorders leave the line and the line is served
    (stale set-asides offered again). The id numbers the sku's expiries: applied once."""
    oldest = backorders.oldest(state)
    return SkuCommand(
        command_id=f"EXPIRE:{state.sku}:{state.expiries + 1}",  # the next expiry's
        order_id=oldest.order_id if oldest is not None else state.sku,
        sku=state.sku,
        action=SkuAction.EXPIRE,
        attempt=0,
        issued_at=now,
    )


def expiry_scan_interval(expiry_s: float) -> float:
    """A quarter of the expiry, between 1 s and an hour: a backorder is cancelled within a
    quarter of its allowed wait after it expired (and the scan of this worker's skus costs
    little at that pace)."""
    return min(3600.0, max(1.0, expiry_s / 4))


def expiry_commands(
    items: Iterable[tuple[bytes, bytes]], now: datetime, expiry_s: float
) -> list[SkuCommand]:
    """One ``EXPIRE`` per sku of ``items`` (the stored values of this worker's skus) whose
    oldest backorder has waited more than ``expiry_s`` at ``now``; the id numbers the sku's
    expiries, so the command is applied once however often the scan sends it, and an order that
    was busy when it expired and waits again expires at the next scan."""
    cutoff = now.timestamp() * 1000 - expiry_s * 1000
    commands = []
    for _key, raw in items:
        if raw is None or b'"waiters":[[' not in raw:
            continue  # the common case, decided without decoding
        state = _decode_inventory(raw)
        oldest = backorders.oldest(state)
        if oldest is None or oldest.since_ms >= cutoff:
            continue
        commands.append(line_tick(state, now))
    return commands


class InventoryStage:
    """What the agent does with each input, each refusal and each batch's changed skus."""

    def __init__(
        self,
        skus: BatchTable[SkuInventory],
        figures: ChannelFigures,
        codec: Codec,
        view: NetworkView,
        gate: LocationGate,
        expiry_s: float = EXPIRY_S,
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self.skus = skus
        self.figures = figures
        self.expiry_s = expiry_s
        self.promising: dict[bytes, int] = {}
        """Skus of this worker with units set aside, and since when (the oldest): what the
        line timer looks at. Filled as the stage writes, and read from the table whenever the
        worker's partitions were assigned (:meth:`read_promises`)."""
        self.promises_read_at: int | None = None
        """The consumer generation whose partitions ``promising`` was read for."""
        self.codec = codec
        self.view = view
        self.gate = gate
        self.metrics = metrics or PipelineMetrics()
        self._reservations: list[str] = []
        """Reservations answered since the view last had this worker's figures: the order
        stage's promises of them end when it has (:meth:`announce`)."""

    async def handle(self, event: Any, sends: Sends) -> None:
        record = self._decode(event, sends)
        if record is None:
            return
        stored = self.skus.get(event.key)
        state = stored or inventory.empty(record.sku)
        if inventory.done_before(state, *sends.where(event)):
            self.metrics.replays_skipped.labels(STAGE).inc()  # its records all went out
            return
        if self.skus.last_input(event.key) is None and replays.rereads(
            state.read_to, sends.read_from()
        ):  # this batch reads again what an earlier one of the sku read: publish it all again
            state = publish_again(state)
        if isinstance(record, ChannelRefresh):
            self.refresh(stored, state, event, sends)
            return
        if isinstance(record, StockEvent) and not await self.gate.knows(record.location_id):
            where = f"unknown location {record.location_id}"
            sends.dead_letter(event, where, STAGE, "unknown_location")
            return
        if isinstance(record, StockEvent):
            try:
                new_state, changed = apply_stock(state, record)
            except StockRefused as exc:
                sends.dead_letter(event, exc.reason, STAGE, "out_of_bounds")
                return
            new_state, wakes = serve_line(
                state, new_state, _time_of(event), cause=stock_cause(record), replay=not changed
            )
            sends.add(wakes)
        else:
            problem = command_problem(record)
            if problem is not None:
                sends.dead_letter(event, problem, STAGE, "invalid")
                sends.add([refusal(record, problem, _time_of(event))])
                return
            new_state, results = answer_command(
                state, record, _time_of(event), expiry_s=self.expiry_s
            )
            sends.add(results)
            if record.action == SkuAction.RESERVE:
                self._reservations.append(record.command_id)
        # Written and published even when nothing changed: a redelivered input may replay one
        # whose changelog write a crash lost (the local store kept it, the changelog did not).
        self.skus.put(event.key, _read(new_state, event, sends), event)

    def _decode(self, event: Any, sends: Sends) -> Input | None:
        """The input's record, or None when it is dead-lettered (undecodable, or keyed by
        another sku: a command is then answered "no", unapplied)."""
        try:
            record: Input = self.codec.decode_as(event.value, *INPUTS)  # type: ignore[assignment]
        except DecodeError as exc:
            sends.dead_letter(event, exc.reason, STAGE, "undecodable")
            return None
        if event.key != record.sku.encode():
            reason = f"key must be the sku {record.sku!r}"
            sends.dead_letter(event, reason, STAGE, "bad_key")
            if isinstance(record, SkuCommand):
                sends.add([refusal(record, reason, _time_of(event))])
            return None
        return record

    def refresh(
        self, stored: SkuInventory | None, state: SkuInventory, event: Any, sends: Sends
    ) -> None:
        """Figure the sku's channels again (the plan changed). Its value is written (and so
        settled, its figures published) only when a figure moves, or when it must publish
        them again (``state`` is then not the stored value)."""
        if stored is None:
            return  # a sku never stocked: no figure to publish
        if state is stored and not needs_refigure(state, self.view.channel_plan()):
            return  # figured already, by a batch since the refresh was sent
        self.skus.put(event.key, _read(state, event, sends), event)

    def refuse(self, event: Any, reason: str, sends: Sends) -> None:
        """A command the stage could not apply is answered ``ok`` False all the same."""
        try:
            command = self.codec.decode_as(event.value, SkuCommand)
        except DecodeError:
            return  # a stock event, a refresh (or undecodable): its dead letter is all to say
        if event.key != command.sku.encode():
            return  # answered by handle()
        if command.action == SkuAction.RESERVE:
            try:  # remembered, so that a redelivery is refused too
                state = self.skus.get(event.key) or inventory.empty(command.sku)
                self.skus.put(event.key, _read(refuse_command(state, command), event, sends), event)
            except Exception:
                log.exception("could not remember the refusal of %s", command.command_id)
        sends.add([refusal(command, reason, _time_of(event))])

    def read_promises(self, items: Iterable[tuple[bytes, bytes]], generation: int) -> None:
        """``promising`` read from the stored values of the worker's skus (``items``). A
        restarted worker, or one handed a partition, knows no promise of it otherwise, and one
        made before a crash for an order that ignored its wake stayed set aside, with nothing
        to offer it again while no other input came for the sku (a burst test's backorder
        waited while its stock sat promised to it)."""
        self.promising = {}
        for key, raw in items:
            if raw is None or b'"waiters":[[' not in raw:
                continue  # no line: decided without decoding
            since = backorders.oldest_promise_ms(_decode_inventory(raw))
            if since is not None:
                self.promising[key] = since
        self.promises_read_at = generation

    def stale_promises(self, now: datetime) -> list[bytes]:
        """The skus whose units set aside for a woken order are older than the promise's time."""
        limit = now.timestamp() * 1000 - backorders.PROMISE_TTL_MS
        return [key for key, since in self.promising.items() if since <= limit]

    def announce(self, changed: dict[bytes, SkuInventory], sends: Sends) -> None:
        """One availability record per sku the batch touched, with its final figures (the
        channels' among them), and the channel records that moved when the topic is on."""
        for key, state in changed.items():
            since = backorders.oldest_promise_ms(state)
            if since is None:
                self.promising.pop(key, None)
            else:
                self.promising[key] = since

        def now_of(key: bytes) -> datetime:
            return _time_of(self.skus.last_input(key))

        records = [availability_record(state, now_of(key)) for key, state in changed.items()]
        channels = self.figures.records(changed, now_of)
        for availability in records:
            self.view.apply(availability)  # this worker routes on its own news at once
        self.view.promised.shown(self._reservations)
        self._reservations.clear()
        sends.add(records)
        sends.add(channels)


def sku_table(table: Any, figures: ChannelFigures) -> BatchTable[SkuInventory]:
    """The inventory table as the stage reads and writes it: decoded sku inventories, each
    changed one settled with its channel figures before it is written."""
    return BatchTable(
        table, _decode_inventory, _encode_inventory, keep=KEEP_SKUS, settle=figures.settle
    )


def _read(state: SkuInventory, event: Any, sends: Sends) -> SkuInventory:
    """``state`` as the batch writes it after ``event``: what the sku has read, for a replay
    to skip (see ``inventory.note_read``)."""
    return inventory.note_read(state, *sends.where(event), sends.read_from())


def _time_of(event: Any) -> datetime:
    """When an input happened, as its records say: the broker's timestamp of it."""
    return datetime.fromtimestamp(event.message.timestamp, UTC)


# pydantic-core's JSON (Rust) reads and writes the same JSON as the json module, several
# times faster; the value is read and written once per sku and batch.
def _decode_inventory(raw: bytes) -> SkuInventory:
    return inventory.from_dict(from_json(raw))


def _encode_inventory(state: SkuInventory) -> bytes:
    return to_json(inventory.to_dict(state))

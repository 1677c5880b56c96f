"""The order stage: the saga that owns each order, from placement to completion.

It consumes orders, the sku owners' results, fulfillment updates, returns and order actions
(all keyed by order_id, so all land on the worker owning the order's table partition), runs the
pure saga, stores the order's state and sends what the saga decided: status changes, commands, sku
commands, return labels (in ``settings.label_format``) and the stock events that put returned
sellable units back on hand (the inventory stage applies them).

No input stops it. One that cannot be decoded, is keyed by another id than its order's, names an
order never placed, or would make its order's state larger than a changelog record may hold
(``MAX_STATE_BYTES``) is dead-lettered with the reason, and the order stays as it was.

Finished orders leave the table after the retention (:mod:`streams.core.saga.retention`): a
timer finds them, the owner removes them; what comes for a removed order later is refused with
that reason.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from config.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.common import millis
from schemas.enums import LabelFormat
from schemas.internal import OrderPurge, SkuAction, SkuCommand, SkuResult
from schemas.models import (
    FulfillmentUpdate,
    Message,
    OrderAction,
    OrderCancelled,
    OrderPlaced,
    ReturnReceived,
    ReturnRequested,
)
from streams.core import replays
from streams.core.packing.cartons import BoxCatalogue, default_catalogue, load_catalogue
from streams.core.routing.model import RoutingPolicy, ShortfallPolicy
from streams.core.saga.apply import Input, apply_input
from streams.core.saga.context import BackorderPolicy, SagaContext
from streams.core.saga.order_checks import OrderLimits
from streams.core.saga.retention import (
    RemovedOrder,
    Retention,
    note_expired,
    purge_due,
    purges,
    removal_note,
    removed_answer,
    removed_key,
    removed_reason,
)
from streams.core.saga.state import OrderState
from streams.core.saga.timers import Deadlines, due
from streams.metrics import PipelineMetrics
from streams.runtime import BatchTable, Runtime, Sends
from streams.views import NetworkView

log = logging.getLogger(__name__)
STAGE = "orders"
KEEP_ORDERS = 2000
"""Decoded order states kept between batches: the orders still waiting for answers."""
INPUTS = (
    OrderPlaced,
    OrderCancelled,
    SkuResult,
    FulfillmentUpdate,
    ReturnRequested,
    ReturnReceived,
    OrderAction,
    OrderPurge,
)


def build_order_stage(runtime: Runtime, settings: Settings, codec: Codec, view: NetworkView) -> Any:
    """Register the order saga stage, its table and its timers; return the table."""
    table = runtime.table("orders")
    orders = order_table(table)
    stage = OrderStage(orders, codec, view, SagaSettings.of(settings), runtime.metrics)

    @contextlib.asynccontextmanager
    async def ready() -> AsyncIterator[None]:
        await view.ready.wait()  # route only on a complete picture of the network
        yield

    runtime.stage(
        STAGE,
        [
            registry.ORDERS.name,
            registry.SKU_RESULTS.name,
            registry.FULFILLMENT_EVENTS.name,
            registry.RETURNS.name,
            registry.ORDER_ACTIONS.name,
        ],
        stage.handle,
        table=orders,
        ready=ready,
    )
    deadlines = Deadlines(
        accept_store_s=settings.accept_timeout_store_s,
        accept_dc_s=settings.accept_timeout_dc_s,
        pickup_s=settings.pickup_expiry_s,
    )

    @runtime.every(deadlines.scan_interval())
    async def order_timers() -> None:
        """Send what the timers owe this worker's orders (streams/core/saga/timers.py)."""
        if not view.ready.is_set():
            return
        now = datetime.now(UTC)
        async for stored in runtime.scan(table.values()):
            for record in due(stored, now, deadlines, view.location_kind):
                await runtime.send(record)

    retention = stage.saga.retention

    @runtime.every(retention.scan_interval())
    async def order_retention() -> None:
        """Ask the owner to remove this worker's orders finished longer ago than the retention
        (and the notes of removed ones): the timer only reads, the owner applies."""
        now = datetime.now(UTC)
        async for stored in runtime.scan(table.items()):
            for command in purges(stored, now, retention):
                await runtime.send(command)

    return table


def order_table(table: Any) -> BatchTable[OrderState]:
    """The order states of ``table``, decoded once per batch. The saga mutates a state in place,
    so a failed input's changes are rolled back."""
    return BatchTable(table, OrderState.from_stored, encode_state, mutable=True, keep=KEEP_ORDERS)


MAX_STATE_BYTES = 900_000
"""The largest order state the stage stores. A state is one changelog record, and the producer
and the broker take at most 1 MiB a record (key and headers included): a larger one stopped the
worker. An input that would make a state larger cannot be applied; it is dead-lettered."""


class StateTooLarge(ValueError):
    """An order's state past ``MAX_STATE_BYTES``: the input that made it cannot be stored."""


def encode_state(state: OrderState) -> bytes:
    """The state as the table stores it; StateTooLarge if no changelog record could hold it."""
    raw = state.model_dump_json().encode()
    if len(raw) > MAX_STATE_BYTES:
        raise StateTooLarge(
            f"the order's state would be {len(raw)} bytes, more than the {MAX_STATE_BYTES} "
            "one changelog record may hold"
        )
    return raw


@dataclass(frozen=True)
class SagaSettings:
    """What the saga is run with, from the worker's settings."""

    policy: RoutingPolicy
    max_attempts: int
    catalogue: BoxCatalogue
    label_format: LabelFormat
    limits: OrderLimits
    backorders: BackorderPolicy
    retention: Retention
    plan_hold_ids: bool = True

    @classmethod
    def of(cls, settings: Settings) -> SagaSettings:
        return cls(
            policy=RoutingPolicy(
                max_shipments=settings.max_shipments,
                shortfall=ShortfallPolicy(settings.shortfall_policy),
            ),
            max_attempts=settings.max_routing_attempts,
            catalogue=carton_catalogue(settings),
            label_format=LabelFormat(settings.label_format),
            limits=OrderLimits(
                total_tolerance_pct=settings.order_total_tolerance_pct,
                total_tolerance_abs=settings.order_total_tolerance_abs,
                max_line_quantity=settings.max_line_quantity,
            ),
            backorders=BackorderPolicy.of(settings.backorder_priority, settings.backorder_tiers),
            retention=Retention(settings.return_window_days, settings.order_retention_days),
            plan_hold_ids=settings.plan_hold_ids,
        )


class OrderStage:
    """What the agent does with each input: decode, check its key, run the saga, store, send."""

    def __init__(
        self,
        orders: BatchTable[OrderState],
        codec: Codec,
        view: NetworkView,
        saga: SagaSettings,
        metrics: PipelineMetrics,
    ) -> None:
        self.orders = orders
        self.codec = codec
        self.view = view
        self.saga = saga
        self.metrics = metrics
        self.promised = view.promised
        self._swept_ms = 0

    async def handle(self, event: Any, sends: Sends) -> None:
        try:
            record: Input | OrderPurge = self.codec.decode_as(  # type: ignore[assignment]
                event.value, *INPUTS
            )
        except DecodeError as exc:
            sends.dead_letter(event, exc.reason, STAGE, "undecodable")
            return
        if event.key != record.order_id.encode():
            sends.dead_letter(
                event, f"key must be the order_id {record.order_id!r}", STAGE, "bad_key"
            )
            return
        if isinstance(record, OrderPurge):
            self.purge(record, event)
            return
        state = self.orders.get(event.key)
        where = sends.where(event)
        if state is not None and replays.done_before(state.read_to, *where):
            self.metrics.replays_skipped.labels(STAGE).inc()  # its records all went out
            return
        if state is None and self.answer_removed(record, event, sends):
            return
        attempts_before = state.attempt if state else 0
        now_ms = time.time_ns() // 1_000_000
        self._note_answer(record, now_ms)
        ctx = self.context(event, where, promised_as_of=now_ms)
        state, outputs = apply_input(state, record, ctx)
        self._note_promises(outputs, now_ms)
        if state is None:
            sends.add(outputs)  # an action on it is answered (refused) all the same
            days = self.saga.retention.retention_days
            why = (
                f"no order {record.order_id!r} is known: never placed, or removed after its "
                f"retention more than DOM_ORDER_RETENTION_DAYS ({days:g} days) ago"
            )
            sends.dead_letter(event, why, STAGE, "unknown_order")
            return
        state.read_to = dict(replays.note_read(state.read_to, *where, sends.read_from()))
        state.forget_done_replies()
        self.orders.put(event.key, state, event, lazy=waits(record, state, outputs))
        sends.add(outputs)
        _observe(self.metrics, record, state, attempts_before, outputs)

    def purge(self, command: OrderPurge, event: Any) -> None:
        """Remove a finished order past its retention, keeping a note of it; or drop a note
        past its own. Checked again here: an order busy again, or gone already, stays as is."""
        now, table = _time_of(event), self.orders.table
        retention = self.saga.retention
        if command.forget:
            note = self.removed_note(command.order_id)
            if note is not None and note_expired(note, now, retention):
                del table[removed_key(command.order_id)]
            return
        state = self.orders.get(event.key)
        if state is None or not purge_due(state, now, retention):
            return
        table[removed_key(command.order_id)] = removal_note(state, now, retention).stored()
        self.orders.remove(event.key, event)
        log.info("order %s finished and removed after its retention", command.order_id)

    def removed_note(self, order_id: str) -> RemovedOrder | None:
        raw = self.orders.table.get(removed_key(order_id))
        return RemovedOrder.from_stored(raw) if raw else None

    def answer_removed(self, record: Input, event: Any, sends: Sends) -> bool:
        """An input about an order removed after its retention is refused with that reason
        (answered when someone waits for an answer, dead-lettered else); False if it is not
        about a removed order."""
        note = self.removed_note(record.order_id)
        if note is None:
            return False
        answers = removed_answer(record, note, _time_of(event), self.saga.retention)
        sends.add(answers)
        if not answers:
            why = removed_reason(note, self.saga.retention)
            sends.dead_letter(event, why, STAGE, "removed_order")
        return True

    def _note_answer(self, record: Input, now_ms: int) -> None:
        """A sku owner's answer to a reservation settles the promise it made; now and then the
        promises nobody asked about again are swept out."""
        if isinstance(record, SkuResult) and record.action == SkuAction.RESERVE:
            self.promised.answered(record.command_id, record.ok, millis(record.at))
        if now_ms - self._swept_ms > self.promised.ttl_ms:
            self.promised.forget_expired(now_ms)
            self._swept_ms = now_ms

    def _note_promises(self, outputs: list[Message], now_ms: int) -> None:
        for output in outputs:
            if isinstance(output, SkuCommand) and output.action == SkuAction.RESERVE:
                holds = [(h.location_id, h.quantity) for h in output.holds]
                self.promised.asked(output.command_id, output.order_id, output.sku, holds, now_ms)

    def context(
        self,
        event: Any,
        read_at: tuple[str, int, int] | None = None,
        promised_as_of: int | None = None,
    ) -> SagaContext:
        """What the saga reads for ``event``; with ``promised_as_of`` (wall clock, ms) routing
        also sees what this worker promised other orders that its view does not show yet."""
        view, saga = self.view, self.saga
        promised = None
        if promised_as_of is not None:
            order_id = event.key.decode()

            def promised(sku: str) -> Mapping[str, int]:
                return self.promised.units(sku, order_id, view.stock_ms(sku), promised_as_of)

        return SagaContext(
            locations=view.location_infos(),
            stock=view.stock,
            now=_time_of(event),
            policy=saga.policy,
            max_attempts=saga.max_attempts,
            rules=view.rules,  # the set in force now: a published rule applies to the next order
            products=view.products,
            catalogue=saga.catalogue,
            location_records=view.locations,
            label_format=saga.label_format,
            limits=saga.limits,
            backorders=saga.backorders,
            channels=view.channel_plan(),
            read_at=read_at,
            promised=promised,
            plan_hold_ids=saga.plan_hold_ids,
        )


def waits(record: Input, state: OrderState, outputs: list[Message]) -> bool:
    """Whether the state this input left may wait for the order's next write: a sku's answer
    that caused nothing while others of the attempt are still awaited. Nothing was sent
    because of it, and the last answer writes the state (with the decision) anyway, so an
    order whose skus' owners answered in two batches is written twice, not three times; until
    then the answer is not committed (streams/runtime/acks.py)."""
    return isinstance(record, SkuResult) and not outputs and bool(state.pending)


def _observe(
    metrics: PipelineMetrics,
    record: Input,
    state: OrderState,
    attempts_before: int,
    outputs: list[Message],
) -> None:
    if isinstance(record, SkuResult) and record.action == SkuAction.RESERVE and not record.ok:
        metrics.reservation_conflicts.inc()
    if attempts_before >= 1 and state.attempt > attempts_before:
        metrics.routing_retries.inc(state.attempt - attempts_before)
    metrics.order_outputs(state.order, outputs)


def _time_of(event: Any) -> datetime:
    """When an input happened, as its records say: the broker's timestamp of it."""
    return datetime.fromtimestamp(event.message.timestamp, UTC)


def carton_catalogue(settings: Settings) -> BoxCatalogue:
    """The configured box catalogue; a broken file stops the worker with its error."""
    if settings.carton_catalogue is None:
        return default_catalogue()
    return load_catalogue(settings.carton_catalogue.read_text())

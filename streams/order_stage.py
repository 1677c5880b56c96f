"""The order stage: the saga that owns each order, from placement to completion.

It consumes orders, the sku owners' results, fulfillment updates, returns and order actions
(all keyed by order_id, so all land on the worker owning the order's table partition), runs the
pure saga, stores the order's state and sends what the saga decided: status changes, commands, sku
commands, return labels (in ``settings.label_format``) and the stock events that put returned
sellable units back on hand (the inventory stage applies them).

No input stops it. One that cannot be decoded, is keyed by another id than its order's, names an
order never placed, or would make its order's state larger than a changelog record may hold
(``MAX_STATE_BYTES``) is dead-lettered with the reason, and the order stays as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust

from dom.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.enums import LabelFormat
from schemas.internal import SkuAction, SkuResult
from schemas.models import (
    FulfillmentUpdate,
    Message,
    OrderAction,
    OrderCancelled,
    OrderPlaced,
    ReturnReceived,
    ReturnRequested,
)
from streams.batch_table import BatchTable
from streams.core.cartons import BoxCatalogue, default_catalogue, load_catalogue
from streams.core.order_checks import OrderLimits
from streams.core.routing_model import RoutingPolicy, ShortfallPolicy
from streams.core.saga import Input, SagaContext, apply_input
from streams.core.saga_backorders import BackorderPolicy
from streams.core.saga_state import OrderState
from streams.core.saga_timers import Deadlines, due
from streams.metrics import PipelineMetrics
from streams.outbox import Outbox, Sends
from streams.raw import raw_table, raw_topic
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
)


def build_order_stage(
    app: faust.App, settings: Settings, codec: Codec, outbox: Outbox, view: NetworkView
) -> Any:
    """Register the order saga agent and its table on ``app``; return the table."""
    table = raw_table(app, settings, "orders")
    source = raw_topic(
        app,
        settings,
        registry.ORDERS.name,
        registry.SKU_RESULTS.name,
        registry.FULFILLMENT_EVENTS.name,
        registry.RETURNS.name,
        registry.ORDER_ACTIONS.name,
    )
    orders = order_table(table)
    stage = OrderStage(orders, codec, view, SagaSettings.of(settings), outbox.metrics)

    @app.agent(source, name=f"{settings.app_id}.orders")
    async def order_agent(stream: Any) -> None:
        await view.ready.wait()  # route only on a complete picture of the network
        await outbox.process(stream, stage.handle, STAGE, orders)

    deadlines = Deadlines(
        accept_store_s=settings.accept_timeout_store_s,
        accept_dc_s=settings.accept_timeout_dc_s,
        pickup_s=settings.pickup_expiry_s,
    )

    @app.timer(deadlines.scan_interval())  # type: ignore[untyped-decorator]
    async def order_timers() -> None:
        """Send what the timers owe this worker's orders (streams/core/saga_timers.py)."""
        if app.rebalancing or not view.ready.is_set():
            return
        for record in due(table.values(), datetime.now(UTC), deadlines, view.location_kind):
            await outbox.send(record)

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

    async def handle(self, event: Any, sends: Sends) -> None:
        try:
            record: Input = self.codec.decode_as(event.value, *INPUTS)  # type: ignore[assignment]
        except DecodeError as exc:
            sends.dead_letter(event, exc.reason, STAGE, "undecodable")
            return
        if event.key != record.order_id.encode():
            sends.dead_letter(
                event, f"key must be the order_id {record.order_id!r}", STAGE, "bad_key"
            )
            return
        state = self.orders.get(event.key)
        attempts_before = state.attempt if state else 0
        state, outputs = apply_input(state, record, self.context(event))
        if state is None:
            sends.add(outputs)  # an action on it is answered (refused) all the same
            sends.dead_letter(
                event, f"no order {record.order_id!r} is known", STAGE, "unknown_order"
            )
            return
        self.orders.put(event.key, state, event)
        sends.add(outputs)
        _observe(self.metrics, record, state, attempts_before, outputs)

    def context(self, event: Any) -> SagaContext:
        view, saga = self.view, self.saga
        return SagaContext(
            locations=view.location_infos(),
            stock=view.stock,
            now=datetime.fromtimestamp(event.message.timestamp, UTC),
            policy=saga.policy,
            max_attempts=saga.max_attempts,
            rules=view.rules,  # the set in force now: a published rule applies to the next order
            products=view.products,
            catalogue=saga.catalogue,
            location_records=view.locations,
            label_format=saga.label_format,
            limits=saga.limits,
            backorders=saga.backorders,
        )


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


def carton_catalogue(settings: Settings) -> BoxCatalogue:
    """The configured box catalogue; a broken file stops the worker with its error."""
    if settings.carton_catalogue is None:
        return default_catalogue()
    return load_catalogue(settings.carton_catalogue.read_text())

"""The order stage: the saga that owns each order, from placement to completion.

It consumes orders, the sku owners' results, fulfillment updates and returns (all keyed by
order_id, so all land on the worker owning the order's table partition), runs the pure saga,
stores the order's state and sends what the saga decided: status changes, commands, sku
commands, return labels (in ``settings.label_format``) and the stock events that put returned
sellable units back on hand (the inventory stage applies them).
"""

from __future__ import annotations

import logging
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
    OrderCancelled,
    OrderPlaced,
    ReturnReceived,
    ReturnRequested,
)
from streams.batch_table import BatchTable
from streams.core.cartons import BoxCatalogue, default_catalogue, load_catalogue
from streams.core.routing_model import RoutingPolicy, ShortfallPolicy
from streams.core.saga import Input, SagaContext, apply_input
from streams.core.saga_state import OrderState
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
    )
    policy = RoutingPolicy(
        max_shipments=settings.max_shipments, shortfall=ShortfallPolicy(settings.shortfall_policy)
    )
    catalogue = carton_catalogue(settings)
    label_format = LabelFormat(settings.label_format)
    # The saga mutates an order's state in place, so a failed input's changes are rolled back.
    orders: BatchTable[OrderState] = BatchTable(
        table, OrderState.model_validate_json, _encode_state, mutable=True, keep=KEEP_ORDERS
    )

    async def handle(event: Any, sends: Sends) -> None:
        try:
            record: Input = codec.decode_as(event.value, *INPUTS)  # type: ignore[assignment]
        except DecodeError as exc:
            sends.dead_letter(event, exc.reason, STAGE, "undecodable")
            return
        if event.key != record.order_id.encode():
            sends.dead_letter(
                event, f"key must be the order_id {record.order_id!r}", STAGE, "bad_key"
            )
            return
        state = orders.get(event.key)
        ctx = SagaContext(
            locations=view.location_infos(),
            stock=view.stock,
            now=datetime.fromtimestamp(event.message.timestamp, UTC),
            policy=policy,
            max_attempts=settings.max_routing_attempts,
            rules=view.rules,  # the set in force now: a published rule applies to the next order
            products=view.products,
            catalogue=catalogue,
            location_records=view.locations,
            label_format=label_format,
        )
        attempts_before = state.attempt if state else 0
        state, outputs = apply_input(state, record, ctx)
        if state is None:
            sends.dead_letter(
                event, f"no order {record.order_id!r} is known", STAGE, "unknown_order"
            )
            return
        orders.put(event.key, state, event)
        sends.add(outputs)
        _observe(outbox.metrics, record, state, attempts_before, outputs)

    @app.agent(source, name=f"{settings.app_id}.orders")
    async def order_agent(stream: Any) -> None:
        await view.ready.wait()  # route only on a complete picture of the network
        await outbox.process(stream, handle, STAGE, orders)

    return table


def _encode_state(state: OrderState) -> bytes:
    return state.model_dump_json().encode()


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

"""The records the saga emits: status changes, and per shipment its fulfillment and packaging.

Ids are derived, never random: a status change is numbered by its place in the order's history
and a command by its shipment, so the same decision always yields the same ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from schemas.enums import FulfillmentStatus, ServiceLevel
from schemas.models import (
    ActionResult,
    Carton,
    FulfillmentAction,
    FulfillmentCommand,
    Message,
    OrderAction,
    OrderStatusChanged,
    PackagingCommand,
    Shipment,
    ShipmentLine,
)
from streams.core.saga.rules import DEFAULT_PACKAGING, PackingPlan
from streams.core.saga.state import HistoryEntry, OrderState, SagaShipment, ShipmentState

DEFAULT_BOX = "STANDARD"
# A shipment listed in a status in one of these states is there because it just left: the
# status reports the location's news about it (only those records list a shipment that left).
LEFT_AS = {
    ShipmentState.SHIPPED: FulfillmentStatus.SHIPPED,
    ShipmentState.COMPLETED: FulfillmentStatus.PICKED_UP,
}


def status_record(
    state: OrderState,
    status: str,
    reason: str,
    now: datetime,
    shipments: Sequence[SagaShipment] = (),
) -> OrderStatusChanged:
    """Move the order to ``status`` and return the record that tells the channels."""
    state.status = status
    state.history.append(HistoryEntry(status=status, reason=reason, at=now))
    order_id = state.order.order_id
    return _status(state, f"{order_id}:status:{len(state.history)}", reason, now, shipments)


def action_answer(
    state: OrderState,
    action: OrderAction,
    result: ActionResult,
    reason: str,
    now: datetime,
    status: str | None = None,
) -> OrderStatusChanged:
    """The one status that answers ``action``: the order's status (``status`` when the action
    moved it), its holds, and the result. Its id is the action's, so a repeat reproduces it."""
    state.status = status or state.status
    state.history.append(
        HistoryEntry(
            status=state.status,
            reason=reason,
            at=now,
            action_id=action.action_id,
            action_kind=action.kind.value,
            requested_by=action.requested_by,
            action_result=result.value,
        )
    )
    record = _status(state, f"{state.order.order_id}:action:{action.action_id}", reason, now)
    return record.model_copy(update={"action_id": action.action_id, "action_result": result})


def _status(
    state: OrderState,
    event_id: str,
    reason: str,
    now: datetime,
    shipments: Sequence[SagaShipment] = (),
) -> OrderStatusChanged:
    waiting = state.status in ("BACKORDERED", "PARTIALLY_ALLOCATED")
    return OrderStatusChanged(
        event_id=event_id,
        order_id=state.order.order_id,
        status=state.status,  # type: ignore[arg-type]  # validated into the enum
        reason=reason,
        shipments=tuple(_shipment(s) for s in shipments),
        rules_fired=tuple(state.rules_fired),
        at=now,
        holds=tuple(state.holds),
        backordered=tuple(
            ShipmentLine(line_id=x.line_id, sku=x.sku, quantity=x.quantity)
            for x in (state.backordered if waiting else ())
        ),
    )


def outcome_records(
    state: OrderState,
    outcome: str,
    reason: str,
    shipments: Sequence[SagaShipment],
    now: datetime,
    packing: Mapping[str, PackingPlan] | None = None,
) -> list[Message]:
    """The routing outcome, then a fulfillment and a packaging command per shipment."""
    records: list[Message] = [status_record(state, outcome, reason, now, shipments)]
    for shipment in shipments:
        records.append(fulfillment_command(state, shipment, now))
        plan = (packing or {}).get(shipment.shipment_id)
        records.append(packaging_command(state, shipment, now, plan))
    return records


def fulfillment_command(
    state: OrderState,
    shipment: SagaShipment,
    now: datetime,
    action: FulfillmentAction = FulfillmentAction.FULFIL,
) -> FulfillmentCommand:
    """Fulfil ``shipment``, or (``CANCEL``) stop it: each happens once to a shipment, so the
    id names the shipment and the action."""
    order = state.order
    suffix = "fulfil" if action is FulfillmentAction.FULFIL else "cancel"
    return FulfillmentCommand(
        command_id=f"{shipment.shipment_id}:{suffix}",
        action=action,
        order_id=order.order_id,
        shipment_id=shipment.shipment_id,
        location_id=shipment.location_id,
        kind=shipment.kind,  # type: ignore[arg-type]
        lines=_lines(shipment),
        ship_to=order.ship_to if shipment.kind in ("SHIP", "SHIP_FROM_STORE") else None,
        destination_location_id=shipment.destination_location_id,
        service_level=ServiceLevel(state.service_level or order.service_level),
        rules_fired=tuple(state.rules_fired),
        created_at=now,
    )


def packaging_command(
    state: OrderState, shipment: SagaShipment, now: datetime, plan: PackingPlan | None = None
) -> PackagingCommand:
    """How to pack the shipment: the plan the rules and cartons made, or one standard box."""
    if plan is None:
        skus = tuple(sorted(line.sku for line in shipment.lines for _ in range(line.quantity)))
        plan = PackingPlan(DEFAULT_PACKAGING, (Carton(box_type=DEFAULT_BOX, skus=skus),), ())
    return PackagingCommand(
        command_id=f"{shipment.shipment_id}:pack",
        order_id=state.order.order_id,
        shipment_id=shipment.shipment_id,
        location_id=shipment.location_id,
        packaging=plan.packaging,
        cartons=plan.cartons,
        inserts=plan.inserts,
        rules_fired=tuple(state.rules_fired),
        created_at=now,
    )


def _lines(shipment: SagaShipment) -> tuple[ShipmentLine, ...]:
    return tuple(
        ShipmentLine(line_id=x.line_id, sku=x.sku, quantity=x.quantity) for x in shipment.lines
    )


def _shipment(shipment: SagaShipment) -> Shipment:
    return Shipment(
        shipment_id=shipment.shipment_id,
        location_id=shipment.location_id,
        lines=_lines(shipment),
        kind=shipment.kind,  # type: ignore[arg-type]  # validated into the enum
        fulfillment_status=LEFT_AS.get(shipment.state),
        tracking_number=shipment.tracking_number,
        carrier=shipment.carrier,
    )

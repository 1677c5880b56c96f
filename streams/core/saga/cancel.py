"""Cancels that reach the warehouse, and what its later news about a cancelled shipment means.

A shipment the order no longer wants (the order or some of its lines cancelled, the order held)
gets a ``CANCEL`` command at its location: same shipment id, its own command id. The units stay
held until the location confirms ``CANCELLED``, unless it had not yet ``ACCEPTED`` the shipment:
then nothing has been picked, and they are released at once.

A location may ship anyway. A ``SHIPPED`` (or ``PICKED_UP``) after a cancel still counts: the
held units are consumed (or, already released, taken off on-hand by a late consumption), and the
order's timeline reports the cancel refused, too late. An action that cancelled the shipment was
answered ``APPLIED`` when the ``CANCEL`` went out (its one answer cannot wait on a warehouse that
may never reply); the late shipment is a later status that names the action.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from schemas.internal import LATE_HOLD_SUFFIX, SkuAction
from schemas.models import FulfillmentAction, FulfillmentUpdate, Message
from streams.core.saga.context import SagaContext
from streams.core.saga.output import fulfillment_command, status_record
from streams.core.saga.state import Line, OrderState, SagaShipment, ShipmentState

Outputs = list[Message]
SkuCommands = Callable[[OrderState, Sequence[SagaShipment], SkuAction, "SagaContext"], Outputs]
WAITING_FOR_CONFIRMATION = ShipmentState.CANCELLING


def stop_shipments(
    state: OrderState,
    shipments: Sequence[SagaShipment],
    cause: str,
    ctx: SagaContext,
    sku_commands: SkuCommands,
    *,
    release_also: Sequence[SagaShipment] = (),
) -> Outputs:
    """``CANCEL`` each open shipment at its location; release at once the units of those not yet
    accepted (and of ``release_also``, shipments no location was told of); the accepted ones
    wait for the location's ``CANCELLED``. ``cause`` says who asked, for the timeline."""
    outputs: Outputs = [
        fulfillment_command(state, s, ctx.now, FulfillmentAction.CANCEL) for s in shipments
    ]
    unaccepted = [s for s in shipments if not s.accepted]
    outputs += sku_commands(state, [*release_also, *unaccepted], SkuAction.RELEASE, ctx)
    for shipment in shipments:
        shipment.cancel_cause = cause
        shipment.state = ShipmentState.CANCELLING if shipment.accepted else ShipmentState.CANCELLED
    return outputs


def after_cancel(
    state: OrderState,
    shipment: SagaShipment,
    event: FulfillmentUpdate,
    ctx: SagaContext,
    sku_commands: SkuCommands,
) -> Outputs:
    """A location's news about a shipment it was told to cancel."""
    status = event.status.value
    if status in ("CANCELLED", "REJECTED"):
        return _confirmed(state, shipment, ctx, sku_commands)
    if status in ("SHIPPED", "PICKED_UP") and shipment.state in (
        ShipmentState.CANCELLING,
        ShipmentState.CANCELLED,
    ):
        return _shipped_anyway(state, shipment, event, ctx, sku_commands)
    return []  # ACCEPTED after a cancel, or news of a shipment already settled


def _confirmed(
    state: OrderState, shipment: SagaShipment, ctx: SagaContext, sku_commands: SkuCommands
) -> Outputs:
    """The location stopped the shipment: an accepted one's units are released now."""
    if shipment.state != WAITING_FOR_CONFIRMATION:
        return []  # released when the CANCEL went out (or a repeat)
    outputs = sku_commands(state, [shipment], SkuAction.RELEASE, ctx)
    shipment.state = ShipmentState.CANCELLED
    reason = (
        f"{shipment.location_id} confirmed the cancel of {shipment.shipment_id} "
        f"({shipment.cancel_cause}); its units are released"
    )
    return [*outputs, status_record(state, state.status, reason, ctx.now)]


def _shipped_anyway(
    state: OrderState,
    shipment: SagaShipment,
    event: FulfillmentUpdate,
    ctx: SagaContext,
    sku_commands: SkuCommands,
) -> Outputs:
    """The units left the building: they count (on-hand drops), and the cancel was too late."""
    status = event.status.value
    if shipment.state == WAITING_FOR_CONFIRMATION:
        outputs = sku_commands(state, [shipment], SkuAction.CONSUME, ctx)
    else:  # released when the CANCEL went out: take them off on-hand all the same
        late = shipment.model_copy(update={"hold_id": shipment.hold + LATE_HOLD_SUFFIX})
        outputs = sku_commands(state, [late], SkuAction.CONSUME, ctx)
    shipment.state = ShipmentState.SHIPPED
    shipment.left(ctx.now, event.tracking_number, event.carrier)
    if status == "PICKED_UP":
        shipment.state = ShipmentState.COMPLETED
    _count_as_delivered(state, shipment)
    verb = "picked up" if status == "PICKED_UP" else "shipped"
    reason = (
        f"cancel REFUSED, too late: {shipment.shipment_id} was {verb} from "
        f"{shipment.location_id} before the cancel ({shipment.cancel_cause}) reached it; "
        "its units count as shipped"
    )
    reached = state.delivered_status()
    return [*outputs, status_record(state, reached, reason, ctx.now, [shipment])]


def _count_as_delivered(state: OrderState, shipment: SagaShipment) -> None:
    """Units cancelled with the shipment were delivered after all: no longer cancelled, and, on
    a held order, no longer waiting to be routed once its holds are released."""
    for line_id, units in shipment.units().items():
        cancelled = state.cancelled_units.get(line_id, 0)
        if cancelled:
            state.cancelled_units[line_id] = cancelled - min(cancelled, units)
    if state.holds:
        state.attempt_lines = subtract_lines(state.attempt_lines, shipment.units())


def subtract_lines(lines: Sequence[Line], units: dict[str, int]) -> list[Line]:
    """``lines`` less ``units`` (line id -> units), dropping lines left empty."""
    left = dict(units)
    out = []
    for line in lines:
        taken = min(line.quantity, left.get(line.line_id, 0))
        left[line.line_id] = left.get(line.line_id, 0) - taken
        if line.quantity > taken:
            out.append(line.model_copy(update={"quantity": line.quantity - taken}))
    return out

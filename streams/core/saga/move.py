"""``MOVE_SHIPMENT``: an open shipment goes to another location, named or any but its own.

The move is decided before anything changes: routing the shipment's lines at the named
location (or anywhere but the current one) on the stock the worker sees must place all of it,
else the action is refused ("DC-WEST cannot take all of it: ...") and nothing moves. Then the
old location gets a ``CANCEL`` (its units released at once if it had not accepted, else when it
confirms) and the lines are routed again, the old location excluded from now on. The answer is
``APPLIED`` when the move is decided; the new shipment's own status follows once reserved (a
lost reservation race re-routes it like any other).

The acceptance timer moves a shipment nobody accepted in time the same way, but it does not
need a place to go: with none, the lines are backordered, as after a rejection. A timer's move
of a shipment accepted after the timer read the order (it reads in slices, while the stage
goes on) is refused.
"""

from __future__ import annotations

from dataclasses import replace

from schemas.models import ActionResult, Message, OrderAction
from streams.core.routing.route import decide_route
from streams.core.saga.cancel import stop_shipments
from streams.core.saga.context import Routing, SagaContext
from streams.core.saga.output import action_answer
from streams.core.saga.routing import StockView, merge_lines, routing_request
from streams.core.saga.state import OrderState, ShipmentState

Outputs = list[Message]
ACCEPT_TIMER = "dom:acceptance-timer"
"""``requested_by`` of the moves the acceptance timer asks for (see the module doc)."""


def move_shipment(
    state: OrderState, action: OrderAction, ctx: SagaContext, routing: Routing
) -> Outputs:
    def refuse(why: str) -> Outputs:
        return [action_answer(state, action, ActionResult.REFUSED, why, ctx.now)]

    order_id = state.order.order_id
    shipment = state.shipments.get(action.shipment_id or "")
    if shipment is None:
        return refuse(f"order {order_id} has no shipment {action.shipment_id}")
    if shipment.state != ShipmentState.OPEN:
        return refuse(f"shipment {shipment.shipment_id} is {_said(shipment.state)}")
    if state.pending:
        return refuse(f"order {order_id} is being routed right now; try again in a moment")
    by_timer = action.requested_by == ACCEPT_TIMER
    if by_timer and shipment.accepted:  # accepted after the timer read the order
        return refuse(f"{shipment.location_id} accepted shipment {shipment.shipment_id} meanwhile")
    target = action.to_location_id
    if target == shipment.location_id:
        return refuse(f"shipment {shipment.shipment_id} is at {target} already")
    if target is not None:
        info = next((x for x in ctx.locations if x.location_id == target), None)
        if info is None:
            return refuse(f"no location {target} is known")
        if not info.active:
            return refuse(f"location {target} is inactive")
    excluded = {*state.excluded_locations, shipment.location_id}
    candidates = [
        x
        for x in ctx.locations
        if x.location_id not in excluded and (target is None or x.location_id == target)
    ]
    request = routing_request(state, list(shipment.lines), ctx.channels)
    request = replace(request, excluded_locations=frozenset(excluded))
    decision = decide_route(request, candidates, StockView(state, ctx.stock), ctx.policy)
    if (not decision.shipments or decision.backordered) and not by_timer:
        where = target or "no other location"
        return refuse(f"{where} cannot take all of it: {decision.explanation}")
    cause = f"moved by action {action.action_id}"
    outputs = stop_shipments(state, [shipment], cause, ctx, routing.sku_commands)
    state.excluded_locations.append(shipment.location_id)
    pinned = [
        x.location_id for x in ctx.locations if target is not None and x.location_id != target
    ]
    said = f"{shipment.shipment_id} moved from {shipment.location_id} by {action.requested_by}"
    reason = f"{said} ({action.reason}); CANCEL sent to {shipment.location_id}"
    answer = action_answer(state, action, ActionResult.APPLIED, reason, ctx.now)
    kept = list(state.excluded_locations)
    state.excluded_locations = [*kept, *pinned]  # only the target, for this routing
    lines = merge_lines([*shipment.lines, *state.backordered])  # what waits tries too
    routed = routing.start(state, lines, f"{said}: ", ctx)
    state.excluded_locations = kept
    return [answer, *outputs, *routed]


def _said(state: ShipmentState) -> str:
    return {
        ShipmentState.SHIPPED: "already shipped",
        ShipmentState.COMPLETED: "already picked up",
        ShipmentState.CANCELLING: "being cancelled",
        ShipmentState.CANCELLED: "cancelled",
        ShipmentState.RESERVING: "still being reserved",
    }.get(state, state.value.lower())

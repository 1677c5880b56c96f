"""``CHANGE_SHIP_TO``: a new delivery address for an order that has not shipped.

The order takes the new address for everything routed from now on (its backordered lines
too). Each open shipment is judged again for the new address: routing its lines over every
location the order may use, its own location counting the units it already holds there. When
routing would send it from elsewhere (fewer shipments, or cheaper to the new address), it is
moved: a ``CANCEL`` to its location (units released at once if unaccepted, else when it
confirms) and its lines routed again. A shipment that stays gets its ``FulfillmentCommand``
again with the new address (same shipment id, command id ``<shipment>:ship-to:<n>``): the
latest command for a shipment is the one its location follows.

Refused, changing nothing: a pickup order (it ships nowhere), an order any part of which has
shipped ("never after shipping"), a cancelled order, one being routed, or no address given.
"""

from __future__ import annotations

from dataclasses import replace

from schemas.models import ActionResult, FulfillmentMethod, Message, OrderAction
from streams.core.routing.route import decide_route
from streams.core.saga.cancel import stop_shipments
from streams.core.saga.context import Routing, SagaContext
from streams.core.saga.output import action_answer, fulfillment_command
from streams.core.saga.routing import StockView, routing_request
from streams.core.saga.state import LEFT, OrderState, SagaShipment, ShipmentState

Outputs = list[Message]


def change_ship_to(
    state: OrderState, action: OrderAction, ctx: SagaContext, routing: Routing
) -> Outputs:
    def refuse(why: str) -> Outputs:
        return [action_answer(state, action, ActionResult.REFUSED, why, ctx.now)]

    order = state.order
    if action.ship_to is None:
        return refuse("no ship_to given: CHANGE_SHIP_TO needs the new address")
    if order.fulfillment_method == FulfillmentMethod.PICKUP:
        where = order.pickup_location_id
        return refuse(f"order {order.order_id} is picked up at {where}: it ships nowhere")
    gone = [s.shipment_id for s in state.shipments.values() if s.state in LEFT]
    if gone:
        return refuse(f"order {order.order_id} has already shipped ({', '.join(gone)})")
    if state.pending:
        return refuse(f"order {order.order_id} is being routed right now; try again in a moment")
    state.order = order.model_copy(update={"ship_to": action.ship_to})
    state.ship_to_changes += 1
    open_ = [s for s in state.shipments.values() if s.state == ShipmentState.OPEN]
    moving = [s for s in open_ if _better_elsewhere(state, s, ctx)]
    staying = [s for s in open_ if s not in moving]
    outputs: Outputs = [
        fulfillment_command(state, s, ctx.now).model_copy(
            update={"command_id": f"{s.shipment_id}:ship-to:{state.ship_to_changes}"}
        )
        for s in staying
    ]
    said = f"ship-to changed by {action.requested_by} ({action.reason})"
    notes = [f"{s.shipment_id} re-routed from {s.location_id}" for s in moving]
    notes += [f"{s.shipment_id} stays at {s.location_id} (new address sent)" for s in staying]
    reason = f"{said}; " + "; ".join(notes) if notes else said
    answer = action_answer(state, action, ActionResult.APPLIED, reason, ctx.now)
    if not moving:
        return [answer, *outputs]
    cause = f"ship-to changed by action {action.action_id}"
    outputs += stop_shipments(state, moving, cause, ctx, routing.sku_commands)
    lines = [line for s in moving for line in s.lines]
    return [answer, *outputs, *routing.start(state, lines, f"{said}: ", ctx)]


def _better_elsewhere(state: OrderState, shipment: SagaShipment, ctx: SagaContext) -> bool:
    """Routing the shipment's lines for the new address, its own location holding what it holds
    already, chooses anything but that location alone."""
    view = StockView(state, ctx.stock)
    held = shipment.units_by_sku()
    stock = {
        sku: {
            **view[sku],
            shipment.location_id: view[sku].get(shipment.location_id, 0) + units,
        }
        for sku, units in held.items()
    }
    request = replace(
        routing_request(state, list(shipment.lines), ctx.channels),
        excluded_locations=frozenset(state.excluded_locations),
    )
    decision = decide_route(request, ctx.locations, stock, ctx.policy)
    places = {s.location_id for s in decision.shipments}
    return (
        bool(decision.shipments) and not decision.backordered and places != {shipment.location_id}
    )

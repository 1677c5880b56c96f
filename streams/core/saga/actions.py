"""Actions on a live order (``dom.order-actions.v1``): holds placed and released.

Each action is applied at most once (its ``action_id`` is the input's id, so a redelivery or a
repeat gets the first answer again) and answered by exactly one ``OrderStatusChanged`` naming
it, ``APPLIED`` or ``REFUSED`` with a reason a person can act on. A refused action changes
nothing but the order's timeline.

Holds: a routing rule that holds an order places a ``RULE`` hold; ``PLACE_HOLD`` places a
``MANUAL`` one, cancelling the order's open shipments at their locations and releasing their
units (at once where the location had not accepted, else once it confirms). ``RELEASE_HOLD``
removes one hold or all; when the last goes, the order is routed again, and the rule versions
whose holds were released do not hold it again. ``CANCEL_LINES`` is
:mod:`streams.core.saga.cancel_lines`.

An order being routed (its reservations in flight) cannot have lines cancelled, its address
changed, a shipment moved or its backorder retried until that routing ends: such an action
waits in the order's state (up to `MAX_DEFERRED`) and is applied, and answered, in its turn
when the routing ends (`run_deferred`). So an edit a channel makes while a rejected shipment
is being re-routed is not lost; a person sees the answer a moment later.
"""

from __future__ import annotations

from datetime import datetime

from schemas.models import (
    ActionResult,
    Message,
    OrderAction,
    OrderActionKind,
    OrderHold,
    OrderHoldKind,
    OrderStatus,
    OrderStatusChanged,
)
from streams.core.returns.returns import RETURN_STATUSES
from streams.core.saga.cancel import stop_shipments
from streams.core.saga.cancel_lines import cancel_lines
from streams.core.saga.context import Routing, SagaContext
from streams.core.saga.move import move_shipment
from streams.core.saga.output import action_answer
from streams.core.saga.routing import merge_lines
from streams.core.saga.rules import RuleHold
from streams.core.saga.ship_to import change_ship_to
from streams.core.saga.state import LEFT, OrderState, ShipmentState

Outputs = list[Message]
MAX_REASON_CHARS = 1_000
MAX_DEFERRED = 16
"""Actions an order keeps waiting while it is being routed; more are refused."""
DEFERRED_KINDS = frozenset(
    {
        OrderActionKind.CANCEL_LINES,
        OrderActionKind.CHANGE_SHIP_TO,
        OrderActionKind.MOVE_SHIPMENT,
        OrderActionKind.RETRY_BACKORDER,
    }
)
"""What waits for a routing in flight to end (holds act on it at once)."""
"""The most of a requester's free text copied into the order's holds and statuses."""


def input_id(action: OrderAction) -> str:
    """The id the saga dedups the action by (its replies are kept under it)."""
    return f"action:{action.action_id}"


def on_order_action(
    state: OrderState, action: OrderAction, ctx: SagaContext, routing: Routing
) -> Outputs:
    """Apply ``action`` once and answer it; a repeat past the kept replies gets no new answer."""
    if state.seen(input_id(action)):
        return []
    state.mark(input_id(action))
    waits = state.pending and not state.cancelled and action.kind in DEFERRED_KINDS
    if waits and len(state.deferred) < MAX_DEFERRED:
        state.deferred.append(action)
        return []  # answered when applied, once the routing in flight ends
    return _act(state, action, ctx, routing)


def run_deferred(state: OrderState, ctx: SagaContext, routing: Routing) -> Outputs:
    """The actions that came while the order was being routed, applied and answered in
    their order now that it is not; one that routes the order again leaves the rest waiting
    for that routing to end."""
    outputs: Outputs = []
    while state.deferred and not state.pending:
        outputs += _act(state, state.deferred.pop(0), ctx, routing)
    return outputs


def _act(state: OrderState, action: OrderAction, ctx: SagaContext, routing: Routing) -> Outputs:
    order_id = state.order.order_id
    if state.cancelled:
        return [_refuse(state, action, f"order {order_id} is cancelled", ctx)]
    if state.status == "ON_HOLD" and not state.holds:
        # Held by a worker older than typed holds: give that hold an id so it can be released.
        _new_hold(state, OrderHoldKind.RULE, state.explanation or "held before typed holds")
    handler = _HANDLERS.get(action.kind)
    if handler is None:
        return [_refuse(state, action, f"{action.kind.value} is not supported yet", ctx)]
    return handler(state, action, ctx, routing)


def unknown_order_answer(action: OrderAction, now: datetime) -> Outputs:
    """The refusal of an action on an order this pipeline has not seen (yet)."""
    order = action.order_id
    return [
        OrderStatusChanged(
            event_id=f"{order}:action:{action.action_id}",
            order_id=order,
            status=OrderStatus.RECEIVED,
            reason=f"no order {order} is known; place it first, or check the order id",
            at=now,
            action_id=action.action_id,
            action_result=ActionResult.REFUSED,
        )
    ]


def add_rule_hold(state: OrderState, hold: RuleHold) -> None:
    """Hold the order for ``hold``'s rule, unless that rule holds it already."""
    if any(h.kind is OrderHoldKind.RULE and h.rule_id == hold.rule_id for h in state.holds):
        return
    placed = _new_hold(state, OrderHoldKind.RULE, hold.reason, rule_id=hold.rule_id)
    state.hold_versions[placed.hold_id] = hold.version


# ---- the actions --------------------------------------------------------------------------------


def _release_hold(
    state: OrderState, action: OrderAction, ctx: SagaContext, routing: Routing
) -> Outputs:
    order_id = state.order.order_id
    if not state.holds:
        return [_refuse(state, action, f"order {order_id} has no hold to release", ctx)]
    released = [h for h in state.holds if action.hold_id in (None, h.hold_id)]
    if not released:
        held = ", ".join(h.hold_id for h in state.holds)
        why = f"order {order_id} has no hold {action.hold_id} (its holds: {held})"
        return [_refuse(state, action, why, ctx)]
    for hold in released:
        if hold.kind is OrderHoldKind.RULE:
            version = state.hold_versions.pop(hold.hold_id, 0)
            state.released_rules.append(RuleHold(hold.rule_id, version, hold.reason).key())
    state.holds = [h for h in state.holds if h not in released]
    names = ", ".join(h.hold_id for h in released)
    said = f"released {names} by {action.requested_by} ({_quoted(action.reason)})"
    if state.holds:
        still = ", ".join(h.hold_id for h in state.holds)
        return [_answer(state, action, f"{said}; still held by {still}", ctx)]
    answer = _answer(state, action, f"{said}; routing the order", ctx)
    return [answer, *routing.start(state, list(state.attempt_lines), f"{said}: ", ctx)]


def _place_hold(
    state: OrderState, action: OrderAction, ctx: SagaContext, routing: Routing
) -> Outputs:
    order_id = state.order.order_id
    if state.status == "REJECTED":
        return [_refuse(state, action, f"order {order_id} was rejected: nothing to hold", ctx)]
    gone = [s.shipment_id for s in state.shipments.values() if s.state in LEFT]
    if gone or state.status in ("SHIPPED", "COMPLETED", *RETURN_STATUSES):
        why = f"order {order_id} has already shipped ({', '.join(gone) or state.status})"
        return [_refuse(state, action, why, ctx)]
    outputs, cancelled = ([], []) if state.holds else _stop_routing(state, action, ctx, routing)
    hold = _new_hold(state, OrderHoldKind.MANUAL, _quoted(action.reason), action.requested_by)
    note = f"; cancelled {', '.join(cancelled)} at their locations" if cancelled else ""
    reason = f"{hold.hold_id} placed by {action.requested_by} ({hold.reason}){note}"
    return [_answer(state, action, reason, ctx, status="ON_HOLD"), *outputs]


def _retry_backorder(
    state: OrderState, action: OrderAction, ctx: SagaContext, routing: Routing
) -> Outputs:
    """Route the order's backordered lines again now, on the stock the worker sees."""
    order_id = state.order.order_id
    if state.holds or state.status == "ON_HOLD":
        why = f"order {order_id} is on hold; release it first (that routes it)"
        return [_refuse(state, action, why, ctx)]
    if state.pending:  # before what waits: a routing in flight has planned it all for now
        why = f"order {order_id} is being routed right now; look again in a moment"
        return [_refuse(state, action, why, ctx)]
    if not state.backordered or state.status == "REJECTED":
        return [_refuse(state, action, f"order {order_id} has nothing backordered", ctx)]
    said = f"retried by {action.requested_by} ({_quoted(action.reason)})"
    answer = _answer(state, action, f"{said}; routing the backordered lines", ctx)
    state.first_attempt = state.attempt + 1  # a routing of its own, with its own retries
    lines = list(state.backordered)
    return [answer, *routing.start(state, lines, f"{said}: ", ctx, quiet=True)]


_HANDLERS = {
    OrderActionKind.RELEASE_HOLD: _release_hold,
    OrderActionKind.PLACE_HOLD: _place_hold,
    OrderActionKind.CANCEL_LINES: cancel_lines,
    OrderActionKind.RETRY_BACKORDER: _retry_backorder,
    OrderActionKind.MOVE_SHIPMENT: move_shipment,
    OrderActionKind.CHANGE_SHIP_TO: change_ship_to,
}


# ---- helpers ------------------------------------------------------------------------------------


def _stop_routing(
    state: OrderState, action: OrderAction, ctx: SagaContext, routing: Routing
) -> tuple[Outputs, list[str]]:
    """Take back what the order was given: cancel its open shipments at their locations (their
    units given back at once, or once an accepting location confirms), give back the units of a
    routing attempt in flight, and keep the lines to route once the order is released."""
    open_ = [s for s in state.shipments.values() if s.state == ShipmentState.OPEN]
    in_flight = [s for s in state.shipments.values() if s.state == ShipmentState.RESERVING]
    waiting = state.attempt_lines if state.pending else state.backordered
    lines = merge_lines([*(x for s in open_ for x in s.lines), *waiting])
    cause = f"hold placed by action {action.action_id}"
    outputs = stop_shipments(state, open_, cause, ctx, routing.sku_commands, release_also=in_flight)
    state.set_state(in_flight, ShipmentState.DROPPED)
    state.pending = {}
    state.fresh_stock = {}
    state.backordered = []
    state.attempt_lines = lines
    return outputs, [s.shipment_id for s in open_]


def _new_hold(
    state: OrderState,
    kind: OrderHoldKind,
    reason: str,
    placed_by: str | None = None,
    rule_id: str | None = None,
) -> OrderHold:
    state.holds_placed += 1
    hold = OrderHold(
        hold_id=f"{state.order.order_id}-H{state.holds_placed}",
        kind=kind,
        reason=reason,
        rule_id=rule_id,
        placed_by=placed_by,
    )
    state.holds.append(hold)
    return hold


def _answer(
    state: OrderState,
    action: OrderAction,
    reason: str,
    ctx: SagaContext,
    status: str | None = None,
) -> Message:
    return action_answer(state, action, ActionResult.APPLIED, reason, ctx.now, status)


def _refuse(state: OrderState, action: OrderAction, reason: str, ctx: SagaContext) -> Message:
    return action_answer(state, action, ActionResult.REFUSED, reason, ctx.now)


def _quoted(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"

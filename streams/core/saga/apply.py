"""The order saga: from ``OrderPlaced`` to one routing outcome, through per-sku reservations.

The order's owner routes on its view of availability, then scatters one ``SkuCommand`` per sku
to the worker owning that sku's inventory (the only writer of it) and gathers the
``SkuResult``s. All confirmed: the outcome, its shipments and their commands go out. A lost
race: what was taken is released and the order re-routed on the fresh numbers the results
carried, a bounded number of times, then backordered. Later events (cancel, a location's
rejection, shipped, picked up) release, re-route or consume the holds; a cancel reaches the
locations of the order's open shipments (:mod:`streams.core.saga.cancel`). Returns of what was
delivered are authorized and received by :mod:`streams.core.returns.returns`.

Every function is ``(state, event, ctx) -> outputs`` with ``state`` mutated in place; the agent
loads the state, calls, stores it and sends the outputs. Ids are derived from the order, the
attempt and the shipment, and timestamps from ``ctx.now``, so a redelivered input yields the
same records and changes nothing twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from schemas.internal import Hold, SkuAction, SkuCommand, SkuResult
from schemas.models import (
    FulfillmentUpdate,
    Message,
    OrderAction,
    OrderCancelled,
    OrderPlaced,
    ReturnReceived,
    ReturnRequested,
)
from streams.core.packing.cartons import packing_problem
from streams.core.returns.returns import RETURN_STATUSES, on_return_received, on_return_requested
from streams.core.routing.model import RoutingDecision, RoutingOutcome, RoutingRequest
from streams.core.routing.route import decide_route
from streams.core.saga.actions import (
    add_rule_hold,
    on_order_action,
    run_deferred,
    unknown_order_answer,
)
from streams.core.saga.actions import input_id as action_input_id
from streams.core.saga.backorders import on_expired, on_wake, sync_waiting
from streams.core.saga.cancel import after_cancel, stop_shipments
from streams.core.saga.context import Routing, SagaContext
from streams.core.saga.order_checks import order_problem
from streams.core.saga.output import outcome_records, status_record
from streams.core.saga.routing import StockView, merge_lines, routing_request
from streams.core.saga.rules import plan_packing, rules_note, steer
from streams.core.saga.state import Line, OrderState, SagaShipment, ShipmentState, plan_hold_id

Outputs = list[Message]
Input = (
    OrderPlaced
    | OrderCancelled
    | SkuResult
    | FulfillmentUpdate
    | ReturnRequested
    | ReturnReceived
    | OrderAction
)


def apply_input(
    state: OrderState | None, record: Input, ctx: SagaContext
) -> tuple[OrderState | None, Outputs]:
    """Apply one input to the order's state; a redelivered input gets its first outputs again.

    Returns ``(None, [])`` for an input about an order that was never placed (``(None,
    [refusal])`` for an action: every action is answered).
    """
    input_id = _input_id(record)
    if state is not None:
        replayed = state.replay(input_id)
        if replayed is not None:
            return state, replayed
    if isinstance(record, OrderPlaced):
        state, outputs = on_order_placed(state, record, ctx)
    elif state is None:
        return None, unknown_order_answer(record, ctx.now) if isinstance(
            record, OrderAction
        ) else []
    elif isinstance(record, SkuResult):
        outputs = on_sku_result(state, record, ctx)
    elif isinstance(record, OrderCancelled):
        outputs = on_order_cancelled(state, record, ctx)
    elif isinstance(record, ReturnRequested):
        outputs = on_return_requested(state, record, ctx)
    elif isinstance(record, ReturnReceived):
        outputs = on_return_received(state, record, ctx)
    elif isinstance(record, OrderAction):
        outputs = on_order_action(state, record, ctx, Routing(_start_attempt, _sku_commands))
    else:
        outputs = on_fulfillment_update(state, record, ctx)
    if state.deferred and not state.pending:
        outputs += run_deferred(state, ctx, Routing(_start_attempt, _sku_commands))
    outputs += sync_waiting(state, ctx)
    state.remember_replies(input_id, outputs, ctx.read_at)
    return state, outputs


def _input_id(record: Input) -> str:
    if isinstance(record, SkuResult):
        return f"result:{record.command_id}"
    if isinstance(record, OrderAction):
        return action_input_id(record)
    return f"event:{record.event_id}"


def on_order_placed(
    state: OrderState | None, event: OrderPlaced, ctx: SagaContext
) -> tuple[OrderState, Outputs]:
    """A new order: record it, say RECEIVED, and start the first routing attempt."""
    if state is not None:
        return state, []  # the same order again (a redelivery or a duplicate id): no-op
    state = OrderState(order=event)
    state.mark(event.event_id)
    outputs: Outputs = [status_record(state, "RECEIVED", "order received", ctx.now)]
    return state, outputs + _route_new(state, event, ctx)


def _route_new(state: OrderState, event: OrderPlaced, ctx: SagaContext) -> Outputs:
    problem = order_problem(
        event.lines, event.currency, event.order_total, ctx.limits
    ) or packing_problem(event.lines)
    if problem is not None:
        state.explanation = f"rejected: {problem}"
        return _finish(state, "REJECTED", state.explanation, ctx)
    lines = [Line(line_id=x.line_id, sku=x.sku, quantity=x.quantity) for x in event.lines]
    return _start_attempt(state, lines, "", ctx)


def on_sku_result(state: OrderState, result: SkuResult, ctx: SagaContext) -> Outputs:
    """Gather one sku's answer; when the attempt's last one is in, finish or re-route."""
    if result.action == SkuAction.WAKE:
        return on_wake(state, result, ctx, _start_attempt)
    if result.action == SkuAction.EXPIRE:
        return on_expired(state, result, ctx)
    if result.action != SkuAction.RESERVE:
        return []  # releases and consumptions need no follow-up
    current = (
        result.attempt == state.attempt
        and state.pending.get(result.sku, False) is None
        and _answers_plan(state, result)
    )
    if not current:
        return _release_stale(state, result, ctx)
    state.pending[result.sku] = result.ok
    state.fresh_stock[result.sku] = _fresh_availability(result)
    if any(ok is None for ok in state.pending.values()):
        return []
    if state.cancelled:
        return []  # the cancel already released every hold of this attempt
    if all(state.pending.values()):
        return _confirm_attempt(state, ctx)
    return _retry_attempt(state, ctx)


def on_order_cancelled(state: OrderState, event: OrderCancelled, ctx: SagaContext) -> Outputs:
    """Release everything still held; an order already on its way cannot be cancelled."""
    if state.seen(event.event_id):
        return []
    state.mark(event.event_id)
    if state.cancelled or state.status in ("SHIPPED", "COMPLETED", *RETURN_STATUSES):
        return []
    live = state.live_shipments()
    open_ = [s for s in live if s.state == ShipmentState.OPEN]
    in_flight = [s for s in live if s.state == ShipmentState.RESERVING]
    cause = f"the order's cancel: {quoted(event.reason)}"
    outputs = stop_shipments(state, open_, cause, ctx, _sku_commands, release_also=in_flight)
    state.set_state(in_flight, ShipmentState.CANCELLED)
    state.cancelled = True
    state.pending = {}
    state.holds = []  # nothing is left to release
    outputs.append(status_record(state, "CANCELLED", quoted(event.reason), ctx.now))
    return outputs


def on_fulfillment_update(state: OrderState, event: FulfillmentUpdate, ctx: SagaContext) -> Outputs:
    """A location accepted, rejected, shipped or handed over one shipment."""
    if state.seen(event.event_id):
        return []
    state.mark(event.event_id)
    shipment = state.shipments.get(event.shipment_id)
    if shipment is None:
        return []
    if shipment.cancel_cause is not None:  # its location was told to cancel it
        return after_cancel(state, shipment, event, ctx, _sku_commands)
    if state.cancelled:
        return []
    status = event.status.value
    if status == "ACCEPTED" and shipment.state == ShipmentState.OPEN:
        shipment.accepted = True  # a cancel from now on waits for the location's CANCELLED
        if shipment.kind == "PICKUP":
            shipment.ready_at = ctx.now  # the pickup expiry counts from here
        return []
    if status == "REJECTED" and shipment.state == ShipmentState.OPEN:
        return _reroute_rejected(state, shipment, event, ctx)
    if status in ("SHIPPED", "PICKED_UP"):
        return _consume(state, shipment, event, ctx)
    return []


# ---- attempts -----------------------------------------------------------------------------------


def _start_attempt(
    state: OrderState, lines: list[Line], reason: str, ctx: SagaContext, *, quiet: bool = False
) -> Outputs:
    """Route ``lines`` anew. ``quiet``: a backorder woken by stock; when nothing of it can be
    served after all, the order keeps its status (and looks again at the next rise)."""
    state.attempt += 1
    state.waits_due = True
    state.repromising = quiet
    state.attempt_lines = lines
    state.attempt_reason = reason
    request, steering, hold = steer(
        state, routing_request(state, lines, ctx.channels), ctx.rules, ctx.products
    )
    if hold is not None:
        add_rule_hold(state, hold)
        state.backordered = []
        why = f"on hold: {steering.hold_reason}. {rules_note(steering)}".strip()
        state.explanation = why
        return _finish(state, "ON_HOLD", reason + why, ctx)
    decision = _decide(state, request, ctx)
    state.explanation = rules_note(steering) + decision.explanation
    state.backordered = [
        Line(line_id=x.line_id, sku=x.sku, quantity=x.quantity) for x in decision.backordered
    ]
    if not decision.shipments:
        outcome = "REJECTED" if decision.outcome == RoutingOutcome.REJECTED else "BACKORDERED"
        if outcome == "BACKORDERED" and _allocated_before(state):
            outcome = "PARTIALLY_ALLOCATED"  # what it has keeps going; the rest still waits
        if quiet:
            state.pending = {}
            state.repromising = False
            return []
        return _finish(state, outcome, decision.explanation, ctx)
    planned = []
    for n, ship in enumerate(decision.shipments, start=1):
        shipment = SagaShipment(
            shipment_id=f"{state.order.order_id}-{state.attempt}-{n}",
            location_id=ship.location_id,
            kind=ship.kind.value,
            lines=[Line(line_id=x.line_id, sku=x.sku, quantity=x.quantity) for x in ship.lines],
            destination_location_id=ship.destination_location_id,
            attempt=state.attempt,
        )
        if ctx.plan_hold_ids:
            shipment.hold_id = plan_hold_id(shipment)
        state.shipments[shipment.shipment_id] = shipment
        planned.append(shipment)
    state.pending = {sku: None for s in planned for sku in s.skus()}
    return _sku_commands(state, planned, SkuAction.RESERVE, ctx)


def _decide(state: OrderState, request: RoutingRequest, ctx: SagaContext) -> RoutingDecision:
    """Route on the view less what the worker promised other orders and the view does not show
    yet (:mod:`streams.core.routing.promised`), so that orders in flight together do not all
    go after the same last units and all but one lose the race. It only steers: when the view
    as it is serves more units, or in fewer shipments, that route is taken (and may lose a
    race, as it would have anyway)."""
    plain = StockView(state, ctx.stock)
    promised = ctx.promised
    if promised is None or not any(promised(line.sku) for line in request.lines):
        return decide_route(request, ctx.locations, plain, ctx.policy)
    less_promised = StockView(state, ctx.stock, promised)
    steered = decide_route(request, ctx.locations, less_promised, ctx.policy)
    as_seen = decide_route(request, ctx.locations, plain, ctx.policy)
    if _served(steered) < _served(as_seen):
        return as_seen
    avoided = _sources(as_seen) - _sources(steered)
    if not avoided:
        return steered
    note = f"units at {', '.join(sorted(avoided))} promised to other orders in flight; "
    return replace(steered, explanation=note + steered.explanation)


def _served(decision: RoutingDecision) -> tuple[int, int]:
    """How well a route serves: units allocated, then fewer shipments."""
    units = sum(line.quantity for shipment in decision.shipments for line in shipment.lines)
    return units, -len(decision.shipments)


def _sources(decision: RoutingDecision) -> set[str]:
    return {shipment.location_id for shipment in decision.shipments}


def _allocated_before(state: OrderState) -> bool:
    """Part of the order is allocated or on its way from an earlier routing."""
    return any(
        s.state in (ShipmentState.OPEN, ShipmentState.SHIPPED, ShipmentState.COMPLETED)
        for s in state.shipments.values()
        if s.attempt != state.attempt
    )


def _confirm_attempt(state: OrderState, ctx: SagaContext) -> Outputs:
    shipments = state.attempt_shipments()
    state.set_state(shipments, ShipmentState.OPEN)
    for shipment in shipments:
        shipment.opened_at = ctx.now
    state.fresh_stock = {}
    outcome = "PARTIALLY_ALLOCATED" if state.backordered else "ALLOCATED"
    reason = f"{state.attempt_reason}{state.explanation}"
    return _finish(state, outcome, reason, ctx, shipments)


def _retry_attempt(state: OrderState, ctx: SagaContext) -> Outputs:
    """A reservation lost a race: give back what the others took, then route again."""
    shipments = state.attempt_shipments()
    lost = sorted(sku for sku, ok in state.pending.items() if not ok)
    taken = [s for s in shipments if s.skus() - set(lost)]
    outputs = _sku_commands(state, taken, SkuAction.RELEASE, ctx, skip=set(lost))
    state.set_state(shipments, ShipmentState.DROPPED)
    note = f"reservation of {', '.join(lost)} lost a race (attempt {state.attempt}); "
    if state.attempt - state.first_attempt + 1 >= ctx.max_attempts:
        state.backordered = list(state.attempt_lines)
        state.raced = True  # what it lost to others says nothing of what it can use
        outcome = "PARTIALLY_ALLOCATED" if _allocated_before(state) else "BACKORDERED"
        if state.repromising:  # a woken backorder that got nothing: it keeps its status
            state.pending = {}
            state.repromising = False
            return outputs
        return outputs + _finish(state, outcome, note + "retries exhausted", ctx)
    return outputs + _start_attempt(
        state, list(state.attempt_lines), state.attempt_reason + note, ctx, quiet=state.repromising
    )


def _finish(
    state: OrderState,
    outcome: str,
    reason: str,
    ctx: SagaContext,
    shipments: Sequence[SagaShipment] = (),
) -> Outputs:
    state.pending = {}
    state.repromising = False
    state.routed = True
    packing = (
        plan_packing(state, shipments, ctx.rules, ctx.products, ctx.catalogue) if shipments else {}
    )
    return outcome_records(state, outcome, reason, shipments, ctx.now, packing)


# ---- after routing ------------------------------------------------------------------------------


def _reroute_rejected(
    state: OrderState, shipment: SagaShipment, event: FulfillmentUpdate, ctx: SagaContext
) -> Outputs:
    outputs = _sku_commands(state, [shipment], SkuAction.RELEASE, ctx)
    shipment.state = ShipmentState.REJECTED
    lines = list(shipment.lines)
    if state.pending:
        # An earlier re-route is still reserving. A new attempt would orphan it (its results
        # would look stale while its shipments stay RESERVING, holds and lines lost for good),
        # so give its holds back and route its lines together with these.
        in_flight = [s for s in state.attempt_shipments() if s.state == ShipmentState.RESERVING]
        outputs += _sku_commands(state, in_flight, SkuAction.RELEASE, ctx)
        state.set_state(in_flight, ShipmentState.DROPPED)
        lines = merge_lines([*state.attempt_lines, *lines])
    elif state.backordered:
        lines = merge_lines([*lines, *state.backordered])  # what waits for stock tries too
    if shipment.location_id not in state.excluded_locations:
        state.excluded_locations.append(shipment.location_id)
    why = quoted(event.reason or "no reason given")
    note = f"{shipment.location_id} rejected {shipment.shipment_id} ({why}); re-routed: "
    return outputs + _start_attempt(state, lines, note, ctx)


def _consume(
    state: OrderState, shipment: SagaShipment, event: FulfillmentUpdate, ctx: SagaContext
) -> Outputs:
    status = event.status.value
    outputs: Outputs = []
    if shipment.state == ShipmentState.OPEN:
        outputs += _sku_commands(state, [shipment], SkuAction.CONSUME, ctx)
        shipment.state = ShipmentState.SHIPPED
        shipment.left(ctx.now, event.tracking_number, event.carrier)
    if status == "PICKED_UP" and shipment.state == ShipmentState.SHIPPED:
        shipment.state = ShipmentState.COMPLETED
        # a transfer reaches its customer only now
        shipment.left(ctx.now, event.tracking_number, event.carrier)
    reached = state.delivered_status()
    if not outputs and (state.status == reached or state.status in RETURN_STATUSES):
        return []  # nothing new left; a return's status is not overwritten by old news
    verb = "picked up" if status == "PICKED_UP" else "shipped"
    reason = f"{shipment.shipment_id} {verb} from {shipment.location_id}"
    return [*outputs, status_record(state, reached, reason, ctx.now, [shipment])]


_HOLDING = (ShipmentState.RESERVING, ShipmentState.OPEN, ShipmentState.CANCELLING)


def _answers_plan(state: OrderState, result: SkuResult) -> bool:
    """Whether the result's holds are the ones the attempt asked of its sku. An attempt may be
    planned twice: a rebalance does not wait for a batch while an input is held
    (streams/runtime/acks.py), so the old owner of the order's partition may still route a
    retry when the new owner routes it again, each on its own view; both plans' answers come
    to the new owner."""
    asked = {s.hold: s.location_id for s in state.attempt_shipments()}
    return all(asked.get(h.hold_id) == h.location_id for h in result.holds)


def _release_stale(state: OrderState, result: SkuResult, ctx: SagaContext) -> Outputs:
    """A reservation that succeeded after its attempt was given up, or for a plan the order no
    longer has, must not keep its units. A hold the order's live shipments still use stays:
    the owner holds the newest plan under it."""
    if not result.ok:
        return []
    holding = {s.hold for s in state.shipments.values() if s.state in _HOLDING}
    stale = [h for h in result.holds if h.hold_id not in holding]
    if not stale:
        return []
    return [
        _command(
            state.order.order_id, result.sku, SkuAction.RELEASE, result.attempt, stale, ctx.now
        )
    ]


# ---- helpers ------------------------------------------------------------------------------------


def _sku_commands(
    state: OrderState,
    shipments: Sequence[SagaShipment],
    action: SkuAction,
    ctx: SagaContext,
    *,
    skip: set[str] | None = None,
) -> Outputs:
    """One command per sku over the given shipments' holds (the sku's owner applies it whole)."""
    holds: dict[str, list[Hold]] = defaultdict(list)
    for shipment in shipments:
        per_sku: dict[str, int] = defaultdict(int)
        for line in shipment.lines:
            per_sku[line.sku] += line.quantity
        for sku, quantity in per_sku.items():
            if not skip or sku not in skip:
                holds[sku].append(
                    Hold(
                        hold_id=shipment.hold,
                        location_id=shipment.location_id,
                        quantity=quantity,
                    )
                )
    return [
        _command(state.order.order_id, sku, action, state.attempt, sku_holds, ctx.now)
        for sku, sku_holds in sorted(holds.items())
    ]


def _command(
    order_id: str, sku: str, action: SkuAction, attempt: int, holds: Sequence[Hold], now: datetime
) -> SkuCommand:
    """The id names the action, the sku and the holds: each happens once to a hold, so a
    redelivered input reproduces the id and the sku's owner drops the repeat."""
    hold_ids = "+".join(sorted(h.hold_id for h in holds))
    return SkuCommand(
        command_id=f"{action.value}:{sku}:{hold_ids}",
        order_id=order_id,
        sku=sku,
        action=action,
        attempt=attempt,
        holds=tuple(holds),
        issued_at=now,
    )


MAX_QUOTE_CHARS = 1_000
"""The most of an upstream system's free text (a cancel's or a rejection's reason) the saga
copies into the statuses and the order's state: each status repeats it in the order's history,
its explanation and the records kept for redelivery."""


def quoted(text: str) -> str:
    """``text``, cut to ``MAX_QUOTE_CHARS`` with an ellipsis when longer."""
    return text if len(text) <= MAX_QUOTE_CHARS else text[: MAX_QUOTE_CHARS - 1] + "…"


def _fresh_availability(result: SkuResult) -> dict[str, int]:
    """The sku's availability once this order gives back what the result holds for it: only a
    retry reads it, and the retry releases those holds before it reserves again."""
    own: dict[str, int] = defaultdict(int)
    if result.ok:
        for hold in result.holds:
            own[hold.location_id] += hold.quantity
    return {
        x.location_id: max(0, x.on_hand - (x.reserved - own[x.location_id]) - x.safety_stock)
        for x in result.locations
    }

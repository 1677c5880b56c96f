"""``CANCEL_LINES``: cancel some units of some lines of a live order.

Refused, changing nothing, when a line is unknown, has no open units (already shipped, or
cancelled), or fewer open units than asked, and while a routing attempt is in flight (its
shipments are not known yet). Open units are those waiting for stock (or for the order's holds
to be released) and those in shipments a location was told to fulfil and has not shipped.

Applied: units are taken first from what waits (nothing to tell a location), then from open
shipments, those not yet accepted first. Each shipment losing units gets a ``CANCEL`` at its
location (:mod:`streams.core.saga.cancel`: released at once if unaccepted, else once the
location confirms). A shipment keeping other units is not edited in place: its remaining units
are routed again as a new shipment, with the order's backordered lines, counting the units the
cancel just gave back, so they usually stay where they were. Cancelling every open unit of an
order cancels the order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from schemas.models import ActionResult, Message, OrderAction, OrderStatusChanged, ShipmentLine
from streams.core.saga.cancel import stop_shipments, subtract_lines
from streams.core.saga.context import Routing, SagaContext
from streams.core.saga.output import action_answer
from streams.core.saga.routing import merge_lines
from streams.core.saga.state import Line, OrderState, SagaShipment, ShipmentState

Outputs = list[Message]
MAX_REASON_CHARS = 1_000


def cancel_lines(
    state: OrderState, action: OrderAction, ctx: SagaContext, routing: Routing
) -> Outputs:
    """Apply a ``CANCEL_LINES`` action, or refuse it with a reason a person can act on. The
    applied answer names the units it cancelled (``cancelled``), for the channel to cancel."""
    wanted: dict[str, int] = defaultdict(int)
    for line in action.lines:
        wanted[line.line_id] += line.quantity
    problem = _problem(state, wanted)
    if problem is not None:
        return [action_answer(state, action, ActionResult.REFUSED, problem, ctx.now)]
    skus = {x.line_id: x.sku for x in state.order.lines}
    cancelled = tuple(
        ShipmentLine(line_id=line_id, sku=skus[line_id], quantity=units)
        for line_id, units in sorted(wanted.items())
    )
    return [
        r.model_copy(update={"cancelled": cancelled}) if _answers(r, action) else r
        for r in _apply(state, action, wanted, ctx, routing)
    ]


def _answers(record: Message, action: OrderAction) -> bool:
    return isinstance(record, OrderStatusChanged) and record.action_id == action.action_id


def _apply(
    state: OrderState,
    action: OrderAction,
    wanted: dict[str, int],
    ctx: SagaContext,
    routing: Routing,
) -> Outputs:
    cuts = _take_from_shipments(state, _take_from_waiting(state, wanted))
    for line_id, units in wanted.items():
        state.cancelled_units[line_id] = state.cancelled_units.get(line_id, 0) + units
    affected = [state.shipments[sid] for sid in cuts]
    remainder = merge_lines(
        [x for s in affected for x in subtract_lines(s.lines, cuts[s.shipment_id])]
    )
    if remainder and not state.holds:
        _count_released(state, [s for s in affected if not s.accepted], ctx)
    cause = f"action {action.action_id} cancelling lines"
    outputs = stop_shipments(state, affected, cause, ctx, routing.sku_commands)
    said = _said(action, wanted, affected)
    if remainder and not state.holds:
        lines = merge_lines([*remainder, *state.backordered])
        note = f"{said}; routing the rest of {_ids(affected)} again"
        answer = action_answer(state, action, ActionResult.APPLIED, note, ctx.now)
        return [answer, *outputs, *routing.start(state, lines, f"{said}: ", ctx)]
    if state.holds:  # routed with the rest once the holds are released
        state.attempt_lines = merge_lines([*state.attempt_lines, *remainder])
    status = _status_after(state)
    if status == "CANCELLED":
        state.cancelled = True
        state.holds = []
        state.backordered = []
        said += "; no unit of the order is left open, so the order is cancelled"
    answer = action_answer(state, action, ActionResult.APPLIED, said, ctx.now, status)
    return [answer, *outputs]


# ---- what is open, and the refusals -------------------------------------------------------------


def _waiting(state: OrderState) -> list[Line]:
    """Lines waiting: for the holds' release on a held order, else for stock."""
    return state.attempt_lines if state.holds else state.backordered


def _open_shipments(state: OrderState) -> list[SagaShipment]:
    """Shipments at their locations, not shipped: those not yet accepted first."""
    open_ = [s for s in state.shipments.values() if s.state == ShipmentState.OPEN]
    return sorted(open_, key=lambda s: (s.accepted, s.shipment_id))


def _open_units(state: OrderState) -> dict[str, int]:
    units: dict[str, int] = defaultdict(int)
    for line in [*_waiting(state), *(x for s in _open_shipments(state) for x in s.lines)]:
        units[line.line_id] += line.quantity
    return units


def _problem(state: OrderState, wanted: dict[str, int]) -> str | None:
    order_id = state.order.order_id
    if state.status == "REJECTED":
        return f"order {order_id} was rejected: nothing to cancel"
    if state.pending:
        return f"order {order_id} is being routed right now; try again in a moment"
    if not wanted:
        return "name at least one line to cancel (line id and units)"
    ordered = {x.line_id: x.quantity for x in state.order.lines}
    open_units = _open_units(state)
    delivered = state.delivered_by_line()
    for line_id, units in sorted(wanted.items()):
        if line_id not in ordered:
            return f"order {order_id} has no line {line_id} (its lines: {', '.join(ordered)})"
        have = open_units.get(line_id, 0)
        if have >= units:
            continue
        if have == 0 and delivered.get(line_id, 0):
            return f"line {line_id} already shipped"
        if have == 0:
            return f"line {line_id} has no open unit left to cancel"
        return f"only {have} units of line {line_id} are open, {units} asked"
    return None


# ---- taking the units ---------------------------------------------------------------------------


def _take_from_waiting(state: OrderState, wanted: dict[str, int]) -> dict[str, int]:
    """Cut the waiting lines; what is left to take from shipments."""
    waiting = _waiting(state)
    take = {x.line_id: min(x.quantity, wanted.get(x.line_id, 0)) for x in merge_lines(waiting)}
    left = subtract_lines(waiting, take)
    if state.holds:
        state.attempt_lines = left
    else:
        state.backordered = left
    return {lid: n - take.get(lid, 0) for lid, n in wanted.items() if n > take.get(lid, 0)}


def _take_from_shipments(state: OrderState, wanted: dict[str, int]) -> dict[str, dict[str, int]]:
    """Shipment id -> line id -> units cut from it."""
    cuts: dict[str, dict[str, int]] = {}
    left = dict(wanted)
    for shipment in _open_shipments(state):
        for line_id, units in shipment.units().items():
            taken = min(units, left.get(line_id, 0))
            if taken:
                cuts.setdefault(shipment.shipment_id, {})[line_id] = taken
                left[line_id] -= taken
    return cuts


def _count_released(state: OrderState, released: Sequence[SagaShipment], ctx: SagaContext) -> None:
    """Routing the rest again counts the units these shipments give back (the view learns of
    the release only later), so the rest can stay where it was."""
    for shipment in released:
        for line in shipment.lines:
            view = {**ctx.stock(line.sku), **state.fresh_stock.get(line.sku, {})}
            view[shipment.location_id] = view.get(shipment.location_id, 0) + line.quantity
            state.fresh_stock[line.sku] = view


def _status_after(state: OrderState) -> str:
    """The order's status once the cut units are gone and nothing is routed again."""
    if state.holds:
        return "ON_HOLD"
    has_open = bool(_open_shipments(state))
    waiting = bool(state.backordered)
    if not has_open and not waiting:
        return state.delivered_status() if state.delivered_by_line() else "CANCELLED"
    if state.status == "SHIPPED":
        return "SHIPPED"  # some units already left
    if has_open:
        return "PARTIALLY_ALLOCATED" if waiting else "ALLOCATED"
    return "BACKORDERED"


def _said(action: OrderAction, wanted: dict[str, int], affected: Sequence[SagaShipment]) -> str:
    units = ", ".join(f"{n} of line {lid}" for lid, n in sorted(wanted.items()))
    why = action.reason if len(action.reason) <= MAX_REASON_CHARS else action.reason[:999] + "…"
    said = f"cancelled {units} by {action.requested_by} ({why})"
    return f"{said}; CANCEL sent for {_ids(affected)}" if affected else said


def _ids(shipments: Sequence[SagaShipment]) -> str:
    return ", ".join(s.shipment_id for s in shipments)

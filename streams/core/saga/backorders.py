"""Backordered lines in the saga: the order waits in the line of each sku it is short of, and
is routed again when that sku's owner wakes it (the line itself is
:mod:`streams.core.inventory.backorders`, kept by the sku's owner).

After every input, :func:`sync_waiting` keeps the order's places in line matching what it still
waits for: its backordered lines, unless it is cancelled, held or rejected. A new routing of the
order always looks again (``waits_due``): its places are taken anew, so the owner wakes it only
after the next rise of the sku's stock, and gives back whatever a wake set aside for it.

An order whose routing gave up after losing its reservation races (``raced``) backorders lines
it never got to use, for reasons that were other orders' and not the stock's: it takes its
places as if it had seen nothing, so whatever is free now wakes it (the owner serves the line
in order, so a later order still never takes an earlier one's units). So does an order whose
routing allocated part of it: what that routing left, it left for reasons of the whole order
(at most ``DOM_MAX_SHIPMENTS`` shipments), and a routing of the backordered lines alone may use
the units it passed over. Each such wake allocates something or ends in a plain look, so it
cannot repeat without new stock.

A wake routes the backordered lines again on the figures it carried. A wake that finds the order
busy (a routing attempt in flight, or on hold) is left for that attempt's end, which takes the
order's places anew; one for a sku it no longer waits for takes it out of that line. A wake that
serves nothing changes no status: the order keeps its place and its last outcome. A backorder
the owner expires cancels the order's backordered lines (the whole order when nothing else of it
was allocated), and ``RETRY_BACKORDER`` routes them again at once.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from schemas.internal import BackorderWait, SkuAction, SkuCommand, SkuResult
from schemas.models import Message
from streams.core.saga.context import SagaContext, StartAttempt
from streams.core.saga.output import status_record
from streams.core.saga.routing import StockView
from streams.core.saga.state import LEFT, OrderState, ShipmentState

Outputs = list[Message]
NOT_WAITING = frozenset({"ON_HOLD", "REJECTED", "CANCELLED"})
MAX_WAITING_SKUS = 50
"""The most skus one order waits in line for at a time. Each place is a command the order's
state keeps for redelivery; an order short of 2,000 skus made a state past what one changelog
record holds. It takes its place in the others' lines as those first ones are served (or at
a ``RETRY_BACKORDER``, which routes every backordered line)."""


def sync_waiting(state: OrderState, ctx: SagaContext) -> Outputs:
    """Take or give up the order's places in the skus' lines so they match what it waits for."""
    wanted = _wanted(state)
    raced, state.raced = state.raced, False
    if wanted == state.waiting and not (state.waits_due and wanted):
        state.waits_due = False
        return []
    # A routing that ships part of the order left the rest for reasons of the whole order (its
    # shipment cap, one location for several lines): a routing of the rest alone, as a wake
    # makes, may use what this one could not. Its places count nothing as seen.
    split = bool(state.attempt_shipments()) and bool(state.backordered)
    state.waits_due = False
    state.waits += 1
    stock = StockView(state, ctx.stock)
    outputs: Outputs = [
        _command(state, sku, SkuAction.UNWAIT, ctx.now)
        for sku in sorted(set(state.waiting) - set(wanted))
    ]
    rank = ctx.backorders.rank(state)
    for sku, quantity in sorted(wanted.items()):
        wait = BackorderWait(
            quantity=quantity,
            rank=rank,
            placed_at=state.order.placed_at,
            waiting_since=state.waiting_since.get(sku, ctx.now),
            seen_available=0 if raced or split else min(sum(stock[sku].values()), 2**31 - 1),
        )
        outputs.append(_command(state, sku, SkuAction.WAIT, ctx.now, wait))
    state.waiting = wanted
    state.waiting_since = {sku: state.waiting_since.get(sku, ctx.now) for sku in wanted}
    return outputs


def on_wake(state: OrderState, result: SkuResult, ctx: SagaContext, start: StartAttempt) -> Outputs:
    """Units of a sku the order waits for were set aside for it: route its backordered lines."""
    if not result.ok:
        return []  # a refused WAKE (sent as a command by mistake): nothing was set aside
    if result.sku not in _wanted(state):
        state.waiting.pop(result.sku, None)
        return [_command(state, result.sku, SkuAction.UNWAIT, ctx.now, suffix=result.command_id)]
    if state.pending or state.holds or state.status == "ON_HOLD":
        return []  # the attempt in flight (or the release) takes the order's places anew
    state.fresh_stock[result.sku] = {x.location_id: x.available for x in result.locations}
    state.first_attempt = state.attempt + 1  # a routing of its own, with its own retries
    return start(state, list(state.backordered), f"{result.sku} arrived: ", ctx, quiet=True)


def on_expired(state: OrderState, result: SkuResult, ctx: SagaContext) -> Outputs:
    """The order waited past ``DOM_BACKORDER_EXPIRY_S``: its backordered lines are cancelled,
    and the whole order when nothing else of it was allocated."""
    if result.ok or result.sku not in _wanted(state) or state.pending:
        return []  # an EXPIRE is never ok: one that is came from elsewhere
    for line in state.backordered:
        state.cancelled_units[line.line_id] = (
            state.cancelled_units.get(line.line_id, 0) + line.quantity
        )
    what = ", ".join(f"{x.line_id} ({x.quantity} of {x.sku})" for x in state.backordered)
    state.backordered = []
    reason = f"backordered lines cancelled: {what}: {result.reason}"
    allocated = [s for s in state.shipments.values() if s.state == ShipmentState.OPEN]
    left = [s for s in state.shipments.values() if s.state in LEFT]
    if allocated:
        return [status_record(state, "ALLOCATED", reason, ctx.now)]
    if left:
        return [status_record(state, state.delivered_status(), reason, ctx.now)]
    state.cancelled = True
    return [status_record(state, "CANCELLED", reason, ctx.now)]


def _wanted(state: OrderState) -> dict[str, int]:
    """The skus the order waits in line for, and how many units of each: the first
    :data:`MAX_WAITING_SKUS` of its backordered lines' skus."""
    if state.cancelled or state.status in NOT_WAITING:
        return {}
    wanted: dict[str, int] = defaultdict(int)
    for line in state.backordered:
        if line.sku in wanted or len(wanted) < MAX_WAITING_SKUS:
            wanted[line.sku] += line.quantity
    return dict(wanted)


def _command(
    state: OrderState,
    sku: str,
    action: SkuAction,
    now: datetime,
    wait: BackorderWait | None = None,
    suffix: str | None = None,
) -> SkuCommand:
    order_id = state.order.order_id
    tail = suffix if suffix is not None else str(state.waits)
    return SkuCommand(
        command_id=f"{action.value}:{sku}:{order_id}:{tail}",
        order_id=order_id,
        sku=sku,
        action=action,
        attempt=state.attempt,
        wait=wait,
        issued_at=now,
    )

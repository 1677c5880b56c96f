"""Returns in the order saga: authorize a request, then take the units back.

``ReturnRequested`` gets an RMA number, the nearest active location with the ``RETURNS``
capability, a ``ReturnLabelCommand`` carrying a printable label, and the status
``RETURN_AUTHORIZED``. ``ReturnReceived`` puts the ``SELLABLE`` units back on hand at the
receiving location through a ``StockEvent`` (an ``ADJUSTMENT`` the inventory stage, the only
writer of inventory, applies once by its event id); ``DAMAGED`` units are not restocked. Once
every authorized unit is back the status is ``RETURNED``.

What a request must meet, else it is refused (the order's status is repeated with a reason
starting "return <id> refused:", and nothing else happens):

- the order is not cancelled and some of it reached the customer (shipped, or picked up);
- it has lines, each naming a sku of the order, and per sku the units asked for (lines of one
  sku add up) plus those of returns already authorized are at most the units delivered;
- some active location accepts returns.

A return id is authorized once; a later request under the same return id is ignored. A receipt
must name an authorized return of the order that is not yet fully back, and per sku at most
the units still outstanding on it; otherwise it is refused whole and nothing is restocked (the
warehouse corrects it with a new receipt). Units count wherever they arrive: the receiving
location gets them, even if the RMA named another one.

Everything is derived from the inputs (the RMA from the order and return ids, command and
stock event ids from the return and the receipt), so a redelivery yields the same records.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

from schemas.common import MAX_ID_CHARS, Address
from schemas.enums import Capability, ItemCondition, StockEventKind
from schemas.models import (
    Location,
    Message,
    ReturnLabelCommand,
    ReturnReceived,
    ReturnRequested,
    StockEvent,
)
from streams.core.returns.labels import ReturnLabel, render_label
from streams.core.routing.geo import haversine_km
from streams.core.saga.context import SagaContext
from streams.core.saga.output import status_record
from streams.core.saga.state import OrderState, ReturnState, SagaReturn

Outputs = list[Message]

RETURN_STATUSES = ("RETURN_AUTHORIZED", "RETURNED")
RMA_PREFIX = "RMA-"
RMA_DIGITS = 10  # 50 bits of Crockford base32: collisions are negligible at any order volume
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # no I, L, O, U: read aloud over the phone


def rma_number(order_id: str, return_id: str) -> str:
    """The RMA of a return: a short stable hash of the order and return ids.

    Stable, so a redelivered request gets the same RMA; a hash rather than the return id
    itself, so the barcode is short and holds only characters Code 128 carries plainly.
    """
    digest = hashlib.sha256(f"{order_id}\x1f{return_id}".encode()).digest()
    bits = int.from_bytes(digest[:8], "big") >> (64 - 5 * RMA_DIGITS)
    digits = [_CROCKFORD[(bits >> (5 * i)) & 31] for i in reversed(range(RMA_DIGITS))]
    return RMA_PREFIX + "".join(digits)


def nearest_returns_location(ship_from: Address, locations: Iterable[Location]) -> Location | None:
    """The active location with ``RETURNS`` nearest to ``ship_from`` (great-circle).

    Locations whose distance is unknown (no coordinates on either side) come after those with
    one; ties and unknowns fall back to priority (lower first), then location id.
    """
    candidates = [loc for loc in locations if loc.active and Capability.RETURNS in loc.capabilities]
    if not candidates:
        return None
    return min(candidates, key=lambda loc: _rank(ship_from, loc))


def _rank(ship_from: Address, loc: Location) -> tuple[bool, float, int, str]:
    km = _km(ship_from, loc.address)
    return (km is None, km if km is not None else 0.0, loc.priority, loc.location_id)


def _km(a: Address, b: Address) -> float | None:
    if a.lat is None or a.lon is None or b.lat is None or b.lon is None:
        return None
    return haversine_km(a.lat, a.lon, b.lat, b.lon)


# ---- the request --------------------------------------------------------------------------------


def on_return_requested(state: OrderState, event: ReturnRequested, ctx: SagaContext) -> Outputs:
    """Authorize a return: an RMA, where to send it, a label and RETURN_AUTHORIZED."""
    if state.seen(event.event_id):
        return []
    state.mark(event.event_id)
    if event.return_id in state.returns:
        return []  # already authorized under another event id: one RMA, one label
    problem = request_problem(state, event)
    if problem is not None:
        return [_refused(state, event.return_id, problem, ctx)]
    location = nearest_returns_location(event.ship_from, ctx.location_records.values())
    if location is None:
        return [_refused(state, event.return_id, "no active location accepts returns", ctx)]
    rma = rma_number(state.order.order_id, event.return_id)
    units = _units((x.sku, x.quantity) for x in event.lines)
    state.returns[event.return_id] = SagaReturn(
        return_id=event.return_id,
        rma_number=rma,
        location_id=location.location_id,
        authorized=units,
    )
    km = _km(event.ship_from, location.address)
    where = location.location_id + (f" ({km:.0f} km away)" if km is not None else "")
    reason = f"return {event.return_id} authorized as {rma}: {_describe(units)} to {where}"
    return [
        status_record(state, "RETURN_AUTHORIZED", reason, ctx.now),
        _label_command(state, event, rma, location, ctx),
    ]


def request_problem(state: OrderState, event: ReturnRequested) -> str | None:
    """Why the request cannot be authorized against this order, or None if it can."""
    if state.cancelled and not delivered_units(state):  # a late shipment can still come back
        return "the order was cancelled"
    if not event.lines:
        return "it has no lines"
    delivered = delivered_units(state)
    if not delivered:
        return "nothing of the order was shipped or picked up yet"
    ordered = {line.sku for line in state.order.lines}
    taken = _units((sku, n) for r in state.returns.values() for sku, n in r.authorized.items())
    for sku, quantity in sorted(_units((x.sku, x.quantity) for x in event.lines).items()):
        if sku not in ordered:
            return f"{sku} is not part of the order"
        left = delivered.get(sku, 0) - taken.get(sku, 0)
        if quantity > left:
            return (
                f"{quantity} {sku} asked back, but only {left} can be returned "
                f"({delivered.get(sku, 0)} delivered, {taken.get(sku, 0)} already authorized)"
            )
    return None


def delivered_units(state: OrderState) -> dict[str, int]:
    """sku -> units that reached the customer."""
    sku_of = {line.line_id: line.sku for line in state.order.lines}
    by_line = state.delivered_by_line()
    return _units((sku_of[line_id], n) for line_id, n in by_line.items() if n and line_id in sku_of)


def _label_command(
    state: OrderState, event: ReturnRequested, rma: str, location: Location, ctx: SagaContext
) -> ReturnLabelCommand:
    order_id = state.order.order_id
    label = ReturnLabel(
        rma_number=rma,
        order_id=order_id,
        return_id=event.return_id,
        ship_from=event.ship_from,
        ship_to=location.address,
    )
    return ReturnLabelCommand(
        command_id=f"{order_id}:{event.return_id}:label",
        return_id=event.return_id,
        rma_number=rma,
        order_id=order_id,
        return_location_id=location.location_id,
        ship_from=event.ship_from,
        ship_to=location.address,
        label_format=ctx.label_format,
        label=render_label(label, ctx.label_format),
        created_at=ctx.now,
    )


# ---- the receipt --------------------------------------------------------------------------------


def on_return_received(state: OrderState, event: ReturnReceived, ctx: SagaContext) -> Outputs:
    """Units came back: restock the sellable ones where they arrived; RETURNED once all are in."""
    if state.seen(event.event_id):
        return []
    state.mark(event.event_id)
    ret = state.returns.get(event.return_id)
    problem = receipt_problem(ret, event)
    if ret is None or problem is not None:
        return [_refused(state, event.return_id, problem or "unknown return", ctx)]
    for sku, n in _units((x.sku, x.quantity) for x in event.lines).items():
        ret.received[sku] = ret.received.get(sku, 0) + n
    outputs: Outputs = list(restock_events(event))
    sellable = _units((x.sku, x.quantity) for x in event.lines if _sellable(x.condition))
    damaged = _units((x.sku, x.quantity) for x in event.lines if not _sellable(x.condition))
    what = f"{_describe(sellable) or 'nothing'} restocked"
    what += f", {_describe(damaged)} damaged" if damaged else ""
    outstanding = ret.outstanding()
    if outstanding:
        reason = (
            f"return {ret.return_id} ({ret.rma_number}) partly received at {event.location_id}: "
            f"{what}; still expected: {_describe(outstanding)}"
        )
        return [*outputs, status_record(state, "RETURN_AUTHORIZED", reason, ctx.now)]
    ret.state = ReturnState.RECEIVED
    reason = f"return {ret.return_id} ({ret.rma_number}) received at {event.location_id}: {what}"
    return [*outputs, status_record(state, "RETURNED", reason, ctx.now)]


def receipt_problem(ret: SagaReturn | None, event: ReturnReceived) -> str | None:
    """Why the receipt cannot be taken against the return, or None if it can."""
    if ret is None:
        return "it was never authorized"
    if ret.state == ReturnState.RECEIVED:
        return f"{ret.rma_number} was already received in full"
    if not event.lines:
        return "the receipt has no lines"
    outstanding = ret.outstanding()
    for sku, quantity in sorted(_units((x.sku, x.quantity) for x in event.lines).items()):
        if quantity > outstanding.get(sku, 0):
            return (
                f"{quantity} {sku} received, but {ret.rma_number} expects "
                f"{outstanding.get(sku, 0)} more"
            )
    return None


def restock_events(event: ReturnReceived) -> list[StockEvent]:
    """One +n ADJUSTMENT per sellable sku of the receipt, at the receiving location.

    The id names the return, the receipt, the location and the sku: the inventory stage drops
    a repeat, and a second (partial) receipt of the same sku is a different event.
    """
    sellable = _units((x.sku, x.quantity) for x in event.lines if _sellable(x.condition))
    return [
        StockEvent(
            event_id=_restock_id(event.return_id, event.event_id, event.location_id, sku),
            sku=sku,
            location_id=event.location_id,
            kind=StockEventKind.ADJUSTMENT,
            quantity=quantity,
            reason=f"return {event.return_id}",
            occurred_at=event.received_at,
        )
        for sku, quantity in sorted(sellable.items())
    ]


def _restock_id(*parts: str) -> str:
    """The parts joined by ``:``; past the length of an id, ``restock:`` and their digest (each
    part may be as long as an id may be, the stock event's id may not)."""
    joined = ":".join(parts)
    if len(joined) <= MAX_ID_CHARS:
        return joined
    return "restock:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


# ---- helpers ------------------------------------------------------------------------------------


def _refused(state: OrderState, return_id: str, why: str, ctx: SagaContext) -> Message:
    """The order keeps its status; the record says why the return went nowhere."""
    return status_record(state, state.status, f"return {return_id} refused: {why}", ctx.now)


def _sellable(condition: ItemCondition) -> bool:
    return condition == ItemCondition.SELLABLE


def _units(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    total: dict[str, int] = defaultdict(int)
    for sku, quantity in pairs:
        total[sku] += quantity
    return dict(total)


def _describe(units: dict[str, int]) -> str:
    return ", ".join(f"{n} {sku}" for sku, n in sorted(units.items()))

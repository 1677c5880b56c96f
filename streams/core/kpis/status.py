"""What an ``OrderStatusChanged`` (``dom.order-status.v1``) adds to the KPIs.

- The order's first routing outcome (a status in ``ROUTING_OUTCOMES`` that answers no action):
  ``first_outcome`` by outcome, and ``fill`` (ALLOCATED counts 1 of 1, any other 0 of 1).
- Its first allocation (the first ALLOCATED or PARTIALLY_ALLOCATED listing new shipments):
  ``split`` (more than one shipment), ``shipments_per_order`` and ``placed_to_allocated``. A
  backordered order allocated later counts then, with the time it waited.
- Every shipment a status lists as new is remembered (location, kind, lines, when allocated)
  for what its location reports later.
- An acceptance timeout: the timer's ``MOVE_SHIPMENT`` (action id ``accept-timeout:<shipment
  id>:<attempt>``, see streams/core/saga/timers.py) answered ``APPLIED``, counted once per
  shipment, by the location it was moved away from.
- The order cancelled (status CANCELLED, whatever cancelled it), by reason; the pipeline's own
  cancels of expired pickups and backorders by a fixed reason, not their per-order text.
- The backorder backlog: +1 when the order starts waiting for stock, -1 when it stops.

Waiting for stock, as the statuses show it: BACKORDERED and PARTIALLY_ALLOCATED wait. A status
that reports shipping or returns (SHIPPED, RECEIVED, RETURN_AUTHORIZED, RETURNED) leaves it as
it was (a partly allocated order whose allocated part ships still waits for the rest), unless
it says the backordered lines expired. Any other status (ALLOCATED, ON_HOLD, REJECTED,
CANCELLED, COMPLETED) ends the wait: the saga takes held and rejected orders out of line too.
"""

from __future__ import annotations

from schemas.enums import (
    ROUTING_OUTCOMES,
    ActionResult,
    FulfillmentKind,
    FulfillmentMethod,
    OrderStatus,
)
from schemas.models import OrderStatusChanged, Shipment
from streams.core.kpis.buckets import Increment
from streams.core.kpis.catalogue import Series
from streams.core.kpis.facts import (
    NONE,
    LocationLookup,
    OrderFacts,
    Placed,
    ShipmentFacts,
    exact,
    label,
    location_kind,
    seconds_between,
)

Observed = tuple[OrderFacts, list[Increment]]

ACCEPT_TIMEOUT_PREFIX = "accept-timeout:"
"""How the acceptance timer's moves are named (``streams.core.saga.timers._move_away``)."""
BACKORDER_EXPIRED = "backordered lines cancelled"
"""How the saga starts the reason of a status for expired backorders (saga/backorders.py)."""
PICKUP_EXPIRED = "not picked up from"
"""How the pickup timer starts the reason of its cancel (saga/timers.py)."""
ALLOCATIONS = frozenset({OrderStatus.ALLOCATED, OrderStatus.PARTIALLY_ALLOCATED})
WAITING = frozenset({OrderStatus.BACKORDERED, OrderStatus.PARTIALLY_ALLOCATED})
KEEPS_WAITING = frozenset(
    {
        OrderStatus.SHIPPED,
        OrderStatus.RECEIVED,
        OrderStatus.RETURN_AUTHORIZED,
        OrderStatus.RETURNED,
    }
)


def on_status(facts: OrderFacts, event: OrderStatusChanged, location: LocationLookup) -> Observed:
    """The increments of one status; the facts must know the order's ``OrderPlaced``."""
    placed = facts.placed
    assert placed is not None  # parked until then
    out: list[Increment] = []
    if event.action_id is None:
        new = [s for s in event.shipments if s.fulfillment_status is None]
        new = [s for s in new if s.shipment_id not in facts.shipments]
        for shipment in new:
            facts = facts.with_shipment(shipment.shipment_id, _shipment(shipment, placed, event))
        facts, out = _first_outcome(facts, event, placed)
        if event.status in ALLOCATIONS and new and not facts.allocated:
            facts = facts.model_copy(update={"allocated": True})
            out += _first_allocation(event, placed, len(new))
    else:
        facts, out = _accept_timeout(facts, event, location)
    facts, cancelled = _cancellation(facts, event, placed)
    facts, backlog = _backlog(facts, event)
    return facts, [*out, *cancelled, *backlog]


def _shipment(shipment: Shipment, placed: Placed, event: OrderStatusChanged) -> ShipmentFacts:
    kind = shipment.kind
    if kind is None:  # a status written before shipments named their kind
        if placed.method is FulfillmentMethod.SHIP:
            kind = FulfillmentKind.SHIP
        elif shipment.location_id == placed.pickup_location_id:
            kind = FulfillmentKind.PICKUP
        else:
            kind = FulfillmentKind.TRANSFER
    return ShipmentFacts(
        location_id=shipment.location_id,
        kind=kind,
        allocated_at=event.at,
        lines=shipment.lines,
    )


def _first_outcome(facts: OrderFacts, event: OrderStatusChanged, placed: Placed) -> Observed:
    if facts.routed or event.status not in ROUTING_OUTCOMES:
        return facts, []
    whole = 1 if event.status is OrderStatus.ALLOCATED else 0
    source = event.event_id
    return facts.model_copy(update={"routed": True}), [
        Increment(Series.FIRST_OUTCOME, event.at, (event.status.value,), 1, source=source),
        Increment(Series.FILL, event.at, (placed.channel.value,), 1, exact(whole), source=source),
    ]


def _first_allocation(event: OrderStatusChanged, placed: Placed, shipments: int) -> list[Increment]:
    at, source = event.at, event.event_id
    waited = seconds_between(placed.placed_at, at)
    split = 1 if shipments > 1 else 0
    channel = (placed.channel.value,)
    return [
        Increment(Series.SPLIT, at, channel, 1, exact(split), source=source),
        Increment(Series.SHIPMENTS_PER_ORDER, at, channel, 1, exact(shipments), source=source),
        Increment(
            Series.PLACED_TO_ALLOCATED,
            at,
            channel,
            1,
            exact(waited),
            sample=waited,
            source=source,
        ),
    ]


def _accept_timeout(
    facts: OrderFacts, event: OrderStatusChanged, location: LocationLookup
) -> Observed:
    action_id = event.action_id or ""
    if not action_id.startswith(ACCEPT_TIMEOUT_PREFIX):
        return facts, []
    if event.action_result is not ActionResult.APPLIED:
        return facts, []  # refused (the order was being routed): the timer asks again
    shipment_id = action_id.removeprefix(ACCEPT_TIMEOUT_PREFIX).rpartition(":")[0]
    shipment = facts.shipments.get(shipment_id)
    if shipment is not None:
        if shipment.timed_out:
            return facts, []
        facts = facts.with_shipment(shipment_id, shipment.model_copy(update={"timed_out": True}))
    if shipment is None:
        where = (NONE, NONE)
    else:
        where = (shipment.location_id, location_kind(shipment.location_id, location, shipment.kind))
    return facts, [Increment(Series.ACCEPT_TIMEOUTS, event.at, where, 1, source=action_id)]


def _cancellation(facts: OrderFacts, event: OrderStatusChanged, placed: Placed) -> Observed:
    if event.status is not OrderStatus.CANCELLED or facts.cancelled:
        return facts, []
    where = (cancel_reason(event.reason), placed.channel.value)
    return facts.model_copy(update={"cancelled": True}), [
        Increment(Series.CANCELLATIONS, event.at, where, 1, source=event.event_id)
    ]


def cancel_reason(reason: str) -> str:
    """The dimension of a cancel's reason: the pipeline's own by a fixed name."""
    if reason.startswith(BACKORDER_EXPIRED):
        return "backorder expired"
    if reason.startswith(PICKUP_EXPIRED):
        return "pickup expired"
    return label(reason)


def _backlog(facts: OrderFacts, event: OrderStatusChanged) -> Observed:
    since = facts.waiting_since
    if event.status in WAITING:
        waits = True
    elif event.status in KEEPS_WAITING:
        waits = since is not None and not event.reason.startswith(BACKORDER_EXPIRED)
    else:
        waits = False
    source = event.event_id
    if waits and since is None:
        increment = Increment(Series.BACKLOG, event.at, (), 1, since=event.at, source=source)
        return facts.model_copy(update={"waiting_since": event.at}), [increment]
    if not waits and since is not None:
        increment = Increment(Series.BACKLOG, event.at, (), -1, since=since, source=source)
        return facts.model_copy(update={"waiting_since": None}), [increment]
    return facts, []

"""The KPI stage's pure step: :func:`observe` one event of an order, get new facts and the
increments it adds.

The stage feeds it, keyed by ``order_id``, ``OrderPlaced`` (``dom.orders.v1``),
``OrderStatusChanged`` (``dom.order-status.v1``), ``FulfillmentUpdate``
(``dom.fulfillment.events.v1``), ``ReturnRequested`` and ``ReturnReceived``
(``dom.returns.v1``); any other record adds nothing. It passes a lookup of the locations
(``dom.locations.v1``) for their kind and coordinates.

Each event is applied once: an id among the facts' ``seen`` (or one already parked) adds
nothing, and each KPI is counted by what the facts say was counted (a shipment counted as
shipped is not counted again, whatever the event's id). Every increment carries the event's
own time (placed, occurred, requested, received, or the status's ``at``), so a late event lands
in the window it happened in.

What a location reports (``dom.fulfillment.events.v1``):

- REJECTED: ``rejections`` by the reporting location, once per shipment.
- ACCEPTED of a PICKUP shipment: it is ready at the store (as the saga reckons it).
- SHIPPED: ``allocated_to_shipped``, per shipment, by location. A shipment to the customer
  (SHIP, SHIP_FROM_STORE) has then left: ``units_shipped`` and ``value_shipped`` (at the order
  line prices) by location, ``ship_from_store`` (1 of 1 from a STORE, as the lookup or else the
  shipment's kind says), and its km to the ship-to address in ``distance``, which counts the
  order once, at its first shipment whose distance is known.
- PICKED_UP: a PICKUP or TRANSFER shipment has left: its units and value; a PICKUP's
  ``pickup_time`` from ready to picked up, by store.

Returns: ``returns_requested`` units by reason (once per return id), ``returns_received``
units by condition and the reason the customer gave for that sku.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from schemas.enums import FulfillmentKind, FulfillmentMethod, FulfillmentStatus, LocationKind
from schemas.models import (
    FulfillmentUpdate,
    Location,
    Message,
    OrderPlaced,
    OrderStatusChanged,
    ReturnReceived,
    ReturnRequested,
)
from streams.core.kpis.buckets import Increment
from streams.core.kpis.catalogue import Series
from streams.core.kpis.facts import (
    NONE,
    PARKED_KEEP,
    LocationLookup,
    OrderFacts,
    Placed,
    ShipmentFacts,
    exact,
    label,
    location_kind,
    seconds_between,
)
from streams.core.kpis.status import on_status
from streams.core.routing.geo import haversine_km

Observed = tuple[OrderFacts, list[Increment]]
TO_CUSTOMER = frozenset({FulfillmentKind.SHIP, FulfillmentKind.SHIP_FROM_STORE})


def observe(facts: OrderFacts, event: Message, *, location: LocationLookup) -> Observed:
    """Apply ``event`` to its order's ``facts`` (``OrderFacts(order_id=...)`` for a new order):
    the new facts, and what the event adds to the KPIs (with what it let through that waited)."""
    handler = _HANDLERS.get(type(event))
    if handler is None:
        return facts, []
    event_id: str = getattr(event, "event_id")  # noqa: B009  # every handled record has one
    if event_id in facts.seen or any(p.event_id == event_id for p in facts.parked):
        return facts, []
    if isinstance(event, OrderStatusChanged | FulfillmentUpdate) and not _ready(facts, event):
        return facts.model_copy(update={"parked": (*facts.parked, event)[-PARKED_KEEP:]}), []
    facts, out = handler(facts.saw(event_id), event, location)
    return _unpark(facts, out, location)


def _ready(facts: OrderFacts, event: OrderStatusChanged | FulfillmentUpdate) -> bool:
    """Whether what ``event`` needs is known: the order for a status, the shipment for what a
    location reports of it (a rejection or a cancel needs nothing)."""
    if isinstance(event, OrderStatusChanged):
        return facts.placed is not None
    if event.status in (FulfillmentStatus.REJECTED, FulfillmentStatus.CANCELLED):
        return True
    return event.shipment_id in facts.shipments


def _unpark(facts: OrderFacts, out: list[Increment], location: LocationLookup) -> Observed:
    """Apply the parked events that can be now, oldest first, until none can."""
    while True:
        ready = next((i for i, e in enumerate(facts.parked) if _ready(facts, e)), None)
        if ready is None:
            return facts, out
        event = facts.parked[ready]
        rest = facts.parked[:ready] + facts.parked[ready + 1 :]
        facts = facts.model_copy(update={"parked": rest}).saw(event.event_id)
        facts, more = _HANDLERS[type(event)](facts, event, location)
        out = [*out, *more]


def _placed(facts: OrderFacts, event: OrderPlaced, location: LocationLookup) -> Observed:
    if facts.placed is not None:
        return facts, []  # the order is counted; a second placement of it is not an order
    placed = Placed.of(event)
    at, source = event.placed_at, event.event_id
    out = [Increment(Series.ORDERS_PLACED, at, (event.channel.value,), 1, source=source)]
    if placed.method is FulfillmentMethod.PICKUP:
        store = event.pickup_location_id or NONE
        out.append(Increment(Series.PICKUP_ORDERS, at, (store,), 1, source=source))
    return facts.model_copy(update={"placed": placed}), out


def _status(facts: OrderFacts, event: OrderStatusChanged, location: LocationLookup) -> Observed:
    return on_status(facts, event, location)


def _update(facts: OrderFacts, event: FulfillmentUpdate, location: LocationLookup) -> Observed:
    shipment = facts.shipments.get(event.shipment_id)
    status = event.status
    if status is FulfillmentStatus.REJECTED:
        return _rejected(facts, event, shipment, location)
    if shipment is None or status is FulfillmentStatus.CANCELLED:
        return facts, []
    if status is FulfillmentStatus.ACCEPTED:
        if shipment.kind is FulfillmentKind.PICKUP and shipment.ready_at is None:
            ready = shipment.model_copy(update={"ready_at": event.occurred_at})
            return facts.with_shipment(event.shipment_id, ready), []
        return facts, []
    out: list[Increment] = []
    if status is FulfillmentStatus.SHIPPED and not shipment.shipped:
        out += _allocated_to_shipped(shipment, event, location)
        shipment = shipment.model_copy(update={"shipped": True})
    if status is FulfillmentStatus.PICKED_UP and not shipment.collected:
        out += _pickup_time(shipment, event)
        shipment = shipment.model_copy(update={"collected": True})
    if not shipment.left and (shipment.kind in TO_CUSTOMER or shipment.collected):
        facts, left = _left(facts, shipment, event, location)
        out += left
        shipment = shipment.model_copy(update={"left": True})
    return facts.with_shipment(event.shipment_id, shipment), out


def _rejected(
    facts: OrderFacts,
    event: FulfillmentUpdate,
    shipment: ShipmentFacts | None,
    location: LocationLookup,
) -> Observed:
    if shipment is not None:
        if shipment.rejected:
            return facts, []
        facts = facts.with_shipment(
            event.shipment_id, shipment.model_copy(update={"rejected": True})
        )
    at, source = event.occurred_at, event.event_id
    kind = location_kind(event.location_id, location, shipment.kind if shipment else None)
    where = (event.location_id, kind)
    return facts, [Increment(Series.REJECTIONS, at, where, 1, source=source)]


def _allocated_to_shipped(
    shipment: ShipmentFacts, event: FulfillmentUpdate, location: LocationLookup
) -> list[Increment]:
    took = seconds_between(shipment.allocated_at, event.occurred_at)
    where = (shipment.location_id, location_kind(shipment.location_id, location, shipment.kind))
    return [
        Increment(
            Series.ALLOCATED_TO_SHIPPED,
            event.occurred_at,
            where,
            1,
            exact(took),
            sample=took,
            source=event.event_id,
        )
    ]


def _pickup_time(shipment: ShipmentFacts, event: FulfillmentUpdate) -> list[Increment]:
    if shipment.kind is not FulfillmentKind.PICKUP or shipment.ready_at is None:
        return []
    took = seconds_between(shipment.ready_at, event.occurred_at)
    at, where = event.occurred_at, (shipment.location_id,)
    return [Increment(Series.PICKUP_TIME, at, where, 1, exact(took), took, source=event.event_id)]


def _left(
    facts: OrderFacts, shipment: ShipmentFacts, event: FulfillmentUpdate, location: LocationLookup
) -> Observed:
    """The shipment's units left the network: units, value, and for one sent to the customer
    where it was sent from and how far."""
    placed = facts.placed
    assert placed is not None  # the shipment came from a status, which waits for the order
    at, source, where = event.occurred_at, event.event_id, shipment.location_id
    value = shipment.value(placed.prices)
    kind = location_kind(where, location, shipment.kind)
    units = exact(shipment.units)
    out = [
        Increment(Series.UNITS_SHIPPED, at, (where, kind), 1, units, source=source),
        Increment(
            Series.VALUE_SHIPPED, at, (where, kind, placed.currency), 1, value, source=source
        ),
    ]
    if shipment.kind not in TO_CUSTOMER:
        return facts, out
    site = location(where)
    store = site.kind is LocationKind.STORE if site is not None else None
    if store is None:
        store = shipment.kind is FulfillmentKind.SHIP_FROM_STORE
    channel = (placed.channel.value,)
    out.append(Increment(Series.SHIP_FROM_STORE, at, channel, 1, exact(int(store)), source=source))
    km = _km(site, placed)
    if km is not None:
        orders = 0 if facts.distance_counted else 1
        facts = facts.model_copy(update={"distance_counted": True})
        out.append(Increment(Series.DISTANCE, at, channel, orders, exact(km), source=source))
    return facts, out


def _km(site: Location | None, placed: Placed) -> float | None:
    if site is None or placed.ship_to is None:
        return None
    lat, lon = site.address.lat, site.address.lon
    if lat is None or lon is None:
        return None
    return haversine_km(lat, lon, *placed.ship_to)


def _return_requested(
    facts: OrderFacts, event: ReturnRequested, location: LocationLookup
) -> Observed:
    if event.return_id in facts.return_reasons:
        return facts, []
    reasons: dict[str, str] = {}
    out: list[Increment] = []
    for line in event.lines:
        reason = label(line.reason)
        reasons.setdefault(line.sku, reason)
        at = event.requested_at
        out.append(_units(Series.RETURNS_REQUESTED, at, (reason,), line.quantity, event.event_id))
    update = {"return_reasons": {**facts.return_reasons, event.return_id: reasons}}
    return facts.model_copy(update=update), out


def _return_received(
    facts: OrderFacts, event: ReturnReceived, location: LocationLookup
) -> Observed:
    reasons = facts.return_reasons.get(event.return_id, {})
    out = [
        _units(
            Series.RETURNS_RECEIVED,
            event.received_at,
            (line.condition.value, reasons.get(line.sku, NONE)),
            line.quantity,
            event.event_id,
        )
        for line in event.lines
    ]
    return facts, out


def _units(
    series: Series, at: datetime, dimension: tuple[str, ...], units: int, source: str
) -> Increment:
    return Increment(series, at, dimension, 1, exact(units), source=source)


_HANDLERS: dict[type[Message], Callable[[OrderFacts, Any, LocationLookup], Observed]] = {
    OrderPlaced: _placed,
    OrderStatusChanged: _status,
    FulfillmentUpdate: _update,
    ReturnRequested: _return_requested,
    ReturnReceived: _return_received,
}

"""What the KPI stage remembers per order: :class:`OrderFacts`, one value keyed by order_id.

Just enough to compute each KPI once per order and to see a redelivery: the order's channel,
placed time, method, line prices and ship-to point (from ``OrderPlaced``), whether its first
routing outcome and first allocation were counted, its shipments (where, what, when allocated,
what was counted of them), since when it waits for stock, the reasons of its returns, the ids of
the events already applied (the last :data:`SEEN_KEEP`), and the events parked until what they
need arrives (the last :data:`PARKED_KEEP`).

Parking: the stage reads several topics, and only order within one topic is guaranteed. A
status can be read before its ``OrderPlaced`` (the channel and placed time are not known yet),
a location's ``SHIPPED`` before the status that allocated the shipment (its lines and location
are not known yet). Such an event waits in the facts and is applied, with its own event time,
as soon as what it needs is there.

Values are frozen pydantic models: a handler returns new facts, and the stage stores them as
JSON (``model_dump_json`` / ``model_validate_json``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from schemas.enums import Channel, FulfillmentKind, FulfillmentMethod, LocationKind
from schemas.models import (
    FulfillmentUpdate,
    Location,
    OrderPlaced,
    OrderStatusChanged,
    ShipmentLine,
)

LocationLookup = Callable[[str], Location | None]

SEEN_KEEP = 100
"""Event ids kept per order. An order sees a few dozen events; past that, what was counted is
also known from the facts themselves (a shipment counted as shipped stays so)."""
PARKED_KEEP = 32
"""Events kept waiting per order; the oldest goes first."""
LABEL_CHARS = 80
"""The longest free text (a cancel's or a return's reason) used as a dimension."""
NONE = "(none)"
"""The dimension of a thing not named (a pickup order without a store)."""
FROM_STORES = frozenset({FulfillmentKind.SHIP_FROM_STORE, FulfillmentKind.PICKUP})


def location_kind(
    location_id: str, location: LocationLookup, shipment: FulfillmentKind | None = None
) -> str:
    """The ``location_kind`` dimension of a location: its kind in ``dom.locations.v1``; for
    one not (yet) known there, STORE when the shipment's kind says so, else ``(none)``."""
    site = location(location_id)
    if site is not None:
        return site.kind.value
    return LocationKind.STORE.value if shipment in FROM_STORES else NONE


_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Placed(BaseModel):
    """What the KPIs need of an ``OrderPlaced``."""

    model_config = _FROZEN

    channel: Channel
    placed_at: datetime
    method: FulfillmentMethod
    pickup_location_id: str | None = None
    currency: str
    prices: dict[str, Decimal] = Field(default_factory=dict)  # unit price by line_id
    ship_to: tuple[float, float] | None = None  # lat, lon

    @classmethod
    def of(cls, order: OrderPlaced) -> Placed:
        to = order.ship_to
        point = (to.lat, to.lon) if to and to.lat is not None and to.lon is not None else None
        return cls(
            channel=order.channel,
            placed_at=order.placed_at,
            method=order.fulfillment_method,
            pickup_location_id=order.pickup_location_id,
            currency=order.currency,
            prices={line.line_id: line.unit_price for line in order.lines},
            ship_to=point,
        )


class ShipmentFacts(BaseModel):
    """One shipment of the order, as a status allocated it, and what was counted of it."""

    model_config = _FROZEN

    location_id: str
    kind: FulfillmentKind
    allocated_at: datetime
    lines: tuple[ShipmentLine, ...] = ()
    ready_at: datetime | None = None  # a pickup its store has ready (it ACCEPTED it)
    shipped: bool = False  # allocated_to_shipped counted
    collected: bool = False  # PICKED_UP: pickup_time counted
    left: bool = False  # its units counted as having left the network
    rejected: bool = False
    timed_out: bool = False

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)

    def value(self, prices: dict[str, Decimal]) -> Decimal:
        """The worth of its units at the order's line prices (lines not priced count 0)."""
        return sum(
            (prices.get(line.line_id, Decimal(0)) * line.quantity for line in self.lines),
            Decimal(0),
        )


Parked = OrderStatusChanged | FulfillmentUpdate


class OrderFacts(BaseModel):
    """The KPI stage's memory of one order."""

    model_config = _FROZEN

    order_id: str
    placed: Placed | None = None
    routed: bool = False  # its first routing outcome was counted
    allocated: bool = False  # its first allocation was counted
    shipments: dict[str, ShipmentFacts] = Field(default_factory=dict)
    distance_counted: bool = False  # counted as an order in distance per order
    waiting_since: datetime | None = None  # in the backorder backlog since
    cancelled: bool = False
    return_reasons: dict[str, dict[str, str]] = Field(default_factory=dict)  # return, sku
    seen: tuple[str, ...] = ()
    parked: tuple[Parked, ...] = ()

    def saw(self, event_id: str) -> OrderFacts:
        """These facts, with ``event_id`` applied."""
        return self.model_copy(update={"seen": (*self.seen, event_id)[-SEEN_KEEP:]})

    def with_shipment(self, shipment_id: str, shipment: ShipmentFacts) -> OrderFacts:
        """These facts, with ``shipment`` stored under ``shipment_id``."""
        return self.model_copy(update={"shipments": {**self.shipments, shipment_id: shipment}})


def label(text: str | None) -> str:
    """Free text as a dimension: whitespace collapsed, at most :data:`LABEL_CHARS`."""
    said = " ".join((text or "").split())
    if not said:
        return NONE
    return said if len(said) <= LABEL_CHARS else said[: LABEL_CHARS - 1] + "…"


def seconds_between(start: datetime, end: datetime) -> float:
    """Elapsed seconds, never below 0 (two systems' clocks may disagree a little)."""
    return max(0.0, (end - start).total_seconds())


def exact(value: float) -> Decimal:
    """A float as a Decimal of three decimals (a millisecond, a metre), so that sums of them
    are exact and the same in any order, as floats' are not."""
    return Decimal(value).quantize(_THOUSANDTH)


_THOUSANDTH = Decimal("0.001")

"""Types that routing takes and returns.

They are plain frozen dataclasses, independent of the pydantic contract records: the Faust
agents map records onto them at the boundary. The enums are the contract's own StrEnums.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

# The contract's own enums (plain StrEnums, no Kafka or pydantic): one definition for the
# records and for routing, so a contract value needs no translation on its way in.
from schemas.enums import Capability as Capability
from schemas.enums import FulfillmentKind
from schemas.enums import FulfillmentMethod as FulfillmentMethod
from schemas.enums import LocationKind as LocationKind
from streams.core.routing.geo import Destination, distance_cost

ShipmentKind = FulfillmentKind
"""What a planned shipment is: the contract's fulfillment command kinds."""


class RoutingOutcome(StrEnum):
    ALLOCATED = "ALLOCATED"
    PARTIALLY_ALLOCATED = "PARTIALLY_ALLOCATED"
    BACKORDERED = "BACKORDERED"
    REJECTED = "REJECTED"


class ShortfallPolicy(StrEnum):
    ALLOCATE_AVAILABLE = "ALLOCATE_AVAILABLE"
    """Allocate what stock exists and backorder the rest (PARTIALLY_ALLOCATED)."""
    BACKORDER_WHOLE = "BACKORDER_WHOLE"
    """Allocate nothing unless everything can be allocated."""


@dataclass(frozen=True, slots=True)
class LocationInfo:
    """A DC or store as routing sees it (one entry of the compacted locations table)."""

    location_id: str
    kind: LocationKind
    capabilities: frozenset[Capability]
    lat: float | None = None
    lon: float | None = None
    region: str | None = None
    country: str | None = None
    priority: int = 100
    daily_order_capacity: int | None = None
    orders_today: int = 0
    active: bool = True

    @property
    def has_free_capacity(self) -> bool:
        cap = self.daily_order_capacity
        return cap is None or self.orders_today < cap

    @property
    def ship_capability(self) -> Capability:
        """The capability this location needs to ship to a customer."""
        return Capability.SHIP if self.kind == LocationKind.DC else Capability.SHIP_FROM_STORE

    def as_destination(self) -> Destination:
        """This location as the receiving end of a transfer."""
        return Destination(lat=self.lat, lon=self.lon, country=self.country, region=self.region)


@dataclass(frozen=True, slots=True)
class OrderLine:
    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    """One order to route, with the steering a rules engine may have applied.

    ``preferred_locations`` win over cost among plans with equally few shipments (earlier
    entries first); ``forced_location`` makes that location the only source;
    ``max_shipments`` tightens the policy's limit for this order. ``channel_locations``, when
    given, are the only locations the order's sales channel may be served from (its channel
    policy, named by ``channel``): no other location is a source, for a shipment, a transfer
    or a pickup from the store's own stock.
    """

    order_id: str
    method: FulfillmentMethod
    lines: tuple[OrderLine, ...]
    ship_to: Destination | None = None
    pickup_location_id: str | None = None
    excluded_locations: frozenset[str] = frozenset()
    excluded_kinds: frozenset[LocationKind] = frozenset()
    preferred_locations: tuple[str, ...] = ()
    forced_location: str | None = None
    max_shipments: int | None = None
    channel: str | None = None
    channel_locations: frozenset[str] | None = None

    def outside_channel(self, location_id: str) -> bool:
        """Whether the order's channel policy leaves ``location_id`` out."""
        allowed = self.channel_locations
        return allowed is not None and location_id not in allowed

    @property
    def channel_limit(self) -> str:
        """Why a location outside the channel's locations is no source (an exclusion)."""
        return f"outside the {self.channel} channel policy"


RoutingCost = Callable[[LocationInfo, Destination], float | None]
"""A cost function; :func:`streams.core.routing.geo.distance_cost` and a ``RateTable`` both fit."""


@dataclass(frozen=True)
class RoutingPolicy:
    """Operator-level routing settings; rules adjust single orders through the request.

    ``search_budget`` caps the node evaluations of the exact split search for one order
    before it settles for the better of what it found and a greedy answer (see
    ``routing.search``); ``explain_top`` is how many best candidates an explanation names.
    """

    max_shipments: int = 3
    shortfall: ShortfallPolicy = ShortfallPolicy.ALLOCATE_AVAILABLE
    cost: RoutingCost = field(default=distance_cost)
    search_budget: int = 2000
    explain_top: int = 3

    @property
    def cost_is_distance(self) -> bool:
        return self.cost is distance_cost


@dataclass(frozen=True, slots=True)
class AllocatedLine:
    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PlannedShipment:
    location_id: str
    kind: ShipmentKind
    lines: tuple[AllocatedLine, ...]
    destination_location_id: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    outcome: RoutingOutcome
    shipments: tuple[PlannedShipment, ...] = ()
    backordered: tuple[AllocatedLine, ...] = ()
    explanation: str = ""

    def allocated_quantity(self, sku: str, location_id: str) -> int:
        """Units of ``sku`` this decision takes from ``location_id`` (what to reserve)."""
        return sum(
            line.quantity
            for shipment in self.shipments
            if shipment.location_id == location_id
            for line in shipment.lines
            if line.sku == sku
        )

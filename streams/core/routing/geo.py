"""Shipping cost between a fulfilment location and a destination.

Two cost functions share one signature, ``(origin, destination) -> float | None``:

- :func:`distance_cost`: the great-circle (haversine) distance in kilometres, the default
  the contract promises ("distance-based unless a rate table is configured").
- :class:`RateTable`: a zone/rate card, configured by operators, with a fallback to distance
  for lanes the card does not list.

``None`` means "this lane cannot be priced" (no matching rate and no coordinates); routing
treats such a location as the most expensive candidate rather than guessing a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG); the spherical model is well within a rate card's precision."""

ANY = "*"


class Origin(Protocol):
    """What a cost function needs to know about a fulfilment location."""

    @property
    def location_id(self) -> str: ...

    @property
    def region(self) -> str | None: ...

    @property
    def country(self) -> str | None: ...

    @property
    def lat(self) -> float | None: ...

    @property
    def lon(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a shipment goes: a customer's address, or a store receiving a transfer."""

    lat: float | None = None
    lon: float | None = None
    country: str | None = None
    region: str | None = None
    postal_code: str | None = None

    @property
    def has_coordinates(self) -> bool:
        return self.lat is not None and self.lon is not None


CostFunction = Callable[[Origin, Destination], float | None]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    # min() guards asin against 1.0000000002 from rounding at antipodal points.
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def distance_km(origin: Origin, destination: Destination) -> float | None:
    """Distance from a location to a destination, or None when either lacks coordinates."""
    if origin.lat is None or origin.lon is None:
        return None
    if destination.lat is None or destination.lon is None:
        return None
    return haversine_km(origin.lat, origin.lon, destination.lat, destination.lon)


def km_to(destination: Destination) -> Callable[[Origin], float | None]:
    """``distance_km`` to one destination, its trigonometry done once.

    Routing prices every candidate against the same address; hoisting the destination's
    radians and cosine roughly halves the per-location cost.
    """
    if destination.lat is None or destination.lon is None:
        return lambda origin: None
    lat2, lon2 = math.radians(destination.lat), math.radians(destination.lon)
    cos2 = math.cos(lat2)
    sin, cos, radians = math.sin, math.cos, math.radians

    def km(origin: Origin) -> float | None:
        lat, lon = origin.lat, origin.lon
        if lat is None or lon is None:
            return None
        lat1 = radians(lat)
        h = sin((lat2 - lat1) / 2) ** 2 + cos(lat1) * cos2 * sin((lon2 - radians(lon)) / 2) ** 2
        return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))

    return km


def distance_cost(origin: Origin, destination: Destination) -> float | None:
    """The default cost: kilometres as the crow flies."""
    return distance_km(origin, destination)


ZONE_SAME_REGION = 0.0
ZONE_SAME_COUNTRY = 1.0
ZONE_ABROAD = 2.0


def zone_cost(origin: Origin, destination: Destination) -> float:
    """The fallback for an address without coordinates that no rate covers (marketplaces
    often send none): 0 in the same region, 1 in the same country, 2 abroad. Coarse, but it
    keeps the order routable and still prefers a nearby location."""
    region, country = _norm(destination.region), _norm(destination.country)
    same_country = country is not None and _norm(origin.country) == country
    if same_country and region is not None and _norm(origin.region) == region:
        return ZONE_SAME_REGION
    return ZONE_SAME_COUNTRY if same_country else ZONE_ABROAD


def _norm(value: str | None) -> str | None:
    return None if value is None else value.strip().upper()


def _norm_postal(value: str | None) -> str | None:
    # "SW1A 1AA" and "sw1a1aa" are the same postcode for zone purposes.
    return None if value is None else "".join(value.split()).upper()


@dataclass(frozen=True, slots=True)
class Rate:
    """One line of a rate card.

    ``origin`` is a location_id, a location region, or ``"*"`` for any origin. Destination
    fields left as None match anything; every field that is set must match.
    """

    cost: float
    origin: str = ANY
    country: str | None = None
    region: str | None = None
    postal_prefix: str | None = None

    def destination_specificity(self) -> tuple[int, int]:
        """How narrow the destination zone is: postal prefix > region > country > any."""
        if self.postal_prefix is not None:
            return (3, len(_norm_postal(self.postal_prefix) or ""))
        if self.region is not None:
            return (2, 0)
        if self.country is not None:
            return (1, 0)
        return (0, 0)

    def matches(self, destination: Destination) -> bool:
        if self.country is not None and _norm(self.country) != _norm(destination.country):
            return False
        if self.region is not None and _norm(self.region) != _norm(destination.region):
            return False
        if self.postal_prefix is not None:
            postal = _norm_postal(destination.postal_code)
            prefix = _norm_postal(self.postal_prefix) or ""
            if postal is None or not postal.startswith(prefix):
                return False
        return True


@dataclass(frozen=True)
class RateTable:
    """A zone/rate card used as a routing cost function.

    Lookup order: rates for the origin's location_id, then for its region, then for any
    origin (``"*"``); within one origin level the most specific destination zone wins
    (longest postal prefix, then region, then country, then any), then the order of the
    table. Rate cards are written per origin, which is why the origin level comes first.

    Lanes the card does not list fall back to ``fallback_base + fallback_per_km * km`` when
    both ends have coordinates; set ``fallback_per_km`` to None to price only listed lanes.
    """

    rates: tuple[Rate, ...]
    fallback_per_km: float | None = 1.0
    fallback_base: float = 0.0
    _by_origin: Mapping[str, tuple[Rate, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        grouped: dict[str, list[Rate]] = {}
        for rate in self.rates:
            grouped.setdefault(rate.origin, []).append(rate)
        # Sorting is stable, so equally specific rates keep the table's order.
        ordered = {
            origin: tuple(sorted(rates, key=Rate.destination_specificity, reverse=True))
            for origin, rates in grouped.items()
        }
        object.__setattr__(self, "_by_origin", ordered)

    def lookup(self, origin: Origin, destination: Destination) -> Rate | None:
        """The rate that applies to this lane, or None when the card does not list it."""
        levels = [origin.location_id]
        if origin.region is not None:
            levels.append(origin.region)
        levels.append(ANY)
        for level in levels:
            for rate in self._by_origin.get(level, ()):
                if rate.matches(destination):
                    return rate
        return None

    def cost(self, origin: Origin, destination: Destination) -> float | None:
        rate = self.lookup(origin, destination)
        if rate is not None:
            return rate.cost
        if self.fallback_per_km is None:
            return None
        km = distance_km(origin, destination)
        return None if km is None else self.fallback_base + self.fallback_per_km * km

    def __call__(self, origin: Origin, destination: Destination) -> float | None:
        return self.cost(origin, destination)

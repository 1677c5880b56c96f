"""Great-circle distance and rate-table costs."""

import math

import pytest

from streams.core.routing.geo import (
    Destination,
    Rate,
    RateTable,
    distance_cost,
    distance_km,
    haversine_km,
    km_to,
)
from streams.core.routing.model import Capability, LocationInfo, LocationKind

NYC = (40.7128, -74.0060)
LONDON = (51.5074, -0.1278)
PARIS = (48.8566, 2.3522)


def place(
    location_id: str, lat: float | None, lon: float | None, region: str = "NE"
) -> LocationInfo:
    return LocationInfo(
        location_id,
        LocationKind.DC,
        frozenset({Capability.SHIP}),
        lat=lat,
        lon=lon,
        region=region,
        country="US",
    )


def test_haversine_known_distances() -> None:
    assert haversine_km(*LONDON, *PARIS) == pytest.approx(343.5, abs=1.0)
    assert haversine_km(*NYC, *LONDON) == pytest.approx(5570, rel=0.005)
    assert haversine_km(*NYC, *NYC) == 0.0


def test_haversine_is_symmetric_and_handles_antipodes() -> None:
    assert haversine_km(*NYC, *PARIS) == pytest.approx(haversine_km(*PARIS, *NYC))
    half_circumference = math.pi * 6371.0088
    assert haversine_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(half_circumference)


def test_distance_needs_coordinates_on_both_ends() -> None:
    dest = Destination(lat=NYC[0], lon=NYC[1])
    assert distance_km(place("A", None, None), dest) is None
    assert distance_km(place("A", *PARIS), Destination(country="US")) is None
    assert distance_cost(place("A", *PARIS), dest) == pytest.approx(haversine_km(*PARIS, *NYC))


def test_km_to_matches_distance_km() -> None:
    dest = Destination(lat=NYC[0], lon=NYC[1])
    measure = km_to(dest)
    for lat, lon in (LONDON, PARIS, (-33.9, 151.2), (0.0, 0.0)):
        origin = place("X", lat, lon)
        assert measure(origin) == pytest.approx(distance_km(origin, dest))
    assert measure(place("X", None, 3.0)) is None
    assert km_to(Destination(country="US"))(place("X", *PARIS)) is None


def test_rate_table_prefers_origin_then_most_specific_destination() -> None:
    table = RateTable(
        (
            Rate(9.0),
            Rate(7.0, country="US"),
            Rate(6.0, country="US", region="NY"),
            Rate(5.0, country="US", postal_prefix="100"),
            Rate(4.5, country="US", postal_prefix="1000"),
            Rate(3.0, origin="NE", country="US"),
            Rate(2.0, origin="DC-1"),
        )
    )
    manhattan = Destination(country="US", region="NY", postal_code="10001")
    brooklyn = Destination(country="US", region="NY", postal_code="11201")
    boston = Destination(country="US", region="MA", postal_code="02108")
    paris = Destination(country="FR", postal_code="75001")
    other = place("DC-9", None, None, region="SW")
    assert table(other, manhattan) == 4.5
    assert table(other, brooklyn) == 6.0
    assert table(other, boston) == 7.0
    assert table(other, paris) == 9.0
    assert table(place("DC-2", None, None, region="NE"), paris) == 9.0
    assert table(place("DC-2", None, None, region="NE"), boston) == 3.0
    assert table(place("DC-1", None, None), paris) == 2.0


def test_rate_matching_ignores_case_and_spaces() -> None:
    table = RateTable((Rate(4.0, country="gb", postal_prefix="sw1a"),), fallback_per_km=None)
    assert table(place("A", None, None), Destination(country="GB", postal_code="SW1A 1AA")) == 4.0


def test_rate_table_falls_back_to_distance_or_none() -> None:
    dest = Destination(lat=NYC[0], lon=NYC[1], country="US")
    origin = place("A", *PARIS)
    km = haversine_km(*PARIS, *NYC)
    assert RateTable(()).cost(origin, dest) == pytest.approx(km)
    priced = RateTable((), fallback_per_km=0.01, fallback_base=2.0)
    assert priced(origin, dest) == pytest.approx(2.0 + 0.01 * km)
    assert RateTable((), fallback_per_km=None)(origin, dest) is None
    assert RateTable(())(place("B", None, None), dest) is None


def test_equally_specific_rates_keep_table_order() -> None:
    table = RateTable((Rate(1.0, country="US"), Rate(2.0, country="US")))
    assert table(place("A", None, None), Destination(country="US")) == 1.0

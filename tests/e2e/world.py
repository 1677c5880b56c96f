"""A small synthetic retailer for end-to-end tests: DCs and stores at real coordinates, scarce
stock, and a burst of orders from every channel competing for it."""

from __future__ import annotations

import random
from collections.abc import Iterator

from schemas.models import (
    Capability,
    Channel,
    FulfillmentMethod,
    Location,
    LocationKind,
    Message,
    OrderPlaced,
)
from tests.e2e.harness import Pipeline
from tests.unit.factories import (
    make_address,
    make_location,
    make_order,
    make_pickup_order,
    make_product,
    make_stock_event,
)

CITIES = [  # (id, kind, city, region, lat, lon)
    ("DC-NJ", "DC", "Edison", "NJ", 40.5187, -74.4121),
    ("DC-GA", "DC", "Atlanta", "GA", 33.7490, -84.3880),
    ("DC-TX", "DC", "Dallas", "TX", 32.7767, -96.7970),
    ("DC-CA", "DC", "Ontario", "CA", 34.0633, -117.6509),
    ("ST-NYC", "STORE", "New York", "NY", 40.7580, -73.9855),
    ("ST-BOS", "STORE", "Boston", "MA", 42.3601, -71.0589),
    ("ST-CHI", "STORE", "Chicago", "IL", 41.8781, -87.6298),
    ("ST-MIA", "STORE", "Miami", "FL", 25.7617, -80.1918),
    ("ST-SEA", "STORE", "Seattle", "WA", 47.6062, -122.3321),
    ("ST-DEN", "STORE", "Denver", "CO", 39.7392, -104.9903),
    ("ST-PHX", "STORE", "Phoenix", "AZ", 33.4484, -112.0740),
    ("ST-SF", "STORE", "San Francisco", "CA", 37.7749, -122.4194),
]
STORES = [c[0] for c in CITIES if c[1] == "STORE"]
CHANNELS = [Channel.WEB, Channel.MARKETPLACE, Channel.POS, Channel.WHOLESALE, Channel.CALL_CENTER]


def locations() -> list[Location]:
    result = []
    for location_id, kind, city, region, lat, lon in CITIES:
        caps = (
            (Capability.SHIP, Capability.RETURNS)
            if kind == "DC"
            else (Capability.PICKUP, Capability.SHIP_FROM_STORE, Capability.RETURNS)
        )
        address = make_address(name=location_id, city=city, region=region, lat=lat, lon=lon)
        result.append(
            make_location(
                location_id,
                kind=LocationKind(kind),
                address=address,
                capabilities=caps,
                priority=10 if kind == "DC" else 50,
            )
        )
    return result


def master_data(skus: int, seed: int = 7) -> list[Message]:
    """Locations, products and scarce stock: each sku at a few locations, a few units each."""
    rng = random.Random(seed)
    records: list[Message] = list(locations())
    for n in range(skus):
        sku = f"SKU-{n:04d}"
        records.append(make_product(sku))
        for location_id in rng.sample([c[0] for c in CITIES], 3):
            records.append(
                make_stock_event(sku=sku, location_id=location_id, quantity=rng.randint(2, 12))
            )
    return records


def orders(count: int, skus: int, seed: int = 11, prefix: str = "B") -> Iterator[OrderPlaced]:
    """A burst from every channel: ship orders to random cities, POS orders as pickups."""
    rng = random.Random(seed)
    for n in range(count):
        order_id = f"{prefix}-{n:05d}"
        channel = CHANNELS[n % len(CHANNELS)]
        chosen = rng.sample(range(skus), rng.randint(1, 3))
        lines = [(f"SKU-{i:04d}", rng.randint(1, 3)) for i in chosen]
        if channel == Channel.POS:
            yield make_pickup_order(
                order_id,
                store_id=rng.choice(STORES),
                lines=lines,
                channel=channel,
                event_id=f"evt-{order_id}",
            )
            continue
        _, _, city, region, lat, lon = rng.choice(CITIES)
        ship_to = make_address(
            city=city,
            region=region,
            lat=lat + rng.uniform(-0.5, 0.5),
            lon=lon + rng.uniform(-0.5, 0.5),
        )
        yield make_order(
            order_id,
            lines=lines,
            channel=channel,
            ship_to=ship_to,
            fulfillment_method=FulfillmentMethod.SHIP,
        )


def one_dc(pipeline: Pipeline, stock: dict[str, int]) -> None:
    """One DC holding ``stock`` (sku -> units), every sku on sale there, visible to routing."""
    pipeline.produce(
        [
            make_location("DC-EAST"),
            *(make_product(sku) for sku in stock),
            *(make_stock_event(sku, "DC-EAST", n, event_id=f"s-{sku}") for sku, n in stock.items()),
        ]
    )
    for sku in stock:
        pipeline.availability_where(sku, lambda f: "DC-EAST" in f)

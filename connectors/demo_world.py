"""A synthetic retailer for the demo: DCs and stores at real US city coordinates, a catalogue
of thousands of SKUs, opening stock per location and a customer base.

Pure and seeded: the same arguments always build the same world (the clock is an argument
too), so tests can check it and a demo run can be repeated. Street lines are made up; cities,
postal codes and coordinates are real.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from schemas.models import (
    Address,
    Capability,
    Customer,
    Location,
    LocationKind,
    Product,
    StockEvent,
    StockEventKind,
)

RETAILER = "Northwind Outfitters"


@dataclass(frozen=True, slots=True)
class City:
    """A real US city: a short code, its name, state, a downtown postal code and coordinates."""

    code: str
    name: str
    region: str
    postal_code: str
    lat: float
    lon: float


# Distribution centres sit in real logistics hubs.
DC_CITIES = (
    City("NJ", "Edison", "NJ", "08817", 40.5187, -74.4121),
    City("GA", "McDonough", "GA", "30253", 33.4473, -84.1469),
    City("TX", "Lancaster", "TX", "75134", 32.5921, -96.7561),
    City("CA", "Ontario", "CA", "91761", 34.0633, -117.6509),
)

# Stores (and ship-to destinations), largest markets first: a world with N stores takes the
# first N.
CITIES = (
    City("NYC", "New York", "NY", "10001", 40.7128, -74.0060),
    City("LAX", "Los Angeles", "CA", "90012", 34.0522, -118.2437),
    City("CHI", "Chicago", "IL", "60601", 41.8781, -87.6298),
    City("HOU", "Houston", "TX", "77002", 29.7604, -95.3698),
    City("PHX", "Phoenix", "AZ", "85004", 33.4484, -112.0740),
    City("PHL", "Philadelphia", "PA", "19107", 39.9526, -75.1652),
    City("SAT", "San Antonio", "TX", "78205", 29.4241, -98.4936),
    City("SAN", "San Diego", "CA", "92101", 32.7157, -117.1611),
    City("DAL", "Dallas", "TX", "75201", 32.7767, -96.7970),
    City("SJC", "San Jose", "CA", "95113", 37.3382, -121.8863),
    City("AUS", "Austin", "TX", "78701", 30.2672, -97.7431),
    City("JAX", "Jacksonville", "FL", "32202", 30.3322, -81.6557),
    City("CMH", "Columbus", "OH", "43215", 39.9612, -82.9988),
    City("CLT", "Charlotte", "NC", "28202", 35.2271, -80.8431),
    City("IND", "Indianapolis", "IN", "46204", 39.7684, -86.1581),
    City("SFO", "San Francisco", "CA", "94103", 37.7749, -122.4194),
    City("SEA", "Seattle", "WA", "98101", 47.6062, -122.3321),
    City("DEN", "Denver", "CO", "80202", 39.7392, -104.9903),
    City("WAS", "Washington", "DC", "20001", 38.9072, -77.0369),
    City("BOS", "Boston", "MA", "02108", 42.3601, -71.0589),
    City("BNA", "Nashville", "TN", "37203", 36.1627, -86.7816),
    City("DTW", "Detroit", "MI", "48226", 42.3314, -83.0458),
    City("PDX", "Portland", "OR", "97204", 45.5152, -122.6784),
    City("LAS", "Las Vegas", "NV", "89101", 36.1699, -115.1398),
    City("MEM", "Memphis", "TN", "38103", 35.1495, -90.0490),
    City("SDF", "Louisville", "KY", "40202", 38.2527, -85.7585),
    City("BAL", "Baltimore", "MD", "21202", 39.2904, -76.6122),
    City("MKE", "Milwaukee", "WI", "53202", 43.0389, -87.9065),
    City("ABQ", "Albuquerque", "NM", "87102", 35.0844, -106.6504),
    City("TUS", "Tucson", "AZ", "85701", 32.2226, -110.9747),
    City("SMF", "Sacramento", "CA", "95814", 38.5816, -121.4944),
    City("MCI", "Kansas City", "MO", "64106", 39.0997, -94.5786),
    City("ATL", "Atlanta", "GA", "30303", 33.7490, -84.3880),
    City("MIA", "Miami", "FL", "33130", 25.7617, -80.1918),
    City("MSP", "Minneapolis", "MN", "55401", 44.9778, -93.2650),
    City("MSY", "New Orleans", "LA", "70112", 29.9511, -90.0715),
    City("SLC", "Salt Lake City", "UT", "84101", 40.7608, -111.8910),
    City("PIT", "Pittsburgh", "PA", "15222", 40.4406, -79.9959),
    City("STL", "St. Louis", "MO", "63101", 38.6270, -90.1994),
    City("MCO", "Orlando", "FL", "32801", 28.5383, -81.3792),
    City("RDU", "Raleigh", "NC", "27601", 35.7796, -78.6382),
    City("CLE", "Cleveland", "OH", "44113", 41.4993, -81.6944),
    City("TPA", "Tampa", "FL", "33602", 27.9506, -82.4572),
    City("OMA", "Omaha", "NE", "68102", 41.2565, -95.9345),
    City("OKC", "Oklahoma City", "OK", "73102", 35.4676, -97.5164),
    City("BOI", "Boise", "ID", "83702", 43.6150, -116.2023),
)

STREETS = (
    "Main St", "Market St", "Broadway", "Oak Ave", "Maple Ave", "Park Ave", "Elm St",
    "Washington Blvd", "Lakeview Dr", "Commerce Pkwy", "Cedar Ln", "Highland Ave",
)  # fmt: skip
FIRST_NAMES = (
    "Ada", "Grace", "Alan", "Linus", "Maya", "Noah", "Olivia", "Liam", "Emma", "Sofia",
    "Mateo", "Aiden", "Zoe", "Priya", "Kenji", "Amara", "Diego", "Chloe", "Omar", "Hana",
)  # fmt: skip
LAST_NAMES = (
    "Lovelace", "Hopper", "Turing", "Garcia", "Smith", "Nguyen", "Patel", "Johnson", "Kim",
    "Brown", "Martinez", "Okafor", "Rossi", "Cohen", "Silva", "Tanaka", "Miller", "Davis",
)  # fmt: skip
BUSINESSES = (
    "Harbor Hardware Co", "Blue Ridge Outfitters", "Cornerstone Supply", "Prairie Goods LLC",
    "Metro Office Depot", "Sunbelt Retail Group", "Evergreen Hospitality", "Summit Schools",
)  # fmt: skip
TIERS = (None, "BRONZE", "SILVER", "GOLD", "PLATINUM")
TIER_WEIGHTS = (35, 25, 20, 15, 5)
BRANDS = ("Northwind", "Acme", "Evergreen", "Summit", "Lumen", "Harbor & Pine", "Brightside")
ADJECTIVES = ("Classic", "Everyday", "Pro", "Ultra", "Eco", "Compact", "Deluxe", "Essential")
COLOURS = ("Black", "White", "Navy", "Sage", "Charcoal", "Red", "Sand", "Teal")


@dataclass(frozen=True, slots=True)
class Item:
    """A kind of product: its noun, and whether it is fragile or hazardous."""

    noun: str
    fragile: bool = False
    hazmat: bool = False


@dataclass(frozen=True, slots=True)
class Category:
    """A department: SKU prefix, price range (dollars), weight range (grams), max size (mm)."""

    code: str
    name: str
    items: tuple[Item, ...]
    price: tuple[int, int]
    grams: tuple[int, int]
    size_mm: int
    share: int


def _items(*nouns: str) -> tuple[Item, ...]:
    # "!" marks fragile, "*" hazmat: keeps the catalogue table readable.
    return tuple(Item(n.strip("!*"), "!" in n, "*" in n) for n in nouns)


CATEGORIES = (
    Category("APP", "apparel", _items("T-Shirt", "Hoodie", "Jeans", "Rain Jacket", "Sneakers",
             "Wool Socks 3-Pack", "Flannel Shirt", "Beanie"), (9, 160), (80, 1400), 450, 22),
    Category("HOM", "home", _items("Ceramic Mug!", "Glass Vase!", "Chef's Knife", "Cutting Board",
             "Dinner Plate Set!", "Throw Blanket", "Candle Set*", "Table Lamp!"),
             (8, 240), (150, 6000), 600, 18),
    Category("ELE", "electronics", _items("Wireless Earbuds", "Bluetooth Speaker", "USB-C Cable",
             "Lithium Power Bank*", "Smartwatch!", "27in Monitor!", "Mechanical Keyboard",
             "Action Camera!"), (12, 900), (40, 7000), 700, 14),
    Category("OUT", "outdoor", _items("Propane Canister*", "Garden Hose", "Camping Lantern*",
             "2-Person Tent", "Insect Repellent Spray*", "Trekking Poles", "Cooler"),
             (10, 420), (200, 9000), 900, 10),
    Category("BTY", "beauty", _items("Eau de Parfum!*", "Nail Polish*", "Face Cream", "Shampoo",
             "Hair Spray*", "Lip Balm Set"), (5, 140), (30, 900), 250, 10),
    Category("TOY", "toys", _items("Building Blocks", "1000-Piece Puzzle", "Plush Bear",
             "Board Game", "RC Car*", "Art Kit"), (7, 120), (100, 2500), 500, 10),
    Category("SPT", "sports", _items("Yoga Mat", "Dumbbell Pair", "Basketball", "Water Bottle",
             "Bike Helmet", "Tennis Racket"), (9, 260), (150, 12000), 800, 8),
    Category("FUR", "furniture", _items("Bookshelf", "Office Chair", "Side Table",
             "Floor Mirror!", "Bar Stool"), (60, 950), (4000, 28000), 1800, 5),
    Category("JWL", "jewelry", _items("Silver Necklace", "Gold Hoop Earrings", "Watch!",
             "Diamond Ring"), (40, 2400), (20, 300), 150, 3),
)  # fmt: skip

PRODUCT_TAGS = ("new", "bestseller", "clearance", "eco", "online-only", "gift-idea")


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    """A customer of the demo, where they live, and whether they buy wholesale."""

    customer: Customer
    name: str
    home: City
    street: str
    business: bool


@dataclass(frozen=True, slots=True)
class DemoWorld:
    """Everything the demo loads before traffic: master data, opening stock and customers."""

    seed: int
    locations: tuple[Location, ...]
    products: tuple[Product, ...]
    stock: tuple[StockEvent, ...]
    customers: tuple[DemoCustomer, ...]
    popularity: tuple[float, ...]  # a weight per product, same order as `products`

    @property
    def stores(self) -> tuple[Location, ...]:
        return tuple(x for x in self.locations if x.kind is LocationKind.STORE)

    @property
    def dcs(self) -> tuple[Location, ...]:
        return tuple(x for x in self.locations if x.kind is LocationKind.DC)

    def records(self) -> list[Location | Product | StockEvent]:
        """What to publish, master data before the stock that refers to it."""
        return [*self.locations, *self.products, *self.stock]


def build_world(
    *,
    now: datetime,
    skus: int = 2500,
    stores: int = 36,
    dcs: int = 4,
    customers: int = 5000,
    seed: int = 42,
    stock_scale: int = 1,
) -> DemoWorld:
    """The retailer: ``dcs`` DCs, ``stores`` stores, ``skus`` products, stock and customers;
    ``stock_scale`` multiplies every opening quantity (a longer run that should meet the same
    mix of outcomes, not sell out)."""
    if not 1 <= stores <= len(CITIES):
        raise ValueError(f"stores must be between 1 and {len(CITIES)}")
    if not 1 <= dcs <= len(DC_CITIES):
        raise ValueError(f"dcs must be between 1 and {len(DC_CITIES)}")
    if skus < 1:
        raise ValueError("skus must be at least 1")
    if stock_scale < 1:
        raise ValueError("stock_scale must be at least 1")
    rng = random.Random(seed)
    locations = _locations(rng, dcs, stores, now)
    products = tuple(_product(rng, n) for n in range(skus))
    ranks = list(range(skus))
    rng.shuffle(ranks)
    # Zipf-like demand: a few bestsellers, a long tail.
    popularity = tuple(1.0 / (rank + 1) ** 0.9 for rank in ranks)
    stock = _stock(rng, locations, products, popularity, now, seed, stock_scale)
    people = tuple(_customer(rng, n) for n in range(customers))
    return DemoWorld(seed, locations, products, stock, people, popularity)


def address(name: str, city: City, street: str, lat: float, lon: float) -> Address:
    return Address(
        name=name,
        line1=street,
        city=city.name,
        region=city.region,
        postal_code=city.postal_code,
        country="US",
        lat=round(lat, 5),
        lon=round(lon, 5),
    )


def _street(rng: random.Random) -> str:
    return f"{rng.randint(10, 9899)} {rng.choice(STREETS)}"


def _locations(rng: random.Random, dcs: int, stores: int, now: datetime) -> tuple[Location, ...]:
    result = []
    for n, city in enumerate(DC_CITIES[:dcs]):
        name = f"{RETAILER} DC {city.name}"
        result.append(
            Location(
                location_id=f"DC-{city.code}",
                name=name,
                kind=LocationKind.DC,
                address=address(name, city, f"{100 + 20 * n} Logistics Way", city.lat, city.lon),
                capabilities=(Capability.SHIP, Capability.RETURNS),
                priority=10 + 5 * n,
                # Two DCs run unlimited; the others have a daily order ceiling.
                daily_order_capacity=None if n < 2 else 25000,
                updated_at=now,
            )
        )
    for n, city in enumerate(CITIES[:stores]):
        name = f"{RETAILER} {city.name}"
        caps = [Capability.PICKUP, Capability.SHIP_FROM_STORE]
        if n % 3 == 0:  # flagship stores take returns
            caps.append(Capability.RETURNS)
        result.append(
            Location(
                location_id=f"ST-{city.code}",
                name=name,
                kind=LocationKind.STORE,
                address=address(name, city, _street(rng), city.lat, city.lon),
                capabilities=tuple(caps),
                priority=50 + rng.randint(0, 30),
                daily_order_capacity=rng.choice((None, None, 300, 500, 800)),
                updated_at=now,
            )
        )
    return tuple(result)


def _category(rng: random.Random) -> Category:
    return rng.choices(CATEGORIES, weights=[c.share for c in CATEGORIES])[0]


def _product(rng: random.Random, n: int) -> Product:
    category = _category(rng)
    item = rng.choice(category.items)
    low, high = category.price
    # Prices cluster at the low end of a department and end in .99 or .49.
    dollars = int(low + (high - low) * rng.random() ** 2.2)
    price = Decimal(dollars) + rng.choice((Decimal("0.99"), Decimal("0.49"), Decimal("0.00")))
    size = category.size_mm
    tags = sorted(set(rng.sample(PRODUCT_TAGS, rng.choice((0, 0, 1, 1, 2)))))
    return Product(
        sku=f"{category.code}-{n:05d}",
        name=f"{rng.choice(BRANDS)} {rng.choice(ADJECTIVES)} {item.noun} ({rng.choice(COLOURS)})",
        category=category.name,
        unit_price=price,
        weight_grams=rng.randint(*category.grams),
        length_mm=rng.randint(size // 4, size),
        width_mm=rng.randint(size // 6, size * 2 // 3),
        height_mm=rng.randint(size // 10, size // 2),
        fragile=item.fragile,
        hazmat=item.hazmat,
        tags=tuple(tags),
    )


def _stock(
    rng: random.Random,
    locations: tuple[Location, ...],
    products: tuple[Product, ...],
    popularity: tuple[float, ...],
    now: datetime,
    seed: int,
    scale: int = 1,
) -> tuple[StockEvent, ...]:
    """DCs deep, stores shallow, one SKU in sixteen scarce (a handful of units in one place);
    every quantity but the safety stock times ``scale``."""
    dcs = [x.location_id for x in locations if x.kind is LocationKind.DC]
    stores = [x.location_id for x in locations if x.kind is LocationKind.STORE]
    events: list[StockEvent] = []

    def add(sku: str, location_id: str, kind: StockEventKind, quantity: int) -> None:
        events.append(_stock_event(seed, sku, location_id, kind, quantity, now))

    def count(sku: str, location_id: str, quantity: int) -> None:
        add(sku, location_id, StockEventKind.SNAPSHOT, quantity * scale)

    for product, weight in zip(products, popularity, strict=True):
        if rng.random() < 1 / 16:
            count(product.sku, rng.choice(dcs + stores), rng.randint(0, 3))
            continue
        depth = 1 + int(weight * 400)  # bestsellers are stocked deeper
        for dc in rng.sample(dcs, rng.randint(max(1, len(dcs) - 2), len(dcs))):
            count(product.sku, dc, rng.randint(20, 120) + depth)
            if weight > 0.05:  # keep a few bestsellers back at the DCs
                add(product.sku, dc, StockEventKind.SAFETY_STOCK, 5)
        if product.hazmat or product.category == "furniture":
            continue  # stores do not carry these
        for store in stores:
            if rng.random() < 0.25:
                count(product.sku, store, rng.randint(1, 6))
    return tuple(events)


def _stock_event(
    seed: int, sku: str, location_id: str, kind: StockEventKind, quantity: int, now: datetime
) -> StockEvent:
    # Content and clock in the id: a new run (new clock) re-applies the opening stock.
    digest = hashlib.sha256(
        f"{seed}|{sku}|{location_id}|{kind}|{quantity}|{now.isoformat()}".encode()
    ).hexdigest()[:16]
    return StockEvent(
        event_id=f"demo-stock-{digest}",
        sku=sku,
        location_id=location_id,
        kind=kind,
        quantity=quantity,
        reason="demo opening stock",
        occurred_at=now,
    )


def _customer(rng: random.Random, n: int) -> DemoCustomer:
    business = rng.random() < 0.03
    if business:
        name = f"{rng.choice(BUSINESSES)} #{n}"
        email = f"purchasing{n}@example.com"
        tier: str | None = "GOLD"
    else:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        name = f"{first} {last}"
        email = f"{first.lower()}.{last.lower()}{n}@example.com"
        tier = rng.choices(TIERS, weights=TIER_WEIGHTS)[0]
    return DemoCustomer(
        customer=Customer(customer_id=f"CUST-{n:06d}", loyalty_tier=tier, email=email),
        name=name,
        home=rng.choice(CITIES),
        street=_street(rng),
        business=business,
    )

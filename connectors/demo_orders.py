"""The demo's orders as each channel would place them, as contract `OrderPlaced` events.

Pure and seeded: :class:`ChannelOrders` draws customers, baskets, stores and speeds from a
`DemoWorld` with the random generator it is given, one method per channel. Its helpers (a
basket, a ship-to address near the customer, the nearest pickup store) are public so that
`connectors.demo_native` can build the same kind of order in a channel's own format.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from connectors.demo_world import City, DemoCustomer, DemoWorld, address
from schemas.models import (
    Address,
    Capability,
    Channel,
    Customer,
    FulfillmentMethod,
    Location,
    OrderLine,
    OrderPlaced,
    ServiceLevel,
)
from streams.core.routing.geo import haversine_km

CHANNEL_MIX = {
    Channel.WEB: 45,
    Channel.MARKETPLACE: 20,
    Channel.POS: 15,
    Channel.CALL_CENTER: 12,
    Channel.WHOLESALE: 8,
}
LINE_COUNTS = (1, 2, 3, 4, 5)
LINE_COUNT_WEIGHTS = (45, 25, 15, 10, 5)
MARKETPLACES = ("amazon", "ebay", "walmart")
PROMOS = ("SPRING10", "FREESHIP", "WELCOME15")


class ChannelOrders:
    """Orders as each channel would place them, from the world's customers and catalogue."""

    def __init__(self, world: DemoWorld, rng: random.Random) -> None:
        self.world = world
        self.rng = rng
        self.cum_popularity = list(itertools.accumulate(world.popularity))
        self.by_sku = {p.sku: p for p in world.products}
        self.people = [c for c in world.customers if not c.business] or list(world.customers)
        self.businesses = [c for c in world.customers if c.business] or list(world.customers)
        self.stores = [s for s in world.stores if Capability.PICKUP in s.capabilities]
        carried: dict[str, list[str]] = {s.location_id: [] for s in self.stores}
        for event in world.stock:
            if event.location_id in carried and event.quantity > 0:
                carried[event.location_id].append(event.sku)
        self.carried = carried

    def build(self, channel: Channel, order_id: str, now: datetime) -> OrderPlaced:
        builders: dict[Channel, Callable[[str, datetime], OrderPlaced]] = {
            Channel.WEB: self.web,
            Channel.MARKETPLACE: self.marketplace,
            Channel.POS: self.pos,
            Channel.WHOLESALE: self.wholesale,
            Channel.CALL_CENTER: self.call_center,
        }
        return builders[channel](order_id, now)

    def web(self, order_id: str, now: datetime) -> OrderPlaced:
        """The web store: ship or buy-online-pick-up-in-store, promos and gift orders."""
        person = self.rng.choice(self.people)
        tags = self.web_tags()
        lines = self.pick_lines(self.line_count(), (1, 2))
        ref = f"W{self.rng.randint(1000000, 9999999)}"
        if self.stores and self.chance(0.15):
            store = self.nearest_store(person.home)
            return self._order(
                order_id, Channel.WEB, ref, person.customer, lines, now, tags, pickup=store
            )
        level = self.service((70, 22, 8))
        return self._order(
            order_id,
            Channel.WEB,
            ref,
            person.customer,
            lines,
            now,
            tags,
            ship_to=self.ship_to(person),
            level=level,
        )

    def marketplace(self, order_id: str, now: datetime) -> OrderPlaced:
        """A marketplace: its own order number, buyers without tier or e-mail."""
        person = self.rng.choice(self.people)
        market = self.rng.choice(MARKETPLACES)
        r = self.rng.randint
        ref = f"{r(100, 999)}-{r(1000000, 9999999)}-{r(1000000, 9999999)}"
        buyer = Customer(customer_id=f"MKT-{market}-{person.customer.customer_id}")
        lines = self.pick_lines(min(3, self.line_count()), (1, 2))
        return self._order(
            order_id,
            Channel.MARKETPLACE,
            ref,
            buyer,
            lines,
            now,
            [f"marketplace:{market}"],
            ship_to=self.ship_to(person),
            level=self.service((60, 30, 10)),
        )

    def pos(self, order_id: str, now: datetime) -> OrderPlaced:
        """A store's till: the customer collects at that store (BOPIS / endless aisle)."""
        if not self.stores:
            return self.web(order_id, now)
        store = self.rng.choice(self.stores)
        carried = self.carried[store.location_id]
        person = self.rng.choice(self.people)
        count = min(3, self.line_count())
        if carried and self.chance(0.7):  # mostly what is on the shelf; else from elsewhere
            skus = self.rng.sample(carried, min(count, len(carried)))
            lines = [(sku, 1) for sku in skus]
        else:
            lines = self.pick_lines(count, (1, 1))
        ref = f"POS-{store.location_id}-{self.rng.randint(1, 8)}-{self.rng.randint(10000, 99999)}"
        return self._order(
            order_id,
            Channel.POS,
            ref,
            person.customer,
            lines,
            now,
            ["in-store", *self.gift_tags(gift=0.05)],
            pickup=store,
        )

    def wholesale(self, order_id: str, now: datetime) -> OrderPlaced:
        """A business account's purchase order: several lines, cases of units, trade prices."""
        buyer = self.rng.choice(self.businesses)
        lines = self.pick_lines(self.rng.randint(2, 5), (6, 48))
        ref = f"PO-{now.year}-{self.rng.randint(10000, 99999)}"
        return self._order(
            order_id,
            Channel.WHOLESALE,
            ref,
            buyer.customer,
            lines,
            now,
            ["b2b", "net-30"],
            ship_to=self.ship_to(buyer),
            level=ServiceLevel.STANDARD,
            discount=Decimal("0.75"),
        )

    def call_center(self, order_id: str, now: datetime) -> OrderPlaced:
        """An agent keys the order in on the phone; callers pay for speed more often."""
        person = self.rng.choice(self.people)
        lines = self.pick_lines(min(3, self.line_count()), (1, 2))
        ref = f"CC-{self.rng.randint(100, 140)}-{self.rng.randint(100000, 999999)}"
        return self._order(
            order_id,
            Channel.CALL_CENTER,
            ref,
            person.customer,
            lines,
            now,
            ["phone", *self.gift_tags(gift=0.12)],
            ship_to=self.ship_to(person),
            level=self.service((45, 40, 15)),
        )

    # ---- pieces (public: the native payload builders draw orders the same way) -------------

    def _order(
        self,
        order_id: str,
        channel: Channel,
        ref: str,
        customer: Customer,
        lines: list[tuple[str, int]],
        now: datetime,
        tags: list[str],
        *,
        ship_to: Address | None = None,
        pickup: Location | None = None,
        level: ServiceLevel = ServiceLevel.STANDARD,
        discount: Decimal = Decimal(1),
    ) -> OrderPlaced:
        order_lines = [
            OrderLine(
                line_id=str(n),
                sku=sku,
                quantity=qty,
                unit_price=self.by_sku[sku].unit_price * discount,
            )
            for n, (sku, qty) in enumerate(lines, start=1)
        ]
        return OrderPlaced(
            event_id=f"evt-{order_id}",
            order_id=order_id,
            channel=channel,
            channel_order_ref=ref,
            placed_at=now,
            customer=customer,
            fulfillment_method=FulfillmentMethod.PICKUP if pickup else FulfillmentMethod.SHIP,
            pickup_location_id=pickup.location_id if pickup else None,
            ship_to=ship_to,
            lines=tuple(order_lines),
            currency="USD",
            order_total=sum((x.unit_price * x.quantity for x in order_lines), Decimal(0)),
            service_level=level,
            tags=tuple(tags),
        )

    def chance(self, share: float) -> bool:
        return self.rng.random() < share

    def line_count(self) -> int:
        return self.rng.choices(LINE_COUNTS, weights=LINE_COUNT_WEIGHTS)[0]

    def pick_lines(self, count: int, quantity: tuple[int, int]) -> list[tuple[str, int]]:
        """``count`` distinct SKUs, bestsellers more often."""
        products = self.world.products
        count = min(count, len(products))
        skus: list[str] = []
        while len(skus) < count:
            [product] = self.rng.choices(products, cum_weights=self.cum_popularity)
            if product.sku not in skus:
                skus.append(product.sku)
        return [(sku, self.rng.randint(*quantity)) for sku in skus]

    def gift_tags(self, gift: float) -> list[str]:
        return ["gift"] if self.chance(gift) else []

    def web_tags(self) -> list[str]:
        """A web order's tags: sometimes a gift, sometimes a promo code."""
        return self.gift_tags(gift=0.10) + (
            ["promo:" + self.rng.choice(PROMOS)] if self.chance(0.1) else []
        )

    def service(self, weights: tuple[int, int, int]) -> ServiceLevel:
        return self.rng.choices(list(ServiceLevel), weights=weights)[0]

    def ship_to(self, who: DemoCustomer) -> Address:
        """Somewhere in the customer's metro area (within roughly 15 km of downtown)."""
        city = who.home
        lat = city.lat + self.rng.uniform(-0.12, 0.12)
        lon = city.lon + self.rng.uniform(-0.15, 0.15)
        return address(who.name, city, who.street, lat, lon)

    def nearest_store(self, city: City) -> Location:
        return min(self.stores, key=lambda s: distance_km(s.address, city.lat, city.lon))


def distance_km(place: Address, lat: float | None, lon: float | None) -> float:
    """Great-circle km from ``place`` to a point; infinite when either has no coordinates."""
    if place.lat is None or place.lon is None or lat is None or lon is None:
        return float("inf")
    return haversine_km(place.lat, place.lon, lat, lon)

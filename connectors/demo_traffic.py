"""Demo traffic: the events a retailer's systems would send, over time, for a demo world.

Pure and seeded, with the clock passed in. :class:`ChannelOrders` builds the orders of each
channel (one method per channel, so each can later go through that channel's connector
instead). :class:`TrafficGenerator` paces orders at a rate, cancels some recent ones, sends
stock feeds, and plays the warehouses and stores: fed the pipeline's fulfillment commands, it
rejects a few and ships (or hands over) the rest after a short delay, and some customers then
send their parcels back.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from connectors.demo_world import City, DemoCustomer, DemoWorld, address
from schemas.models import (
    Address,
    Capability,
    Channel,
    Customer,
    FulfillmentCommand,
    FulfillmentKind,
    FulfillmentMethod,
    FulfillmentStatus,
    FulfillmentUpdate,
    ItemCondition,
    Location,
    Message,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    ReceivedLine,
    ReturnLabelCommand,
    ReturnLine,
    ReturnReceived,
    ReturnRequested,
    ServiceLevel,
    StockEvent,
    StockEventKind,
)
from streams.core.geo import haversine_km

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
REJECT_REASONS = ("bin empty on pick", "item damaged on shelf", "store short-staffed")
RETURN_REASONS = ("wrong size", "changed mind", "arrived damaged", "not as described")


class ChannelOrders:
    """Orders as each channel would place them, from the world's customers and catalogue."""

    def __init__(self, world: DemoWorld, rng: random.Random) -> None:
        self.world = world
        self.rng = rng
        self.cum_popularity = list(itertools.accumulate(world.popularity))
        self.by_sku = {p.sku: p for p in world.products}
        self._people = [c for c in world.customers if not c.business] or list(world.customers)
        self._businesses = [c for c in world.customers if c.business] or list(world.customers)
        self._stores = [s for s in world.stores if Capability.PICKUP in s.capabilities]
        carried: dict[str, list[str]] = {s.location_id: [] for s in self._stores}
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
        person = self.rng.choice(self._people)
        tags = self._tags(gift=0.10) + (
            ["promo:" + self.rng.choice(PROMOS)] if self._p(0.1) else []
        )
        lines = self._lines(self._line_count(), (1, 2))
        ref = f"W{self.rng.randint(1000000, 9999999)}"
        if self._stores and self._p(0.15):
            store = self._nearest_store(person.home)
            return self._order(
                order_id, Channel.WEB, ref, person.customer, lines, now, tags, pickup=store
            )
        level = self._service((70, 22, 8))
        return self._order(
            order_id,
            Channel.WEB,
            ref,
            person.customer,
            lines,
            now,
            tags,
            ship_to=self._ship_to(person),
            level=level,
        )

    def marketplace(self, order_id: str, now: datetime) -> OrderPlaced:
        """A marketplace: its own order number, buyers without tier or e-mail."""
        person = self.rng.choice(self._people)
        market = self.rng.choice(MARKETPLACES)
        r = self.rng.randint
        ref = f"{r(100, 999)}-{r(1000000, 9999999)}-{r(1000000, 9999999)}"
        buyer = Customer(customer_id=f"MKT-{market}-{person.customer.customer_id}")
        lines = self._lines(min(3, self._line_count()), (1, 2))
        return self._order(
            order_id,
            Channel.MARKETPLACE,
            ref,
            buyer,
            lines,
            now,
            [f"marketplace:{market}"],
            ship_to=self._ship_to(person),
            level=self._service((60, 30, 10)),
        )

    def pos(self, order_id: str, now: datetime) -> OrderPlaced:
        """A store's till: the customer collects at that store (BOPIS / endless aisle)."""
        if not self._stores:
            return self.web(order_id, now)
        store = self.rng.choice(self._stores)
        carried = self.carried[store.location_id]
        person = self.rng.choice(self._people)
        count = min(3, self._line_count())
        if carried and self._p(0.7):  # mostly what is on the shelf; else from elsewhere
            skus = self.rng.sample(carried, min(count, len(carried)))
            lines = [(sku, 1) for sku in skus]
        else:
            lines = self._lines(count, (1, 1))
        ref = f"POS-{store.location_id}-{self.rng.randint(1, 8)}-{self.rng.randint(10000, 99999)}"
        return self._order(
            order_id,
            Channel.POS,
            ref,
            person.customer,
            lines,
            now,
            ["in-store", *self._tags(gift=0.05)],
            pickup=store,
        )

    def wholesale(self, order_id: str, now: datetime) -> OrderPlaced:
        """A business account's purchase order: several lines, cases of units, trade prices."""
        buyer = self.rng.choice(self._businesses)
        lines = self._lines(self.rng.randint(2, 5), (6, 48))
        ref = f"PO-{now.year}-{self.rng.randint(10000, 99999)}"
        return self._order(
            order_id,
            Channel.WHOLESALE,
            ref,
            buyer.customer,
            lines,
            now,
            ["b2b", "net-30"],
            ship_to=self._ship_to(buyer),
            level=ServiceLevel.STANDARD,
            discount=Decimal("0.75"),
        )

    def call_center(self, order_id: str, now: datetime) -> OrderPlaced:
        """An agent keys the order in on the phone; callers pay for speed more often."""
        person = self.rng.choice(self._people)
        lines = self._lines(min(3, self._line_count()), (1, 2))
        ref = f"CC-{self.rng.randint(100, 140)}-{self.rng.randint(100000, 999999)}"
        return self._order(
            order_id,
            Channel.CALL_CENTER,
            ref,
            person.customer,
            lines,
            now,
            ["phone", *self._tags(gift=0.12)],
            ship_to=self._ship_to(person),
            level=self._service((45, 40, 15)),
        )

    # ---- pieces ---------------------------------------------------------------------------

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

    def _p(self, share: float) -> bool:
        return self.rng.random() < share

    def _line_count(self) -> int:
        return self.rng.choices(LINE_COUNTS, weights=LINE_COUNT_WEIGHTS)[0]

    def _lines(self, count: int, quantity: tuple[int, int]) -> list[tuple[str, int]]:
        """``count`` distinct SKUs, bestsellers more often."""
        products = self.world.products
        count = min(count, len(products))
        skus: list[str] = []
        while len(skus) < count:
            [product] = self.rng.choices(products, cum_weights=self.cum_popularity)
            if product.sku not in skus:
                skus.append(product.sku)
        return [(sku, self.rng.randint(*quantity)) for sku in skus]

    def _tags(self, gift: float) -> list[str]:
        return ["gift"] if self._p(gift) else []

    def _service(self, weights: tuple[int, int, int]) -> ServiceLevel:
        return self.rng.choices(list(ServiceLevel), weights=weights)[0]

    def _ship_to(self, who: DemoCustomer) -> Address:
        """Somewhere in the customer's metro area (within roughly 15 km of downtown)."""
        city = who.home
        lat = city.lat + self.rng.uniform(-0.12, 0.12)
        lon = city.lon + self.rng.uniform(-0.15, 0.15)
        return address(who.name, city, who.street, lat, lon)

    def _nearest_store(self, city: City) -> Location:
        return min(self._stores, key=lambda s: _km(s.address, city.lat, city.lon))


def _km(place: Address, lat: float | None, lon: float | None) -> float:
    if place.lat is None or place.lon is None or lat is None or lon is None:
        return float("inf")
    return haversine_km(place.lat, place.lon, lat, lon)


@dataclass(frozen=True)
class TrafficConfig:
    """How busy the demo is, and how its warehouses, stores and customers behave."""

    rate: float = 20.0  # orders per second
    cancel_share: float = 0.03
    reject_share: float = 0.05
    return_share: float = 0.08
    stock_every: float = 5.0  # seconds between stock feeds
    ship_delay: tuple[float, float] = (1.0, 4.0)
    pickup_delay: tuple[float, float] = (2.0, 8.0)
    return_delay: tuple[float, float] = (3.0, 10.0)


Scheduled = Callable[[datetime], Message | None]
_M = TypeVar("_M", bound=Message)


class TrafficGenerator:
    """Contract events over time; call :meth:`tick` with the clock, feed it commands."""

    def __init__(
        self, world: DemoWorld, config: TrafficConfig, *, run_id: str, start: datetime
    ) -> None:
        self.world = world
        self.config = config
        self.run_id = run_id
        self.start = start
        self.rng = random.Random(f"{world.seed}|{run_id}")
        self.channels = ChannelOrders(world, self.rng)
        self.counts: Counter[str] = Counter()
        self._placed = 0
        self._seq = itertools.count()
        self._due: list[tuple[datetime, int, Scheduled]] = []
        self._next_stock = start + timedelta(seconds=config.stock_every)
        self._answered: OrderedDict[str, None] = OrderedDict()
        self._cancelled: set[str] = set()
        self._return_at: dict[str, str] = {}
        self._returns_to = [x for x in world.locations if Capability.RETURNS in x.capabilities]

    # ---- the clock ---------------------------------------------------------------------------

    def tick(self, now: datetime) -> list[Message]:
        """Everything due by ``now``: orders at the configured rate, feeds and scheduled events."""
        out: list[Message] = []
        target = int((now - self.start).total_seconds() * self.config.rate)
        burst = max(1, int(self.config.rate * 2))
        if target - self._placed > burst:  # after a stall, catch up a little, not all at once
            self._placed = target - burst
        while self._placed < target:
            out.append(self.next_order(now))
        if now >= self._next_stock:
            out += self.stock_feed(now)
            self._next_stock = now + timedelta(seconds=self.config.stock_every)
        while self._due and self._due[0][0] <= now:
            due, _, build = heapq.heappop(self._due)
            record = build(due)
            if record is not None:
                out.append(record)
        return out

    def pending(self) -> int:
        """Scheduled events not yet due (shipments, pickups, returns, cancellations)."""
        return len(self._due)

    def next_order(self, now: datetime) -> OrderPlaced:
        channel = self.rng.choices(list(CHANNEL_MIX), weights=list(CHANNEL_MIX.values()))[0]
        order = self.channels.build(channel, f"D{self.run_id}-{self._placed:06d}", now)
        self._placed += 1
        self.counts[f"orders.{channel.value}"] += 1
        if self.rng.random() < self.config.cancel_share:
            self._later(now, (0.5, 6.0), lambda at: self._cancel(order.order_id, at))
        return order

    def stock_feed(self, now: datetime) -> list[StockEvent]:
        """Receipts of bestsellers at the DCs, and one store's cycle count."""
        events: list[StockEvent] = []
        dcs, stores = self.world.dcs, self.world.stores
        receipts = self.rng.choices(
            self.world.products,
            cum_weights=self.channels.cum_popularity,
            k=max(5, int(self.config.rate)),
        )
        for product in receipts:
            quantity = self.rng.randint(12, 96)
            dc = self.rng.choice(dcs)
            events.append(self._stock(product.sku, dc, StockEventKind.ADJUSTMENT, quantity, now))
        if stores:
            store = self.rng.choice(stores)
            carried = self.channels.carried.get(store.location_id, [])
            for sku in self.rng.sample(carried, min(10, len(carried))):
                quantity = self.rng.randint(0, 6)
                events.append(self._stock(sku, store, StockEventKind.SNAPSHOT, quantity, now))
        self.counts["StockEvent"] += len(events)
        return events

    # ---- the warehouses, stores and customers ----------------------------------------------

    def on_fulfillment_command(self, command: FulfillmentCommand, now: datetime) -> None:
        """A location got a command: reject it, or ship / hand over after a while."""
        if command.command_id in self._answered or command.order_id in self._cancelled:
            return
        self._answered[command.command_id] = None
        if len(self._answered) > 100_000:
            self._answered.popitem(last=False)
        if self.rng.random() < self.config.reject_share:
            reason = self.rng.choice(REJECT_REASONS)
            self._later(now, (0.3, 2.0), self._update(command, FulfillmentStatus.REJECTED, reason))
            return
        if command.kind is FulfillmentKind.PICKUP:
            picked = self._update(command, FulfillmentStatus.PICKED_UP)
            self._later(now, self.config.pickup_delay, picked)
            return
        self._later(now, (0.2, 0.8), self._update(command, FulfillmentStatus.ACCEPTED))
        shipped = self._later(
            now, self.config.ship_delay, self._update(command, FulfillmentStatus.SHIPPED)
        )
        if command.kind is FulfillmentKind.TRANSFER:  # then the customer collects it
            picked = self._update(command, FulfillmentStatus.PICKED_UP)
            self._later(shipped, self.config.pickup_delay, picked)
        elif command.ship_to is not None and self.rng.random() < self.config.return_share:
            self._schedule_return(command, command.ship_to, shipped)

    def on_return_label(self, command: ReturnLabelCommand) -> None:
        """The pipeline chose where the parcel goes back: it will be received there."""
        self._return_at[command.return_id] = command.return_location_id

    def _schedule_return(
        self, command: FulfillmentCommand, ship_from: Address, shipped: datetime
    ) -> None:
        return_id = f"RET-{command.shipment_id}"
        lines = tuple(
            ReturnLine(
                sku=x.sku,
                quantity=self.rng.randint(1, x.quantity),
                reason=self.rng.choice(RETURN_REASONS),
            )
            for x in self.rng.sample(command.lines, self.rng.randint(1, len(command.lines)))
        )

        def request(at: datetime) -> ReturnRequested:
            return self._count(
                ReturnRequested(
                    event_id=f"{return_id}-requested",
                    return_id=return_id,
                    order_id=command.order_id,
                    lines=lines,
                    ship_from=ship_from,
                    requested_at=at,
                )
            )

        asked = self._later(shipped, self.config.return_delay, request)
        receive = self._receive(return_id, command.order_id, ship_from, lines)
        self._later(asked, self.config.return_delay, receive)

    def _receive(
        self, return_id: str, order_id: str, ship_from: Address, lines: tuple[ReturnLine, ...]
    ) -> Scheduled:
        def build(at: datetime) -> ReturnReceived | None:
            if not self._returns_to:
                return None
            nearest = min(
                self._returns_to, key=lambda x: _km(x.address, ship_from.lat, ship_from.lon)
            )
            conditions = (ItemCondition.SELLABLE, ItemCondition.DAMAGED)
            received = [
                ReceivedLine(
                    sku=x.sku,
                    quantity=x.quantity,
                    condition=self.rng.choices(conditions, weights=(8, 2))[0],
                )
                for x in lines
            ]
            return self._count(
                ReturnReceived(
                    event_id=f"{return_id}-received",
                    return_id=return_id,
                    order_id=order_id,
                    location_id=self._return_at.pop(return_id, nearest.location_id),
                    lines=tuple(received),
                    received_at=at,
                )
            )

        return build

    def _update(
        self, command: FulfillmentCommand, status: FulfillmentStatus, reason: str | None = None
    ) -> Scheduled:
        def build(at: datetime) -> FulfillmentUpdate:
            where = command.location_id
            if status is FulfillmentStatus.PICKED_UP and command.destination_location_id:
                where = command.destination_location_id  # collected at the receiving store
            tracking = None
            if status is FulfillmentStatus.SHIPPED:
                digest = hashlib.sha256(command.shipment_id.encode()).hexdigest()
                tracking = f"1Z{int(digest[:12], 16) % 10**12:012d}"
            return self._count(
                FulfillmentUpdate(
                    event_id=f"{command.command_id}-{status.value.lower()}",
                    order_id=command.order_id,
                    shipment_id=command.shipment_id,
                    location_id=where,
                    status=status,
                    reason=reason,
                    tracking_number=tracking,
                    occurred_at=at,
                )
            )

        return build

    def _cancel(self, order_id: str, at: datetime) -> OrderCancelled:
        self._cancelled.add(order_id)
        return self._count(
            OrderCancelled(
                event_id=f"cancel-{order_id}",
                order_id=order_id,
                reason=self.rng.choice(("customer request", "payment declined", "duplicate")),
                cancelled_at=at,
            )
        )

    def _later(self, now: datetime, delay: tuple[float, float], build: Scheduled) -> datetime:
        """Schedule ``build`` a random delay after ``now``; return when it is due."""
        due = now + timedelta(seconds=self.rng.uniform(*delay))
        heapq.heappush(self._due, (due, next(self._seq), build))
        return due

    def _count(self, record: _M) -> _M:
        self.counts[type(record).__name__] += 1
        return record

    def _stock(
        self, sku: str, location: Location, kind: StockEventKind, quantity: int, now: datetime
    ) -> StockEvent:
        receipt = kind is StockEventKind.ADJUSTMENT
        return StockEvent(
            event_id=f"demo-{self.run_id}-stock-{next(self._seq)}",
            sku=sku,
            location_id=location.location_id,
            kind=kind,
            quantity=quantity,
            reason="PO receipt" if receipt else "cycle count",
            occurred_at=now,
        )

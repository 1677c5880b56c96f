"""Demo traffic: the events a retailer's systems would send, over time, for a demo world.

Pure and seeded, with the clock passed in. :class:`TrafficGenerator` paces orders at a rate
(built by `ChannelOrders`, or, for the channels given as ``native``, by `NativeOrders` in the
channel's own format, for the connector to turn into contract events), cancels some recent
ones, sends stock feeds, and plays the warehouses and stores: fed the pipeline's fulfillment
commands, it rejects a few and ships (or hands over) the rest after a short delay, and some
customers then send their parcels back.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from connectors.demo_native import ChannelPost, NativeOrders
from connectors.demo_orders import CHANNEL_MIX, ChannelOrders, distance_km
from connectors.demo_world import DemoWorld
from schemas.models import (
    Address,
    Capability,
    Channel,
    FulfillmentCommand,
    FulfillmentKind,
    FulfillmentStatus,
    FulfillmentUpdate,
    ItemCondition,
    Location,
    Message,
    OrderCancelled,
    OrderPlaced,
    ReceivedLine,
    ReturnLabelCommand,
    ReturnLine,
    ReturnReceived,
    ReturnRequested,
    StockEvent,
    StockEventKind,
)

__all__ = [
    "CHANNEL_MIX",
    "ChannelOrders",
    "ChannelPost",
    "Outgoing",
    "TrafficConfig",
    "TrafficGenerator",
]

REJECT_REASONS = ("bin empty on pick", "item damaged on shelf", "store short-staffed")
RETURN_REASONS = ("wrong size", "changed mind", "arrived damaged", "not as described")


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
Outgoing = Message | ChannelPost
"""What the generator sends: a contract event to produce, or an order for the connector."""
_M = TypeVar("_M", bound=Message)


class TrafficGenerator:
    """Contract events over time; call :meth:`tick` with the clock, feed it commands.

    Orders of the ``native`` channels come out as `ChannelPost` (a payload for the connector)
    instead of `OrderPlaced`.
    """

    def __init__(
        self,
        world: DemoWorld,
        config: TrafficConfig,
        *,
        run_id: str,
        start: datetime,
        native: Collection[Channel] = (),
    ) -> None:
        self.world = world
        self.config = config
        self.run_id = run_id
        self.start = start
        self.rng = random.Random(f"{world.seed}|{run_id}")
        self.channels = ChannelOrders(world, self.rng)
        self.native_orders = NativeOrders(self.channels, run_id)
        self.native = frozenset(native)
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

    def tick(self, now: datetime) -> list[Outgoing]:
        """Everything due by ``now``: orders at the configured rate, feeds and scheduled events."""
        out: list[Outgoing] = []
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

    def next_order(self, now: datetime) -> OrderPlaced | ChannelPost:
        channel = self.rng.choices(list(CHANNEL_MIX), weights=list(CHANNEL_MIX.values()))[0]
        order: OrderPlaced | ChannelPost
        if channel in self.native:
            order = self.native_orders.build(channel, self._placed, now)
            delay = (2.0, 8.0)  # the connector produces it a little later than we would
        else:
            order = self.channels.build(channel, f"D{self.run_id}-{self._placed:06d}", now)
            delay = (0.5, 6.0)
        self._placed += 1
        self.counts[f"orders.{channel.value}"] += 1
        if self.rng.random() < self.config.cancel_share:
            order_id = order.order_id
            self._later(now, delay, lambda at: self._cancel(order_id, at))
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
                self._returns_to, key=lambda x: distance_km(x.address, ship_from.lat, ship_from.lon)
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
                    carrier="UPS" if tracking else None,  # a 1Z number is UPS's
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

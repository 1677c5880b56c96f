"""What the console follows on the contract's outbound topics, outside any consumer group:
recent routing outcomes (with their channel, from ``dom.orders.v1``), the commands sent for
recent orders, every sku's latest availability, the locations (for the map), and what the
channel sync told each order's channel.

:class:`FeedState` is plain, bounded, in-memory aggregation (unit-testable without Kafka);
:class:`Feed` fills it from a background thread. Compacted topics are read from their
beginning, the others from ``lookback`` seconds ago.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from config.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.enums import ROUTING_OUTCOMES
from schemas.models import (
    Availability,
    ChannelCall,
    FulfillmentCommand,
    Location,
    Message,
    OrderPlaced,
    OrderStatusChanged,
    PackagingCommand,
)

log = logging.getLogger(__name__)

FROM_START = (registry.LOCATIONS, registry.AVAILABILITY, registry.CHANNEL_SYNC)
RECENT = (
    registry.ORDERS,
    registry.ORDER_STATUS,
    registry.FULFILLMENT_COMMANDS,
    registry.PACKAGING_COMMANDS,
)
MAX_OUTCOMES = 1000
MAX_ORDERS = 50_000
MAX_SKUS = 200_000
COMMANDS_PER_ORDER = 20


def _bounded_put(table: OrderedDict[str, Any], key: str, value: Any, limit: int) -> None:
    table.pop(key, None)
    table[key] = value
    while len(table) > limit:
        table.popitem(last=False)


class FeedState:
    """Recent outcomes, commands by order, availability by sku and the locations."""

    def __init__(self, max_outcomes: int = MAX_OUTCOMES) -> None:
        self.lock = threading.Lock()
        self.outcomes: deque[dict[str, Any]] = deque(maxlen=max_outcomes)
        self.channels: OrderedDict[str, str] = OrderedDict()
        self.commands: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self.availability: OrderedDict[str, Availability] = OrderedDict()
        self.locations: dict[str, Location] = {}
        self.channel_calls: OrderedDict[str, dict[str, dict[str, Any]]] = OrderedDict()
        self.updated_at = 0.0

    def add(self, record: Message) -> None:
        with self.lock:
            self._add(record)
            self.updated_at = time.time()

    def _add(self, record: Message) -> None:
        if isinstance(record, OrderPlaced):
            _bounded_put(self.channels, record.order_id, record.channel.value, MAX_ORDERS)
        elif isinstance(record, OrderStatusChanged):
            # An action's answer repeats the order's status; it is no routing outcome.
            if record.status.value in ROUTING_OUTCOMES and record.action_id is None:
                self.outcomes.append(self._outcome(record))
        elif isinstance(record, FulfillmentCommand | PackagingCommand):
            self._add_command(record)
        elif isinstance(record, Availability):
            _bounded_put(self.availability, record.sku, record, MAX_SKUS)
        elif isinstance(record, Location):
            self.locations[record.location_id] = record
        elif isinstance(record, ChannelCall):
            self._add_call(record)

    def _add_call(self, call: ChannelCall) -> None:
        """What the channel sync told the order's channel: the latest state of each call."""
        calls = dict(self.channel_calls.get(call.order_id) or {})
        calls[call.call_id] = {
            "call_id": call.call_id,
            "channel": call.channel,
            "kind": call.kind.value,
            "state": call.state.value,
            "shipment_id": call.shipment_id,
            "tracking_number": call.tracking_number,
            "detail": call.detail,
            "attempts": call.attempts,
            "reported_at": call.reported_at.isoformat(),
            "at": call.at.isoformat(),
        }
        _bounded_put(self.channel_calls, call.order_id, calls, MAX_ORDERS)

    def _outcome(self, status: OrderStatusChanged) -> dict[str, Any]:
        return {
            "order_id": status.order_id,
            "status": status.status.value,
            "channel": self.channels.get(status.order_id, ""),
            "reason": status.reason,
            "locations": [s.location_id for s in status.shipments],
            "rules_fired": list(status.rules_fired),
            "at": status.at.isoformat(),
        }

    def _add_command(self, command: FulfillmentCommand | PackagingCommand) -> None:
        held = self.commands.get(command.order_id) or []
        if any(c["command_id"] == command.command_id for c in held):
            return  # a redelivered command: consumers drop it by its id, so do we
        if isinstance(command, FulfillmentCommand):
            detail = (
                f"{command.kind.value} {', '.join(f'{x.sku} x{x.quantity}' for x in command.lines)}"
            )
            if command.destination_location_id:
                detail += f" to {command.destination_location_id}"
            kind = "fulfillment"
        else:
            inserts = ", ".join(f"{i.kind.value}:{i.value}" for i in command.inserts)
            boxes = ", ".join(c.box_type for c in command.cartons)
            detail = f"{command.packaging} in {boxes or 'no cartons'}"
            detail += f"; inserts {inserts}" if inserts else ""
            kind = "packaging"
        entry = {
            "command_id": command.command_id,
            "kind": kind,
            "shipment_id": command.shipment_id,
            "location_id": command.location_id,
            "detail": detail,
            "rules_fired": list(command.rules_fired),
            "created_at": command.created_at.isoformat(),
        }
        _bounded_put(
            self.commands, command.order_id, [*held, entry][-COMMANDS_PER_ORDER:], MAX_ORDERS
        )

    # ---- views (copies, taken under the lock) --------------------------------------------

    def recent_outcomes(
        self, *, channel: str | None, status: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first, filtered by channel and status."""
        with self.lock:
            picked = [
                o
                for o in reversed(self.outcomes)
                if (channel is None or o["channel"] == channel)
                and (status is None or o["status"] == status)
            ]
        return picked[:limit]

    def commands_of(self, order_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.commands.get(order_id) or [])

    def channel_calls_of(self, order_id: str) -> list[dict[str, Any]]:
        """What was told (or is being told) to the order's channel, in the order it happened."""
        with self.lock:
            calls = list((self.channel_calls.get(order_id) or {}).values())
        return sorted(calls, key=lambda c: (c["at"], c["call_id"]))

    def availability_of(self, sku: str) -> Availability | None:
        with self.lock:
            return self.availability.get(sku)

    def low_stock(self, threshold: int, limit: int) -> list[dict[str, Any]]:
        """SKUs with at most ``threshold`` units available in total, the scarcest first."""
        with self.lock:
            low = [a for a in self.availability.values() if a.total_available <= threshold]
        low.sort(key=lambda a: (a.total_available, a.sku))
        return [
            {
                "sku": a.sku,
                "total_available": a.total_available,
                "locations": len(a.locations),
                "out_at": sum(1 for x in a.locations if x.available == 0),
                "updated_at": a.updated_at.isoformat(),
            }
            for a in low[:limit]
        ]

    def skus_like(self, prefix: str, limit: int = 20) -> list[str]:
        with self.lock:
            found = [sku for sku in self.availability if sku.startswith(prefix)]
        return sorted(found)[:limit]

    def location_facts(self) -> dict[str, dict[str, Any]]:
        """Name, kind and coordinates of every known location, for the map."""
        with self.lock:
            return {
                loc.location_id: {
                    "name": loc.name,
                    "kind": loc.kind.value,
                    "city": loc.address.city,
                    "lat": loc.address.lat,
                    "lon": loc.address.lon,
                    "active": loc.active,
                }
                for loc in self.locations.values()
            }


class Feed:
    """A background thread tailing the topics into a :class:`FeedState`."""

    def __init__(
        self, settings: Settings, state: FeedState | None = None, lookback: float = 3600.0
    ) -> None:
        self.settings = settings
        self.state = state or FeedState()
        self.lookback = lookback
        self.ready = threading.Event()
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Feed:
        self._thread = threading.Thread(target=self._run, name="console-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        codec = Codec.from_url(
            self.settings.schema_registry_url, **(self.settings.schema_registry_config() or {})
        )
        while not self._stop.is_set():
            try:
                consumer = self._consumer()
            except (KafkaException, RuntimeError) as error:
                self.error = str(error)
                log.warning("console feed cannot start yet: %s", error)
                self._stop.wait(2.0)
                continue
            self.error = None
            self.ready.set()
            try:
                while not self._stop.is_set():
                    for message in consumer.consume(1000, 0.2):
                        self._apply(codec, message)
            finally:
                consumer.close()

    def _apply(self, codec: Codec, message: Any) -> None:
        if message.error() is not None or not message.value():
            return
        try:
            self.state.add(codec.decode(message.value()))
        except DecodeError:
            return  # the pipeline dead-letters what it cannot read; the console skips it

    def _consumer(self) -> Consumer:
        consumer = Consumer(
            self.settings.librdkafka_config(
                **{
                    "group.id": f"dom-console-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "latest",
                }
            )
        )
        since_ms = int((time.time() - self.lookback) * 1000)
        parts = self._partitions(consumer, FROM_START, 0) + self._partitions(
            consumer, RECENT, since_ms
        )
        found = consumer.offsets_for_times(parts, timeout=10)
        failed = [p.error for p in found if p.error is not None]
        if failed:
            consumer.close()
            raise KafkaException(failed[0])
        consumer.assign(found)  # -1 (nothing at or after the time) means the end
        return consumer

    def _partitions(
        self, consumer: Consumer, topics: Sequence[registry.Topic], since_ms: int
    ) -> list[TopicPartition]:
        parts = []
        for name in (self.settings.topic(t.name) for t in topics):
            metadata = consumer.list_topics(name, timeout=10).topics[name]
            if metadata.error is not None:
                raise RuntimeError(f"topic {name}: {metadata.error}; run `dom topics create`")
            parts += [TopicPartition(name, p, since_ms) for p in metadata.partitions]
        return parts

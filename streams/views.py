"""Every worker's read-only view of the network: locations, products, availability, load,
and the operators' rules.

Routing on one worker needs the locations (a compacted topic), every sku's availability (the
compacted availability topic the inventory stage publishes) and how many shipments each
location got today (counted from the fulfillment commands). None of these is partitioned
state: each worker reads all partitions of those topics with a consumer outside the group, so
"visible to every worker" holds without Faust's GlobalTable (whose recovery loops with several
workers). The view may lag by milliseconds; the per-sku reservation is what prevents
overselling, and a lost race re-routes on the fresh numbers the reservation result carries.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.codec import Codec, DecodeError
from schemas.models import Availability, FulfillmentCommand, Location, Product, Rule
from streams.core.routing_model import Capability, LocationInfo, LocationKind
from streams.core.rules import RuleError, RuleSet

log = logging.getLogger(__name__)


class AvailabilityBook(Mapping[str, Availability]):
    """Every sku's latest availability, decoded only when someone reads it.

    Every worker receives every sku's availability record, each with a line per location,
    and routing reads only the skus of the orders it routes: decoding all of them on arrival
    (Avro, then one pydantic model per location) was a twentieth of a worker's time. A record
    is kept as bytes until it is read, then decoded once. A record that does not decode is
    dropped with a warning (the inventory stage that wrote it is where such a bug shows).
    """

    def __init__(self) -> None:
        self._decoded: dict[str, Availability] = {}
        self._raw: dict[str, bytes] = {}  # never a key of _decoded as well
        self._codec: Codec | None = None

    def put(self, record: Availability) -> None:
        self._decoded[record.sku] = record
        self._raw.pop(record.sku, None)

    def put_raw(self, sku: str, value: bytes, codec: Codec) -> None:
        self._raw[sku] = value
        self._decoded.pop(sku, None)
        self._codec = codec

    def __getitem__(self, sku: str) -> Availability:
        record = self._decoded.get(sku)
        if record is not None:
            return record
        raw = self._raw.pop(sku)  # KeyError: no record for that sku
        try:
            if self._codec is None:  # cannot happen: set with the first raw record
                raise DecodeError("no codec")
            record = self._codec.decode_as(raw, Availability)
        except DecodeError as exc:
            log.warning("view drops the undecodable availability of %s: %s", sku, exc.reason)
            raise KeyError(sku) from exc
        self._decoded[sku] = record
        return record

    def __iter__(self) -> Iterator[str]:
        return iter([*self._decoded, *self._raw])

    def __len__(self) -> int:
        return len(self._decoded) + len(self._raw)


class NetworkView:
    """The latest location, product, availability and rule records, and today's shipments."""

    def __init__(self) -> None:
        self.rules = RuleSet()
        # rule id -> (version, why it was refused), until a newer valid version arrives
        self.rule_errors: dict[str, tuple[int, str]] = {}
        self.locations: dict[str, Location] = {}
        self.products: dict[str, Product] = {}
        self.availability = AvailabilityBook()
        self._load: Counter[str] = Counter()
        self._load_day: date | None = None
        self._infos: list[LocationInfo] | None = None
        self.ready = asyncio.Event()

    # ---- updates ------------------------------------------------------------------------------

    def apply(self, record: object) -> None:
        """Fold one decoded record into the view."""
        if isinstance(record, Availability):
            self.availability.put(record)
        elif isinstance(record, Location):
            self.locations[record.location_id] = record
            self._infos = None
        elif isinstance(record, Product):
            self.products[record.sku] = record
        elif isinstance(record, FulfillmentCommand):
            self._count_shipment(record)
        elif isinstance(record, Rule):
            self._apply_rule(record)

    def _apply_rule(self, rule: Rule) -> None:
        """A valid rule replaces its older version; an invalid one leaves the set as it was."""
        try:
            self.rules = self.rules.with_rule(rule)
        except RuleError as exc:
            self.rule_errors[rule.rule_id] = (rule.version, exc.message)
            log.warning(
                "rule %s v%s refused, the set in force is kept: %s",
                rule.rule_id,
                rule.version,
                exc.message,
            )
            return
        refused = self.rule_errors.get(rule.rule_id)
        if refused is not None and rule.version > refused[0]:
            del self.rule_errors[rule.rule_id]  # a newer valid version supersedes the refusal

    def forget_rule(self, rule_id: str) -> None:
        """A tombstone on the rules topic deletes the rule."""
        self.rules = self.rules.without(rule_id)
        self.rule_errors.pop(rule_id, None)

    def forget_location(self, location_id: str) -> None:
        """A tombstone on the locations topic."""
        self.locations.pop(location_id, None)
        self._infos = None

    def _count_shipment(self, command: FulfillmentCommand) -> None:
        day = command.created_at.date()
        if self._load_day is None or day > self._load_day:
            self._load_day, self._load = day, Counter()
        if day == self._load_day:
            self._load[command.location_id] += 1
            self._infos = None

    # ---- reads --------------------------------------------------------------------------------

    def stock(self, sku: str) -> Mapping[str, int]:
        record = self.availability.get(sku)
        if record is None:
            return {}
        return {x.location_id: x.available for x in record.locations}

    def location_infos(self) -> list[LocationInfo]:
        """Locations as routing sees them (rebuilt only when a location or the load changed)."""
        if self._infos is None:
            self._infos = [self._info(loc) for loc in self.locations.values()]
        return self._infos

    def _info(self, loc: Location) -> LocationInfo:
        return LocationInfo(
            location_id=loc.location_id,
            kind=LocationKind(loc.kind.value),
            capabilities=frozenset(Capability(c.value) for c in loc.capabilities),
            lat=loc.address.lat,
            lon=loc.address.lon,
            region=loc.address.region,
            country=loc.address.country,
            priority=loc.priority,
            daily_order_capacity=loc.daily_order_capacity,
            orders_today=self._load.get(loc.location_id, 0),
            active=loc.active,
        )


async def follow_topics(
    view: NetworkView,
    codec: Codec,
    consumer_conf: dict[str, object],
    topics: list[str],
    *,
    locations_topic: str,
    rules_topic: str | None = None,
    availability_topic: str | None = None,
) -> None:
    """Read every partition of ``topics`` from the beginning into ``view``, forever.

    ``view.ready`` is set once the end offsets seen at start-up are reached, so stages can wait
    for a complete picture before they route.
    """
    consumer = AIOKafkaConsumer(enable_auto_commit=False, group_id=None, **consumer_conf)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(await _partitions(consumer, t))
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        targets = {tp: off for tp, off in (await consumer.end_offsets(partitions)).items() if off}
        if not targets:
            view.ready.set()
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, messages in batch.items():
                for message in messages:
                    if message.topic == availability_topic and message.key and message.value:
                        view.availability.put_raw(message.key.decode(), message.value, codec)
                        continue
                    _fold(view, codec, message, locations_topic, rules_topic)
                if tp in targets and messages and messages[-1].offset + 1 >= targets[tp]:
                    del targets[tp]
            if not targets and not view.ready.is_set():
                view.ready.set()
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(100):
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return set(parts)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic} does not exist; run `dom topics create`")


def _fold(
    view: NetworkView,
    codec: Codec,
    message: Any,
    locations_topic: str,
    rules_topic: str | None,
) -> None:
    topic, key, value = message.topic, message.key, message.value
    if value is None:
        if key and topic == locations_topic:
            view.forget_location(key.decode())
        elif key and topic == rules_topic:
            view.forget_rule(key.decode())
        return
    try:
        view.apply(codec.decode(value))
    except DecodeError as exc:
        # The stage that owns the topic dead-letters it; the view just skips it.
        log.warning("view skips undecodable record on %s: %s", topic, exc.reason)

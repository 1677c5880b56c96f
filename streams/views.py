"""Every worker's read-only view of the network: locations, products, availability, load,
the operators' rules and the channel policies.

Routing on one worker needs the locations (a compacted topic), every sku's availability (the
compacted availability topic the inventory stage publishes) and how many shipments each
location got today (counted from the fulfillment commands, read from the start of the current
UTC day only: a worker's start must not decode every command ever sent). None of these is
partitioned state: each worker reads all partitions of those topics with a consumer outside the
group, so "visible to every worker" holds without Faust's GlobalTable (whose recovery loops with
several workers). The view may lag by milliseconds; the per-sku reservation is what prevents
overselling, and a lost race re-routes on the fresh numbers the reservation result carries.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.common import millis
from schemas.models import (
    Availability,
    Channel,
    ChannelPolicy,
    FulfillmentCommand,
    Location,
    Message,
    Product,
    Rule,
)
from streams.core.channels.plan import ChannelPlan, Site
from streams.core.channels.policy import from_record
from streams.core.routing.model import Capability, LocationInfo, LocationKind
from streams.core.routing.promised import Promised
from streams.core.rules.ruleset import RuleError, RuleSet
from streams.runtime.side_consumer import Reader, TopicPartition, reader

log = logging.getLogger(__name__)

DAY_START_MARGIN = timedelta(hours=1)
"""How far before midnight (UTC) the view starts reading the day's topics. Offsets are found by
record timestamp, the load is counted by ``created_at``: a command stamped a little before
midnight by a worker whose clock is behind its input's can still be created today."""


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
        self._available: dict[str, dict[str, int]] = {}  # sku -> location -> available
        self._stamped: dict[str, int] = {}  # sku -> its record's updated_at (ms), once read
        self._codec: Codec | None = None

    def put(self, record: Availability) -> None:
        self._decoded[record.sku] = record
        self._raw.pop(record.sku, None)
        self._available.pop(record.sku, None)
        self._stamped.pop(record.sku, None)

    def put_raw(self, sku: str, value: bytes, codec: Codec) -> None:
        self._raw[sku] = value
        self._decoded.pop(sku, None)
        self._available.pop(sku, None)
        self._stamped.pop(sku, None)
        self._codec = codec

    def stamped_ms(self, sku: str) -> int | None:
        """When the owner wrote the record of ``sku`` the book holds (its ``updated_at``, in
        ms; None: no record), read with its figures."""
        self.available(sku)
        return self._stamped.get(sku)

    def available(self, sku: str) -> dict[str, int]:
        """location_id -> available units of ``sku``, what routing reads (empty: no record).
        Read from Avro without building the record's models (one per location): decoding
        whole records for this was 2% of a worker's time in ``dom bench --profile``."""
        found = self._available.get(sku)
        if found is not None:
            return found
        record = self._decoded.get(sku)
        raw = self._raw.get(sku)
        if record is not None:
            found = {x.location_id: x.available for x in record.locations}
            self._stamped[sku] = millis(record.updated_at)
        elif raw is not None and self._codec is not None:
            try:
                fields = self._codec.decode_fields(raw, Availability)
                found = {
                    str(x["location_id"]): max(0, int(x["available"])) for x in fields["locations"]
                }
                self._stamped[sku] = millis(fields["updated_at"])
            except (DecodeError, KeyError, TypeError, ValueError) as exc:
                log.warning("view drops the undecodable availability of %s: %s", sku, exc)
                self._raw.pop(sku, None)
                return {}
        else:
            return {}
        self._available[sku] = found
        return found

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
    """The latest location, product, availability, rule and channel policy records, and
    today's shipments."""

    def __init__(self, published_channels: Iterable[Channel] | None = None) -> None:
        self.published_channels = published_channels  # None: every channel's figures
        self.rules = RuleSet()
        # rule id -> (version, why it was refused), until a newer valid version arrives
        self.rule_errors: dict[str, tuple[int, str]] = {}
        # rule id -> the highest version it had when it was deleted: a copy of an older version
        # landing after the tombstone (see streams/core/rules/log.py) must not bring it back
        self.deleted_rules: dict[str, int] = {}
        self.locations: dict[str, Location] = {}
        self.products: dict[str, Product] = {}
        self.availability = AvailabilityBook()
        # what this worker's order stage asked the sku owners to hold and the availability
        # above may not show yet (streams/core/routing/promised.py)
        self.promised = Promised()
        self.channel_policies: dict[str, ChannelPolicy] = {}  # channel -> its live policy
        self._channel_plan: ChannelPlan | None = None
        self._load: Counter[str] = Counter()
        self._load_day: date | None = None
        self._infos: list[LocationInfo] | None = None
        self.ready = asyncio.Event()
        self.records_read: Counter[str] = Counter()  # topic -> records the follower fetched
        # partition of the locations topic -> the next offset the view reads there
        self.locations_read: dict[int, int] = {}
        self._locations_moved = asyncio.Event()

    # ---- updates ------------------------------------------------------------------------------

    def apply(self, record: object) -> None:
        """Fold one decoded record into the view."""
        if isinstance(record, Availability):
            self.availability.put(record)
        elif isinstance(record, Location):
            self.locations[record.location_id] = record
            self._infos = None
            self._channel_plan = None
        elif isinstance(record, ChannelPolicy):
            self.channel_policies[record.channel.value] = record
            self._channel_plan = None
        elif isinstance(record, Product):
            self.products[record.sku] = record
        elif isinstance(record, FulfillmentCommand):
            self._count_shipment(record)
        elif isinstance(record, Rule):
            self._apply_rule(record)

    def _apply_rule(self, rule: Rule) -> None:
        """A valid rule replaces its older version; an invalid one leaves the set as it was.

        Whatever compiling a rule raises refuses that version: a rule comes from a topic
        anyone upstream may write, and no rule may stop the view, and with it the worker.
        A version no newer than a deleted rule had is a late copy: ignored.
        """
        deleted = self.deleted_rules.get(rule.rule_id)
        if deleted is not None:
            if rule.version <= deleted:
                log.info(
                    "rule %s v%s comes after its deletion: ignored", rule.rule_id, rule.version
                )
                return
            del self.deleted_rules[rule.rule_id]  # created again
        try:
            self.rules = self.rules.with_rule(rule)
        except Exception as exc:
            if isinstance(exc, RuleError):
                reason = exc.message
            else:  # a bug of the checker, not of the rule; refused all the same
                log.exception("checking rule %s v%s failed", rule.rule_id, rule.version)
                reason = f"could not be checked: {exc!r}"
            self.rule_errors[rule.rule_id] = (rule.version, reason)
            log.warning(
                "rule %s v%s refused, the set in force is kept: %s",
                rule.rule_id,
                rule.version,
                reason,
            )
            return
        refused = self.rule_errors.get(rule.rule_id)
        if refused is not None and rule.version > refused[0]:
            del self.rule_errors[rule.rule_id]  # a newer valid version supersedes the refusal

    def forget_rule(self, rule_id: str) -> None:
        """A tombstone on the rules topic deletes the rule (remembering its highest version)."""
        held = self.rules.get(rule_id)
        refused = self.rule_errors.pop(rule_id, None)
        versions = [v for v in (held and held.version, refused and refused[0]) if v]
        versions.append(self.deleted_rules.get(rule_id, 0))
        self.deleted_rules[rule_id] = max(versions)
        self.rules = self.rules.without(rule_id)

    def forget_location(self, location_id: str) -> None:
        """A tombstone on the locations topic."""
        self.locations.pop(location_id, None)
        self._infos = None
        self._channel_plan = None

    def forget_channel_policy(self, channel: str) -> None:
        """A tombstone on the channels topic: the channel is back to every location, no
        buffer."""
        self.channel_policies.pop(channel, None)
        self._channel_plan = None

    def _count_shipment(self, command: FulfillmentCommand) -> None:
        day = command.created_at.date()
        if self._load_day is None or day > self._load_day:
            self._load_day, self._load = day, Counter()
        if day == self._load_day:
            self._load[command.location_id] += 1
            self._infos = None

    # ---- how far the locations topic is read -----------------------------------------------------

    def note_locations_read(self, positions: Mapping[int, int]) -> None:
        """The follower has folded the locations topic up to these offsets (the next it reads,
        by partition)."""
        if all(self.locations_read.get(p) == offset for p, offset in positions.items()):
            return
        self.locations_read.update(positions)
        moved, self._locations_moved = self._locations_moved, asyncio.Event()
        moved.set()

    async def read_locations_to(self, ends: Mapping[int, int]) -> None:
        """Return once every partition of the locations topic is folded up to ``ends``."""
        while any(self.locations_read.get(p, 0) < end for p, end in ends.items()):
            await self._locations_moved.wait()

    # ---- reads --------------------------------------------------------------------------------

    def stock(self, sku: str) -> Mapping[str, int]:
        return self.availability.available(sku)

    def stock_ms(self, sku: str) -> int | None:
        """When the owner wrote the figures :meth:`stock` gives (ms; None: none yet)."""
        return self.availability.stamped_ms(sku)

    def channel_plan(self) -> ChannelPlan:
        """The channel policies over the locations as they are now (rebuilt only when a policy
        or a location changed)."""
        if self._channel_plan is None:
            sites = (
                Site(loc.location_id, LocationKind(loc.kind.value), loc.active)
                for loc in self.locations.values()
            )
            policies = {p.channel: from_record(p) for p in self.channel_policies.values()}
            self._channel_plan = ChannelPlan(policies, sites, self.published_channels)
        return self._channel_plan

    def location_kind(self, location_id: str) -> str | None:
        """``DC`` or ``STORE`` (None: not known)."""
        location = self.locations.get(location_id)
        return location.kind.value if location is not None else None

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
    channels_topic: str | None = None,
    today_topics: Collection[str] = (),
) -> None:
    """Read every partition of ``topics`` into ``view``, forever: from the beginning (the
    compacted topics are the state), but ``today_topics`` only from the first record of the
    current UTC day (see :func:`_start_offsets`).

    ``view.ready`` is set once the end offsets seen at start-up are reached, so stages can wait
    for a complete picture before they route; a partition with nothing past where the view
    starts has nothing to wait for.
    """
    consumer = reader(dict(consumer_conf))
    await consumer.start()
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(await _partitions(consumer, t))
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)  # before the starts: see _start_offsets
        starts = await _start_offsets(consumer, partitions, today_topics, ends)
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        targets = {tp: end for tp, end in ends.items() if end > starts[tp]}
        locations = [tp for tp in partitions if tp.topic == locations_topic]
        await _note_locations_read(view, consumer, locations)
        if not targets:
            view.ready.set()
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, messages in batch.items():
                view.records_read[tp.topic] += len(messages)
                for message in messages:
                    if message.topic == availability_topic and message.key and message.value:
                        view.availability.put_raw(message.key.decode(), message.value, codec)
                        continue
                    _fold(view, codec, message, locations_topic, rules_topic, channels_topic)
            for tp in list(targets):
                # The position, not the last record: a partition may end on offsets that
                # hold no record (an upstream transaction's marker, compacted offsets).
                if await consumer.position(tp) >= targets[tp]:
                    del targets[tp]
            if not targets and not view.ready.is_set():
                view.ready.set()
            await _note_locations_read(view, consumer, locations)
    finally:
        await consumer.stop()


async def _start_offsets(
    consumer: Reader,
    partitions: list[TopicPartition],
    today_topics: Collection[str],
    ends: Mapping[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Where the view starts on each partition: its beginning; on a partition of
    ``today_topics``, the first record stamped since midnight UTC (less ``DAY_START_MARGIN``),
    or ``ends`` when it has none. ``ends`` must be read before: a record appended meanwhile is
    then after the start, never skipped."""
    starts: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
    daily = [tp for tp in partitions if tp.topic in today_topics]
    if daily:
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        since = int((midnight - DAY_START_MARGIN).timestamp() * 1000)
        found = await consumer.offsets_for_times(dict.fromkeys(daily, since))
        for tp in daily:
            first = found.get(tp)
            starts[tp] = first.offset if first is not None else ends[tp]
    return starts


async def _note_locations_read(
    view: NetworkView, consumer: Reader, locations: list[TopicPartition]
) -> None:
    """Tell the view how far it has read the locations topic: a stock event for an unknown
    location waits for that (streams/location_gate.py)."""
    view.note_locations_read({tp.partition: await consumer.position(tp) for tp in locations})


async def _partitions(consumer: Reader, topic: str) -> set[int]:
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
    channels_topic: str | None = None,
) -> None:
    topic, key, value = message.topic, message.key, message.value
    try:
        if value is None:
            if key and topic == locations_topic:
                view.forget_location(key.decode())
            elif key and topic == rules_topic:
                view.forget_rule(key.decode())
            elif key and topic == channels_topic:
                view.forget_channel_policy(key.decode())
            return
        record = codec.decode(value)
        if not _keyed_by_its_id(record, key):
            # Its stage dead-letters it (bad_key); applied here, it would change the record
            # of another location, product or rule than the one its key names.
            log.warning("view skips a %s whose key is not its id, on %s", record.avro_name, topic)
            return
        view.apply(record)
    except DecodeError as exc:
        # The stage that owns the topic dead-letters it; the view just skips it.
        log.warning("view skips undecodable record on %s: %s", topic, exc.reason)
    except Exception:
        # One record must never stop the follower (a worker without it stops): skip it; the
        # stage that owns the topic dead-letters it.
        log.exception(
            "view skips a record it cannot apply: %s partition %s offset %s",
            topic,
            message.partition,
            message.offset,
        )


def _keyed_by_its_id(record: Message, key: bytes | None) -> bool:
    """The message's key is the record's id, the field the registry keys its topic by."""
    field = registry.topic_for(record.avro_name).key
    return key == str(getattr(record, field)).encode()

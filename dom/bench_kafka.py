"""The Kafka side of ``dom bench``: following the outcome topics, counting what the pipeline
wrote, and the raw confluent-kafka run it is set against.

Every reader here is a consumer outside any group the pipeline uses, its partitions assigned by
hand, so the bench never disturbs the workers' consumer groups.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from config.settings import Settings
from connectors.demo_cli import answer_commands
from connectors.demo_traffic import ChannelPost, TrafficConfig, TrafficGenerator
from connectors.demo_world import DemoWorld
from connectors.producer import ContractProducer
from dom.admin import create_topics
from dom.bench_report import OrderBook, OrdersSummary, per_s
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.enums import OrderStatus
from schemas.models import FulfillmentCommand, OrderStatusChanged

RAW_TOPIC = registry.Topic("bench.raw.v1", "key", (), registry.Direction.INTERNAL)
MIN_RAW_MESSAGES = 10_000  # fewer would time start-up, not throughput
# The runtime floor's topics (dom.bench_floor) and its size.
FLOOR_IN = registry.Topic("bench.floor-in.v1", "key", (), registry.Direction.INTERNAL)
FLOOR_OUT = registry.Topic("bench.floor-out.v1", "key", (), registry.Direction.INTERNAL)
MESSAGES_PER_EVENT = 3
"""Its input, its table's changelog record, its output."""
MIN_FLOOR_EVENTS = 5_000
"""Fewer would time the workers' start-up, not their pace."""
DISTINCT_VALUES = 2048
"""Values the raw limit and the floor cycle through: more than a producer batch holds (1 MB
by default) at the pipeline's message sizes."""


# ---- reading the topics -------------------------------------------------------------------------


def _reader(settings: Settings, **extra: object) -> Consumer:
    """A consumer outside any group the pipeline uses; partitions are assigned by hand."""
    return Consumer(
        settings.librdkafka_config(
            **{
                "group.id": f"dom-bench-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                **extra,
            }
        )
    )


def _assign_from_start(consumer: Consumer, names: list[str]) -> None:
    metadata = consumer.list_topics(timeout=30).topics
    consumer.assign(
        [
            TopicPartition(name, p, OFFSET_BEGINNING)
            for name in names
            for p in metadata[name].partitions
        ]
    )


class _Follower(threading.Thread):
    """A daemon thread reading topics from their start until stopped."""

    def __init__(self, settings: Settings, names: list[str]) -> None:
        super().__init__(daemon=True)
        self.consumer = _reader(settings)
        _assign_from_start(self.consumer, [settings.topic(n) for n in names])
        self.lock = threading.Lock()
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                messages = [m for m in self.consumer.consume(2000, 0.2) if m.error() is None]
                with self.lock:
                    for message in messages:
                        self.handle(message)
        finally:
            self.consumer.close()

    def handle(self, message: Message) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)


class OutcomeTracker(_Follower):
    """Follows order statuses and fulfillment commands into an :class:`OrderBook`."""

    def __init__(self, settings: Settings, codec: Codec) -> None:
        names = [registry.ORDER_STATUS.name, registry.FULFILLMENT_COMMANDS.name]
        super().__init__(settings, names)
        self.codec = codec
        self.book = OrderBook()
        self.shipped: set[str] = set()
        """Orders shipped: SHIPPED, or COMPLETED when every unit left (only ``--ship``)."""

    def handle(self, message: Message) -> None:
        value = message.value()
        if value is None:
            return
        try:
            record = self.codec.decode(value)
        except DecodeError:
            return
        ms = float(message.timestamp()[1])
        if isinstance(record, OrderStatusChanged):
            shipments = [s.shipment_id for s in record.shipments]
            self.book.on_status(record.order_id, record.status.value, shipments, ms)
            if record.status in (OrderStatus.SHIPPED, OrderStatus.COMPLETED):
                self.shipped.add(record.order_id)
        elif isinstance(record, FulfillmentCommand):
            self.book.on_command(record.order_id, record.shipment_id, ms)

    def pending(self, order_ids: list[str]) -> list[str]:
        """Those of ``order_ids`` not yet complete, in their order."""
        with self.lock:
            return [x for x in order_ids if not self.book.complete(x)]

    def routed(self, order_ids: Iterable[str]) -> int:
        with self.lock:
            return self.book.routed(order_ids)

    def summary(self, order_ids: list[str]) -> OrdersSummary:
        with self.lock:
            return self.book.summary(order_ids)

    def latencies_ms(self, placed_ms: dict[str, float]) -> list[float]:
        with self.lock:
            return self.book.latencies_ms(placed_ms)


SHIP_AT_ONCE = TrafficConfig(
    rate=0.0,  # the bench places the orders itself
    cancel_share=0.0,
    reject_share=0.0,
    return_share=0.0,
    stock_every=1e9,  # never: the world is loaded once
    ship_delay=(1.0, 1.0),  # after the acceptance (0.2 to 0.8 s)
    pickup_delay=(1.0, 1.0),
)
"""The bench's warehouses and stores: accept every shipment and ship it a second after its
command (a pickup is collected; a transfer ships, then is collected)."""


class Warehouses(_Follower):
    """``--ship``: answers every fulfillment command as the demo's warehouses and stores do
    (:class:`TrafficGenerator`), at once and without rejections, returns or cancellations, so
    the orders of a long run end shipped, as a retailer's history does. Without them every unit
    ever reserved stays held, and a bestseller's inventory value grows with the run."""

    def __init__(self, settings: Settings, codec: Codec, world: DemoWorld) -> None:
        super().__init__(settings, [registry.FULFILLMENT_COMMANDS.name])
        self.generator = TrafficGenerator(
            world, SHIP_AT_ONCE, run_id="bench", start=datetime.now(UTC)
        )
        self.producer = ContractProducer(settings, codec)
        self.codec = codec
        self.failed = 0

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                now = datetime.now(UTC)
                answer_commands(self.consumer, self.codec, self.generator, now)
                for record in self.generator.tick(now):
                    assert not isinstance(record, ChannelPost)  # no orders at rate 0
                    self.producer.send(record)
                self.producer.poll(0)
        finally:
            self.consumer.close()
            self.failed = self.producer.close().failed

    @property
    def updates(self) -> int:
        """Fulfillment updates sent so far."""
        return self.generator.counts["FulfillmentUpdate"]


class _KeyCollector(_Follower):
    def __init__(self, settings: Settings, name: str) -> None:
        super().__init__(settings, [name])
        self.keys: set[bytes] = set()

    def handle(self, message: Message) -> None:
        key = message.key()
        if key is not None:
            self.keys.add(key)


@contextmanager
def keys_seen(settings: Settings, topic_name: str) -> Iterator[set[bytes]]:
    """The set of keys seen on a topic so far, growing while the block runs."""
    collector = _KeyCollector(settings, topic_name)
    collector.start()
    try:
        yield collector.keys
    finally:
        collector.stop()


# ---- counting what the pipeline wrote -----------------------------------------------------------

Offsets = dict[tuple[str, int], int]
STATS_EVERY_MS = 200
"""How often the bench's reader of a window reports what it received (librdkafka statistics)."""


class ReceivedBytes:
    """What a librdkafka consumer received from the broker, from its statistics: every
    response its connections read, fetch framing included, so batches count as their
    producers compressed them (``DOM_PRODUCER_COMPRESSION``)."""

    def __init__(self, every_ms: int = STATS_EVERY_MS) -> None:
        self.every_ms = every_ms
        self._reports: list[int] = []

    def config(self) -> dict[str, object]:
        """The consumer settings that have it report here."""
        return {"statistics.interval.ms": self.every_ms, "stats_cb": self._report}

    def _report(self, report: str) -> None:
        brokers = json.loads(report)["brokers"].values()
        self._reports.append(sum(broker["rxbytes"] for broker in brokers))

    def total(self, consumer: Consumer) -> int:
        """The bytes ``consumer`` received, from a report made after its last read (polled
        for up to ten report intervals; what a poll returns meanwhile is dropped)."""
        reports = len(self._reports)
        waited = time.monotonic() + 10 * self.every_ms / 1000
        while len(self._reports) < reports + 2 and time.monotonic() < waited:
            consumer.poll(0.05)
        return max(self._reports, default=0)


def end_offsets(settings: Settings) -> Offsets:
    """The end offset of every partition of every topic of the run (prefix), changelogs too."""
    consumer = _reader(settings)
    try:
        topics = consumer.list_topics(timeout=30).topics
        ends: Offsets = {}
        for name, meta in topics.items():
            if not name.startswith(settings.topic_prefix) or name == settings.topic(RAW_TOPIC.name):
                continue
            for p in meta.partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(name, p), 10, False)
                ends[(name, p)] = high
        return ends
    finally:
        consumer.close()


def quiet_offsets(settings: Settings, settle: float, limit: float) -> Offsets:
    """End offsets once nothing has been written for ``settle`` seconds (or ``limit`` passed)."""
    deadline = time.monotonic() + limit
    last = end_offsets(settings)
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = end_offsets(settings)
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= settle:
            break
    return last


def moved_by_topic(settings: Settings, before: Offsets, after: Offsets) -> dict[str, int]:
    """Records written to each topic of the run (its name without the run's prefix) between
    two sets of its end offsets, busiest first; topics that took none are left out."""
    moved: dict[str, int] = {}
    for (name, partition), end in after.items():
        topic = name.removeprefix(settings.topic_prefix)
        moved[topic] = moved.get(topic, 0) + end - before.get((name, partition), 0)
    return dict(sorted(((t, n) for t, n in moved.items() if n), key=lambda tn: -tn[1]))


@dataclass
class WindowCounts:
    """Records written in a window: in total, per registry direction, per topic (its name
    without the run's prefix), and their mean size."""

    total: int = 0
    by_direction: dict[registry.Direction, int] = field(default_factory=dict)
    by_topic: dict[str, int] = field(default_factory=dict)
    """Busiest first, topics that took none left out (:func:`moved_by_topic`)."""
    avg_bytes: float = 0.0
    wire_bytes: float = 0.0
    """What a reader of every record of the window received from the broker: the batches as
    their producers compressed them (``DOM_PRODUCER_COMPRESSION``), fetch framing included."""
    state_writes: dict[str, int] = field(default_factory=dict)
    """Orders by how many times the window wrote their state to the orders' changelog ("2":
    the orders written twice), fewest first."""


def _direction(settings: Settings, name: str) -> registry.Direction:
    try:
        return registry.by_name(name.removeprefix(settings.topic_prefix)).direction
    except KeyError:
        return registry.Direction.INTERNAL  # table changelogs, Faust's own topics


@contextmanager
def window_counts(settings: Settings, sizes: bool = True) -> Iterator[WindowCounts]:
    """Count what every topic of the run received while the block ran (until it went quiet);
    with ``sizes``, read those records too for their sizes and the orders' state writes."""
    before = end_offsets(settings)
    counts = WindowCounts()
    yield counts
    after = quiet_offsets(settings, settle=2.0, limit=60.0)
    counts.by_topic = moved_by_topic(settings, before, after)
    for topic, moved in counts.by_topic.items():
        direction = _direction(settings, settings.topic(topic))
        counts.by_direction[direction] = counts.by_direction.get(direction, 0) + moved
        counts.total += moved
    if not sizes:
        return
    writes: Counter[bytes] = Counter()
    counts.avg_bytes, counts.wire_bytes = _sizes(settings, before, after, counts.total, writes)
    times = Counter(writes.values())
    counts.state_writes = {str(n): times[n] for n in sorted(times)}


def _sizes(
    settings: Settings,
    before: Offsets,
    after: Offsets,
    total: int,
    writes: Counter[bytes],
    cap: int = 500_000,
) -> tuple[float, float]:
    """Mean key + value bytes of the records between two sets of end offsets, and the bytes a
    reader of all ``total`` of them receives from the broker (librdkafka's count of what its
    connections read; scaled up when ``cap`` records were read of more). ``writes`` counts the
    records of each order in the orders' changelog."""
    todo = {tp: end for tp, end in after.items() if end > before.get(tp, 0)}
    if not todo:
        return 0.0, 0.0
    orders = settings.topic(registry.ORDERS_CHANGELOG.name)
    received = ReceivedBytes()
    consumer = _reader(settings, **received.config())
    consumer.assign([TopicPartition(t, p, before.get((t, p), 0)) for t, p in todo])
    count = size = 0
    deadline = time.monotonic() + 120
    try:
        while todo and count < cap and time.monotonic() < deadline:
            for m in consumer.consume(5000, 0.5):
                if m.error() is not None:
                    continue
                count += 1
                size += len(m.key() or b"") + len(m.value() or b"")
                tp = (m.topic() or "", m.partition() or 0)
                if tp[0] == orders:
                    writes[m.key() or b""] += 1
                if tp in todo and (m.offset() or 0) + 1 >= todo[tp]:
                    del todo[tp]
        wire = received.total(consumer)
    finally:
        consumer.close()
    if not count:
        return 0.0, 0.0
    return size / count, wire * max(1.0, total / count)


# ---- the raw limit ------------------------------------------------------------------------------


def measure_raw(
    settings: Settings, count: int, size: int, on_progress: Callable[[int], None]
) -> tuple[float, float, float]:
    """Produce then consume ``count`` messages of ``size`` bytes (key + value) with plain
    confluent-kafka, the producer configured like the connectors' (idempotent, ``acks=all``):
    produce, consume and produce-then-consume messages/s. Client start-up is not timed."""
    create_topics(settings, [RAW_TOPIC])
    name = settings.topic(RAW_TOPIC.name)
    producer = warm_producer(settings, name)
    produce_s = produce_messages(producer, name, count, size, on_progress)
    on_progress(count)
    consume_s, got = _consume_all(
        settings, name, count + 1, lambda n: on_progress(count + min(n, count))
    )
    got = min(got, count)  # the warm-up message is not one of them
    return per_s(count, produce_s), per_s(got, consume_s), per_s(count, produce_s + consume_s)


def warm_producer(settings: Settings, name: str) -> Producer:
    """A producer configured like the connectors' (idempotent, ``acks=all``) that has
    delivered one message, keyed ``warm-up``, to topic ``name``: its producer id, metadata and
    connections are in place, so its start-up is not timed."""
    producer = Producer(settings.producer_config())
    producer.produce(name, value=b"", key=b"warm-up")
    producer.flush(60)
    return producer


def produce_messages(
    producer: Producer, name: str, count: int, size: int, on_progress: Callable[[int], None]
) -> float:
    """Seconds to produce and deliver ``count`` messages of ``size`` bytes (key + value,
    every key its own) to topic ``name``. The values are random and none repeats within a
    producer batch, so the producer's compression cannot shrink them: one value repeated
    compressed a batch to almost nothing, and the raw limit and the floor would have moved far
    fewer bytes than the pipeline does."""
    values = [os.urandom(max(0, size - 10)) for _ in range(DISTINCT_VALUES)]
    began = time.monotonic()
    for n in range(count):
        while True:
            try:
                producer.produce(name, value=values[n % DISTINCT_VALUES], key=b"%010d" % n)
                break
            except BufferError:  # the local queue is full: let deliveries drain
                producer.poll(0.05)
        if n % 5000 == 0:
            producer.poll(0)
            on_progress(n)
    producer.flush(120)
    return time.monotonic() - began


class OutputCounter(_Follower):
    """Counts the records of a topic, and the timestamp of the latest, from its start."""

    def __init__(self, settings: Settings, name: str) -> None:
        super().__init__(settings, [name])
        self.count = 0
        self.last_ms = 0.0

    def handle(self, message: Message) -> None:
        self.count += 1
        self.last_ms = max(self.last_ms, float(message.timestamp()[1]))


def _consume_all(
    settings: Settings, name: str, count: int, on_progress: Callable[[int], None]
) -> tuple[float, int]:
    """Seconds from the first message to the ``count``-th, and how many arrived."""
    consumer = _reader(settings)
    _assign_from_start(consumer, [name])
    got, first, last = 0, 0.0, 0.0
    deadline = time.monotonic() + 300
    try:
        while got < count and time.monotonic() < deadline:
            batch = [m for m in consumer.consume(1000, 0.1) if m.error() is None]
            if batch:
                last = time.monotonic()
                first = first or last
                got += len(batch)
                on_progress(got)
    finally:
        consumer.close()
    return last - first, got

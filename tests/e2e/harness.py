"""Drive the whole pipeline as a user would: topics in, topics out, workers as processes."""

from __future__ import annotations

import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiokafka.partitioner import murmur2
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client.parser import text_string_to_metric_families

from config.settings import Settings
from connectors.producer import ContractProducer
from dom.admin import create_topics
from schemas.codec import Codec
from schemas.models import Availability, LocationAvailability, Message, OrderStatusChanged
from tests.conftest import free_port
from tests.integration.workers import WorkerProcess


class Pipeline:
    """Topics of one test, the workers running over them, and a reader of what comes out."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        self.tmp_path = tmp_path
        self.codec = Codec()
        self.workers: dict[str, WorkerProcess] = {}
        self.ports: dict[str, int] = {}
        self.overrides: dict[str, str] = {}  # DOM_ settings of the workers, over the defaults
        create_topics(settings)

    def env(self, name: str) -> dict[str, str]:
        s = self.settings
        return {
            "DOM_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
            "DOM_TOPIC_PREFIX": s.topic_prefix,
            "DOM_TOPIC_PARTITIONS": str(s.topic_partitions),
            "DOM_DATA_DIR": str(s.data_dir),
            "DOM_WORKER_NAME": name,
            "DOM_WEB_PORT": str(self.ports[name]),
            "DOM_BROKER_SESSION_TIMEOUT": "8",
            "DOM_SHORTFALL_POLICY": s.shortfall_policy,
            "DOM_MAX_ROUTING_ATTEMPTS": str(s.max_routing_attempts),
            "DOM_BACKORDER_PRIORITY": s.backorder_priority,
            "DOM_BACKORDER_EXPIRY_S": str(s.backorder_expiry_s),
            "DOM_ACCEPT_TIMEOUT_STORE_S": str(s.accept_timeout_store_s),
            "DOM_ACCEPT_TIMEOUT_DC_S": str(s.accept_timeout_dc_s),
            "DOM_PICKUP_EXPIRY_S": str(s.pickup_expiry_s),
            "DOM_RETURN_WINDOW_DAYS": repr(s.return_window_days),
            "DOM_ORDER_RETENTION_DAYS": repr(s.order_retention_days),
            **self.overrides,
        }

    def start_worker(
        self, name: str, ready_timeout: float = 120.0, without: str | None = None
    ) -> WorkerProcess:
        """A ``dom worker``; ``without`` names a runtime fix to leave out
        (:mod:`tests.e2e.without_fix`), to show what it prevents."""
        self.ports.setdefault(name, free_port())
        command = ["tests.e2e.without_fix", without] if without else ["dom.cli"]
        args = [sys.executable, "-m", *command, "worker", "--loglevel", "info"]
        log = self.tmp_path / f"{name}-{len(self.workers)}.log"
        worker = WorkerProcess(args, self.env(name), log)
        self.workers[name] = worker.start(ready_timeout)
        return worker

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def stop_all(self) -> None:
        for worker in self.workers.values():
            worker.stop()

    def produce(self, records: Iterable[Message]) -> int:
        with ContractProducer(self.settings, self.codec) as producer:
            producer.send_all(records)
        assert producer.report.failed == 0, producer.report.errors
        return producer.report.delivered

    def read(
        self, topic: str, until: Callable[[list[Message]], bool], timeout: float = 90.0
    ) -> list[Message]:
        """Decode ``topic`` from the beginning until ``until(records)`` holds or time runs out."""
        records: list[Message] = []
        consumer = self._consumer(topic)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and not until(records):
                for msg in consumer.consume(1000, 0.5):
                    if msg.error() is None and msg.value() is not None:
                        records.append(self.codec.decode(msg.value()))
        finally:
            consumer.close()
        return records

    def statuses(self, count: int) -> list[OrderStatusChanged]:
        """The first ``count`` status changes on ``dom.order-status.v1`` (or fewer, in time)."""
        records = self.read("dom.order-status.v1", lambda r: len(r) >= count)
        return [r for r in records if isinstance(r, OrderStatusChanged)]

    def availability_where(
        self, sku: str, done: Callable[[dict[str, LocationAvailability]], bool]
    ) -> dict[str, LocationAvailability]:
        """The first availability of ``sku`` whose per-location figures satisfy ``done``."""
        found: dict[str, LocationAvailability] = {}

        def matches(records: list[Message]) -> bool:
            for record in reversed(records):
                if isinstance(record, Availability) and record.sku == sku:
                    now = {x.location_id: x for x in record.locations}
                    if done(now):
                        found.update(now)
                        return True
            return False

        self.read("dom.inventory.availability.v1", matches)
        return found

    def decision_latencies_ms(self) -> list[float]:
        """placed (the order's broker timestamp) to routing outcome (the outcome's), per order."""
        placed = {m.key(): m.timestamp()[1] for m in self.read_changelog_messages("dom.orders.v1")}
        outcome: dict[bytes, int] = {}
        for message in self.read_changelog_messages("dom.order-status.v1"):
            status = self.codec.decode(message.value())
            if status.status.value not in ("RECEIVED",) and message.key() not in outcome:
                outcome[message.key()] = message.timestamp()[1]
        return [outcome[k] - placed[k] for k in outcome if k in placed]

    def wait_until_idle(self, timeout: float = 120.0, quiet: float = 3.0) -> None:
        """Until nothing is on its way between the stages: every worker has handed each record
        of its partitions to its stages (``dom_consumer_lag`` 0 at every partition) and no
        topic of the test, changelogs included, has grown for ``quiet`` seconds (an input
        being applied writes its value and sends its records)."""
        admin = AdminClient(self.settings.librdkafka_config())
        deadline = time.monotonic() + timeout
        ends, since = self._ends(admin), time.monotonic()
        while True:
            time.sleep(0.5)
            now = self._ends(admin)
            if now != ends:
                ends, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet and not any(map(self._lag, self.workers)):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the workers were still busy after {timeout} s: " + self.lag_report()
                )

    def lag_report(self) -> str:
        """Each worker's source partitions with records not yet handed to a stream: a partition
        listed was never fetched (or was rewound); one missing although its orders wait had its
        records handed over and dropped."""
        return "; ".join(f"{name} lag {self._lag(name)}" for name in self.workers)

    def _lag(self, name: str) -> dict[str, int]:
        """Worker ``name``'s partitions with records not yet handed to a stream."""
        return {
            f"{s.labels['topic'].removeprefix(self.settings.topic_prefix)}"
            f"[{s.labels['partition']}]": int(s.value)
            for s in self.metric_samples(name)
            if s.name == "dom_consumer_lag" and s.value > 0
        }

    def metric_samples(self, name: str) -> list[Any]:
        """Every sample worker ``name`` exports at /metrics (none if it does not answer)."""
        try:
            with urllib.request.urlopen(self.url(name, "/metrics"), timeout=10) as response:
                text = response.read().decode()
        except OSError:
            return []
        return [s for family in text_string_to_metric_families(text) for s in family.samples]

    def _ends(self, admin: AdminClient) -> dict[tuple[str, int], int]:
        """The end offset of every partition of the test's topics (one request)."""
        partitions = [
            TopicPartition(name, p)
            for name, topic in admin.list_topics(timeout=10).topics.items()
            if name.startswith(self.settings.topic_prefix)
            for p in topic.partitions
        ]
        answers = admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions})
        return {(tp.topic, tp.partition): f.result().offset for tp, f in answers.items()}

    def read_changelog_messages(self, topic: str, quiet: float = 3.0) -> list:
        return self.read_changelog_messages_raw(self.settings.topic(topic), quiet)

    def read_unpacked(self, topic: str, quiet: float = 3.0) -> list[tuple[Any, Message]]:
        """Every record of ``topic`` decoded, with the message that carried it: a batched
        (internal) topic's message packs several, each given on its own."""
        records = []
        for message in self.read_changelog_messages(topic, quiet):
            packed = self.codec.unpack(message.value())
            for value in [message.value()] if packed is None else [v for _, v in packed]:
                records.append((message, self.codec.decode(value)))
        return records

    def read_changelog_messages_raw(
        self, name: str, quiet: float = 3.0, *, tombstones: bool = False
    ) -> list:
        """Every message of a topic (by its real name) until it stays quiet ``quiet`` seconds;
        tombstones too when asked."""
        return self._read_until_quiet(name, quiet, tombstones)

    def read_raw(self, topic: str, expected: int, timeout: float = 60.0) -> list:
        consumer = self._consumer(topic)
        got: list = []
        deadline = time.monotonic() + timeout
        try:
            while len(got) < expected and time.monotonic() < deadline:
                got += [m for m in consumer.consume(1000, 0.5) if m.error() is None]
        finally:
            consumer.close()
        return got

    def read_changelog(self, name: str, quiet: float = 3.0) -> list[bytes]:
        """Every value of a topic (by its real name) in order, until it stays quiet."""
        return [m.value() for m in self._read_until_quiet(name, quiet, tombstones=False)]

    def _read_until_quiet(self, name: str, quiet: float, tombstones: bool) -> list:
        """Polls in short steps: ``consume(n, quiet)`` waited out ``quiet`` for every batch
        short of ``n`` messages (10 s per read of the availability topic in a burst)."""
        consumer = self._consumer(name, prefixed=True)
        messages: list = []
        heard = time.monotonic()
        try:
            while time.monotonic() - heard < quiet:
                batch = [m for m in consumer.consume(5000, 0.2) if m.error() is None]
                if batch:
                    heard = time.monotonic()
                messages += [m for m in batch if m.value() or tombstones]
        finally:
            consumer.close()
        return messages

    def _consumer(self, topic: str, prefixed: bool = False) -> Consumer:
        name = topic if prefixed else self.settings.topic(topic)
        consumer = Consumer(
            self.settings.librdkafka_config(
                **{
                    "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                    "auto.offset.reset": "earliest",
                    "enable.auto.commit": False,
                }
            )
        )
        meta = consumer.list_topics(name, timeout=10)
        parts = [TopicPartition(name, p, 0) for p in meta.topics[name].partitions]
        consumer.assign(parts)
        return consumer


def partition_of(key: str, partitions: int) -> int:
    """The partition the workers' and the connectors' producers (murmur2) put ``key`` in."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def group_members(settings: Settings) -> dict[str, frozenset[tuple[str, int]]]:
    """The workers' consumer group's members by instance id (static membership), with the
    partitions each holds."""
    admin = AdminClient(settings.librdkafka_config())
    [future] = admin.describe_consumer_groups([settings.app_id]).values()
    return {
        m.group_instance_id: frozenset(
            (tp.topic, tp.partition) for tp in m.assignment.topic_partitions
        )
        for m in future.result(timeout=30).members
    }

"""Nothing may stop the pipeline: poison on every inbound topic, against the real broker.

For each inbound record type, Hypothesis draws records that are valid Avro but extreme (see
``tests/e2e/poison_records.py``), plus raw bytes and tombstones on every topic. After each small
batch of them, the test checks that the pipeline still works: a normal order placed afterwards
gets ALLOCATED (its lines span every partition of the sku topic, so every sku owner answers),
every poison order that could be taken gets a routing outcome (and its page on the worker
shows it), the network view follows the rules topic, no input failed inside a stage (an
``internal_error`` dead letter is a crash the outbox caught), and the worker process is alive.
At the end every input that could not be applied is on ``dom.dlq.v1`` with its reason, and
nothing valid is.

One worker serves the whole module; master data, stock and the orders the poison aims at are
loaded once. Hypothesis is derandomized and does not shrink: after a failure the pipeline's
state is no longer the one the failing input met, so the first failing batch is reported as is.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import schemas.internal  # noqa: F401  (registers the internal records with the codec)
from config.settings import Settings
from schemas import topics as registry
from schemas.codec import DecodeError
from schemas.enums import ROUTING_OUTCOMES as OUTCOMES
from schemas.models import (
    TOP_LEVEL_MODELS,
    Location,
    Message,
    OrderPlaced,
    OrderStatusChanged,
    Product,
    Rule,
    RuleStage,
    StockEvent,
)
from streams.core.rules.ruleset import compile_rule
from tests.e2e.harness import Pipeline, partition_of
from tests.e2e.poison_records import (
    DC,
    EXPLICIT,
    FRESH_LONG_ORDER,
    FRESH_ORDER,
    LONG,
    POISON_SKUS,
    POISONS,
    STORE,
    TARGETS,
    Poison,
    brief,
    junk,
)
from tests.unit.factories import (
    make_fulfillment_update,
    make_location,
    make_order,
    make_product,
    make_rule,
    make_stock_event,
)

pytestmark = pytest.mark.broker

PARTITIONS = 3
STOCK = 1_000_000
WAIT_S = 30.0
INBOUND = tuple(t for t in registry.CONTRACT_TOPICS if t.direction == registry.Direction.INBOUND)
RECORD_TYPES = {t.name: tuple(r.removeprefix("dom.v1.") for r in t.records) for t in INBOUND}
ORDER_KEYED = {registry.ORDERS.name, registry.FULFILLMENT_EVENTS.name, registry.RETURNS.name}
EXAMPLES = int(os.environ.get("DOM_POISON_EXAMPLES", "25"))
"""Batches per record type, of one to three records each. The run is the same every time;
``DOM_POISON_EXAMPLES=200 DOM_POISON_RANDOM=1`` explores further, differently each run."""

HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="DOM_POISON_RANDOM" not in os.environ,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: see the module's docstring
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def compiles(rule: Rule) -> bool:
    """Whether the rule compiles, as the rules stage judges it (a rule that does not is owed a
    dead letter, whatever else it holds)."""
    try:
        compile_rule(rule)
    except Exception:
        return False
    return True


def normal_skus() -> tuple[str, ...]:
    """One sku per partition of the sku-keyed topics, so a normal order asks every owner."""
    by_partition: dict[int, str] = {}
    for n in itertools.count():
        sku = f"SKU-OK-{n}"
        by_partition.setdefault(partition_of(sku, PARTITIONS), sku)
        if len(by_partition) == PARTITIONS:
            return tuple(sorted(by_partition.values()))
    raise AssertionError("unreachable")


@dataclass
class Sent:
    """A poison input as it went out, and what the pipeline owes it."""

    what: str
    topic: str  # prefixed name
    partition: int
    offset: int
    dead_letter: bool | None
    """True: must be dead-lettered; False: must not be; None: either is the contract's."""


class World:
    """The module's pipeline, what the test sent into it and what came out of it."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.settings = pipeline.settings
        self.codec = pipeline.codec
        self.producer = Producer(self.settings.producer_config(**{"message.max.bytes": 2_000_000}))
        self.reader = self._reader()
        self.statuses: dict[str, list[OrderStatusChanged]] = defaultdict(list)
        self.letters: dict[tuple[str, int, int], dict[str, str]] = {}
        self.known_orders: set[str] = set(TARGETS)
        self.known_locations: set[str] = {DC, STORE}
        self.sent: list[Sent] = []
        self.normal: list[tuple[str, int, int]] = []
        self.ids = itertools.count(1)
        self.broken: str | None = None
        self.skus = normal_skus()
        self.log_from = 0

    # ---- sending ----------------------------------------------------------------------------

    def send(
        self, topic: str, key: bytes | None, value: bytes | None, timestamp_ms: int = 0
    ) -> Callable[[], tuple[int, int]]:
        """Produce to ``topic`` (unprefixed); what it returns gives (partition, offset) later."""
        outcome: list[Any] = []

        def delivered(err: KafkaError | None, msg: Any) -> None:
            outcome.append(err or (msg.partition(), msg.offset()))

        name = self.settings.topic(topic)
        self.producer.produce(
            name, key=key, value=value, on_delivery=delivered, timestamp=timestamp_ms
        )

        def where() -> tuple[int, int]:
            assert outcome and not isinstance(outcome[0], KafkaError), outcome
            partition, offset = outcome[0]
            return int(partition), int(offset)

        return where

    def flush(self) -> None:
        assert self.producer.flush(30) == 0, "the producer could not deliver in 30 s"

    def send_records(self, records: Sequence[Message]) -> None:
        for record in records:
            topic = registry.topic_for(record.avro_name)
            key = str(getattr(record, topic.key)).encode()
            self.send(topic.name, key, self.codec.encode(record))
        self.flush()

    def fill(self, record: Any) -> Any:
        """The record with its placeholders replaced by new order ids."""
        if isinstance(record, Mapping):
            return {k: self.fill(v) for k, v in record.items()}
        if isinstance(record, list):
            return [self.fill(v) for v in record]
        if record == FRESH_ORDER:
            return f"P-{next(self.ids)}"
        if record == FRESH_LONG_ORDER:
            return f"P-{next(self.ids)}-" + "y" * LONG
        return record

    # ---- reading ----------------------------------------------------------------------------

    def _reader(self) -> Consumer:
        consumer = Consumer(
            self.settings.librdkafka_config(
                **{
                    "group.id": f"poison-reader-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                }
            )
        )
        names = [self.settings.topic(t.name) for t in (registry.ORDER_STATUS, registry.DLQ)]
        consumer.assign([TopicPartition(n, p, 0) for n in names for p in range(PARTITIONS)])
        return consumer

    def drain(self, seconds: float = 0.2) -> None:
        status_topic = self.settings.topic(registry.ORDER_STATUS.name)
        for message in self.reader.consume(5000, seconds):
            if message.error() is not None:
                continue
            value = message.value()
            if message.topic() == status_topic and value is not None:
                status = self.codec.decode_as(value, OrderStatusChanged)
                self.statuses[status.order_id].append(status)
                continue
            raw: list[tuple[str, Any]] = list(cast(Any, message.headers()) or [])
            headers = {k: bytes(v or b"").decode("utf-8", "replace") for k, v in raw}
            where = (
                headers.get("dom.source.topic", ""),
                int(headers.get("dom.source.partition", -1)),
                int(headers.get("dom.source.offset", -1)),
            )
            self.letters[where] = headers

    def wait(self, done: Callable[[], bool], timeout: float = WAIT_S) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            self.drain()
        return True

    def has_outcome(self, order_id: str) -> bool:
        return self.outcome(order_id) is not None

    def outcome(self, order_id: str) -> OrderStatusChanged | None:
        return next((s for s in self.statuses[order_id] if s.status in OUTCOMES), None)

    def internal_errors(self) -> list[dict[str, str]]:
        return [h for h in self.letters.values() if h.get("dom.error", "").startswith("internal")]

    def stocked(self, sku: str) -> bool:
        """The worker's view has the sku's stock at DC-OK."""
        try:
            figures = self.get(f"/inventory/{sku}/")["locations"]
        except OSError:
            return False
        return any(x["location_id"] == DC and x["available"] > 0 for x in figures)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.pipeline.url("w1", path), timeout=10) as response:
            return json.loads(response.read())

    # ---- the property -----------------------------------------------------------------------

    def survive(self, batch: list[Poison]) -> None:
        """Send ``batch``, then check that the pipeline still does its work."""
        if self.broken is not None:
            pytest.fail(f"the pipeline stopped on an earlier input:\n{self.broken}")
        self.log_from = len(self.pipeline.workers["w1"].log_file.read_bytes())
        pending = []
        for poison in batch:
            key, value, record = poison.materialize(self.fill)
            where = self.send(poison.topic, key, value, poison.timestamp_ms)
            pending.append((poison, key, value, record, where))
        normal_id = f"N-{next(self.ids)}"
        normal = make_order(normal_id, lines=[(sku, 1) for sku in self.skus])
        normal_at = self.send(registry.ORDERS.name, normal_id.encode(), self.codec.encode(normal))
        self.flush()
        self.normal.append((self.settings.topic(registry.ORDERS.name), *normal_at()))
        sent, routed = [], []
        for poison, key, value, record, where in pending:
            dead_letter, order_id = self.expectation(poison, key, value)
            what = f"{poison.topic} key={brief(key)} " + (
                f"{poison.record_name} {brief(record)}" if record else f"value={brief(value)}"
            )
            partition, offset = where()
            item = Sent(what, self.settings.topic(poison.topic), partition, offset, dead_letter)
            sent.append(item)
            if order_id is not None:
                routed.append((order_id, item))
        self.sent += sent
        problems = self.check(normal_id, routed)
        if problems:
            self.broken = self.report(sent, problems)
            pytest.fail(self.broken)

    def expectation(
        self, poison: Poison, key: bytes | None, value: bytes | None
    ) -> tuple[bool | None, str | None]:
        """(dead letter owed, order that must get an outcome)."""
        topic = registry.by_name(poison.topic)
        if value is None:
            return (not topic.compacted), None  # a tombstone deletes only on compacted topics
        try:
            record = self.codec.decode_as(value, *self._models(poison.topic))
        except DecodeError:
            return True, None
        own = str(getattr(record, topic.key)).encode()
        if key != own:
            return True, None
        if isinstance(record, OrderPlaced):
            if record.order_id in self.known_orders:
                return None, None  # the same order id again: ignored
            self.known_orders.add(record.order_id)
            return False, record.order_id
        if poison.topic in ORDER_KEYED:
            order_id = cast(Any, record).order_id
            return (order_id not in self.known_orders) or None, None
        if isinstance(record, Rule):
            return not compiles(record), None
        if isinstance(record, Location):
            self.known_locations.add(record.location_id)
            return False, None
        if isinstance(record, StockEvent) and record.location_id not in self.known_locations:
            return True, None  # stock of a place that does not exist cannot be applied
        if isinstance(record, Product):
            return False, None
        return None, None

    def _models(self, topic: str) -> tuple[type[Message], ...]:
        return tuple(TOP_LEVEL_MODELS[f"dom.v1.{name}"] for name in RECORD_TYPES[topic])

    def check(self, normal_id: str, routed: list[tuple[str, Sent]]) -> list[str]:
        problems = []
        self.wait(lambda: self.outcome(normal_id) is not None)
        status = self.outcome(normal_id)
        if status is None:
            problems.append(f"the normal order {normal_id} got no outcome in {WAIT_S:.0f} s")
        elif status.status != "ALLOCATED":
            problems.append(f"the normal order {normal_id} was {status.status}: {status.reason}")
        for order_id, item in routed:
            if not self.wait(partial(self.has_outcome, order_id), timeout=10):
                problems.append(f"order {brief(order_id)} got no routing outcome ({item.what})")
            elif (page := self.order_page(order_id)) is not None:
                problems.append(f"GET /orders/{brief(order_id)}/: {page}")
        errors = self.internal_errors()
        if errors:
            problems += [f"a stage failed on an input: {h.get('dom.error')}" for h in errors]
        if not self.view_follows():
            problems.append("the network view no longer follows dom.rules.v1")
        worker = self.pipeline.workers["w1"]
        if worker.proc is None or worker.proc.poll() is not None:
            problems.append("the worker process exited")
        return problems

    def order_page(self, order_id: str) -> str | None:
        """What is wrong with the order's page on the worker, if anything."""
        try:
            page = self.get(f"/orders/{urllib.parse.quote(order_id, safe='')}/")
        except (OSError, ValueError) as exc:
            return repr(exc)
        outcome = self.outcome(order_id)
        if outcome is not None and page.get("order_id") != order_id:
            return f"shows {brief(str(page))}"
        return None

    def view_follows(self) -> bool:
        """A new version of a harmless rule reaches the worker's view (``GET /rules/``)."""
        version = next(self.ids)
        probe = make_rule(
            "probe-view",
            version=version,
            stage=RuleStage.MARKETING,
            condition='"probe" in order.tags',
            actions=(),
        )
        self.send_records([probe])

        def seen() -> bool:
            try:
                rules = self.get("/rules/")["rules"]
            except OSError:
                return False
            return any(r["rule_id"] == "probe-view" and r["version"] == version for r in rules)

        return self.wait(seen, timeout=20)

    def report(self, sent: list[Sent], problems: list[str]) -> str:
        inputs = "\n".join(f"  - {s.what[:600]}" for s in sent)
        return "\n".join(
            ["The pipeline did not survive these inputs:", inputs, "Problems:"]
            + [f"  - {p[:1000]}" for p in problems]
            + ["Worker log, from its first error after these inputs were sent:", self.first_error()]
        )

    def first_error(self) -> str:
        log = self.pipeline.workers["w1"].log_file.read_bytes()[self.log_from :]
        text = log.decode("utf-8", "replace")
        at = min((i for i in (text.find("[ERROR]"), text.find("Traceback")) if i >= 0), default=0)
        return text[max(0, at - 300) : at + 5000]


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp_path: Path = tmp_path_factory.mktemp("poison")
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        topic_partitions=PARTITIONS,
        data_dir=tmp_path / "var",
    )
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    world = World(pipeline)
    try:
        load(world)
        yield world
    finally:
        world.reader.close()
        pipeline.stop_all()


def load(world: World) -> None:
    """The network, stock of every sku, and the orders the poison aims at (some shipped)."""
    dc = make_location(DC)
    store = make_location(STORE, kind="STORE", capabilities=("PICKUP", "SHIP_FROM_STORE"))
    skus = (*world.skus, *POISON_SKUS)
    world.send_records(
        [dc, store]
        + [make_product(sku) for sku in skus]
        + [make_stock_event(sku=sku, location_id=DC, quantity=STOCK) for sku in skus]
    )
    assert world.wait(lambda: all(world.stocked(sku) for sku in skus), timeout=90)
    world.send_records([make_order(t, lines=[(world.skus[0], 3)]) for t in TARGETS])
    assert world.wait(lambda: all(world.outcome(t) for t in TARGETS), timeout=90), (
        world.pipeline.workers["w1"].log_tail()
    )
    assert {world.outcome(t).status for t in TARGETS} == {"ALLOCATED"}  # type: ignore[union-attr]
    shipped_ids = ("T-1", "T-3")
    shipped = [make_fulfillment_update(t, f"{t}-1-1", DC) for t in shipped_ids]
    world.send_records(shipped)
    assert world.wait(lambda: all(world.statuses[t][-1].status == "COMPLETED" for t in shipped_ids))


def poison_test(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Hypothesis over batches of ``name`` poison, after the cases the guarantee names."""

    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        for batch in reversed(EXPLICIT.get(name, [])):
            test = example(batch=batch)(test)
        batches = st.lists(POISONS[name](), min_size=1, max_size=3)
        return HYPOTHESIS(given(batch=batches)(test))

    return decorate


# One test per record type, in the order the pipeline depends on them: rules first, so that
# the poison orders after them are evaluated against whatever rules compiled.


@poison_test("Rule")
def test_rules_cannot_stop_the_pipeline(world: World, batch: list[Poison]) -> None:
    world.survive(batch)


@poison_test("Location")
def test_locations_cannot_stop_the_pipeline(world: World, batch: list[Poison]) -> None:
    world.survive(batch)


@poison_test("Product")
def test_products_cannot_stop_the_pipeline(world: World, batch: list[Poison]) -> None:
    world.survive(batch)


@poison_test("StockEvent")
def test_stock_events_cannot_stop_the_pipeline(world: World, batch: list[Poison]) -> None:
    world.survive(batch)


@poison_test("OrderPlaced")
def test_orders_placed_cannot_stop_the_pipeline(world: World, batch: list[Poison]) -> None:
    world.survive(batch)


@poison_test("OrderCancelled")
def test_cancellations_cannot_stop_the_pipeline(world: World, batch: list[Poison]) -> None:
    world.survive(batch)


@poison_test("FulfillmentUpdate")
def test_fulfillment_updates_cannot_stop_the_pipeline(world: World, batch: list[Poison]) -> None:
    world.survive(batch)


@poison_test("ReturnRequested")
def test_return_requests_cannot_stop_the_pipeline(world: World, batch: list[Poison]) -> None:
    world.survive(batch)


@poison_test("ReturnReceived")
def test_return_receipts_cannot_stop_the_pipeline(world: World, batch: list[Poison]) -> None:
    world.survive(batch)


@HYPOTHESIS
@given(batch=st.lists(st.sampled_from(INBOUND).flatmap(junk), min_size=1, max_size=4))
def test_raw_bytes_and_tombstones_cannot_stop_the_pipeline(
    world: World, batch: list[Poison]
) -> None:
    world.survive(batch)


def test_what_could_not_be_applied_is_dead_lettered(world: World) -> None:
    """Last: every input owed a dead letter has one (with its reason), no other input has."""
    if world.broken is not None:
        pytest.fail("the pipeline stopped on an earlier input; see that test's failure")
    owed = [s for s in world.sent if s.dead_letter]
    world.wait(lambda: all((s.topic, s.partition, s.offset) in world.letters for s in owed), 60)
    missing = [s.what[:300] for s in owed if (s.topic, s.partition, s.offset) not in world.letters]
    assert not missing, "not dead-lettered:\n" + "\n".join(missing)
    for s in owed:
        headers = world.letters[(s.topic, s.partition, s.offset)]
        assert headers.get("dom.error") and headers.get("dom.stage"), (s.what, headers)
    wrongly = [
        f"{s.what[:300]}: {world.letters[(s.topic, s.partition, s.offset)].get('dom.error')}"
        for s in world.sent
        if s.dead_letter is False and (s.topic, s.partition, s.offset) in world.letters
    ]
    assert not wrongly, "dead-lettered though valid:\n" + "\n".join(wrongly)
    normal = [where for where in world.normal if where in world.letters]
    assert not normal, f"normal orders dead-lettered: {[world.letters[w] for w in normal]}"
    assert len(owed) >= 10, "the poison should have given the stages plenty to refuse"

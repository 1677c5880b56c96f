"""An upstream system that produces in transactions, on the real broker: its commit markers
leave gaps in the offsets, and an aborted transaction's records are on the log too. The
pipeline starts on master data that ends on markers, answers every committed order, never
acts on an aborted one, and reads no gap back from the broker as if records were lost."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from config.settings import Settings
from dom.admin import create_topics
from dom.topic_reader import read_to_end
from schemas import topics as registry
from schemas.codec import Codec
from schemas.enums import ROUTING_OUTCOMES
from schemas.models import Message, OrderStatusChanged
from tests.e2e.harness import Pipeline
from tests.unit.factories import make_location, make_order, make_product, make_stock_event


class TransactionalUpstream:
    """A channel's producer with a transactional id: each call is one transaction."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.codec = Codec()
        conf = settings.librdkafka_config(**{"transactional.id": f"up-{uuid.uuid4().hex[:8]}"})
        self.producer = Producer(conf)
        self.producer.init_transactions(30)

    def transaction(self, records: Iterable[Message], *, commit: bool = True) -> None:
        self.producer.begin_transaction()
        for record in records:
            topic = registry.topic_for(record.avro_name)
            self.producer.produce(
                self.settings.topic(topic.name),
                key=str(getattr(record, topic.key)).encode(),
                value=self.codec.encode(record),
            )
        if commit:
            self.producer.commit_transaction(30)
        else:
            self.producer.flush(30)  # on the log, then aborted: a reader must skip them
            self.producer.abort_transaction(30)


def test_transactions_upstream_are_read_committed_without_reading_gaps_back(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    outcomes, log = orders_around_an_aborted_one(
        Pipeline(make_settings(topic_partitions=1), tmp_path)
    )
    assert all(outcomes.get(o) == "ALLOCATED" for o in COMMITTED), outcomes
    assert "ORD-ABORTED" not in outcomes  # not even RECEIVED: the orders after it were read
    assert "found a hole" not in log, [x for x in log.splitlines() if "found a hole" in x]


def test_without_its_fix_the_worker_routes_an_order_whose_transaction_was_aborted(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Faust's consumer reads uncommitted records unless Faust runs exactly-once."""
    pipeline = Pipeline(make_settings(topic_partitions=1), tmp_path)
    outcomes, _ = orders_around_an_aborted_one(pipeline, without="read-committed")
    assert outcomes.get("ORD-ABORTED") == "ALLOCATED", outcomes


def test_without_its_fix_every_commit_marker_is_taken_for_a_lost_record(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """aiokafka passes over markers silently: the sequencer would read back a hole at each."""
    pipeline = Pipeline(make_settings(topic_partitions=1), tmp_path)
    outcomes, log = orders_around_an_aborted_one(pipeline, without="gaps")
    assert all(outcomes.get(o) == "ALLOCATED" for o in COMMITTED), outcomes
    holes = [x for x in log.splitlines() if "found a hole" in x]
    assert len(holes) >= len(COMMITTED) - 1, holes  # the marker after each order but the last


COMMITTED = [f"ORD-{n}" for n in range(12)]
OUTCOMES = {x.value for x in ROUTING_OUTCOMES}


def orders_around_an_aborted_one(
    pipeline: Pipeline, without: str | None = None
) -> tuple[dict[str, str], str]:
    """Master data and 12 orders, each in a transaction of its own, and one aborted order among
    them, on one partition (the orders after the aborted one prove it was passed over, not
    pending): the last status of each order that got one (its routing outcome, or RECEIVED),
    and the worker's log."""
    upstream = TransactionalUpstream(pipeline.settings)
    for record in (
        make_location("DC-EAST"),
        make_product("SKU-1"),
        make_stock_event("SKU-1", "DC-EAST", 100, event_id="count-1"),
    ):
        upstream.transaction([record])  # every master topic ends on a commit marker
    worker = pipeline.start_worker("w1", without=without)
    try:
        pipeline.availability_where("SKU-1", lambda f: "DC-EAST" in f)  # stock in before orders
        for n, order_id in enumerate(COMMITTED):
            if n == 6:
                upstream.transaction([make_order("ORD-ABORTED")], commit=False)
            upstream.transaction([make_order(order_id, lines=[("SKU-1", 1)])])

        def answered(records: list[Message]) -> bool:
            done = {
                r.order_id
                for r in records
                if isinstance(r, OrderStatusChanged) and r.status in ROUTING_OUTCOMES
            }
            return set(COMMITTED) <= done

        records = pipeline.read("dom.order-status.v1", answered, timeout=90)
        outcomes: dict[str, str] = {}
        for r in records:
            if isinstance(r, OrderStatusChanged) and outcomes.get(r.order_id) not in OUTCOMES:
                outcomes[r.order_id] = r.status.value  # a routing outcome is kept once seen
        return outcomes, worker.log_file.read_text(errors="replace")
    finally:
        pipeline.stop_all()


def test_a_topic_ending_on_a_commit_marker_is_read_to_its_end(make_settings) -> None:  # type: ignore[no-untyped-def]
    """What the command line and the bench read to the end (``dom.topic_reader``): the last
    offset of a partition written in transactions holds the marker, never a record."""
    settings = make_settings(topic_partitions=1)
    create_topics(settings)
    TransactionalUpstream(settings).transaction([make_location("DC-EAST")])
    read: list[list[Any]] = []
    reader = threading.Thread(
        target=lambda: read.append(read_to_end(settings, "dom.locations.v1")), daemon=True
    )
    reader.start()
    reader.join(60)
    assert not reader.is_alive(), "still waiting for a record at the marker's offset"
    [[message]] = read
    assert Codec().decode(message.value()).location_id == "DC-EAST"

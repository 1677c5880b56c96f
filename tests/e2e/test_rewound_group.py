"""A replay from far back changes nothing: an operator rewinds the workers' consumer group to
the start of every topic (to read again after an incident, say), and the worker reads all of
it again, far more inputs than a sku or an order remembers by id.

Before the stored values noted what they had read (``streams/core/replays.py``), the stock
events a sku had forgotten were applied again: the snapshot put its on-hand back to 0 and
each forgotten delta added its unit once more.
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition

from config.settings import Settings
from dom.admin import admin_client
from schemas.enums import StockEventKind
from schemas.models import FulfillmentCommand, OrderStatusChanged
from tests.e2e.harness import Pipeline
from tests.e2e.invariants import latest_availability, outcomes_by_order
from tests.e2e.world import one_dc
from tests.integration.kafka_io import committed_offsets
from tests.unit.factories import make_order, make_stock_event

pytestmark = pytest.mark.broker

DELTAS = 1200  # more than a sku remembers by id (1,000), in several batches (500 at most)
WAIT = 120.0


def test_a_group_rewound_to_the_start_reads_everything_again_and_changes_nothing(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(topic_partitions=1)
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    try:
        one_dc(pipeline, {"SKU-1": 0})
        adjust = StockEventKind.ADJUSTMENT
        pipeline.produce(
            make_stock_event("SKU-1", "DC-EAST", 1, adjust, event_id=f"adj-{i}")
            for i in range(DELTAS)
        )
        pipeline.availability_where("SKU-1", lambda now: now["DC-EAST"].on_hand == DELTAS)
        pipeline.produce([make_order(order_id="ORD-1", lines=[("SKU-1", 5)])])
        pipeline.availability_where("SKU-1", lambda now: now["DC-EAST"].reserved == 5)
        wait_until(lambda: behind(settings) == {}, "the worker to commit what it read")
        pipeline.workers["w1"].stop()

        rewound = rewind_to_start(settings)
        assert settings.topic("dom.stock.v1") in rewound, rewound
        pipeline.start_worker("w1")
        wait_until(lambda: behind(settings) == {}, "the worker to read everything again")

        stock = latest_availability(pipeline, {"SKU-1"})["SKU-1"]
        figures = {x.location_id: (x.on_hand, x.reserved) for x in stock.locations}
        assert figures == {"DC-EAST": (DELTAS, 5)}  # each delta once, the order reserved once
        statuses = pipeline.read("dom.order-status.v1", lambda r: False, timeout=5)
        outcomes = outcomes_by_order([s for s in statuses if isinstance(s, OrderStatusChanged)])
        assert [s.status.value for s in outcomes["ORD-1"]] == ["ALLOCATED"]
        commands = pipeline.read("dom.fulfillment.commands.v1", lambda r: False, timeout=5)
        ids = {c.command_id for c in commands if isinstance(c, FulfillmentCommand)}
        assert len(ids) == 1, ids
        skipped = replays_skipped(pipeline)
        assert skipped.get("inventory", 0) >= DELTAS - 500, skipped
    finally:
        pipeline.stop_all()


def rewind_to_start(settings: Settings) -> list[str]:
    """Set every committed offset of the workers' group to 0 (the group is empty: the worker
    stopped); return the topics rewound."""
    admin = admin_client(settings)
    partitions = [
        TopicPartition(tp.topic, tp.partition, 0)
        for tp in committed_offsets(settings, settings.app_id)
    ]
    request = [ConsumerGroupTopicPartitions(settings.app_id, partitions)]
    deadline = time.monotonic() + WAIT
    while True:  # refused while the stopped worker's membership lingers
        try:
            [done] = admin.alter_consumer_group_offsets(request).values()
            done.result(timeout=30)
            return sorted({tp.topic for tp in partitions})
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def behind(settings: Settings) -> dict[str, int]:
    """Per topic the group reads, how far its committed offset is behind the topic's end."""
    committed = committed_offsets(settings, settings.app_id)
    reader = Consumer(settings.librdkafka_config(**{"group.id": "rewind-probe"}))
    try:
        lag = {}
        for tp in committed:
            _low, high = reader.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), 10)
            if tp.offset < high:
                lag[tp.topic] = high - max(tp.offset, 0)
        return lag
    finally:
        reader.close()


def replays_skipped(pipeline: Pipeline) -> dict[str, float]:
    with urllib.request.urlopen(pipeline.url("w1", "/metrics"), timeout=10) as response:
        page = response.read().decode()
    pattern = r'^dom_stage_replays_skipped_total\{stage="(\w+)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, page, re.MULTILINE)}


def wait_until(probe: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not probe():
        assert time.monotonic() < deadline, f"waited {WAIT:.0f}s for {what}"
        time.sleep(1.0)

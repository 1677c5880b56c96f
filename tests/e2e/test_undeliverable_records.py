"""A record the broker refuses stops its stage, and loses nothing: the stage's inputs are not
committed, and once the broker takes the records again the order is answered, without any
later record of its partition to show the stage what it skipped.

The refusal is made certain and final: the order-status topic is given a ``max.message.bytes``
smaller than any record, so the broker answers every status with MESSAGE_TOO_LARGE, which the
producer does not retry. Before the stage confirmed its deliveries, the statuses were dropped,
the placement was committed, and the order was never answered.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from config.settings import Settings
from dom.admin import admin_client
from schemas.models import OrderStatusChanged
from tests.e2e.harness import Pipeline
from tests.e2e.world import one_dc
from tests.unit.factories import make_order

pytestmark = pytest.mark.broker

STATUS_TOPIC = "dom.order-status.v1"
WAIT = 90.0


@pytest.mark.parametrize("refused", ["status", "table"])
def test_a_refused_record_stops_the_stage_until_the_broker_takes_it(
    refused: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """``status``: the broker refuses the order's statuses; ``table``: it refuses the order's
    state (the orders table's changelog), and no status may show before that state is stored."""
    # One partition, as few records as can be: the restarted stage must read ORD-1 again
    # without a later record of its partition to show that it was skipped.
    settings = make_settings(topic_partitions=1)
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    try:
        one_dc(pipeline, {"SKU-1": 10})
        topic = {
            "status": settings.topic(STATUS_TOPIC),
            "table": f"{settings.app_id}-orders-changelog",
        }[refused]
        set_max_message_bytes(settings, topic, "1")

        pipeline.produce([make_order(order_id="ORD-1", lines=[("SKU-1", 2)])])
        orders = wait_for(
            lambda: crashed_stage(pipeline, "orders"), "the orders stage to stop on the refusal"
        )
        assert orders["last_error"].startswith("DeliveryFailed: "), orders
        assert topic in orders["last_error"] and "MessageSizeTooLarge" in orders["last_error"]
        log = pipeline.workers["w1"].log_tail(100_000)
        assert f"orders stage: the broker refused 1 of its records to {topic}" in log
        time.sleep(3)  # the worker commits every second: it has had its chances
        assert committed(settings, settings.topic("dom.orders.v1")) in (None, 0)  # ORD-1 is at 0
        if refused == "table":
            shown = pipeline.read_changelog_messages(STATUS_TOPIC, quiet=1.0)
            assert shown == [], "a status went out before the order's state was stored"

        set_max_message_bytes(settings, topic, None)
        # Nothing else comes to ORD-1's partition: the restarted stage reads it again itself.
        answered = statuses_by_order(pipeline, {"ORD-1"})
        assert answered["ORD-1"] == ["RECEIVED", "ALLOCATED"], pipeline.workers["w1"].log_tail()
        pipeline.produce([make_order(order_id="ORD-2", lines=[("SKU-1", 1)])])
        answered = statuses_by_order(pipeline, {"ORD-1", "ORD-2"})
        assert answered["ORD-1"] == ["RECEIVED", "ALLOCATED"]
        assert answered["ORD-2"] == ["RECEIVED", "ALLOCATED"]
        stock = pipeline.availability_where("SKU-1", lambda now: now["DC-EAST"].reserved == 3)
        assert stock["DC-EAST"].available == 7  # each order reserved once, replays and all
        assert not health(pipeline)["stages"]["orders"]["failing"]  # it works again
    finally:
        pipeline.stop_all()


def set_max_message_bytes(settings: Settings, topic: str, value: str | None) -> None:
    """Set the topic's ``max.message.bytes`` (None: back to the broker's default), and wait
    until the cluster reports it."""
    op = AlterConfigOpType.SET if value is not None else AlterConfigOpType.DELETE
    entry = ConfigEntry("max.message.bytes", value or "", incremental_operation=op)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    admin = admin_client(settings)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)

    def applied() -> bool:
        [described] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
        config = described.result(timeout=30)["max.message.bytes"]
        return config.value == value if value is not None else config.is_default

    wait_for(applied, f"max.message.bytes of {topic} to be {value}")


def crashed_stage(pipeline: Pipeline, stage: str) -> dict[str, Any] | None:
    found = health(pipeline)["stages"].get(stage, {})
    return found if found.get("crashes", 0) >= 1 else None


def health(pipeline: Pipeline) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(pipeline.url("w1", "/health/"), timeout=10) as response:
            report: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as error:  # 503 carries the report too
        with error:
            report = json.loads(error.read())
    return report


def committed(settings: Settings, topic: str) -> int | None:
    """The worker's committed offset of the topic's only partition (None: nothing yet)."""
    reader = Consumer(settings.librdkafka_config(**{"group.id": settings.app_id}))
    try:
        [position] = reader.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        reader.close()
    return position.offset if position.offset >= 0 else None


def statuses_by_order(pipeline: Pipeline, orders: set[str]) -> dict[str, list[str]]:
    """Each order's statuses, each once, in order of appearance, once every order has an
    outcome (or the wait is over)."""

    def by_order(records: list[Any]) -> dict[str, list[str]]:
        seen: dict[str, list[str]] = {}
        for record in records:
            if isinstance(record, OrderStatusChanged):
                statuses = seen.setdefault(record.order_id, [])
                if record.status.value not in statuses:
                    statuses.append(record.status.value)
        return seen

    records = pipeline.read(
        STATUS_TOPIC,
        lambda r: all(len(by_order(r).get(o, [])) >= 2 for o in orders),
        timeout=WAIT,
    )
    return by_order(records)


def wait_for(probe: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"waited {WAIT:.0f}s for {what}")

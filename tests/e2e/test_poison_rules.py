"""A rule nobody could check stops nothing (issue 14), on the real broker: ``!`` written 3,000
times, published on ``dom.rules.v1`` as an upstream system would, once stopped every worker,
and every restarted one again as it replayed the compacted topic. Now it is dead-lettered with
the limit it breaks, the rules in force stay in force, orders keep being routed, and a worker
restarted over the same topic replays it, stays up and routes."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from config.settings import Settings
from connectors.producer import ContractProducer
from schemas.commands import PackagingCommand
from schemas.enums import OrderStatus, RuleStage
from schemas.models import OrderStatusChanged, RuleAction
from tests.e2e.harness import Pipeline
from tests.e2e.world import one_dc
from tests.unit.factories import (
    make_order,
    make_rule,
)

POISON = "!" * 3000 + "true"
REASON = "condition is nested 3000 deep; the limit is 64"
PROTECT = make_rule(
    "protect-everything",
    stage=RuleStage.PACKAGING,
    condition="order.total > 0",
    actions=(RuleAction(type="set_packaging", params={"type": "PROTECTIVE"}),),
)


def worker_rules(pipeline: Pipeline, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The worker's /rules/ once ``done`` holds for it (or as it is after 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen(pipeline.url("w1", "/rules/")) as response:
            body: dict[str, Any] = json.loads(response.read())
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def routed(pipeline: Pipeline, order_id: str) -> tuple[OrderStatus, str]:
    """The order's routing outcome and the packaging its rules chose."""

    def decided(records: list[Any]) -> bool:
        return any(
            isinstance(r, OrderStatusChanged)
            and r.order_id == order_id
            and r.status is not OrderStatus.RECEIVED
            for r in records
        )

    statuses = pipeline.read("dom.order-status.v1", decided, timeout=60)
    [outcome] = [
        s.status
        for s in statuses
        if isinstance(s, OrderStatusChanged)
        and s.order_id == order_id
        and s.status is not OrderStatus.RECEIVED
    ]
    packs = pipeline.read(
        "dom.packaging.commands.v1",
        lambda r: any(isinstance(p, PackagingCommand) and p.order_id == order_id for p in r),
        timeout=30,
    )
    [pack] = [p for p in packs if isinstance(p, PackagingCommand) and p.order_id == order_id]
    return outcome, pack.packaging


def place(pipeline: Pipeline, order_id: str) -> None:
    pipeline.produce([make_order(order_id, lines=[("SKU-1", 1)], order_total=Decimal("20.00"))])


def assert_alive(pipeline: Pipeline) -> None:
    worker = pipeline.workers["w1"]
    assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()


def test_a_rule_too_deep_to_check_is_dead_lettered_and_stops_no_worker(
    pipeline: Pipeline, settings: Settings
) -> None:
    one_dc(pipeline, {"SKU-1": 100})
    # the raw record, as an upstream system writes it: the command line would refuse it
    with ContractProducer(settings) as producer:
        producer.send_all([PROTECT, make_rule("poison", condition=POISON)])
    assert producer.report.failed == 0, producer.report.errors

    [letter] = pipeline.read_raw("dom.dlq.v1", expected=1)
    assert letter.key() == b"poison"
    assert REASON in dict(letter.headers())["dom.error"].decode()
    body = worker_rules(pipeline, lambda b: bool(b["refused"]) and bool(b["rules"]))
    assert body["refused"] == [{"rule_id": "poison", "version": 1, "error": REASON}], body
    assert [r["rule_id"] for r in body["rules"]] == ["protect-everything"]
    assert_alive(pipeline)
    place(pipeline, "ORD-1")
    assert routed(pipeline, "ORD-1") == (OrderStatus.ALLOCATED, "PROTECTIVE")

    # a restart replays the compacted rules topic, poison included, and the worker stays up
    pipeline.workers["w1"].stop()
    pipeline.start_worker("w1")
    body = worker_rules(pipeline, lambda b: bool(b["refused"]) and bool(b["rules"]))
    assert body["refused"] == [{"rule_id": "poison", "version": 1, "error": REASON}], body
    place(pipeline, "ORD-2")
    assert routed(pipeline, "ORD-2") == (OrderStatus.ALLOCATED, "PROTECTIVE")
    assert_alive(pipeline)

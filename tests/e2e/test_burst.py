"""A burst of orders from every channel, competing for scarce stock over 12 locations, through
two workers on the real broker; then the same while one worker is SIGKILLed and restarted,
with stock arriving for backorders and operators retrying some while it is down."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from config.settings import Settings
from schemas.enums import ROUTING_OUTCOMES, StockEventKind
from schemas.models import OrderActionKind
from tests.e2e import world
from tests.e2e.harness import Pipeline
from tests.e2e.invariants import (
    check_invariants,
    check_nothing_waits_on_stock,
    outcomes_by_order,
    wait_for_outcomes,
)
from tests.unit.factories import make_order_action, make_stock_event

SKUS = 60
ORDERS = 1000
RESTOCKS = [
    make_stock_event(
        f"SKU-{n:04d}", world.CITIES[n % len(world.CITIES)][0], 4,
        StockEventKind.ADJUSTMENT, event_id=f"restock-{n}",
    )
    for n in range(0, SKUS, 3)
]  # fmt: skip


@pytest.fixture
def pipeline(make_settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(topic_partitions=6)
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    pipeline.start_worker("w2")
    pipeline.produce(world.master_data(SKUS))
    # routing starts once the stock is visible: every sku has published its availability
    pipeline.read(
        "dom.inventory.availability.v1", lambda r: len({a.sku for a in r}) >= SKUS, timeout=120
    )
    yield pipeline
    pipeline.stop_all()


def _report(name: str, pipeline: Pipeline, started: float, counts: dict[str, int]) -> None:
    latencies = pipeline.decision_latencies_ms()
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"\n{name}: {ORDERS} orders in {time.monotonic() - started:.1f}s "
        f"({ORDERS / (time.monotonic() - started):.0f}/s incl. reading back); decision "
        f"latency p50 {quantiles[49]:.0f} ms, p99 {quantiles[98]:.0f} ms; outcomes {counts}"
    )


def test_burst_through_two_workers_never_oversells(pipeline: Pipeline) -> None:
    orders = list(world.orders(ORDERS, SKUS))
    started = time.monotonic()
    pipeline.produce(orders)
    statuses = wait_for_outcomes(pipeline, {o.order_id for o in orders})
    counts = check_invariants(pipeline, {o.order_id for o in orders}, statuses)
    # scarce stock: the burst must exercise every kind of ending, not just the easy one
    assert counts.get("ALLOCATED", 0) > 100 and counts.get("BACKORDERED", 0) > 50, counts
    check_nothing_waits_on_stock(pipeline, orders)
    _report("burst", pipeline, started, counts)


def test_burst_survives_sigkill_of_a_worker(pipeline: Pipeline) -> None:
    orders = list(world.orders(ORDERS, SKUS, seed=23, prefix="K"))
    started = time.monotonic()
    first_half = {o.order_id for o in orders[: ORDERS // 2]}
    pipeline.produce(orders[: ORDERS // 2])
    # mid-stream: the kill is sent as soon as the first outcomes of the first half show
    pipeline.read("dom.order-status.v1", lambda r: _outcomes(r) >= 10, timeout=120)
    killed_at_ms = time.time() * 1000
    pipeline.workers["w2"].kill()
    # while w2 is down: the second half, stock arriving for every third sku (re-promising
    # backorders) and operators retrying ten backorders of the first half
    pipeline.produce(orders[ORDERS // 2 :])
    pipeline.produce(RESTOCKS)
    retries = [
        make_order_action(o.order_id, OrderActionKind.RETRY_BACKORDER, action_id=f"retry-{n}")
        for n, o in enumerate(orders[: ORDERS // 2 : 50])
    ]
    pipeline.produce(retries)
    pipeline.start_worker("w2")  # same name: same data directory, as a restarted pod
    statuses = wait_for_outcomes(pipeline, {o.order_id for o in orders})
    counts = check_invariants(pipeline, {o.order_id for o in orders}, statuses)
    answers = pipeline.read(
        "dom.order-status.v1",
        lambda r: {a.action_id for a in r if a.action_id} >= {a.action_id for a in retries},
    )
    answered = {(a.action_id, a.event_id) for a in answers if a.action_id}
    assert sorted(action for action, _ in answered) == sorted(a.action_id for a in retries), (
        "every action gets exactly one answer"
    )
    repromised = {o for o, v in outcomes_by_order(answers).items() if len(v) > 1}
    assert repromised, "the restocks re-promised no backorder"
    before_kill = _outcomes_before(pipeline, killed_at_ms)
    # The kill landed while the first half was being routed: some of its orders had an
    # outcome, not all of them.
    assert 0 < len(before_kill) < len(first_half), (
        f"{len(before_kill)} of the first {len(first_half)} orders had an outcome at the SIGKILL"
    )
    assert before_kill <= first_half
    check_nothing_waits_on_stock(pipeline, orders)  # after the answers: it sends actions too
    _report("burst with SIGKILL", pipeline, started, counts)
    print(f"outcomes before the SIGKILL: {len(before_kill)} of {len(first_half)}")


def _outcomes(records: list[object]) -> int:
    return sum(1 for r in records if getattr(r, "status", None) in ROUTING_OUTCOMES)


def _outcomes_before(pipeline: Pipeline, at_ms: float) -> set[str]:
    """Orders whose routing outcome is stamped before ``at_ms`` (the workers run on this
    machine: their producers stamp records with its clock)."""
    decided: set[str] = set()
    for message in pipeline.read_changelog_messages("dom.order-status.v1"):
        status = pipeline.codec.decode(message.value())
        if status.status in ROUTING_OUTCOMES and message.timestamp()[1] < at_ms:
            decided.add(status.order_id)
    return decided

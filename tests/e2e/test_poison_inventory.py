"""Stock that once stopped the inventory stage stops nothing, on the real broker.

Two SNAPSHOTs of 2,147,483,647 units of one sku, each valid alone, add up past the contract's
32-bit figures: the first is published, the second is dead-lettered with the reason, and the
worker goes on routing that sku. Stock for a location that does not exist is dead-lettered and
never published, while stock for a location published just before it is taken. And the pair,
produced in the middle of a burst through two workers on a sku the orders use, leaves every
order with exactly one outcome and every invariant of a burst holding.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from schemas.enums import ROUTING_OUTCOMES as OUTCOMES
from schemas.models import Availability, Message, OrderStatusChanged, StockEvent
from tests.e2e import world
from tests.e2e.harness import Pipeline
from tests.e2e.invariants import check_invariants, wait_for_outcomes
from tests.unit.factories import make_location, make_order, make_product, make_stock_event

pytestmark = pytest.mark.broker

MAX_INT = 2_147_483_647


@pytest.fixture(scope="module")
def one_worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    """One worker over LOC-A and LOC-B, for the tests that need no burst."""
    tmp_path: Path = tmp_path_factory.mktemp("poison-inventory")
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        topic_partitions=3,
        data_dir=tmp_path / "var",
    )
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    pipeline.produce([make_location("LOC-A"), make_location("LOC-B"), make_product("SKU-1")])
    try:
        yield pipeline
    finally:
        pipeline.stop_all()


def letters_for(pipeline: Pipeline, value: bytes, timeout: float = 60.0) -> list[dict[str, bytes]]:
    """The headers of every dead letter of ``value``, once there is one (or time runs out)."""
    deadline = time.monotonic() + timeout
    while True:
        letters = pipeline.read_raw("dom.dlq.v1", expected=10**6, timeout=1.0)
        found = [dict(m.headers()) for m in letters if m.value() == value]
        if found or time.monotonic() > deadline:
            return found


def availabilities(
    pipeline: Pipeline, sku: str, until: Callable[[Availability], bool]
) -> list[Availability]:
    """Every availability of ``sku`` published until one satisfies ``until``."""

    def mine(records: list[Message]) -> list[Availability]:
        return [r for r in records if isinstance(r, Availability) and r.sku == sku]

    records = pipeline.read(
        "dom.inventory.availability.v1", lambda r: any(map(until, mine(r))), timeout=60
    )
    return mine(records)


def outcome_of(pipeline: Pipeline, order_id: str) -> OrderStatusChanged:
    """The routing outcome of one order."""

    def outcomes(records: list[Message]) -> list[OrderStatusChanged]:
        return [
            r
            for r in records
            if isinstance(r, OrderStatusChanged) and r.order_id == order_id and r.status in OUTCOMES
        ]

    [outcome] = outcomes(pipeline.read("dom.order-status.v1", lambda r: bool(outcomes(r))))
    return outcome


def figures(record: Availability) -> dict[str, int]:
    return {x.location_id: x.on_hand for x in record.locations}


def test_two_snapshots_past_an_int_publish_the_first_and_dead_letter_the_second(
    one_worker: Pipeline,
) -> None:
    pipeline = one_worker
    first = make_stock_event("SKU-1", "LOC-A", MAX_INT)
    second = make_stock_event("SKU-1", "LOC-B", MAX_INT)
    pipeline.produce([first, second])

    [headers] = letters_for(pipeline, pipeline.codec.encode(second))
    assert headers["dom.stage"] == b"inventory"
    assert headers["dom.error"] == (
        b"SNAPSHOT of 2147483647 at LOC-B would make SKU-1's total on hand 4294967294, "
        b"above 2147483647"
    )
    published = availabilities(pipeline, "SKU-1", lambda a: figures(a).get("LOC-A") == MAX_INT)
    assert all(figures(a).get("LOC-B", 0) == 0 for a in published)
    assert published[-1].total_available == MAX_INT

    # the worker is still up and routes that sku
    pipeline.produce([make_order("ORD-MAX", lines=[("SKU-1", 2)])])
    outcome = outcome_of(pipeline, "ORD-MAX")
    assert outcome.status == "ALLOCATED", pipeline.workers["w1"].log_tail()
    assert [sh.location_id for sh in outcome.shipments] == ["LOC-A"]
    assert pipeline.workers["w1"].proc is not None and pipeline.workers["w1"].proc.poll() is None


def test_stock_for_a_location_that_does_not_exist_is_never_published(
    one_worker: Pipeline,
) -> None:
    pipeline = one_worker
    ghost = make_stock_event("SKU-2", "LOC-DOES-NOT-EXIST", 7)
    # a location published just before its first stock: that stock must be taken
    pipeline.produce(
        [
            make_product("SKU-2"),
            ghost,
            make_location("LOC-NEW"),
            make_stock_event("SKU-2", "LOC-NEW", 4),
            make_stock_event("SKU-2", "LOC-A", 3),
        ]
    )

    [headers] = letters_for(pipeline, pipeline.codec.encode(ghost))
    assert headers["dom.error"] == b"unknown location LOC-DOES-NOT-EXIST"
    published = availabilities(
        pipeline, "SKU-2", lambda a: figures(a) == {"LOC-A": 3, "LOC-NEW": 4}
    )
    assert all("LOC-DOES-NOT-EXIST" not in figures(a) for a in published)
    assert published[-1].total_available == 7


# ---- the pair in the middle of a burst, through two workers ----------------------------------

SKUS = 40
ORDERS = 300


@pytest.fixture
def two_workers(make_settings, tmp_path: Path) -> Iterator[Pipeline]:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(topic_partitions=6)
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    pipeline.start_worker("w2")
    pipeline.produce(world.master_data(SKUS))
    pipeline.read(
        "dom.inventory.availability.v1", lambda r: len({a.sku for a in r}) >= SKUS, timeout=120
    )
    try:
        yield pipeline
    finally:
        pipeline.stop_all()


def test_the_pair_mid_burst_leaves_every_order_one_outcome(two_workers: Pipeline) -> None:
    pipeline = two_workers
    orders = list(world.orders(ORDERS, SKUS, seed=31, prefix="P"))
    busiest, _ = Counter(line.sku for o in orders for line in o.lines).most_common(1)[0]
    stocked = sorted(
        r.location_id
        for r in world.master_data(SKUS)
        if isinstance(r, StockEvent) and r.sku == busiest
    )
    # Each valid alone: the first leaves room for the sku's other stock (a few units per
    # location), the second takes the total past an int.
    first_at, second_at = stocked[:2]
    first = make_stock_event(busiest, first_at, MAX_INT - 1000, event_id="poison-1")
    second = make_stock_event(busiest, second_at, MAX_INT, event_id="poison-2")

    pipeline.produce(orders[: ORDERS // 2])
    pipeline.produce([first, second])
    pipeline.produce(orders[ORDERS // 2 :])

    statuses = wait_for_outcomes(pipeline, {o.order_id for o in orders}, timeout=150)
    counts = check_invariants(pipeline, {o.order_id for o in orders}, statuses)
    [headers] = letters_for(pipeline, pipeline.codec.encode(second))
    assert b"above 2147483647" in headers["dom.error"]
    letters = pipeline.read_raw("dom.dlq.v1", expected=10**6, timeout=3.0)
    assert [m.value() for m in letters] == [pipeline.codec.encode(second)], [
        dict(m.headers()) for m in letters
    ]
    published = availabilities(
        pipeline, busiest, lambda a: figures(a).get(first_at) == MAX_INT - 1000
    )
    assert all(figures(a).get(second_at, 0) < MAX_INT for a in published)
    routed_busiest = [
        s
        for s in statuses
        if isinstance(s, OrderStatusChanged)
        and s.status in OUTCOMES
        and any(x.sku == busiest for sh in s.shipments for x in sh.lines)
    ]
    assert routed_busiest, f"no order was routed with {busiest}: {counts}"
    print(f"\nburst with the poison pair on {busiest}: {counts}")

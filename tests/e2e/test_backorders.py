"""Backordered orders get their stock when it arrives, on the real broker: first placed, first
served and only as many as the new units cover; a partly allocated order gets its missing line
as a second shipment; a backorder past its expiry is cancelled; an operator retries one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.settings import Settings
from schemas.enums import StockEventKind
from schemas.internal import BackorderWait, SkuAction, SkuCommand, SkuResult
from schemas.models import FulfillmentCommand, Message, OrderStatusChanged
from tests.e2e.channels import wait_for
from tests.e2e.harness import Pipeline
from tests.e2e.test_order_actions import dom
from tests.e2e.world import one_dc
from tests.unit.factories import T0, make_order, make_stock_event

Statuses = list[OrderStatusChanged]


def statuses(pipeline: Pipeline, done: Callable[[Statuses], bool]) -> Statuses:
    def only(records: list[Message]) -> Statuses:
        return [r for r in records if isinstance(r, OrderStatusChanged)]

    return only(pipeline.read("dom.order-status.v1", lambda r: done(only(r)), timeout=60))


def latest(records: Statuses, order_id: str) -> OrderStatusChanged | None:
    mine = [r for r in records if r.order_id == order_id and r.action_id is None]
    return mine[-1] if mine else None


def all_at(order_ids: list[str], status: str) -> Callable[[Statuses], bool]:
    def done(records: Statuses) -> bool:
        return all((s := latest(records, o)) is not None and s.status == status for o in order_ids)

    return done


def restock(pipeline: Pipeline, sku: str, units: int, event_id: str) -> None:
    pipeline.produce(
        [make_stock_event(sku, "DC-EAST", units, event_id=event_id, kind=StockEventKind.ADJUSTMENT)]
    )


def commanded(pipeline: Pipeline, count: int) -> list[FulfillmentCommand]:
    records = pipeline.read(
        "dom.fulfillment.commands.v1",
        lambda r: len([c for c in r if isinstance(c, FulfillmentCommand)]) >= count,
        timeout=30,
    )
    return [c for c in records if isinstance(c, FulfillmentCommand)]


def test_backorders_are_served_first_placed_first_and_only_as_far_as_the_stock_goes(
    pipeline: Pipeline,
) -> None:
    one_dc(pipeline, {"SKU-1": 0})
    # produced out of placing order: the line follows placed_at, not arrival
    placed = {"ORD-B": 2, "ORD-C": 3, "ORD-A": 1}
    pipeline.produce(
        [make_order(o, placed_at=T0 + timedelta(minutes=m)) for o, m in placed.items()]
    )
    statuses(pipeline, all_at(list(placed), "BACKORDERED"))

    restock(pipeline, "SKU-1", 2, "r-1")
    served = statuses(pipeline, all_at(["ORD-A", "ORD-B"], "ALLOCATED"))
    assert latest(served, "ORD-C").status == "BACKORDERED"  # type: ignore[union-attr]
    restocked = max(m.timestamp()[1] for m in pipeline.read_changelog_messages("dom.stock.v1"))
    first = min(r.at.timestamp() * 1000 for r in served if r.status == "ALLOCATED")
    print(f"\nrestock to the first re-promised status: {first - restocked:.0f} ms")
    reserved = pipeline.availability_where("SKU-1", lambda f: f["DC-EAST"].reserved == 2)
    assert reserved["DC-EAST"].available == 0
    ships = {c.order_id for c in commanded(pipeline, 2)}
    assert ships == {"ORD-A", "ORD-B"}

    restock(pipeline, "SKU-1", 1, "r-2")
    served = statuses(pipeline, all_at(["ORD-C"], "ALLOCATED"))
    assert "SKU-1 arrived" in latest(served, "ORD-C").reason  # type: ignore[union-attr]
    assert {c.order_id for c in commanded(pipeline, 3)} == set(placed)
    after = pipeline.availability_where("SKU-1", lambda f: f["DC-EAST"].reserved == 3)
    assert after["DC-EAST"].available == 0


def test_a_partly_allocated_order_gets_its_missing_line_as_a_second_shipment(
    pipeline: Pipeline,
) -> None:
    one_dc(pipeline, {"SKU-1": 5, "SKU-2": 0})
    pipeline.produce([make_order("ORD-1", lines=[("SKU-1", 1), ("SKU-2", 2)])])
    first = statuses(pipeline, all_at(["ORD-1"], "PARTIALLY_ALLOCATED"))
    partial = latest(first, "ORD-1")
    assert partial is not None
    assert [(x.sku, x.quantity) for x in partial.backordered] == [("SKU-2", 2)]

    restock(pipeline, "SKU-2", 2, "r-1")
    done = latest(statuses(pipeline, all_at(["ORD-1"], "ALLOCATED")), "ORD-1")
    assert done is not None and done.backordered == ()
    [second] = done.shipments
    assert [(x.sku, x.quantity) for x in second.lines] == [("SKU-2", 2)]
    commands = commanded(pipeline, 2)
    assert [[(x.sku, x.quantity) for x in c.lines] for c in commands] == [
        [("SKU-1", 1)],
        [("SKU-2", 2)],
    ]
    assert len({c.shipment_id for c in commands}) == 2


def test_an_operator_retries_a_backorder_and_nothing_else_moves(
    pipeline: Pipeline, settings: Settings
) -> None:
    one_dc(pipeline, {"SKU-1": 0})
    pipeline.produce([make_order("ORD-1")])
    statuses(pipeline, all_at(["ORD-1"], "BACKORDERED"))

    answer = dom(settings, "orders", "retry", "ORD-1", "--by", "bob", "--reason", "customer")
    assert answer.exit_code == 0, answer.output  # applied: it routed again and found nothing
    assert answer.output.startswith("APPLIED")
    assert "routing the backordered lines" in answer.output
    # nothing could be served: the order keeps its one outcome and its place in line
    after = statuses(pipeline, lambda r: any(x.action_id for x in r))
    outcomes = [x.status for x in after if x.order_id == "ORD-1" and x.action_id is None]
    assert outcomes == ["RECEIVED", "BACKORDERED"]

    restock(pipeline, "SKU-1", 1, "r-1")
    statuses(pipeline, all_at(["ORD-1"], "ALLOCATED"))
    again = dom(settings, "orders", "retry", "ORD-1", "--by", "bob", "--reason", "customer")
    assert again.exit_code == 1 and "has nothing backordered" in again.output


@pytest.fixture
def short_expiry(make_settings: Callable[..., Settings], tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = make_settings(backorder_expiry_s=3.0)
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    yield pipeline
    pipeline.stop_all()


def test_a_backorder_past_its_expiry_is_cancelled_and_releases_nothing_it_did_not_hold(
    short_expiry: Pipeline,
) -> None:
    pipeline = short_expiry
    one_dc(pipeline, {"SKU-1": 4, "SKU-2": 0})
    pipeline.produce(
        [
            make_order("ORD-1", lines=[("SKU-2", 1)]),
            make_order("ORD-2", lines=[("SKU-1", 3), ("SKU-2", 1)]),
        ]
    )
    cancelled = statuses(pipeline, all_at(["ORD-1"], "CANCELLED"))
    reason = latest(cancelled, "ORD-1").reason  # type: ignore[union-attr]
    assert "DOM_BACKORDER_EXPIRY_S" in reason
    kept = statuses(pipeline, all_at(["ORD-2"], "ALLOCATED"))
    assert "backordered lines cancelled" in latest(kept, "ORD-2").reason  # type: ignore[union-attr]
    # what ORD-2 holds of SKU-1 stays held; nothing of SKU-2 was held, nothing is given back
    sku1 = pipeline.availability_where("SKU-1", lambda f: f["DC-EAST"].reserved == 3)
    assert sku1["DC-EAST"].available == 1
    sku2 = pipeline.availability_where("SKU-2", lambda f: "DC-EAST" in f)
    assert (sku2["DC-EAST"].on_hand, sku2["DC-EAST"].reserved) == (0, 0)


def test_a_thousand_backorders_on_one_sku_are_served_in_order_by_two_restocks(
    pipeline: Pipeline,
) -> None:
    """One hot sku's line at scale: 1,100 orders wait; 100 units serve exactly the first 100
    placed, then 1,000 units arriving at once serve the 1,000 others. Prints the time from
    each restock to its first and last re-promised status (the figures the lifecycle's note
    reports)."""
    one_dc(pipeline, {"SKU-1": 0})
    orders = [f"ORD-{n:04d}" for n in range(1100)]
    pipeline.produce(
        [make_order(o, placed_at=T0 + timedelta(seconds=n)) for n, o in enumerate(orders)]
    )
    statuses(pipeline, all_at(orders, "BACKORDERED"))

    timings = []
    for units, served in ((100, orders[:100]), (1000, orders)):
        restock(pipeline, "SKU-1", units, f"r-{units}")
        records = statuses(pipeline, all_at(served, "ALLOCATED"))
        # from the restock's broker timestamp, the clock the statuses' times come from
        restocked = max(m.timestamp()[1] for m in pipeline.read_changelog_messages("dom.stock.v1"))
        times = [
            r.at.timestamp() * 1000
            for r in records
            if r.status == "ALLOCATED" and r.at.timestamp() * 1000 >= restocked - 1000
        ]
        timings.append((units, min(times) - restocked, max(times) - restocked))
        if units == 100:
            waiting = {o for o in orders[100:] if latest(records, o).status == "BACKORDERED"}  # type: ignore[union-attr]
            assert waiting == set(orders[100:])
    for units, first, last in timings:
        print(
            f"\nrestock of {units} units: first re-promised status after {first:.0f} ms, "
            f"last after {last:.0f} ms"
        )


def wakes_of(pipeline: Pipeline, order_id: str) -> list[str]:
    """The ids of the wakes the sku owners sent ``order_id``, in order."""
    return [
        result.command_id
        for _, result in pipeline.read_unpacked("dom.internal.sku-results.v1", quiet=1.0)
        if isinstance(result, SkuResult)
        and result.order_id == order_id
        and result.action == SkuAction.WAKE
    ]


def test_units_set_aside_for_a_wake_nobody_took_are_offered_again_after_a_restart(
    pipeline: Pipeline,
) -> None:
    """A woken order that never acts on its wake (it was busy, then its worker died) must not
    keep the units set aside for ever: the owner offers them again after PROMISE_TTL_MS, also
    when the worker restarted in between and nothing else comes for the sku. Before, only the
    worker that set them aside knew to look (a burst's backorder waited, its stock promised)."""
    one_dc(pipeline, {"SKU-G": 2})
    now = datetime.now(UTC)
    wait = BackorderWait(
        quantity=2, rank=0, placed_at=T0, waiting_since=now, seen_available=0
    )  # an order that never saw the 2 units: served at once
    pipeline.produce(
        [
            SkuCommand(
                command_id="WAIT:SKU-G:GHOST-1:1",
                order_id="GHOST-1",  # no saga acts on its wake
                sku="SKU-G",
                action=SkuAction.WAIT,
                attempt=1,
                wait=wait,
                issued_at=now,
            )
        ]
    )
    first = wait_for("the first wake", lambda: wakes_of(pipeline, "GHOST-1"))
    assert first == ["WAKE:SKU-G:GHOST-1:1"]
    pipeline.workers["w1"].kill()
    pipeline.start_worker("w1")
    # Offered again (to the same order, first in line) once the promise is PROMISE_TTL_MS old.
    again = wait_for("the wake offered again", lambda: wakes_of(pipeline, "GHOST-1")[1:], 90)
    assert again[0] == "WAKE:SKU-G:GHOST-1:2"

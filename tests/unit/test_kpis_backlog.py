"""The backorder backlog, a gauge over tumbling windows: how many orders wait for stock at each
window's end and how old the oldest and the median are, through days with no change, across
retention, and as the real order saga words its statuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.models import OrderStatus, OrderStatusChanged
from streams.core.kpis import BucketKey, Grain, KpiBucket, build_report, retire
from streams.core.saga.timers import timed_out
from tests.unit.factories import T0, make_order
from tests.unit.test_kpis_orders import BERLIN, Kpis, later, shipment, status
from tests.unit.test_saga_backorders import Line
from tests.unit.test_saga_timers import DEADLINES, kinds

MAY_1 = datetime(2024, 4, 30, 22, tzinfo=UTC)  # midnight in Berlin
BACKORDERED, ALLOCATED = OrderStatus.BACKORDERED, OrderStatus.ALLOCATED


def backlog(
    buckets: dict[BucketKey, KpiBucket],
    name: str = "backorder_backlog",
    days: int = 3,
    now: datetime | None = None,
    start: datetime = MAY_1,
) -> list[tuple[str, Decimal, int | None]]:
    report = build_report(
        buckets,
        name,
        start=start,
        end=start + timedelta(days=days),
        grain=Grain.DAY,
        tz=BERLIN,
        now=now,
    )
    return [(r.window_start.date().isoformat(), r.value, r.denominator) for r in report.rows]


def three_waiting_then_one_served() -> Kpis:
    return Kpis().feed(
        *(make_order(o) for o in ("A", "B", "C")),
        status("A", BACKORDERED, 1, T0),  # 14:00 in Berlin on 1 May
        status("B", BACKORDERED, 1, later(hours=1)),
        status("C", BACKORDERED, 1, later(hours=2)),
        status("A", ALLOCATED, 2, later(hours=20), shipment("A-1")),  # 10:00 on 2 May
    )


def test_the_backlog_is_its_level_at_each_windows_end_days_without_change_too() -> None:
    kpis = three_waiting_then_one_served()
    assert backlog(kpis.buckets) == [
        ("2024-05-01", 3, 3),
        ("2024-05-02", 2, 2),
        ("2024-05-03", 2, 2),
    ]


def test_the_age_of_the_oldest_and_the_median_backorder_at_each_windows_end() -> None:
    kpis = three_waiting_then_one_served()
    # 1 May ends at 22:00 UTC: A has waited 10 h, B (the median of three) 9 h
    assert backlog(kpis.buckets, "backorder_age_oldest") == [
        ("2024-05-01", 36_000, 3),
        ("2024-05-02", 118_800, 2),  # B, since 13:00 UTC on 1 May, at 22:00 UTC on 2 May
        ("2024-05-03", 205_200, 2),
    ]
    assert backlog(kpis.buckets, "backorder_age_median")[0] == ("2024-05-01", 32_400, 3)
    # the window still open is measured at now, not at its end
    now = later(hours=3)
    assert backlog(kpis.buckets, "backorder_age_oldest", days=1, now=now) == [
        ("2024-05-01", 10_800, 3)
    ]


def test_a_partly_allocated_order_waits_while_its_allocated_part_ships() -> None:
    expired = "backordered lines cancelled: 2 (1 of SKU-2): waited past DOM_BACKORDER_EXPIRY_S"
    kpis = Kpis().feed(
        make_order("P", lines=[("SKU-1", 1), ("SKU-2", 1)]),
        status("P", OrderStatus.PARTIALLY_ALLOCATED, 1, T0, shipment("P-1")),
        status("P", OrderStatus.SHIPPED, 2, later(hours=20)),
    )
    assert [level for _, level, _ in backlog(kpis.buckets)] == [1, 1, 1]
    kpis.feed(status("P", OrderStatus.SHIPPED, 3, later(hours=40), reason=expired))
    assert [level for _, level, _ in backlog(kpis.buckets)] == [1, 1, 0]


def test_held_and_cancelled_orders_leave_the_backlog() -> None:
    kpis = Kpis().feed(
        make_order("H"),
        make_order("X"),
        status("H", BACKORDERED, 1, T0),
        status("X", BACKORDERED, 1, T0),
        status("H", OrderStatus.ON_HOLD, 2, later(hours=20)),
        status("X", OrderStatus.CANCELLED, 2, later(hours=40), reason="customer request"),
    )
    assert [level for _, level, _ in backlog(kpis.buckets)] == [2, 1, 0]


def test_a_25_hour_day_ages_the_backlog_by_25_hours() -> None:
    waiting_since = datetime(2024, 10, 26, 22, 30, tzinfo=UTC)  # 00:30 CEST on 27 October
    kpis = Kpis().feed(make_order("A"), status("A", BACKORDERED, 1, waiting_since))
    day = datetime(2024, 10, 26, 22, tzinfo=UTC)
    [row] = backlog(kpis.buckets, "backorder_age_oldest", days=1, start=day)
    assert row == ("2024-10-27", 24 * 3600 + 30 * 60, 1)  # its end is midnight CET


def test_retired_windows_leave_the_later_levels_as_they_were() -> None:
    kpis = three_waiting_then_one_served()
    before = backlog(kpis.buckets)
    now = datetime(2024, 5, 3, 12, tzinfo=UTC)  # keep one day: 1 May has expired
    retirement = retire(kpis.buckets, now=now, tz=BERLIN, retention_days=1)
    assert retirement.writes  # the backlog carried over

    half = {**kpis.buckets, **retirement.writes}  # the stage stopped before its deletes
    whole = {k: v for k, v in half.items() if k not in retirement.deletes}
    assert backlog(half) == backlog(whole) == before[1:]  # 1 May is folded in: not listed
    assert not any(k.start.date().isoformat() == "2024-05-01" for k in whole)

    again = retire(whole, now=now, tz=BERLIN, retention_days=1)
    assert again.writes == {} and again.deletes == []
    later_on = retire(whole, now=now + timedelta(days=1), tz=BERLIN, retention_days=1)
    rest = {**whole, **later_on.writes}
    rest = {k: v for k, v in rest.items() if k not in later_on.deletes}
    assert backlog(rest, start=MAY_1 + timedelta(days=2), days=1) == [before[2]]


def test_the_backlog_as_the_real_saga_reports_a_backorder_served_by_new_stock() -> None:
    line = Line()
    order = make_order("ORD-1")
    line.send(order)
    kpis = Kpis().feed(order, *(r for r in line.published if isinstance(r, OrderStatusChanged)))
    assert [level for _, level, _ in backlog(kpis.buckets, days=1)] == [1]
    published = len(line.published)
    line.stock("SKU-1", 5)
    kpis.feed(*(r for r in line.published[published:] if isinstance(r, OrderStatusChanged)))
    assert [level for _, level, _ in backlog(kpis.buckets, days=1)] == [0]
    assert kpis.today("routing_outcomes", by=["outcome"]) == {("BACKORDERED",): 1}
    assert kpis.row("split_rate").denominator == 1  # allocated once the stock came


def test_an_acceptance_timeout_as_the_real_saga_words_it() -> None:
    line = Line()
    line.stock("SKU-1", 1)
    order = make_order("ORD-1")
    line.send(order)
    state = line.orders["ORD-1"]
    line.run(timed_out(state, T0 + timedelta(days=1), DEADLINES, kinds))  # type: ignore[arg-type]
    statuses = [r for r in line.published if isinstance(r, OrderStatusChanged)]
    assert any(s.action_id for s in statuses)
    kpis = Kpis().feed(order, *statuses)
    assert kpis.today("acceptance_timeouts", by=["location"]) == {("DC-EAST",): 1}
    # nowhere else holds it: moved away, the order waits for stock
    assert [level for _, level, _ in backlog(kpis.buckets, days=1)] == [1]

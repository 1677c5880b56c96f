"""Report rows and their CSV: the same numbers in both, money never added across currencies,
a day of 25 hours in Europe/Berlin, breakdowns a KPI has, buckets that merge in any order and
keys and values that read back from what the stage stores."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from schemas.enums import Channel, FulfillmentKind, FulfillmentStatus, ItemCondition, OrderStatus
from schemas.models import ActionResult, Message
from streams.core.kpis import (
    CATALOGUE,
    BucketKey,
    Grain,
    Increment,
    KpiBucket,
    OrderFacts,
    Series,
    build_report,
    deltas,
    merge,
    observe,
    render_csv,
)
from tests.unit.factories import (
    T0,
    make_fulfillment_update,
    make_order,
    make_pickup_order,
    make_received_line,
    make_return_line,
    make_return_received,
    make_return_request,
)
from tests.unit.test_kpis_orders import BERLIN, Kpis, allocated, later, shipment, status, update

DAY, HOUR = Grain.DAY, Grain.HOUR


def everything() -> list[Message]:
    """One of each thing the KPIs count."""
    pickup = FulfillmentKind.PICKUP
    return [
        *allocated("A", shipment("A-1"), shipment("A-2", "STORE-1", lines=(("1", 1), ("2", 2)))),
        update("A", "A-1", "DC-EAST", FulfillmentStatus.SHIPPED, later(hours=2)),
        update("A", "A-2", "STORE-1", FulfillmentStatus.SHIPPED, later(hours=3)),
        make_order("B", channel=Channel.POS),
        status("B", OrderStatus.BACKORDERED, 1),
        status("B", OrderStatus.CANCELLED, 2, later(hours=1), reason="customer request"),
        make_pickup_order("P", store_id="STORE-1"),
        status("P", OrderStatus.ALLOCATED, 1, T0, shipment("P-1", "STORE-1", pickup)),
        update("P", "P-1", "STORE-1", FulfillmentStatus.ACCEPTED, later(minutes=10)),
        update("P", "P-1", "STORE-1", FulfillmentStatus.PICKED_UP, later(minutes=40)),
        update("A", "A-9", "DC-WEST", FulfillmentStatus.REJECTED, later(hours=1)),
        status("A", OrderStatus.ALLOCATED, 2, later(hours=1), action_id="accept-timeout:A-1:1",
               action_result=ActionResult.APPLIED),
        make_return_request("A", lines=(make_return_line("SKU-1", 2, "too small"),
                                        make_return_line("SKU-2", 1, "arrived damaged")),
                            requested_at=later(hours=4)),
        make_return_received("A", lines=(make_received_line("SKU-1", 2),
                                         make_received_line("SKU-2", 1, ItemCondition.DAMAGED)),
                             received_at=later(hours=5)),
    ]  # fmt: skip


def test_the_csv_is_exactly_the_rows() -> None:
    kpis = Kpis().feed(*everything())
    for name in CATALOGUE:
        kpi = CATALOGUE[name]
        report = build_report(
            kpis.buckets,
            name,
            start=T0 - timedelta(days=1),
            end=T0 + timedelta(days=1),
            grain=HOUR,
            tz=BERLIN,
            breakdown=[d.value for d in kpi.breakdowns],
        )
        header, *lines = list(csv.reader(io.StringIO(render_csv(report))))
        assert header[5:-3] == [d.value for d in kpi.breakdowns]
        assert len(lines) == len(report.rows)
        for line, row in zip(lines, report.rows, strict=True):
            assert line[:5] == [name, kpi.unit.value, "hour", *_times(row.window_start, row)]
            assert tuple(line[5:-3]) == row.dimension
            assert Decimal(line[-3]) == row.value and line[-3] == str(row.value)
            assert line[-2] == ("" if row.numerator is None else str(row.numerator))
            assert line[-1] == ("" if row.denominator is None else str(row.denominator))


def _times(start: datetime, row: object) -> list[str]:
    return [start.isoformat(), row.window_end.isoformat()]  # type: ignore[attr-defined]


def test_a_csv_line_as_a_person_reads_it() -> None:
    kpis = Kpis().feed(*everything())
    report = build_report(
        kpis.buckets, "fill_rate", start=T0 - timedelta(hours=14), end=T0 + timedelta(hours=10),
        grain=DAY, tz=BERLIN, breakdown=["channel"],
    )  # fmt: skip
    assert render_csv(report).splitlines() == [
        "kpi,unit,grain,window_start,window_end,channel,value,numerator,denominator",
        "fill_rate,ratio,day,2024-05-01T00:00:00+02:00,2024-05-02T00:00:00+02:00,POS,0.0000,0,1",
        "fill_rate,ratio,day,2024-05-01T00:00:00+02:00,2024-05-02T00:00:00+02:00,WEB,1.0000,2,2",
    ]


def test_every_kpi_has_numbers_for_one_of_each_thing() -> None:
    kpis = Kpis().feed(*everything())
    empty = [name for name in CATALOGUE if not kpis.rows(name)]
    assert empty == []
    assert kpis.today("returns_received", by=["condition", "reason"]) == {
        ("SELLABLE", "too small"): 2,
        ("DAMAGED", "arrived damaged"): 1,
    }
    assert kpis.today("returns_received", by=["condition"]) == {("SELLABLE",): 2, ("DAMAGED",): 1}
    assert kpis.today("returns_requested", by=["reason"]) == {
        ("too small",): 2,
        ("arrived damaged",): 1,
    }


def test_every_bucket_has_the_dimension_its_kpis_break_down_by() -> None:
    kpis = Kpis().feed(*everything())
    written = {key.series for key in kpis.buckets}
    assert written == {s.value for s in Series}
    for key in kpis.buckets:
        for kpi in CATALOGUE.values():
            if kpi.series.value == key.series:
                assert len(key.dimension) == len(kpi.breakdowns), (kpi.name, key)


def test_a_breakdown_the_kpi_does_not_have_is_refused() -> None:
    with pytest.raises(ValueError, match="fill_rate breaks down by channel, not 'location'"):
        build_report(
            {}, "fill_rate", start=T0, end=T0, grain=DAY, tz=BERLIN, breakdown=["location"]
        )
    with pytest.raises(ValueError, match="no KPI 'fill'"):
        build_report({}, "fill", start=T0, end=T0, grain=DAY, tz=BERLIN)
    with pytest.raises(ValueError, match="distance_per_order breaks down by channel, not 'reason'"):
        build_report(
            {}, "distance_per_order", start=T0, end=T0, grain=DAY, tz=BERLIN, breakdown=["reason"]
        )


def test_a_day_of_25_hours_in_berlin_is_one_row_and_its_repeated_hour_two() -> None:
    times = [
        datetime(2024, 10, 26, 21, 30, tzinfo=UTC),  # 23:30 CEST on 26 October
        datetime(2024, 10, 26, 22, 30, tzinfo=UTC),  # 00:30 CEST on 27 October
        datetime(2024, 10, 27, 0, 30, tzinfo=UTC),  # 02:30 CEST
        datetime(2024, 10, 27, 1, 30, tzinfo=UTC),  # 02:30 CET
        datetime(2024, 10, 27, 22, 30, tzinfo=UTC),  # 23:30 CET, 25 hours after 23:30 CEST
        datetime(2024, 10, 27, 23, 30, tzinfo=UTC),  # 00:30 on 28 October
    ]
    kpis = Kpis().feed(*(make_order(f"O{n}", placed_at=t) for n, t in enumerate(times)))
    start, end = datetime(2024, 10, 25, tzinfo=UTC), datetime(2024, 10, 29, tzinfo=UTC)
    day = build_report(kpis.buckets, "orders_placed", start=start, end=end, grain=DAY, tz=BERLIN)
    lengths = [
        (r.window_start.isoformat(), r.window_end - r.window_start, r.value) for r in day.rows
    ]
    assert lengths == [
        ("2024-10-26T00:00:00+02:00", timedelta(hours=24), 1),
        ("2024-10-27T00:00:00+02:00", timedelta(hours=25), 4),
        ("2024-10-28T00:00:00+01:00", timedelta(hours=24), 1),
    ]  # fmt: skip
    hours = build_report(kpis.buckets, "orders_placed", start=start, end=end, grain=HOUR, tz=BERLIN)
    starts = [r.window_start.isoformat() for r in hours.rows]
    assert "2024-10-27T02:00:00+02:00" in starts and "2024-10-27T02:00:00+01:00" in starts
    assert sum(r.value for r in hours.rows) == 6


def test_money_is_never_added_across_currencies() -> None:
    kpis = Kpis().feed(
        *allocated("U"),
        update("U", "U-1", "DC-EAST", FulfillmentStatus.SHIPPED, later(hours=1)),
        make_order("E", currency="EUR"),
        status("E", OrderStatus.ALLOCATED, 1, T0, shipment("E-1")),
        update("E", "E-1", "DC-EAST", FulfillmentStatus.SHIPPED, later(hours=1)),
    )
    report = build_report(
        kpis.buckets, "value_shipped", start=T0 - timedelta(days=1), end=T0 + timedelta(days=1),
        grain=DAY, tz=BERLIN,
    )  # fmt: skip
    assert report.breakdown == ("currency",)
    assert {r.dimension: r.value for r in report.rows} == {
        ("USD",): Decimal("10.00"),
        ("EUR",): Decimal("10.00"),
    }


def test_buckets_merge_the_same_in_any_order() -> None:
    increments: list[Increment] = []
    facts: dict[str, OrderFacts] = {}
    for event in everything():
        order_id: str = getattr(event, "order_id")  # noqa: B009
        facts[order_id], more = observe(
            facts.get(order_id) or OrderFacts(order_id=order_id), event, location=lambda _: None
        )
        increments += more
    expected = _merged(increments)
    for seed in range(5):
        shuffled = list(increments)
        random.Random(seed).shuffle(shuffled)
        assert _merged(shuffled) == expected


def _merged(increments: list[Increment]) -> dict[BucketKey, KpiBucket]:
    buckets: dict[BucketKey, KpiBucket] = {}
    for increment in increments:  # one at a time, as a stage re-keying them would
        for key, delta in deltas([increment], BERLIN).items():
            buckets[key] = merge(buckets.get(key), delta)
    return buckets


def test_keys_and_buckets_read_back_from_what_the_stage_stores() -> None:
    kpis = Kpis().feed(*everything())
    for key, bucket in kpis.buckets.items():
        assert BucketKey.parse(key.text()) == key
        assert KpiBucket.model_validate_json(bucket.model_dump_json()) == bucket
    odd = BucketKey("cancellations", HOUR, datetime.fromisoformat("2024-10-27T02:00+01:00"),
                    ('say "no", | twice',))  # fmt: skip
    assert BucketKey.parse(odd.text()) == odd
    assert odd.start != datetime.fromisoformat("2024-10-27T02:00+02:00")


def test_a_location_report_on_another_order_adds_nothing_to_this_one() -> None:
    kpis = Kpis().feed(
        *allocated("A"),
        make_fulfillment_update("A", "B-1", "DC-EAST", FulfillmentStatus.SHIPPED),
    )
    assert kpis.rows("units_shipped") == []

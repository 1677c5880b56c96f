"""``dom report`` without a broker: periods, the buckets of dom.kpis.v1's latest values, the
table and the catalogue listing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from dom.cli import main
from dom.report_cli import buckets_of, parse_period, render_table
from schemas.codec import Codec
from streams.core.kpis import CATALOGUE, BucketKey, Grain, KpiBucket, build_report, render_csv
from streams.kpi_records import published_key, value_record

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2024, 5, 10, 15, 30, tzinfo=UTC)


def test_named_periods_are_whole_local_days_up_to_now() -> None:
    start, end = parse_period("today", NOW, PARIS)
    assert start == datetime(2024, 5, 10, tzinfo=PARIS) and end == NOW
    start, _ = parse_period("7d", NOW, PARIS)
    assert start == datetime(2024, 5, 4, tzinfo=PARIS)
    start, _ = parse_period("30d", NOW, PARIS)
    assert start == datetime(2024, 4, 11, tzinfo=PARIS)


def test_a_range_of_dates_includes_both_days() -> None:
    start, end = parse_period("2024-05-01..2024-05-02", NOW, PARIS)
    assert start == datetime(2024, 5, 1, tzinfo=PARIS)
    assert end == datetime(2024, 5, 3, tzinfo=PARIS)


@pytest.mark.parametrize("text", ["yesterday", "2024-05-02..2024-05-01", "..2024-05-01", "x..y"])
def test_a_period_that_makes_no_sense_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_period(text, NOW, PARIS)


def test_the_latest_values_make_the_report_and_its_csv() -> None:
    codec = Codec()
    day = datetime(2024, 5, 10, tzinfo=UTC)
    web = BucketKey("orders_placed", Grain.DAY, day, ("WEB",))
    pos = BucketKey("orders_placed", Grain.DAY, day, ("POS",))
    gone = BucketKey("orders_placed", Grain.DAY, day, ("GONE",))
    latest = {
        published_key(web).encode(): codec.encode(value_record(web, KpiBucket(count=3), UTC, NOW)),
        published_key(pos).encode(): codec.encode(value_record(pos, KpiBucket(count=1), UTC, NOW)),
        published_key(gone).encode(): None,
    }
    buckets = buckets_of(latest, codec)
    assert buckets == {web: KpiBucket(count=3), pos: KpiBucket(count=1)}

    report = build_report(
        buckets, "orders_placed", start=day, end=NOW, grain="day", tz=UTC, breakdown=["channel"]
    )
    assert [(r.dimension, r.value) for r in report.rows] == [
        (("POS",), Decimal(1)),
        (("WEB",), Decimal(3)),
    ]
    table = render_table(report)
    assert table.splitlines()[0] == "Orders placed (count, by day)"
    assert "WEB" in table and render_csv(report).count("\n") == 3


def test_report_lists_the_catalogue_and_refuses_an_unknown_kpi() -> None:
    listing = CliRunner().invoke(main, ["report", "--list"])
    assert listing.exit_code == 0
    assert [line.split()[0] for line in listing.output.splitlines()] == list(CATALOGUE)
    unknown = CliRunner().invoke(main, ["report", "no_such_kpi"])
    assert unknown.exit_code != 0 and "no KPI 'no_such_kpi'" in unknown.output

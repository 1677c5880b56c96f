"""The bench's readable table."""

from __future__ import annotations

from dom.bench_report import BenchResult, table_rows
from dom.bench_world import stock_scale_for


def test_a_run_without_limits_says_so_instead_of_showing_zero_rates() -> None:
    rows = table_rows(BenchResult(limits=False, orders=10))
    sections = {section for section, _, _ in rows}
    assert "raw Kafka" not in sections
    assert "runtime floor" not in sections
    assert "ratio" not in sections
    assert ("limits", "raw Kafka and runtime floor", "not measured (--no-limits)") in rows


def test_a_full_run_shows_the_limits_and_the_ratios() -> None:
    r = BenchResult(raw_produce_msgs_per_s=1000.0, pipeline_msgs_per_s=250.0)
    r.finish_ratios()
    rows = table_rows(r)
    assert ("raw Kafka", "produce", "1,000 msg/s") in rows
    assert ("ratio", "pipeline / raw produce", "0.250") in rows


def test_a_longer_run_gets_its_world_stocked_for_it() -> None:
    assert [stock_scale_for(n) for n in (1, 5000, 5001, 100_000, 1_000_000)] == [1, 1, 2, 20, 200]

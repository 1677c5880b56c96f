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


def test_messages_per_order_are_shown_topic_by_topic_the_small_ones_summed() -> None:
    r = BenchResult(
        orders=1000,
        pipeline_messages_by_topic={
            "dom.orders.v1": 1000,
            "dom-orders-changelog": 2500,
            "dom.dead-letter.v1": 20,
            "dom.order-status.v1": 30,
        },
    )
    (cell,) = [value for _, name, value in table_rows(r) if name == "per order, by topic"]
    # in the order the run gives them (busiest first); topics under 0.05 per order are summed
    assert cell.splitlines() == ["dom.orders.v1 1.00", "dom-orders-changelog 2.50", "other 0.05"]


def test_orders_are_shown_by_how_many_times_their_state_was_written() -> None:
    r = BenchResult(orders=4000, order_state_writes={"1": 326, "2": 2850, "3": 741, "4": 83})
    (cell,) = [value for _, name, value in table_rows(r) if name == "order state writes"]
    assert cell == "1x 326, 2x 2,850, 3x 741, 4x 83 (mean 2.15)"
    (none,) = [
        value for _, name, value in table_rows(BenchResult()) if name == "order state writes"
    ]
    assert none == "-"

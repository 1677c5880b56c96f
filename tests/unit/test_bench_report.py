"""The bench's readable table."""

from __future__ import annotations

from prometheus_client import generate_latest

from dom.bench_report import BenchResult, events_per_batch, table_rows
from dom.bench_world import batch_counts, stock_scale_for
from streams.metrics import PipelineMetrics


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


def test_events_a_batch_are_each_stages_over_every_worker_between_two_readings() -> None:
    before = [
        {"orders": (100.0, 10.0), "inventory": (40.0, 4.0)},
        {"orders": (50.0, 5.0)},
        {},  # a worker that did not answer: its counts since it started are not the phase's
    ]
    after = [
        {"orders": (400.0, 20.0), "inventory": (40.0, 4.0)},  # inventory ran no batch
        {"orders": (150.0, 10.0), "returns": (3.0, 3.0)},  # a stage's first batches
        {"orders": (9000.0, 90.0)},
    ]
    # orders: (300 + 100) events in (10 + 5) batches
    assert events_per_batch(before, after) == {"orders": 26.7, "returns": 1.0}


def test_a_workers_metrics_give_each_stages_events_and_batches() -> None:
    metrics = PipelineMetrics()
    for size in (3, 5):
        metrics.batch_size.labels("orders").observe(size)
    metrics.batch_size.labels("inventory").observe(500)
    text = generate_latest(metrics.registry).decode()
    assert batch_counts(text) == {"orders": (8.0, 2.0), "inventory": (500.0, 1.0)}
    assert batch_counts("") == {}


def test_the_latency_phase_shows_what_its_orders_cost_beside_the_full_speed_figures() -> None:
    r = BenchResult(
        broker="local",
        worker_cpu_ms_per_order=3.4,
        batch_events={"inventory": 310.0, "orders": 452.4},
        latency_messages_per_order=12.31,
        latency_worker_cpu_ms_per_order=6.456,
        latency_broker_cpu_ms_per_order=1.2,
        latency_batch_events={"inventory": 4.4, "orders": 25.6},
    )
    rows = table_rows(r)
    assert ("pipeline", "events per batch", "inventory 310, orders 452") in rows
    assert ("latency", "messages per order", "12.3") in rows
    assert ("latency", "CPU per order", "workers 6.46 ms, broker 1.20 ms") in rows
    assert ("latency", "events per batch", "inventory 4.4, orders 26") in rows
    (empty,) = [
        v for s, n, v in table_rows(BenchResult()) if (s, n) == ("latency", "events per batch")
    ]
    assert empty == "-"

"""`dom bench` at a tiny size on the session broker: the report is complete and sane."""

from __future__ import annotations

import dataclasses
from typing import Any

from click.testing import CliRunner
from confluent_kafka.admin import AdminClient

from config.settings import Settings
from dom.bench import bench
from dom.bench_report import BenchResult, parse_json_line
from dom.topic_reader import read_to_end
from schemas.enums import ROUTING_OUTCOMES
from streams.core.saga.state import OrderState
from tests.e2e.harness import partition_of

TINY = ["--orders", "50", "--skus", "200", "--locations", "10", "--latency-seconds", "3"]


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, int | float) and not isinstance(value, bool) else []


def test_bench_reports_every_figure_for_a_tiny_run(kafka_bootstrap: str) -> None:
    env = {
        "DOM_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "DOM_TOPIC_PARTITIONS": "3",
        "DOM_PRODUCER_COMPRESSION": "zstd",
    }
    result = CliRunner().invoke(
        bench, [*TINY, "--workers", "1", "--timeout", "120"], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output

    figures = parse_json_line(result.output)
    assert list(figures) == [f.name for f in dataclasses.fields(BenchResult)]
    assert set(figures["outcomes"]) == set(ROUTING_OUTCOMES)
    assert all(n >= 0 for n in _numbers(figures)), figures

    assert figures["broker"] == "external"
    # The world: every record it sent is counted where it went, with what the workers made of
    # it (every sku's availability at least), and the ingest rate is the two over each other.
    world = figures["world_messages_by_topic"]
    masters = sum(world.get(t, 0) for t in ("dom.rules.v1", "dom.locations.v1", "dom.products.v1"))
    assert world["dom.products.v1"] == 200 and world["dom.locations.v1"] == 10
    # The stock went packed, as `dom feed stock` sends a count (DOM_PACK_STOCK): this world's
    # few hundred counts in one message a partition, every other record alone.
    assert figures["stock_packed"] is True
    assert 1 <= world["dom.stock.v1"] <= 3
    assert figures["world_records"] - masters >= 200  # the counts: a sku at least one each
    assert world["dom.inventory.availability.v1"] >= 200
    ingest = figures["world_records"] / figures["world_load_seconds"]
    assert abs(figures["world_records_per_s"] - ingest) <= 0.01 * ingest
    assert "world's records written" in result.output
    assert figures["latency_rate"] == 0  # none asked for: half the measured maximum
    assert figures["orders"] == figures["orders_completed"] == 50
    assert sum(figures["outcomes"].values()) == 50
    assert figures["pipeline_orders_per_s"] > 0
    assert figures["pipeline_messages"] > 50  # orders in, statuses and commands out, internals
    assert figures["pipeline_avg_message_bytes"] > 0
    # Every order's state was written (placed, decided), and every write was counted.
    writes = figures["order_state_writes"]
    assert sum(writes.values()) == 50
    written = sum(int(n) * orders for n, orders in writes.items())
    assert written == figures["pipeline_messages_by_topic"]["dom-orders-changelog"]
    assert "order state writes" in result.output
    # Read back as the broker serves them: zstd batches (set above), well under the records.
    record_bytes = figures["pipeline_avg_message_bytes"] * figures["pipeline_messages_per_order"]
    assert 0 < figures["pipeline_wire_bytes_per_order"] < record_bytes / 2
    assert figures["raw_produce_msgs_per_s"] > 0 and figures["raw_consume_msgs_per_s"] > 0
    assert figures["ratio_vs_raw_roundtrip"] > 0
    # The runtime floor passed every event through: 5,000 at least, three messages each.
    assert figures["floor_events"] == 5000
    assert figures["floor_msgs_per_s"] > 0 and figures["floor_cpu_us_per_message"] > 0
    ceiling = figures["floor_msgs_per_s"] / figures["pipeline_messages_per_order"]
    assert abs(figures["floor_orders_per_s_ceiling"] - ceiling) < 0.01
    assert figures["ratio_vs_floor"] > 0
    assert "gave up" not in result.output
    assert figures["latency_orders"] > 0
    assert figures["latency_completed"] == figures["latency_orders"]
    assert figures["latency_p50_ms"] <= figures["latency_p95_ms"] <= figures["latency_p99_ms"]
    # What the orders cost in each phase, read from the worker's own metrics: every order
    # went through the orders and inventory stages, in batches of one event at least.
    for phase in ("batch_events", "latency_batch_events"):
        assert {"orders", "inventory"} <= set(figures[phase]), figures[phase]
        assert all(n >= 1 for n in figures[phase].values()), figures[phase]
    # each latency order in, its status and commands out at least
    assert figures["latency_messages_per_order"] > 3
    assert figures["latency_worker_cpu_ms_per_order"] > 0
    assert figures["latency_broker_cpu_ms_per_order"] == 0  # not the bench's broker
    assert "events per batch" in result.output
    assert len(figures["worker_peak_rss_mb"]) == 1 and figures["worker_peak_rss_mb"][0] > 0
    assert len(figures["worker_cpu_seconds"]) == 1 and figures["worker_cpu_seconds"][0] > 0
    assert figures["worker_cpu_ms_per_order"] == figures["worker_cpu_seconds"][0] * 1000 / 50
    assert figures["broker_cpu_ms_per_order"] == 0  # not the bench's broker: not measured
    assert "peak RSS per worker" in result.output  # the table came before the JSON line
    # the one worker SIGKILLed and started again: every partition routes again
    assert figures["restart_probes"] == figures["restart_probes_routed"] == 3 * 20
    assert figures["restart_history_orders"] == 50 + figures["latency_completed"]
    assert figures["restart_ready_seconds"] > 0 and figures["restart_routing_seconds"] > 0
    assert "SIGKILL to routing again" in result.output
    assert "CPU per order" in result.output
    assert "orders/s ceiling" in result.output


def test_bench_profile_names_where_the_workers_spend_their_time_at_a_chosen_load(
    kafka_bootstrap: str, tmp_path: Any
) -> None:
    env = {"DOM_KAFKA_BOOTSTRAP": kafka_bootstrap, "DOM_TOPIC_PARTITIONS": "3"}
    profile = tmp_path / "profile"
    # Enough orders that the throughput phase lasts seconds: py-spy needs a moment to attach.
    args = ["--orders", "400", "--skus", "200", "--locations", "10", "--no-restart"]
    args += ["--latency-seconds", "2", "--latency-rate", "25"]
    result = CliRunner().invoke(
        bench,
        [*args, "--workers", "1", "--timeout", "120", "--profile", str(profile)],
        env=env,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output

    figures = parse_json_line(result.output)
    assert figures["latency_rate"] == figures["latency_offered_orders_per_s"] == 25
    assert figures["latency_orders"] == figures["latency_completed"] == 50
    top = figures["profile_top_self"]
    assert 1 <= len(top) <= 10 and all(0 < share <= 100 for _, share in top), top
    raw = profile / "bench-w1.raw"
    assert raw.stat().st_size > 0
    assert "streams/runtime/outbox.py" in raw.read_text()  # the stages' own code was sampled
    assert "profile: self time" in result.output and "profile: inclusive time" in result.output


def test_bench_warehouses_ship_what_they_are_commanded_so_a_history_is_of_shipped_orders(
    kafka_bootstrap: str,
) -> None:
    env = {"DOM_KAFKA_BOOTSTRAP": kafka_bootstrap, "DOM_TOPIC_PARTITIONS": "3"}
    # Placed at a pace, as a long run that builds a shipped history is.
    args = [*TINY, "--workers", "1", "--timeout", "120", "--no-limits", "--ship", "--rate", "40"]
    result = CliRunner().invoke(bench, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output

    figures = parse_json_line(result.output)
    assert figures["ship"] is True
    assert figures["rate"] == 40
    # The last of 50 orders cannot be placed before 49 / 40 s have passed (all at once, the
    # producer takes milliseconds).
    assert figures["orders_placed_seconds"] >= 49 / 40
    allocated = figures["outcomes"]["ALLOCATED"]
    assert allocated > 0
    # Every order of the throughput phase allocated whole shipped (a second after its commands,
    # long before the latency and restart phases ended); so did some of those phases' orders.
    assert figures["orders_shipped"] >= allocated, figures
    assert figures["fulfillment_updates"] >= 2 * figures["shipments"] > 0  # accepted, shipped


def test_bench_history_clones_shipped_orders_into_the_stores_the_restart_finds(
    kafka_bootstrap: str,
) -> None:
    env = {"DOM_KAFKA_BOOTSTRAP": kafka_bootstrap, "DOM_TOPIC_PARTITIONS": "3"}
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    before = set(admin.list_topics(timeout=10).topics)
    args = ["--orders", "50", "--skus", "200", "--locations", "10", "--latency-seconds", "0"]
    args += ["--no-limits", "--ship", "--history", "300", "--workers", "1", "--timeout", "120"]
    result = CliRunner().invoke(bench, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output

    figures = parse_json_line(result.output)
    assert figures["history_orders"] == 300
    assert figures["history_records"] == 300  # the orders' table; the reports' is off
    assert figures["history_ready_seconds"] > 0
    assert figures["restart_history_orders"] == 50 + 300
    assert figures["restart_probes_routed"] == figures["restart_probes"] == 3 * 20
    assert "history cloned" in result.output

    [changelog] = [
        t
        for t in set(admin.list_topics(timeout=10).topics) - before
        if t.endswith("dom-orders-changelog")
    ]
    clones = {
        m.key().decode(): m
        for m in read_to_end(Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=""), changelog)
        if m.key().startswith(b"H")
    }
    assert len(clones) == 300
    for order_id, message in clones.items():
        assert message.partition() == partition_of(order_id, 3)  # where the worker reads it
        state = OrderState.from_stored(message.value())
        assert state.order.order_id == order_id  # the template's id replaced throughout
        assert order_id.encode() in message.value()
        assert state.status in ("SHIPPED", "COMPLETED")

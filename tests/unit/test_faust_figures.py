"""Faust's own figures: the five the dashboard reads, under Faust's names, and no others."""

from __future__ import annotations

import re
from pathlib import Path
from time import monotonic

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.runtime.faust_metrics import FaustFigures

DASHBOARD = Path(__file__).parents[2] / "deploy/grafana/dashboards/dom-pipeline.json"


def _samples(registry: CollectorRegistry) -> dict[str, float]:
    text = generate_latest(registry).decode()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


class App:
    rebalancing_count = 1


def test_each_hook_counts_what_its_figure_says() -> None:
    registry = CollectorRegistry()
    figures = FaustFigures(registry)
    for offset in range(3):
        figures.on_message_in(("t", 0), offset, None)
        figures.on_stream_event_out(
            ("t", 0), offset, None, None, figures.on_stream_event_in(("t", 0), offset, None, None)
        )
        figures.on_message_out(("t", 0), offset, None)
    state = figures.on_send_initiated(None, "t", None, 1, 1)
    figures.on_send_completed(None, state, None)
    figures.on_send_completed(None, state, None)
    figures.on_send_error(None, RuntimeError("refused"), state)
    figures.on_commit_completed(None, figures.on_commit_initiated(None))
    rebalance = figures.on_rebalance_start(App())
    during = _samples(registry)["faust_total_rebalances"]
    figures.on_rebalance_return(App(), rebalance)

    samples = _samples(registry)
    assert samples["faust_messages_received_total"] == 3
    assert samples["faust_total_sent_messages_total"] == 2
    assert samples["faust_total_error_messages_sent_total"] == 1
    assert (during, samples["faust_total_rebalances"]) == (1, 0)
    assert samples["faust_consumer_commit_latency_count"] == 1
    assert samples["faust_consumer_commit_latency_bucket"] == 1  # the last bucket: +Inf


def test_every_faust_figure_the_dashboard_reads_is_there() -> None:
    registry = CollectorRegistry()
    FaustFigures(registry)
    exposed = set(_samples(registry))
    exprs = re.findall(r'"expr": "((?:[^"\\]|\\.)*)"', DASHBOARD.read_text())
    read = {name for expr in exprs for name in re.findall(r"\bfaust_[a-z_]+", expr)}
    assert len(read) == 5, read
    assert read <= exposed, read - exposed


def test_faust_s_liveness_check_learns_when_each_partition_last_fed_its_stream() -> None:
    # Faust's consumer logs "Stream has not started processing" for every partition with
    # records waiting whose time here is missing, from stream_processing_timeout on.
    figures = FaustFigures(CollectorRegistry())
    before = monotonic()
    figures.on_stream_event_in(("t", 0), 0, None, None)
    figures.on_stream_event_in(("t", 1), 0, None, None)
    first = figures.stream_inbound_time[("t", 0)]
    figures.on_stream_event_in(("t", 0), 1, None, None)

    assert before <= first <= figures.stream_inbound_time[("t", 0)] <= monotonic()
    assert set(figures.stream_inbound_time) == {("t", 0), ("t", 1)}

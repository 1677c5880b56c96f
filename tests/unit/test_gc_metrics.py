"""The worker's garbage-collection figures: every pause timed, reported by generation."""

from __future__ import annotations

import gc

from prometheus_client import generate_latest

from streams.metrics import PipelineMetrics


def _sample(metrics: PipelineMetrics, name: str) -> dict[str, float]:
    """generation -> value of one sample of ``dom_gc_pause_seconds``."""
    values: dict[str, float] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name:
                values[sample.labels["generation"]] = sample.value
    return values


def test_full_collections_are_timed_and_reported_when_observed() -> None:
    metrics = PipelineMetrics()
    metrics.watch_gc()
    metrics.watch_gc()  # once only, however often asked
    try:
        gc.collect()
        gc.collect()
        assert _sample(metrics, "dom_gc_pause_seconds_count") == {}  # not yet: observed later
        metrics.observe_gc()
    finally:
        gc.callbacks.remove(metrics._on_gc)
    assert metrics._on_gc not in gc.callbacks
    counts = _sample(metrics, "dom_gc_pause_seconds_count")
    assert counts.get("2", 0) >= 2
    assert _sample(metrics, "dom_gc_pause_seconds_sum")["2"] > 0
    metrics.observe_gc()  # nothing new: nothing counted twice
    assert _sample(metrics, "dom_gc_pause_seconds_count")["2"] == counts["2"]


def test_frozen_objects_are_read_when_scraped() -> None:
    metrics = PipelineMetrics()
    text = generate_latest(metrics.registry).decode()
    assert f"dom_gc_frozen_objects {float(gc.get_freeze_count())}" in text

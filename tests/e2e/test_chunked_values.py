"""A sku whose stored value outgrows one record keeps selling, and a worker that has only the
changelog restores it whole (``streams/runtime/chunks.py``).

A bestseller's inventory value carries each of its unshipped reservations; past about 10,800 of
them it was larger than the broker's 1 MiB record limit, its changelog write could not be
delivered, and the inventory stage stopped on it at every restart. Here the chunk size is
lowered to its minimum (1 KiB), so that a few dozen holds make the sku's value span several
records, as 11,000 would with the default size.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from config.settings import Settings
from streams.runtime.chunks import CHUNK_KEY, MANIFEST
from tests.e2e.harness import Pipeline
from tests.e2e.invariants import outcomes_by_order, wait_for_outcomes
from tests.e2e.world import one_dc
from tests.unit.factories import make_order

pytestmark = pytest.mark.broker

STOCK = 100
FIRST, SECOND = 40, 70  # the second wave asks for 10 units more than are left


def test_a_sku_value_larger_than_a_record_is_stored_in_chunks_and_restored_whole(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(topic_partitions=1)
    pipeline = Pipeline(settings, tmp_path)
    pipeline.overrides["DOM_TABLE_CHUNK_BYTES"] = "1024"
    pipeline.start_worker("w1")
    try:
        one_dc(pipeline, {"SKU-1": STOCK})
        pipeline.produce(make_order(order_id=f"A-{n:03d}") for n in range(FIRST))
        pipeline.availability_where("SKU-1", lambda now: now["DC-EAST"].reserved == FIRST)

        # What the changelog carries for the sku: its chunks, then a manifest under its key.
        changelog = pipeline.read_changelog_messages("dom-inventory-changelog")
        latest = {m.key(): m.value() for m in changelog}
        assert latest[b"SKU-1"].startswith(MANIFEST), latest[b"SKU-1"][:80]
        chunks = [key for key in latest if key.startswith(CHUNK_KEY + b"SKU-1\x00")]
        assert len(chunks) >= 3, sorted(latest)
        assert all(len(latest[key]) <= 1024 for key in chunks)
        pipeline.workers["w1"].stop()

        # A worker of another name has no local store: it has only the changelog.
        pipeline.start_worker("w2")
        pipeline.produce(make_order(order_id=f"B-{n:03d}") for n in range(SECOND))
        final = pipeline.availability_where("SKU-1", lambda now: now["DC-EAST"].reserved == STOCK)
        second_ids = {f"B-{n:03d}" for n in range(SECOND)}
        by_order = outcomes_by_order(wait_for_outcomes(pipeline, second_ids))
        second = [by_order[order][0].status.value for order in sorted(second_ids)]
        # w2 knew the first 40 units were held: 60 more allocated, never the 70 asked for
        assert second.count("ALLOCATED") == STOCK - FIRST, second
        assert second.count("BACKORDERED") == SECOND - (STOCK - FIRST), second
        assert final["DC-EAST"].available == 0 and final["DC-EAST"].on_hand == STOCK
    finally:
        pipeline.stop_all()

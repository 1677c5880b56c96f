"""Static group membership (``DOM_STATIC_MEMBERSHIP``): a worker SIGKILLed and restarted under
its name takes its own partitions back at once, instead of after the session timeout its group
would otherwise wait out for the killed member; and its orders keep being routed."""

from __future__ import annotations

import time
from pathlib import Path

from config.settings import Settings
from tests.e2e.conftest import static_pair
from tests.e2e.harness import group_members, partition_of
from tests.e2e.invariants import check_invariants, wait_for_outcomes
from tests.unit.factories import make_order

PARTITIONS = 4
SESSION_S = 60
"""Far above the few seconds a worker takes to start: routing again before it ran out shows
the group did not wait for the killed member."""
STOCK = {f"SKU-{n}": 100 for n in range(4)}


def _probes(prefix: str) -> list:
    """One order on every partition of the order topics."""
    chosen: dict[int, str] = {}
    n = 0
    while len(chosen) < PARTITIONS:
        order_id = f"{prefix}-{n}"
        chosen.setdefault(partition_of(order_id, PARTITIONS), order_id)
        n += 1
    return [make_order(o, lines=[(f"SKU-{p}", 1)]) for p, o in sorted(chosen.items())]


def test_a_worker_restarted_under_its_name_takes_its_partitions_back_at_once(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(topic_partitions=PARTITIONS)
    with static_pair(settings, tmp_path, SESSION_S, STOCK) as pipeline:
        first = _probes("BEFORE")
        pipeline.produce(first)
        wait_for_outcomes(pipeline, {o.order_id for o in first})
        before = group_members(settings)
        names = {f"{settings.app_id}-{w}-127.0.0.1-{pipeline.ports[w]}" for w in ("w1", "w2")}
        assert set(before) == names, f"the group's static members: {sorted(before)}"
        assert all(before.values()), f"each worker holds partitions: {before}"

        pipeline.workers["w2"].kill()
        killed = time.monotonic()
        pipeline.start_worker("w2")  # same name, same data directory: a restarted pod
        after_kill = _probes("AFTER")
        pipeline.produce(after_kill)
        wait_for_outcomes(pipeline, {o.order_id for o in after_kill}, timeout=SESSION_S * 3)
        routed_s = time.monotonic() - killed

        assert routed_s < SESSION_S, (
            f"the restarted worker's orders were routed {routed_s:.0f} s after the SIGKILL: "
            f"the group waited out the session timeout ({SESSION_S} s) for the killed member"
        )
        assert group_members(settings) == before, "each worker holds the partitions it held before"
        orders = {o.order_id for o in first + after_kill}
        counts = check_invariants(pipeline, orders, wait_for_outcomes(pipeline, orders))
        assert counts == {"ALLOCATED": len(orders)}, counts
        print(f"\nrestarted worker routing again {routed_s:.1f} s after its SIGKILL")

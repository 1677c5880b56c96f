"""A burst with a fault landing in the middle of it, and what must hold once it is over.

The fault is sent as soon as the first outcomes of the burst show, and proved to have landed
mid-stream afterwards from the outcomes' own timestamps (some orders had one before it, not
all), never by a sleep. Then every order must get its outcome and every invariant of a burst
must hold, with nothing valid on the dead-letter topic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from schemas.codec import DecodeError
from schemas.enums import ROUTING_OUTCOMES
from schemas.models import OrderPlaced, OrderStatusChanged
from tests.e2e.harness import Pipeline
from tests.e2e.invariants import check_invariants, wait_for_outcomes

FIRST_OUTCOMES = 10
"""Outcomes seen before the fault is sent: the burst is under way."""

COUNTED = {
    "holes filled": "dom_stage_holes_filled_total",
    "stage crashes": "dom_stage_crashes_total",
    "routing retries": "dom_routing_retries_total",
    "reservation conflicts": "dom_reservation_conflicts_total",
    "dead letters": "dom_dead_letters_total",
}
"""What the workers' /metrics count of a fault's consequences, as the report names them."""


@dataclass
class Fault:
    """What a test does to the pipeline: ``run(pipeline, rest_of_burst)`` breaks something,
    sends the rest of the burst (by calling ``rest_of_burst``) and returns once all runs again;
    what it counts of workers it stops goes to ``counts``."""

    name: str
    run: Callable[[Pipeline, Callable[[], None]], None]
    counts: dict[str, float] = field(default_factory=dict)
    later_blows: dict[str, float] = field(default_factory=dict)
    """When each later part of a fault struck (name -> ms since the epoch), if it has parts: each
    must strike mid-stream too (orders without an outcome left), else it proves nothing."""

    ended_ms: float | None = None
    """When all was running again, if not when ``run`` returned (the rest of the burst may be
    sent after that)."""

    def strike(self, name: str) -> None:
        self.later_blows[name] = time.time() * 1000

    def over(self) -> None:
        self.ended_ms = time.time() * 1000


def burst_with_fault(pipeline: Pipeline, orders: list[OrderPlaced], fault: Fault) -> None:
    """Send the first half of ``orders``, break the pipeline once their first outcomes show,
    send the second half while it is broken (or as soon as it is back, if the broker is what
    broke), then check that nothing was lost or doubled; print a one-line report."""
    started = time.monotonic()
    order_ids = {o.order_id for o in orders}
    first_half, second_half = orders[: len(orders) // 2], orders[len(orders) // 2 :]
    pipeline.produce(first_half)
    pipeline.read("dom.order-status.v1", lambda r: _outcomes(r) >= FIRST_OUTCOMES, timeout=120)
    fault_at_ms = time.time() * 1000

    def rest_of_burst() -> None:
        pipeline.produce(second_half)

    fault.run(pipeline, rest_of_burst)
    fault_ended_ms = fault.ended_ms or time.time() * 1000
    statuses = wait_for_outcomes(pipeline, order_ids, timeout=150)
    decided_now = {s.order_id for s in statuses if s.status in ROUTING_OUTCOMES}
    if not order_ids <= decided_now:  # the evidence is gone once the workers stop
        print(f"\nno outcome for {len(order_ids - decided_now)} orders; {pipeline.lag_report()}")
    counts = check_invariants(pipeline, order_ids, statuses)
    letters = check_no_valid_dead_letters(pipeline)
    decided = outcome_times_ms(pipeline)
    before = check_mid_stream(decided, fault_at_ms, first_half, fault)
    add(fault.counts, scrape_all(pipeline))
    figures = ", ".join(f"{name} {fault.counts.get(name, 0):.0f}" for name in COUNTED)
    lasted = (fault_ended_ms - fault_at_ms) / 1000
    last = (max(decided[o] for o in order_ids) - fault_ended_ms) / 1000
    print(
        f"\n{fault.name}: {len(orders)} orders, {len(before)} with an outcome before the fault; "
        f"fault {lasted:.0f}s; last outcome {last:+.1f}s from the fault's end; outcomes {counts}; "
        f"{len(letters)} dead letters; /metrics (since each worker's last start): {figures}; "
        f"{time.monotonic() - started:.0f}s in all"
    )


def check_mid_stream(
    decided: dict[str, int], fault_at_ms: float, first_half: list[OrderPlaced], fault: Fault
) -> set[str]:
    """Assert that the fault (and each of its later blows) struck while orders were still
    waiting for their outcomes; return the orders that had one before it."""
    before = {o for o, at in decided.items() if at < fault_at_ms}
    # The fault landed while the first half was being routed: some of its orders had an
    # outcome, not all of them.
    assert 0 < len(before) < len(first_half), (
        f"{len(before)} of the first {len(first_half)} orders had an outcome at the fault"
    )
    assert before <= {o.order_id for o in first_half}
    for blow, at_ms in fault.later_blows.items():
        done = sum(1 for at in decided.values() if at < at_ms)
        assert done < len(decided), f"every order had its outcome before {blow}"
    return before


def _outcomes(records: Sequence[object]) -> int:
    return sum(1 for r in records if getattr(r, "status", None) in ROUTING_OUTCOMES)


def outcome_times_ms(pipeline: Pipeline) -> dict[str, int]:
    """When each order's first routing outcome was stamped (the workers run on this machine:
    their producers stamp records with its clock; a record kept in a producer's buffer while
    the broker was away keeps the time it was made)."""
    decided: dict[str, int] = {}
    for message in pipeline.read_changelog_messages("dom.order-status.v1"):
        status = pipeline.codec.decode_as(message.value(), OrderStatusChanged)
        if status.status in ROUTING_OUTCOMES and status.action_id is None:
            at = message.timestamp()[1]
            decided[status.order_id] = min(at, decided.get(status.order_id, at))
    return decided


def check_no_valid_dead_letters(pipeline: Pipeline) -> list[object]:
    """Every dead letter (none is expected: the burst is all valid), asserting that none of
    them holds a record that decodes, which a stage should have applied."""
    letters = pipeline.read_changelog_messages("dom.dlq.v1", quiet=2.0)
    valid = []
    for letter in letters:
        try:
            pipeline.codec.decode(letter.value())
        except DecodeError:
            continue
        valid.append(dict(letter.headers() or []))
    assert not valid, f"{len(valid)} valid records were dead-lettered, e.g. {valid[:3]}"
    return letters


def add(counts: dict[str, float], more: dict[str, float]) -> None:
    for name, value in more.items():
        counts[name] = counts.get(name, 0.0) + value


def scrape_all(pipeline: Pipeline) -> dict[str, float]:
    """The fault counters of every running worker, summed."""
    total: dict[str, float] = {}
    for name, worker in pipeline.workers.items():
        if worker.proc is not None and worker.proc.poll() is None:
            add(total, scrape(pipeline, name))
    return total


def scrape(pipeline: Pipeline, name: str) -> dict[str, float]:
    """The fault counters of worker ``name`` (empty if it does not answer)."""
    names = {sample: label for label, sample in COUNTED.items()}
    found: dict[str, float] = {}
    for sample in pipeline.metric_samples(name):
        if sample.name in names:
            add(found, {names[sample.name]: sample.value})
    return found

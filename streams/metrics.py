"""What SREs see of a worker: Prometheus metrics, served with Faust's own at ``/metrics``.

Labels stay bounded: stage, record type, status, channel, dead-letter kind, rule id (as many
as operators write), topic and partition. Never an order id or a sku.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.enums import ROUTING_OUTCOMES
from schemas.models import Message, OrderPlaced, OrderStatusChanged
from streams.health import WorkerHealth

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
GC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
LAG_INTERVAL = 5.0


class PipelineMetrics:
    """Every metric a worker exports, in one registry of its own (tests build several)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_in = Counter(
            "dom_stage_events_in",
            "Inputs a stage took from its topics (each record of a RecordBatch counts).",
            ["stage"],
            registry=r,
        )
        self.records_out = Counter(
            "dom_stage_records_out", "Records a stage sent.", ["stage", "record"], registry=r
        )
        self.events_failed = Counter(
            "dom_stage_events_failed",
            "Inputs a stage could not apply (each went to the dead-letter topic).",
            ["stage"],
            registry=r,
        )
        self.dead_letters = Counter(
            "dom_dead_letters",
            "Dead letters sent, by kind of fault.",
            ["stage", "kind"],
            registry=r,
        )
        self.holes_filled = Counter(
            "dom_stage_holes_filled",
            "Inputs Faust skipped over that a stage read back from the broker.",
            ["stage"],
            registry=r,
        )
        self.replays_skipped = Counter(
            "dom_stage_replays_skipped",
            "Inputs read again (a restart after a late commit, a group rewound by hand) that a "
            "stage had applied in a batch whose records all went out: skipped whole.",
            ["stage"],
            registry=r,
        )
        self.waiting_keys = Gauge(
            "dom_stage_waiting_keys",
            "Keys whose last changes a stage keeps unwritten for now (an order waiting for the "
            "rest of its skus' answers); their inputs, and those after them in their "
            "partitions, are not committed until the key is written.",
            ["stage"],
            registry=r,
        )
        self.stalls = Counter(
            "dom_stage_stalls",
            "Partitions a stage got no record of for a while though they held some: read again "
            "from where the stage was (streams/runtime/stalls.py).",
            ["stage"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "dom_stage_batch_seconds",
            "Time to apply a batch, make its state durable and send what it caused.",
            ["stage"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.broker_wait = Histogram(
            "dom_stage_broker_wait_seconds",
            "Part of a batch's time spent waiting for the broker: step=state, the flush that "
            "makes its table writes durable; step=records, until the broker took its records.",
            ["stage", "step"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "dom_stage_batch_size",
            "Inputs per batch (records: each of a RecordBatch counts).",
            ["stage"],
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500),
            registry=r,
        )
        self.decision_latency = Histogram(
            "dom_decision_latency_seconds",
            "From an order's placed_at to its routing outcome.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.outcomes = Counter(
            "dom_order_outcomes", "Routing outcomes.", ["status", "channel"], registry=r
        )
        self.status_changes = Counter(
            "dom_order_status_changes", "Every status an order moved to.", ["status"], registry=r
        )
        self.shipments_per_order = Histogram(
            "dom_shipments_per_order",
            "Shipments of a routing outcome.",
            buckets=(0, 1, 2, 3, 4, 5, 8),
            registry=r,
        )
        self.reservation_conflicts = Counter(
            "dom_reservation_conflicts",
            "Reservations refused by a sku's owner (a race lost or a stale view).",
            registry=r,
        )
        self.routing_retries = Counter(
            "dom_routing_retries", "Routing attempts after the first one.", registry=r
        )
        self.rules_fired = Counter(
            "dom_rules_fired", "Rules that fired on an order's outcome.", ["rule_id"], registry=r
        )
        self.rules_in_force = Gauge(
            "dom_rules_in_force", "Rules this worker applies now.", registry=r
        )
        self.rules_refused = Gauge(
            "dom_rules_refused", "Rule versions this worker refused.", registry=r
        )
        self.rule_errors = Counter(
            "dom_rule_errors",
            "Rule conditions that failed on an order (kind error: the rule did not fire) or ran "
            "over the evaluation budget (kind slow).",
            ["rule_id", "kind"],
            registry=r,
        )
        self.availability_updates = Counter(
            "dom_availability_updates", "Availability records published.", registry=r
        )
        self.consumer_lag = Gauge(
            "dom_consumer_lag",
            "Records of a source partition not yet processed by this worker.",
            ["topic", "partition"],
            registry=r,
        )
        self.lag_reported: set[tuple[str, str]] = set()
        self.table_keys = Gauge(
            "dom_table_keys",
            "Keys in a table's local partitions (estimate).",
            ["table"],
            registry=r,
        )
        self.table_memory = Gauge(
            "dom_table_memory_bytes",
            "Memory RocksDB holds for a table's local partitions, by kind: memtables (writes "
            "not yet flushed), table_readers (index and filter blocks of open files, outside "
            "the cache), block_cache (blocks read).",
            ["table", "kind"],
            registry=r,
        )
        self.gc_pause = Histogram(
            "dom_gc_pause_seconds",
            "Garbage collections: each one stops the worker's event loop while it runs.",
            ["generation"],
            buckets=GC_BUCKETS,
            registry=r,
        )
        self.gc_frozen = Gauge(
            "dom_gc_frozen_objects",
            "Objects left out of full collections since the worker settled (gc.freeze).",
            registry=r,
        )
        self.gc_frozen.set_function(gc.get_freeze_count)
        self.stage_crashes = Counter(
            "dom_stage_crashes",
            "Crashes of a stage's agent (Faust restarts it a few seconds later); see /health/.",
            ["stage"],
            registry=r,
        )
        self.health = WorkerHealth(lambda stage: self.stage_crashes.labels(stage).inc())
        self.worker_healthy = Gauge(
            "dom_worker_healthy",
            "1 while the worker is healthy (GET /health/ answers 200), else 0.",
            registry=r,
        )
        self.worker_healthy.set_function(lambda: float(self.health.healthy()))
        self._gc_started = 0.0
        self._gc_pauses: list[tuple[int, float]] = []  # (generation, seconds), not yet observed

    def watch_gc(self) -> None:
        """Time every collection from now on; reported with the next lag and table figures."""
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        # Runs inside the collector, which may interrupt any code (a metric's lock held
        # included): only remember here, observe later.
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self._gc_pauses.append((info["generation"], time.perf_counter() - self._gc_started))

    def observe_gc(self) -> None:
        pauses, self._gc_pauses = self._gc_pauses, []
        for generation, seconds in pauses:
            self.gc_pause.labels(str(generation)).observe(seconds)

    def sent(self, stage: str, records: Iterable[object]) -> None:
        # Counted per batch, then one inc per series: labels() takes a lock and builds a key.
        by_type: Tally[str] = Tally()
        by_status: Tally[str] = Tally()
        for record in records:
            by_type[type(record).__name__] += 1
            if isinstance(record, OrderStatusChanged):
                by_status[record.status.value] += 1
        for name, count in by_type.items():
            self.records_out.labels(stage, name).inc(count)
        self.availability_updates.inc(by_type["Availability"])
        for status, count in by_status.items():
            self.status_changes.labels(status).inc(count)

    def order_outputs(self, order: OrderPlaced, outputs: Iterable[Message]) -> None:
        """Outcome, latency, shipments and rules of an order's routing outcome, if one is out."""
        for record in outputs:
            # An action's answer repeats the order's status; it is not a routing outcome.
            if (
                isinstance(record, OrderStatusChanged)
                and record.status in ROUTING_OUTCOMES
                and record.action_id is None
            ):
                self.outcomes.labels(record.status.value, order.channel.value).inc()
                latency = (record.at - order.placed_at).total_seconds()
                self.decision_latency.observe(max(0.0, latency))
                self.shipments_per_order.observe(len(record.shipments))
                for rule_id in record.rules_fired:
                    self.rules_fired.labels(rule_id).inc()

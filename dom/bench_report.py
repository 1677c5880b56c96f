"""The figures of one ``dom bench`` run, and the two ways they are shown: a readable table and
one ``BENCH_JSON {...}`` line for machines.

The JSON line always carries the same keys, in this order (``BenchResult`` fields); a figure
that could not be measured is 0 (or an empty list), never missing:

config
    ``orders``, ``workers``, ``skus``, ``stock_scale`` (the opening stock's multiple),
    ``locations``, ``partitions``, ``latency_seconds``,
    ``latency_rate`` (the ``--latency-rate`` asked for; 0: half the measured maximum),
    ``rate`` (the ``--rate`` the throughput phase placed its orders at; 0: as fast as the
    producer allows),
    ``seed``, ``broker`` (``"local"``: started by the bench; ``"external"``:
    DOM_KAFKA_BOOTSTRAP), ``ship`` (``--ship``: the bench's warehouses accepted and shipped
    every shipment; their updates count among the pipeline's messages) and
    ``fulfillment_updates`` (how many they sent), ``orders_shipped`` (orders of the run,
    probes included, SHIPPED or COMPLETED by the end)
setup
    ``workers_ready_seconds`` (start to every worker ready), ``world_records`` (locations,
    products, stock events, rules), ``world_load_seconds`` (first record sent to availability
    seen for every sku), ``world_records_per_s`` (the two over each other: the stock ingest),
    ``stock_packed`` (whether the stock went packed, as ``dom feed stock`` sends a count: the
    default, ``DOM_PACK_STOCK=false`` sends each record alone),
    ``world_messages_by_topic`` (records written to each topic of the run from the first
    record sent until every topic was quiet: the world's records and what the workers made of
    them, table changelogs included)
pipeline at full speed (N orders produced as fast as the producer allows, or at ``rate``)
    ``orders_completed`` (routing outcome and every shipment's fulfillment command seen),
    ``outcomes`` (count per routing outcome, the five contract outcomes always present),
    ``shipments``, ``pipeline_seconds`` (first order sent to last completing record's
    timestamp), ``orders_placed_seconds`` (first order sent to the last one flushed),
    ``pipeline_orders_per_s``, ``pipeline_messages`` (records written to every
    topic of the run in that window: ``pipeline_messages_in`` inbound, ``_out`` outbound,
    ``_internal`` internal topics and table changelogs), ``pipeline_messages_per_order``,
    ``pipeline_msgs_per_s``, ``pipeline_avg_message_bytes`` (key + value),
    ``order_state_writes`` (orders by how many times the window wrote their state to the orders'
    changelog, counted over the records read for the sizes, at most 500,000),
    ``pipeline_wire_bytes_per_order`` (what a reader of every one of those records received
    from the broker, per order: their batches compressed as written, fetch framing included),
    ``worker_cpu_seconds`` (user + system CPU of each worker, child processes included, over
    the same window), ``worker_cpu_ms_per_order`` (all workers' CPU over completed orders),
    ``broker_cpu_ms_per_order`` (the local broker's, which also serves the bench's own
    producer and readers; 0 on an external cluster), ``batch_events`` (stage -> the events a
    batch of that stage held on average in that window, over every worker: read from the
    workers' ``dom_stage_batch_size``)
raw Kafka limit (confluent-kafka, same broker, same message count and size; with
``--no-limits``, ``limits`` is false and these, the runtime floor's and the ratios are all 0)
    ``raw_messages`` (``pipeline_messages``, at least 10,000), ``raw_message_bytes`` (the
    pipeline's mean), ``raw_produce_msgs_per_s``,
    ``raw_consume_msgs_per_s``, ``raw_roundtrip_msgs_per_s`` (count over produce time plus
    consume time: each message written once and read once)
runtime floor (``dom.bench_floor``: a pass-through Faust agent, same broker, same workers)
    ``floor_events`` (``pipeline_messages`` / 3, at least 5,000; each event is three messages:
    in, changelog, out), ``floor_msgs_per_s``, ``floor_cpu_us_per_message`` (the floor
    workers' CPU over the messages moved), ``floor_orders_per_s_ceiling``
    (``floor_msgs_per_s`` over ``pipeline_messages_per_order``: the most orders/s Faust and
    aiokafka could carry with the pipeline's topology and no work at all)
ratios (pipeline messages/s over raw messages/s, and over the floor's)
    ``ratio_vs_raw_produce``, ``ratio_vs_raw_consume``, ``ratio_vs_raw_roundtrip``,
    ``ratio_vs_floor`` (the share of the runtime floor's pace the pipeline keeps with its work
    to do; steadier than the absolute figures when the machine's speed drifts between runs)
latency at a fixed offered load (``--latency-rate``, else half the measured maximum orders/s)
    ``latency_offered_orders_per_s``, ``latency_orders``, ``latency_completed``,
    ``latency_p50_ms``, ``latency_p95_ms``, ``latency_p99_ms``, ``latency_max_ms`` (placed_at,
    set when the order is produced, to the routing outcome record's timestamp), and what the
    same orders cost at that pace, as the throughput phase's figures say it at full speed:
    ``latency_messages_per_order`` (records written to every topic of the run from the first
    order until quiet), ``latency_worker_cpu_ms_per_order`` and
    ``latency_broker_cpu_ms_per_order`` (first order to the last one routed; the broker's 0 on
    an external cluster), ``latency_batch_events`` (as ``batch_events``)
memory
    ``worker_peak_rss_mb`` (VmHWM per worker, its child processes included),
    ``worker_peak_rss_mb_max``
history (``--history N``; else all 0)
    ``history_orders`` (orders cloned into the workers' stores, :mod:`dom.bench_history`),
    ``history_records`` (changelog records written for them), ``history_write_seconds``,
    ``history_ready_seconds`` (the stopped workers started again to all ready: every copy read
    into their stores)
restart (``--no-restart``: all 0)
    ``restart_probes`` (probe orders, 20 per partition), ``restart_history_orders`` (orders
    routed before the kill, and the history's), ``restart_ready_seconds`` (SIGKILL of the
    first worker to its restart ready), ``restart_probes_routed``, ``restart_routing_seconds``
    (SIGKILL to the last probe's routing outcome: every partition routes again)
``total_seconds``: the whole run, broker start to stop.

Only with ``--profile``, one more key at the end: ``profile_top_self``, ``[[frame, percent],
...]``, the ten frames with the most self time during the throughput phase, over every
worker (``dom.bench_profile``).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from schemas.enums import ROUTING_OUTCOMES

JSON_PREFIX = "BENCH_JSON "


def _outcome_counts() -> dict[str, int]:
    return dict.fromkeys(ROUTING_OUTCOMES, 0)


@dataclass
class BenchResult:
    """Every figure of a run; see the module docstring for what each one means."""

    orders: int = 0
    workers: int = 0
    skus: int = 0
    stock_scale: int = 1
    locations: int = 0
    partitions: int = 0
    latency_seconds: float = 0.0
    latency_rate: float = 0.0
    rate: float = 0.0
    """Orders/s the throughput phase placed (``--rate``; 0: as fast as the producer allows)."""
    seed: int = 0
    broker: str = "local"
    ship: bool = False
    """Whether the bench's warehouses shipped what they were commanded (``--ship``)."""
    fulfillment_updates: int = 0
    orders_shipped: int = 0
    """Orders of the run shipped by its end (SHIPPED, or COMPLETED: every unit left; only
    with ``ship``)."""
    workers_ready_seconds: float = 0.0
    world_records: int = 0
    world_load_seconds: float = 0.0
    world_records_per_s: float = 0.0
    stock_packed: bool = True
    """Whether the world's stock went packed, a ``RecordBatch`` per run of a partition, as
    ``dom feed stock`` sends a count (``DOM_PACK_STOCK``), or a record each."""
    world_messages_by_topic: dict[str, int] = field(default_factory=dict)
    orders_completed: int = 0
    outcomes: dict[str, int] = field(default_factory=_outcome_counts)
    shipments: int = 0
    pipeline_seconds: float = 0.0
    orders_placed_seconds: float = 0.0
    """Seconds the throughput phase took to place its orders (paced by ``rate``, if any)."""
    pipeline_orders_per_s: float = 0.0
    pipeline_messages: int = 0
    pipeline_messages_in: int = 0
    pipeline_messages_out: int = 0
    pipeline_messages_internal: int = 0
    pipeline_messages_per_order: float = 0.0
    pipeline_messages_by_topic: dict[str, int] = field(default_factory=dict)
    """Records each topic received in the throughput phase (changelogs and internal topics
    included), busiest first: what an order costs, topic by topic."""
    order_state_writes: dict[str, int] = field(default_factory=dict)
    """Orders by how many times the throughput phase wrote their state ("3": the orders
    written three times): a decision needs two (placed, decided), and an order whose skus'
    owners answered in two of its stage's batches takes a third."""
    pipeline_msgs_per_s: float = 0.0
    pipeline_avg_message_bytes: float = 0.0
    pipeline_wire_bytes_per_order: float = 0.0
    """What reading every record of the window took from the broker, per order: the records'
    batches as their producers compressed them (``DOM_PRODUCER_COMPRESSION``), fetch framing
    included."""
    worker_cpu_seconds: list[float] = field(default_factory=list)
    worker_cpu_ms_per_order: float = 0.0
    broker_cpu_ms_per_order: float = 0.0
    batch_events: dict[str, float] = field(default_factory=dict)
    raw_messages: int = 0
    raw_message_bytes: int = 0
    raw_produce_msgs_per_s: float = 0.0
    raw_consume_msgs_per_s: float = 0.0
    raw_roundtrip_msgs_per_s: float = 0.0
    floor_events: int = 0
    floor_msgs_per_s: float = 0.0
    floor_cpu_us_per_message: float = 0.0
    floor_orders_per_s_ceiling: float = 0.0
    ratio_vs_raw_produce: float = 0.0
    ratio_vs_raw_consume: float = 0.0
    ratio_vs_raw_roundtrip: float = 0.0
    ratio_vs_floor: float = 0.0
    latency_offered_orders_per_s: float = 0.0
    latency_orders: int = 0
    latency_completed: int = 0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_max_ms: float = 0.0
    latency_messages_per_order: float = 0.0
    latency_worker_cpu_ms_per_order: float = 0.0
    latency_broker_cpu_ms_per_order: float = 0.0
    latency_batch_events: dict[str, float] = field(default_factory=dict)
    worker_peak_rss_mb: list[float] = field(default_factory=list)
    worker_peak_rss_mb_max: float = 0.0
    limits: bool = True
    history_orders: int = 0
    history_records: int = 0
    history_write_seconds: float = 0.0
    history_ready_seconds: float = 0.0
    restart_probes: int = 0
    restart_history_orders: int = 0
    restart_ready_seconds: float = 0.0
    restart_probes_routed: int = 0
    restart_routing_seconds: float = 0.0
    total_seconds: float = 0.0

    def finish_ratios(self) -> None:
        """Derived figures, computed once the pipeline and raw phases are both done."""
        self.ratio_vs_raw_produce = _ratio(self.pipeline_msgs_per_s, self.raw_produce_msgs_per_s)
        self.ratio_vs_raw_consume = _ratio(self.pipeline_msgs_per_s, self.raw_consume_msgs_per_s)
        self.ratio_vs_raw_roundtrip = _ratio(
            self.pipeline_msgs_per_s, self.raw_roundtrip_msgs_per_s
        )
        self.worker_peak_rss_mb_max = max(self.worker_peak_rss_mb, default=0.0)
        self.ratio_vs_floor = _ratio(self.pipeline_msgs_per_s, self.floor_msgs_per_s)
        self.floor_orders_per_s_ceiling = _ratio(
            self.floor_msgs_per_s, self.pipeline_messages_per_order
        )

    def to_json(self, extra: Mapping[str, Any] | None = None) -> str:
        """The fields in order, then ``extra`` (keys that only some runs have)."""
        figures = {**asdict(self), **(extra or {})}
        return json.dumps(_rounded(figures), separators=(",", ":"))

    def json_line(self, extra: Mapping[str, Any] | None = None) -> str:
        return JSON_PREFIX + self.to_json(extra)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def per_s(count: float, seconds: float) -> float:
    """A rate, 0 when no time passed."""
    return count / seconds if seconds > 0 else 0.0


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else 0.0
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def parse_json_line(output: str) -> dict[str, Any]:
    """The figures of the last ``BENCH_JSON`` line of a run's output."""
    lines = [x for x in output.splitlines() if x.startswith(JSON_PREFIX)]
    if not lines:
        raise ValueError("no BENCH_JSON line in the output")
    result: dict[str, Any] = json.loads(lines[-1][len(JSON_PREFIX) :])
    return result


# ---- the table ----------------------------------------------------------------------------------


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _bytes(r: BenchResult) -> str:
    records = r.pipeline_avg_message_bytes * r.pipeline_messages_per_order
    return f"{_n(records)} B in records, {_n(r.pipeline_wire_bytes_per_order)} B from the broker"


def table_rows(r: BenchResult) -> list[tuple[str, str, str]]:
    """(section, figure, value) rows of the readable report."""
    done = f"{r.orders_completed:,} / {r.orders:,}"
    paced = f" (placed at {r.rate:g} orders/s)" if r.rate else ""
    outcomes = ", ".join(f"{k.lower()} {v}" for k, v in r.outcomes.items() if v)
    rss = ", ".join(f"{x:,.0f}" for x in r.worker_peak_rss_mb) or "-"
    rows = [
        ("raw Kafka", "produce", f"{_n(r.raw_produce_msgs_per_s)} msg/s"),
        ("raw Kafka", "consume", f"{_n(r.raw_consume_msgs_per_s)} msg/s"),
        ("raw Kafka", "produce + consume", f"{_n(r.raw_roundtrip_msgs_per_s)} msg/s"),
        ("raw Kafka", "messages x size", f"{r.raw_messages:,} x {r.raw_message_bytes:,} B"),
        ("runtime floor", "pass-through Faust agent", f"{_n(r.floor_msgs_per_s)} msg/s"),
        ("runtime floor", "CPU per message", f"{_n(r.floor_cpu_us_per_message)} µs"),
        (
            "runtime floor",
            "orders/s ceiling",
            f"{_n(r.floor_orders_per_s_ceiling)} at {r.pipeline_messages_per_order:.1f} msg/order",
        ),
    ]
    if not r.limits:
        rows = [("limits", "raw Kafka and runtime floor", "not measured (--no-limits)")]
    return [
        *rows,
        ("pipeline", "orders completed", f"{done} in {r.pipeline_seconds:.1f} s{paced}"),
        ("pipeline", "throughput", f"{_n(r.pipeline_orders_per_s, 1)} orders/s"),
        ("pipeline", "messages moved", f"{_n(r.pipeline_msgs_per_s)} msg/s"),
        (
            "pipeline",
            "messages per order",
            f"{r.pipeline_messages_per_order:.1f} (in {r.pipeline_messages_in:,}, out "
            f"{r.pipeline_messages_out:,}, internal {r.pipeline_messages_internal:,})",
        ),
        ("pipeline", "per order, by topic", _by_topic(r)),
        ("pipeline", "order state writes", _state_writes(r)),
        ("pipeline", "avg message", f"{_n(r.pipeline_avg_message_bytes)} B"),
        ("pipeline", "bytes per order", _bytes(r)),
        ("pipeline", "CPU per order", _cpu(r)),
        ("pipeline", "events per batch", _batches(r.batch_events)),
        ("pipeline", "outcomes", outcomes or "-"),
        *_ratios(r),
        (
            "latency",
            "offered load",
            f"{_n(r.latency_offered_orders_per_s, 1)} orders/s for {r.latency_seconds:g} s "
            f"({r.latency_completed:,} / {r.latency_orders:,} routed)",
        ),
        ("latency", "p50 / p95 / p99", _latency(r)),
        ("latency", "max", f"{_n(r.latency_max_ms)} ms"),
        ("latency", "messages per order", f"{r.latency_messages_per_order:.1f}"),
        ("latency", "CPU per order", _latency_cpu(r)),
        ("latency", "events per batch", _batches(r.latency_batch_events)),
        ("memory", "peak RSS per worker", f"{rss} MB"),
        *_history(r),
        ("restart", "SIGKILL to routing again", _restart(r)),
        (
            "config",
            "run",
            f"{r.orders:,} orders, {r.workers} workers, {r.skus:,} skus (stock x{r.stock_scale}), "
            f"{r.locations} locations, {r.partitions} partitions, {r.broker} broker, seed {r.seed}"
            + (f"; {r.orders_shipped:,} orders shipped by warehouses" if r.ship else ""),
        ),
        (
            "config",
            "set-up",
            f"workers ready {r.workers_ready_seconds:.1f} s; world {r.world_records:,} records "
            f"loaded in {r.world_load_seconds:.1f} s ({r.world_records_per_s:,.0f}/s, stock "
            f"{'packed' if r.stock_packed else 'a record each'}); "
            f"total {r.total_seconds:.0f} s",
        ),
        ("config", "world's records written", _world_topics(r)),
    ]


def _state_writes(r: BenchResult) -> str:
    """Orders by how many times their state was written, and the mean."""
    if not r.order_state_writes:
        return "-"
    orders = sum(r.order_state_writes.values())
    writes = sum(int(n) * count for n, count in r.order_state_writes.items())
    each = ", ".join(f"{n}x {count:,}" for n, count in r.order_state_writes.items())
    return f"{each} (mean {writes / orders:.2f})"


def _world_topics(r: BenchResult) -> str:
    """Each topic's records while the world loaded, busiest first."""
    if not r.world_messages_by_topic:
        return "-"
    return "\n".join(f"{topic} {moved:,}" for topic, moved in r.world_messages_by_topic.items())


def _by_topic(r: BenchResult) -> str:
    """Each topic's records per order, busiest first (those under 0.05 summed as "other")."""
    if not r.orders or not r.pipeline_messages_by_topic:
        return "-"
    shares = [(topic, moved / r.orders) for topic, moved in r.pipeline_messages_by_topic.items()]
    shown = [f"{topic} {share:.2f}" for topic, share in shares if share >= 0.05]
    other = sum(share for _, share in shares if share < 0.05)
    return "\n".join(shown + ([f"other {other:.2f}"] if other else []))


def _ratios(r: BenchResult) -> list[tuple[str, str, str]]:
    if not r.limits:
        return []
    return [
        ("ratio", "pipeline / raw produce", f"{r.ratio_vs_raw_produce:.3f}"),
        ("ratio", "pipeline / raw consume", f"{r.ratio_vs_raw_consume:.3f}"),
        ("ratio", "pipeline / raw produce + consume", f"{r.ratio_vs_raw_roundtrip:.3f}"),
        ("ratio", "pipeline / runtime floor", f"{r.ratio_vs_floor:.3f}"),
    ]


def _cpu(r: BenchResult) -> str:
    workers = f"workers {r.worker_cpu_ms_per_order:.2f} ms"
    if r.broker != "local":
        return workers
    return f"{workers}, broker {r.broker_cpu_ms_per_order:.2f} ms"


def _latency_cpu(r: BenchResult) -> str:
    workers = f"workers {r.latency_worker_cpu_ms_per_order:.2f} ms"
    if r.broker != "local":
        return workers
    return f"{workers}, broker {r.latency_broker_cpu_ms_per_order:.2f} ms"


def _batches(events: Mapping[str, float]) -> str:
    """Each stage's events a batch, as ``orders 412, inventory 37``."""
    return ", ".join(f"{stage} {_n(n, 1 if n < 10 else 0)}" for stage, n in events.items()) or "-"


BatchCounts = dict[str, tuple[float, float]]
"""Stage -> (events, batches) a worker's ``dom_stage_batch_size`` counted so far."""


def events_per_batch(
    before: Sequence[BatchCounts], after: Sequence[BatchCounts]
) -> dict[str, float]:
    """Each stage's events a batch between two readings of every worker (in the same order),
    over all the workers; a stage that ran no batch in between is left out, and so is a worker
    that did not answer one of the readings (empty)."""
    events: dict[str, float] = defaultdict(float)
    batches: dict[str, float] = defaultdict(float)
    for old, new in zip(before, after, strict=True):
        if not old or not new:
            continue
        for stage, (n_events, n_batches) in new.items():
            was_events, was_batches = old.get(stage, (0.0, 0.0))
            events[stage] += n_events - was_events
            batches[stage] += n_batches - was_batches
    return {stage: round(events[stage] / n, 1) for stage, n in sorted(batches.items()) if n > 0}


def _history(r: BenchResult) -> list[tuple[str, str, str]]:
    if not r.history_orders:
        return []
    return [
        (
            "restart",
            "history cloned",
            f"{r.history_orders:,} orders ({r.history_records:,} changelog records) written in "
            f"{r.history_write_seconds:.1f} s; workers started again and ready in "
            f"{r.history_ready_seconds:.1f} s",
        )
    ]


def _restart(r: BenchResult) -> str:
    if not r.restart_probes:
        return "-"
    return (
        f"{r.restart_routing_seconds:.1f} s ({r.restart_probes_routed:,} / {r.restart_probes:,} "
        f"probes routed; worker ready in {r.restart_ready_seconds:.1f} s; "
        f"{r.restart_history_orders:,} orders in history)"
    )


def _latency(r: BenchResult) -> str:
    return f"{_n(r.latency_p50_ms)} / {_n(r.latency_p95_ms)} / {_n(r.latency_p99_ms)} ms"


def render_table(result: BenchResult) -> Any:
    """The report as a rich table."""
    from rich.table import Table

    table = Table(title="dom bench", show_lines=False)
    table.add_column("", style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    last = None
    for section, name, value in table_rows(result):
        table.add_row(section if section != last else "", name, value)
        last = section
    return table


# ---- what the bench saw of its orders ------------------------------------------------------------


@dataclass(frozen=True)
class OrdersSummary:
    """Of a set of orders: how many completed, their outcomes, shipments, last record time."""

    completed: int
    outcomes: dict[str, int]
    shipments: int
    last_ms: float


class OrderBook:
    """Routing outcomes and fulfillment commands seen, per order (pure; fed by a consumer).

    An order is complete once its routing outcome is out and every shipment of that outcome
    has its fulfillment command. Times are the records' timestamps, in epoch milliseconds.
    """

    def __init__(self) -> None:
        self.outcome: dict[str, tuple[str, float]] = {}
        self.last_ms: dict[str, float] = {}
        self.waiting: dict[str, set[str]] = {}
        self.shipments: dict[str, int] = {}
        self.commanded: set[str] = set()

    def on_status(self, order_id: str, status: str, shipment_ids: Sequence[str], ms: float) -> None:
        if status not in ROUTING_OUTCOMES or order_id in self.outcome:
            return  # only the first routing outcome counts (a redelivery repeats it)
        self.outcome[order_id] = (status, ms)
        self.shipments[order_id] = len(shipment_ids)
        self.waiting[order_id] = {s for s in shipment_ids if s not in self.commanded}
        self._touch(order_id, ms)

    def on_command(self, order_id: str, shipment_id: str, ms: float) -> None:
        self.commanded.add(shipment_id)
        waiting = self.waiting.get(order_id)
        if waiting is not None:
            waiting.discard(shipment_id)
        self._touch(order_id, ms)

    def _touch(self, order_id: str, ms: float) -> None:
        self.last_ms[order_id] = max(ms, self.last_ms.get(order_id, 0.0))

    def complete(self, order_id: str) -> bool:
        return order_id in self.outcome and not self.waiting.get(order_id)

    def routed(self, order_ids: Iterable[str]) -> int:
        return sum(1 for x in order_ids if x in self.outcome)

    def summary(self, order_ids: Sequence[str]) -> OrdersSummary:
        done = [x for x in order_ids if self.complete(x)]
        outcomes = Counter(self.outcome[x][0] for x in done)
        return OrdersSummary(
            completed=len(done),
            outcomes=dict(outcomes),
            shipments=sum(self.shipments[x] for x in done),
            last_ms=max((self.last_ms[x] for x in done), default=0.0),
        )

    def latencies_ms(self, placed_ms: dict[str, float]) -> list[float]:
        """Placed to routing outcome, per routed order of ``placed_ms`` (order id: placed)."""
        return [
            max(0.0, self.outcome[x][1] - placed)
            for x, placed in placed_ms.items()
            if x in self.outcome
        ]

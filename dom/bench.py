"""``dom bench``: one run, one report: the pipeline's throughput, latency and memory, set against
what plain confluent-kafka does on the same broker in the same run.

Phases: a broker (``DOM_KAFKA_BOOTSTRAP``, or a local one in a temporary directory), fresh
topics under a ``bench-<uuid>.`` prefix, ``--workers`` ``dom worker`` processes, the demo world
(locations, products, stock: every count times ``--stock-scale``, by default ``orders / 5,000``
rounded up, so a long run meets the default run's mix of outcomes instead of selling out) and
the default rules, then

1. **throughput**: ``--orders`` orders as fast as the producer allows (or at ``--rate`` orders/s),
   timed until every order has its routing outcome and every shipment its fulfillment command;
   every record written to any topic of the run in that window is counted (inbound, outbound,
   internal, changelogs);
2. **latency**: orders at half that rate (or ``--latency-rate``) for ``--latency-seconds``,
   placed_at to outcome, with what they cost at that pace (messages and CPU per order, events
   a batch), set beside the same figures at full speed: a pace the workers meet with small
   batches costs more per order than a backlog they drain in large ones;
3. **memory**: the workers' peak RSS (VmHWM), read before they stop;
4. **raw limit**: as many messages of the same average size as the pipeline wrote, produced
   and then consumed with confluent-kafka;
5. **runtime floor**: a third as many events of that size through ``--workers`` pass-through
   Faust workers (:mod:`dom.bench_floor`): what the runtime costs with no work at all;
6. **restart** (before the workers stop; ``--no-restart`` leaves it out): the first worker is
   SIGKILLed, with every order of the run in its history, and started again at once with its
   data directory, as a supervisor would; probe orders over every partition, placed right
   after the kill, time it: kill to the worker ready, and kill to the last probe routed.
   With ``--history N`` (and ``--ship``), the workers are stopped first, N clones of the orders
   the run shipped are written into their stores' changelogs and read in as they start again
   (:mod:`dom.bench_history`), so the kill finds them in the history too.

The table goes to stdout, then one ``BENCH_JSON {...}`` line (keys: ``dom.bench_report``).
A benchmark never fails on a number; it fails only when it cannot run.

``--profile DIR`` samples every worker with py-spy through the throughput phase (one
``DIR/<worker>.raw`` of collapsed stacks each) and adds the top self and inclusive frames
after the table (``dom.bench_profile``).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from config.settings import Settings
from connectors.demo_world import DemoWorld
from connectors.producer import ContractProducer
from dom.admin import create_topics
from dom.bench_history import read_templates, write_history
from dom.bench_kafka import (
    FLOOR_IN,
    FLOOR_OUT,
    MESSAGES_PER_EVENT,
    MIN_FLOOR_EVENTS,
    MIN_RAW_MESSAGES,
    OutcomeTracker,
    OutputCounter,
    Warehouses,
    WindowCounts,
    end_offsets,
    keys_seen,
    measure_raw,
    moved_by_topic,
    produce_messages,
    quiet_offsets,
    warm_producer,
    window_counts,
)
from dom.bench_profile import read_profile, render_tables, top_self_json
from dom.bench_report import (
    BenchResult,
    OrdersSummary,
    events_per_batch,
    per_s,
    percentile,
    render_table,
)
from dom.bench_world import (
    MAX_LOCATIONS,
    BenchWorker,
    Profiling,
    bench_broker,
    order_builder,
    process_cpu_seconds,
    py_spy_command,
    stock_scale_for,
    world_records,
)
from schemas import topics as registry
from schemas.codec import Codec
from schemas.enums import ROUTING_OUTCOMES
from schemas.models import OrderPlaced


@click.command("bench")
@click.option("--orders", default=5000, show_default=True, type=click.IntRange(min=1))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--skus", default=10_000, show_default=True, type=click.IntRange(min=1))
@click.option("--locations", default=50, show_default=True, type=click.IntRange(2, MAX_LOCATIONS))
@click.option("--latency-seconds", default=20.0, show_default=True, type=click.FloatRange(min=0))
@click.option(
    "--latency-rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Orders/s offered in the latency phase (default: half the measured maximum).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Orders/s placed in the throughput phase (default: as fast as the producer allows). "
    "A long --ship run placed at a pace the pipeline keeps up with ships as it goes, so its "
    "history holds no pile of unshipped units.",
)
@click.option(
    "--stock-scale",
    type=click.IntRange(min=1),
    help="Times the demo world's opening stock (default: orders / 5,000, rounded up).",
)
@click.option("--seed", default=42, show_default=True, help="Same seed, same world and orders.")
@click.option(
    "--timeout",
    default=900.0,
    show_default=True,
    help="Seconds any one wait (workers, stock, outcomes) may take before the bench moves on.",
)
@click.option("--keep", is_flag=True, help="Keep the temporary directory (worker logs).")
@click.option(
    "--restart/--no-restart",
    default=True,
    show_default=True,
    help="SIGKILL the first worker after the latency phase and time it back to routing.",
)
@click.option(
    "--limits/--no-limits",
    default=True,
    show_default=True,
    help="Measure raw Kafka and the runtime floor after the pipeline (--no-limits: a long run "
    "that builds history for the restart phase ends after it).",
)
@click.option(
    "--ship/--no-ship",
    default=False,
    show_default=True,
    help="Warehouses and stores accept and ship every shipment a second after its command, "
    "so a long run's history is of shipped orders (its units no longer held).",
)
@click.option(
    "--history",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Before the restart phase, clone N orders the run shipped into the workers' stores "
    "(needs --ship; see dom/bench_history.py), so the restart has them in its history.",
)
@click.option(
    "--profile",
    type=click.Path(file_okay=False, path_type=Path),
    help="Sample each worker with py-spy during the throughput phase into DIR/<worker>.raw "
    "and report the top frames.",
    metavar="DIR",
)
@click.pass_context
def bench(
    ctx: click.Context,
    orders: int,
    workers: int,
    skus: int,
    locations: int,
    latency_seconds: float,
    latency_rate: float | None,
    rate: float | None,
    stock_scale: int | None,
    seed: int,
    timeout: float,
    keep: bool,
    restart: bool,
    limits: bool,
    ship: bool,
    history: int,
    profile: Path | None,
) -> None:
    """Throughput, latency and memory of the pipeline against the raw Kafka limit and the
    runtime floor."""
    base = ctx.find_object(Settings) or Settings()
    if history and not (ship and restart):
        raise click.UsageError(
            "--history clones shipped orders for the restart phase: it needs --ship and --restart"
        )
    result = BenchResult(
        orders=orders,
        workers=workers,
        skus=skus,
        stock_scale=stock_scale or stock_scale_for(orders),
        locations=locations,
        latency_seconds=latency_seconds,
        latency_rate=latency_rate or 0.0,
        rate=rate or 0.0,
        seed=seed,
        partitions=base.topic_partitions,
        stock_packed=base.pack_stock,
        restart_probes=RESTART_PROBES_PER_PARTITION * base.topic_partitions if restart else 0,
        limits=limits,
        ship=ship,
        history_orders=history,
    )
    began = time.monotonic()
    console = Console()
    # py-spy is looked for before anything starts, so a missing one fails fast.
    profiling = Profiling(py_spy_command(), profile) if profile else None
    _run_in_tmp(base, result, timeout, keep, profiling)
    result.total_seconds = time.monotonic() - began
    result.finish_ratios()
    console.print(render_table(result))
    extra: dict[str, Any] = {}
    if profiling:
        figures = read_profile(profiling.written)
        for table in render_tables(figures):
            console.print(table)
        extra["profile_top_self"] = top_self_json(figures)
    click.echo(result.json_line(extra))


RESTART_PROBES_PER_PARTITION = 20
"""Probe orders per partition of ``dom.orders.v1`` in the restart phase: with random ids, every
partition gets some (with 6 partitions, one is left out about once in 500 million runs)."""


def _run_in_tmp(
    base: Settings,
    result: BenchResult,
    timeout: float,
    keep: bool,
    profiling: Profiling | None,
) -> None:
    """Every phase, in a temporary directory removed afterwards unless ``keep``."""
    tmp = Path(tempfile.mkdtemp(prefix="dom-bench-"))
    progress = _progress()
    try:
        with progress, ExitStack() as stack, _interrupt_on_sigterm():
            broker = stack.enter_context(bench_broker(base, tmp, result))
            run = BenchRun(broker.settings, tmp, result, progress, timeout, profiling, broker.pid)
            stack.callback(run.stop_workers)
            run.execute()
    finally:
        if keep:
            click.echo(f"kept {tmp}", err=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _progress() -> Progress:
    """Progress bars on stderr, so stdout carries only the table and the JSON line."""
    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.completed:>9,.0f}/{task.total:<9,.0f}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )


@contextmanager
def _interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the workers and the local broker are always stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---- one run ------------------------------------------------------------------------------------


@dataclass
class PhaseCosts:
    """What one phase cost: CPU seconds (the broker's first, 0 when it is not ours, then each
    worker's) and each stage's events a batch (:func:`events_per_batch`)."""

    cpu: list[float] = field(default_factory=list)
    batch_events: dict[str, float] = field(default_factory=dict)


class BenchRun:
    """The phases of one run over one set of topics."""

    def __init__(
        self,
        settings: Settings,
        tmp: Path,
        result: BenchResult,
        progress: Progress,
        timeout: float,
        profiling: Profiling | None = None,
        broker_pid: int | None = None,
    ) -> None:
        self.settings = settings
        self.broker_pid = broker_pid
        self.tmp = tmp
        self.result = result
        self.progress = progress
        self.timeout = timeout
        self.profiling = profiling
        self.codec = Codec.from_url(
            settings.schema_registry_url, **(settings.schema_registry_config() or {})
        )
        self.workers: list[BenchWorker] = []
        self.rng = random.Random(result.seed)
        self.run_id = uuid.uuid4().hex[:6]

    def execute(self) -> None:
        r = self.result
        create_topics(self.settings)
        r.workers_ready_seconds = self.start_workers()
        # One producer for the whole run: a new one takes about half a second to deliver its
        # first records, which the timed phases would count as the pipeline's.
        with ContractProducer(self.settings, self.codec) as producer:
            world = self.load_world(producer)
            tracker = OutcomeTracker(self.settings, self.codec)
            tracker.start()
            warehouses = Warehouses(self.settings, self.codec, world) if r.ship else None
            if warehouses is not None:
                warehouses.start()
            try:
                self.throughput(world, tracker, producer)
                self.latency(world, tracker, producer)
                r.worker_peak_rss_mb = [w.peak_rss_mb() for w in self.workers]
                if r.history_orders:
                    self.history(tracker)
                if r.restart_probes:
                    self.restart(world, tracker, producer)
            finally:
                tracker.stop()
                r.orders_shipped = len(tracker.shipped)
                if warehouses is not None:
                    warehouses.stop()
                    r.fulfillment_updates = warehouses.updates
                    if warehouses.failed:
                        raise click.ClickException(
                            f"{warehouses.failed} fulfillment updates not delivered"
                        )
        self.stop_workers()
        if not r.limits:
            return
        count = max(MIN_RAW_MESSAGES, r.pipeline_messages)
        size = max(1, round(r.pipeline_avg_message_bytes))
        task = self.progress.add_task("raw Kafka produce+consume", total=2 * count)
        raw = measure_raw(self.settings, count, size, self._advance(task))
        r.raw_messages, r.raw_message_bytes = count, size
        r.raw_produce_msgs_per_s, r.raw_consume_msgs_per_s, r.raw_roundtrip_msgs_per_s = raw
        self.floor(max(MIN_FLOOR_EVENTS, r.pipeline_messages // MESSAGES_PER_EVENT), size)

    def floor(self, events: int, size: int) -> None:
        """The runtime floor (:mod:`dom.bench_floor`): ``events`` messages of ``size`` bytes
        through as many pass-through workers as the pipeline had, timed from the first sent
        to the last passed on."""
        r = self.result
        create_topics(self.settings, [FLOOR_IN, FLOOR_OUT])
        command = [sys.executable, "-m", "dom.bench_floor"]
        self.start_workers("floor workers ready", "bench-floor", command)
        task = self.progress.add_task("runtime floor events", total=events)
        name = self.settings.topic(FLOOR_IN.name)
        counter = OutputCounter(self.settings, FLOOR_OUT.name)
        counter.start()
        try:
            producer = warm_producer(self.settings, name)
            # The warm-up message is through once the floor's consumers have their partitions.
            self._wait("the floor workers' first event", lambda: counter.count >= 1)
            cpu_before = self._workers_cpu_seconds()
            began_ms = time.time() * 1000
            produce_messages(producer, name, events, size, lambda n: None)

            def all_out() -> bool:
                self.progress.update(task, completed=counter.count - 1)
                return counter.count > events

            self._wait("the floor's events", all_out)
            cpu = self._workers_cpu_seconds() - cpu_before
        finally:
            counter.stop()
            self.stop_workers()
        moved = max(0, counter.count - 1) * MESSAGES_PER_EVENT  # the warm-up is not timed
        r.floor_events = events
        r.floor_msgs_per_s = per_s(moved, (counter.last_ms - began_ms) / 1000)
        r.floor_cpu_us_per_message = per_s(cpu * 1e6, moved)

    def _advance(self, task: TaskID) -> Callable[[int], None]:
        return lambda n: self.progress.update(task, completed=n)

    def _wait(self, what: str, done: Callable[[], bool], poll: float = 0.2) -> bool:
        """Wait until ``done()``; give up (and say so) after the run's timeout."""
        deadline = time.monotonic() + self.timeout
        while not done():
            self._check_workers()
            if time.monotonic() > deadline:
                self.progress.console.print(f"[yellow]gave up waiting for {what}[/yellow]")
                return False
            time.sleep(poll)
        return True

    # ---- set-up -------------------------------------------------------------------------------

    def start_workers(
        self,
        what: str = "workers ready",
        name: str = "bench-w",
        command: Sequence[str] = (),
        log_tag: str = "",
    ) -> float:
        """``--workers`` workers (``dom worker``, or ``command``), named ``name`` 1, 2, ...;
        the seconds until every one was ready. A worker started again under its name has its
        data directory again; ``log_tag`` gives it a log of its own."""
        began = time.monotonic()
        task = self.progress.add_task(what, total=self.result.workers)
        logs = self.tmp / "logs"
        self.workers = [
            BenchWorker(self.settings, f"{name}{n}", logs / f"{name}{n}{log_tag}.log", command)
            for n in range(1, self.result.workers + 1)
        ]

        def all_ready() -> bool:
            ready = sum(w.ready() for w in self.workers)
            self.progress.update(task, completed=ready)
            return ready == len(self.workers)

        if not self._wait("the workers", all_ready, poll=0.3):
            raise click.ClickException("the workers did not get ready")
        return time.monotonic() - began

    def _check_workers(self) -> None:
        """A worker that died (or was killed from outside) ends the run with its log."""
        for worker in self.workers:
            code = worker.proc.poll()
            if code is not None:
                tail = worker.log.read_text(errors="replace")[-3000:]
                raise click.ClickException(f"worker {worker.name} exited ({code}):\n{tail}")

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()

    def load_world(self, producer: ContractProducer) -> DemoWorld:
        """Rules, locations, products and stock; returns once every sku's availability is out."""
        r = self.result
        world, records = world_records(r, datetime.now(UTC))
        r.world_records = len(records)
        before = end_offsets(self.settings)
        began = time.monotonic()
        sent = self.progress.add_task("world sent", total=len(records))
        producer.send_bulk(records)  # its stock packed, as `dom feed stock` sends a count
        producer.flush()
        self.progress.update(sent, completed=len(records))
        if producer.report.failed:
            raise click.ClickException(f"world not published: {producer.report.errors}")
        seen = self.progress.add_task("stock seen (skus)", total=r.skus)
        with keys_seen(self.settings, registry.AVAILABILITY.name) as keys:
            self._wait("availability of every sku", lambda: self._count(keys, seen) >= r.skus)
        r.world_load_seconds = time.monotonic() - began
        r.world_records_per_s = per_s(len(records), r.world_load_seconds)
        after = quiet_offsets(self.settings, settle=1.5, limit=min(120.0, self.timeout))
        r.world_messages_by_topic = moved_by_topic(self.settings, before, after)
        return world

    def _count(self, keys: set[bytes], task: TaskID) -> int:
        self.progress.update(task, completed=len(keys))
        return len(keys)

    # ---- the phases ---------------------------------------------------------------------------

    def _orders(self, world: DemoWorld, prefix: str) -> Callable[[int], OrderPlaced]:
        """A builder of order ``n`` of this run, its id starting with ``prefix``."""
        return order_builder(world, self.rng, f"{prefix}{self.run_id}")

    def throughput(
        self, world: DemoWorld, tracker: OutcomeTracker, producer: ContractProducer
    ) -> None:
        r = self.result
        build = self._orders(world, "BX")
        ids: list[str] = []
        produced = self.progress.add_task("orders produced", total=r.orders)
        completed = self.progress.add_task("orders completed", total=r.orders)
        # Only the orders not yet complete are looked at again: a million-order run would
        # otherwise spend a core on its own progress bar.
        pending: list[str] = []

        def all_done() -> bool:
            pending[:] = tracker.pending(pending)
            self.progress.update(completed, completed=len(ids) - len(pending))
            return not pending

        with window_counts(self.settings) as counts, ExitStack() as sampling:
            began = time.monotonic()
            began_ms = time.time() * 1000
            with self._costs() as costs:
                for n in range(r.orders):
                    if r.rate:
                        _wait_for_slot(producer, began + n / r.rate)
                    order = build(n)
                    ids.append(order.order_id)
                    pending.append(order.order_id)
                    producer.send(order)
                    if n == 0:  # sampled from the first order on, not while the workers idle
                        sampling.enter_context(self._profiled())
                    if n % 200 == 0:
                        self.progress.update(produced, completed=n)
                        if r.rate and n % 2000 == 0:
                            all_done()
                producer.flush()
                r.orders_placed_seconds = time.monotonic() - began
                self.progress.update(produced, completed=r.orders)
                self._wait("every order's outcome and commands", all_done)
            sampling.close()  # the samplers stop here: the counts' window is not profiled
        self._record_throughput(tracker.summary(ids), counts, began_ms)
        self._record_cpu(costs.cpu)
        r.batch_events = costs.batch_events

    @contextmanager
    def _costs(self) -> Iterator[PhaseCosts]:
        """What the broker and the workers spent while the block ran, filled in as it ends."""
        costs = PhaseCosts()
        cpu, batches = self._cpu_seconds(), [w.batch_counts() for w in self.workers]
        yield costs
        costs.cpu = [b - a for a, b in zip(cpu, self._cpu_seconds(), strict=True)]
        costs.batch_events = events_per_batch(batches, [w.batch_counts() for w in self.workers])

    def _cpu_seconds(self) -> list[float]:
        """CPU seconds so far: the broker's (0 when it is not ours), then each worker's."""
        broker = process_cpu_seconds(self.broker_pid) if self.broker_pid else 0.0
        return [broker, *(w.cpu_seconds() for w in self.workers)]

    def _workers_cpu_seconds(self) -> float:
        return sum(self._cpu_seconds()[1:])

    def _record_cpu(self, spent: list[float]) -> None:
        r = self.result
        broker, workers = spent[0], spent[1:]
        r.worker_cpu_seconds = workers
        r.worker_cpu_ms_per_order = per_s(sum(workers) * 1000, r.orders_completed)
        r.broker_cpu_ms_per_order = per_s(broker * 1000, r.orders_completed)

    def _record_throughput(
        self, summary: OrdersSummary, counts: WindowCounts, began_ms: float
    ) -> None:
        r = self.result
        r.orders_completed = summary.completed
        r.outcomes = {k: summary.outcomes.get(k, 0) for k in ROUTING_OUTCOMES}
        r.shipments = summary.shipments
        r.pipeline_seconds = max(0.0, (summary.last_ms - began_ms) / 1000)
        r.pipeline_orders_per_s = per_s(summary.completed, r.pipeline_seconds)
        r.pipeline_messages = counts.total
        r.pipeline_messages_in = counts.by_direction.get(registry.Direction.INBOUND, 0)
        r.pipeline_messages_out = counts.by_direction.get(registry.Direction.OUTBOUND, 0)
        r.pipeline_messages_internal = counts.by_direction.get(registry.Direction.INTERNAL, 0)
        r.pipeline_messages_per_order = counts.total / r.orders
        r.pipeline_messages_by_topic = dict(counts.by_topic)
        r.order_state_writes = dict(counts.state_writes)
        r.pipeline_msgs_per_s = per_s(counts.total, r.pipeline_seconds)
        r.pipeline_avg_message_bytes = counts.avg_bytes
        r.pipeline_wire_bytes_per_order = counts.wire_bytes / r.orders

    def _profiled(self) -> AbstractContextManager[None]:
        """py-spy on every worker while the block runs (nothing without ``--profile``)."""
        if self.profiling is None:
            return nullcontext()
        warn = partial(self.progress.console.print, style="yellow", markup=False)
        return self.profiling.sampling(self.workers, self.tmp / "logs", warn)

    def latency(
        self, world: DemoWorld, tracker: OutcomeTracker, producer: ContractProducer
    ) -> None:
        r = self.result
        rate = r.latency_rate or max(0.5, r.pipeline_orders_per_s / 2)
        total = int(rate * r.latency_seconds)
        r.latency_offered_orders_per_s, r.latency_orders = rate, total
        if total == 0:
            return
        build = self._orders(world, "BL")
        placed_ms: dict[str, float] = {}
        produced = self.progress.add_task("latency orders produced", total=total)
        routed = self.progress.add_task("latency orders routed", total=total)

        def all_routed() -> bool:
            done = tracker.routed(placed_ms)
            self.progress.update(routed, completed=done)
            return done >= total

        # The sizes are the throughput phase's: only the records are counted here.
        with window_counts(self.settings, sizes=False) as counts, self._costs() as costs:
            began = time.monotonic()
            for n in range(total):
                _wait_for_slot(producer, began + n / rate)
                order = build(n)
                placed_ms[order.order_id] = order.placed_at.timestamp() * 1000
                producer.send(order)
                self.progress.update(produced, completed=n + 1)
            producer.flush()
            self._wait("the latency orders' outcomes", all_routed)
        broker, *workers = costs.cpu
        r.latency_batch_events = costs.batch_events
        r.latency_messages_per_order = counts.total / total
        r.latency_worker_cpu_ms_per_order = per_s(sum(workers) * 1000, total)
        r.latency_broker_cpu_ms_per_order = per_s(broker * 1000, total)
        latencies = tracker.latencies_ms(placed_ms)
        r.latency_completed = len(latencies)
        r.latency_p50_ms = percentile(latencies, 50)
        r.latency_p95_ms = percentile(latencies, 95)
        r.latency_p99_ms = percentile(latencies, 99)
        r.latency_max_ms = max(latencies, default=0.0)

    def history(self, tracker: OutcomeTracker) -> None:
        """Stop the workers, clone ``--history`` orders of those the run shipped into their
        tables' changelogs (:mod:`dom.bench_history`), and start them again: ready once each
        has read the copies of its partitions into its stores."""
        r = self.result
        seen: list[int] = []

        def shipping_done() -> bool:  # some shipped, and none more for 2 s
            with tracker.lock:
                seen.append(len(tracker.shipped))
            return seen[-1] > 0 and len(seen) > 4 and seen[-5] == seen[-1]

        self._wait("the run's orders shipped", shipping_done, poll=0.5)
        self.stop_workers()
        with tracker.lock:
            shipped = set(tracker.shipped)
        templates = read_templates(self.settings, shipped)
        task = self.progress.add_task("history cloned (orders)", total=r.history_orders)
        began = time.monotonic()
        try:
            r.history_records = write_history(
                self.settings, templates, r.history_orders, f"H{self.run_id}-", self._advance(task)
            )
        except (ValueError, RuntimeError) as exc:
            raise click.ClickException(str(exc)) from exc
        r.history_write_seconds = time.monotonic() - began
        r.history_ready_seconds = self.start_workers(
            "workers ready with the history", log_tag="-history"
        )

    def restart(
        self, world: DemoWorld, tracker: OutcomeTracker, producer: ContractProducer
    ) -> None:
        """SIGKILL the first worker and start it again at once with its data directory (its
        tables' local store) and web port, as a supervisor would; probe orders placed right
        after the kill time it until every partition routes again, whichever worker owns it
        by then."""
        r = self.result
        r.restart_history_orders = r.orders_completed + r.latency_completed + r.history_orders
        victim = self.workers[0]
        killed = time.monotonic()
        killed_ms = time.time() * 1000
        with contextlib.suppress(ProcessLookupError):
            os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()
        log = victim.log.with_name(f"{victim.name}-restarted.log")
        self.workers[0] = BenchWorker(self.settings, victim.name, log, port=victim.port)
        build = self._orders(world, "BR")
        probes: dict[str, float] = {}
        for n in range(r.restart_probes):
            order = build(n)
            probes[order.order_id] = killed_ms
            producer.send(order)
        producer.flush()
        routed = self.progress.add_task("probes routed after a kill", total=len(probes))

        def all_routed() -> bool:
            done = tracker.routed(probes)
            self.progress.update(routed, completed=done)
            return done >= len(probes)

        if self._wait("the restarted worker", self.workers[0].ready, poll=0.1):
            r.restart_ready_seconds = time.monotonic() - killed
        self._wait("the probe orders' outcomes", all_routed)
        since_kill = tracker.latencies_ms(probes)  # kill to each probe's outcome
        r.restart_probes_routed = len(since_kill)
        r.restart_routing_seconds = max(since_kill, default=0.0) / 1000


def _wait_for_slot(producer: ContractProducer, slot: float) -> None:
    """Serve deliveries until the monotonic time ``slot``; poll returns early whenever it
    served one, so wait until the slot has come."""
    while (pause := slot - time.monotonic()) > 0:
        producer.poll(pause)


if __name__ == "__main__":
    bench()

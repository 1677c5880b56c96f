"""What a ``dom bench`` run stands on: a broker, the ``dom worker`` processes under test (and,
with ``--profile``, a py-spy sampler on each), and the demo world (locations, products, stock,
default rules) and orders fed to them.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click

from config.settings import Settings
from connectors.demo_traffic import CHANNEL_MIX, ChannelOrders
from connectors.demo_world import CITIES, DC_CITIES, DemoWorld, build_world
from dom.bench_report import BatchCounts, BenchResult
from dom.console import health
from schemas.models import Message, OrderPlaced

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RULES = REPO_ROOT / "deploy" / "rules" / "default.yaml"
MAX_LOCATIONS = len(DC_CITIES) + len(CITIES)


# ---- the broker and the workers ----------------------------------------------------------------


@dataclass(frozen=True)
class BenchBroker:
    """The run's settings, and the local broker's process id (None on a given cluster)."""

    settings: Settings
    pid: int | None = None


@contextmanager
def bench_broker(base: Settings, tmp: Path, result: BenchResult) -> Iterator[BenchBroker]:
    """Settings on the given cluster, or on a local broker started (and stopped) here."""
    prefix = f"bench-{uuid.uuid4().hex[:12]}."
    settings = base.model_copy(update={"topic_prefix": prefix, "data_dir": tmp / "var"})
    if os.environ.get("DOM_KAFKA_BOOTSTRAP"):
        result.broker = "external"
        yield BenchBroker(settings)
        return
    from dom.kafka_local import LocalKafka

    local = settings.model_copy(
        update={
            "kafka_port": free_port(),
            "kafka_controller_port": free_port(),
            "kafka_data_dir": tmp / "kafka",
        }
    )
    broker = LocalKafka(local)
    status = broker.start()
    try:
        yield BenchBroker(
            local.model_copy(update={"kafka_bootstrap": status.bootstrap}), status.pid
        )
    finally:
        broker.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BenchWorker:
    """One ``dom worker`` subprocess (or ``command``, run the same way) with its own name,
    port, data directory and log."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        log: Path,
        command: Sequence[str] = (),
        port: int | None = None,
    ) -> None:
        self.name = name
        self.log = log
        self.port = port or free_port()
        env = {
            **os.environ,
            "DOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "DOM_TOPIC_PREFIX": settings.topic_prefix,
            "DOM_TOPIC_PARTITIONS": str(settings.topic_partitions),
            "DOM_DATA_DIR": str(settings.data_dir),
            "DOM_WORKER_NAME": name,
            "DOM_WEB_PORT": str(self.port),
        }
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                list(command) or [*_dom_command(), "worker", "--loglevel", "info"],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise click.ClickException(f"worker {self.name} exited:\n{tail}")
        return "Worker ready" in self.log.read_text(errors="replace")

    def peak_rss_mb(self) -> float:
        """VmHWM of the worker and of every process below it, in MB."""
        return sum(_vm_hwm_kb(pid) for pid in _process_tree(self.proc.pid)) / 1024

    def cpu_seconds(self) -> float:
        """User and system CPU time of the worker and every process below it, so far."""
        return process_cpu_seconds(self.proc.pid)

    def batch_counts(self) -> BatchCounts:
        """What the worker's ``/metrics`` say its stages' batches held so far (nothing when
        it does not answer)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                return batch_counts(r.read().decode())
        except (OSError, ValueError):
            return {}

    def stop(self, timeout: float = 30.0) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                return
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)


def _dom_command() -> list[str]:
    """The installed ``dom`` script beside this Python, else the module."""
    script = Path(sys.executable).parent / "dom"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dom.cli"]


def py_spy_command() -> str:
    """py-spy beside this Python, where the ``dev`` extra installs it."""
    script = Path(sys.executable).parent / "py-spy"
    if not script.exists():
        raise click.ClickException(
            f"--profile needs py-spy beside {sys.executable}: install it with "
            f"`{sys.executable} -m pip install py-spy` (the dev extra has it)"
        )
    return str(script)


class WorkerProfile:
    """``py-spy record`` on one worker, sampling until stopped; it writes ``out`` on SIGINT.

    Non-blocking: the worker is never paused to be read, so its pace under load is barely
    disturbed (at the price of an occasional torn stack, counted by py-spy as an error).
    """

    def __init__(self, py_spy: str, worker: BenchWorker, out: Path, log: Path) -> None:
        self.worker = worker
        self.out = out
        self.log = log
        out.parent.mkdir(parents=True, exist_ok=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)  # a file left by an earlier run must not pass for this one
        command = [py_spy, "record", "-p", str(worker.proc.pid), "-r", "100", "-f", "raw"]
        with open(log, "ab") as sink:
            # Its own session, so a Ctrl-C at the terminal reaches only the bench, which then
            # stops this sampler like any other (and still gets the file).
            self.proc = subprocess.Popen(
                [*command, "-o", str(out), "--nonblocking"],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)  # a no-op once it has exited

    def wait(self, timeout: float = 60.0) -> str | None:
        """None once the file is written, else what went wrong (with py-spy's own words)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.out.exists():
            return None
        tail = self.log.read_text(errors="replace")[-1500:].strip()
        return f"py-spy wrote no profile of {self.worker.name} ({self.proc.returncode}): {tail}"


@dataclass
class Profiling:
    """Where ``--profile`` puts the samples, and which files this run actually wrote."""

    py_spy: str
    out_dir: Path
    written: list[Path] = field(default_factory=list)

    @contextmanager
    def sampling(
        self, workers: Sequence[BenchWorker], logs: Path, warn: Callable[[str], object]
    ) -> Iterator[None]:
        """py-spy on every worker while the block runs; a file not written is warned about."""
        samplers: list[WorkerProfile] = []
        try:
            for w in workers:
                out, log = self.out_dir / f"{w.name}.raw", logs / f"{w.name}.py-spy.log"
                samplers.append(WorkerProfile(self.py_spy, w, out, log))
            yield
        finally:
            for sampler in samplers:  # all at once: each writes its file while the others do
                sampler.interrupt()
            for sampler in samplers:
                if (problem := sampler.wait()) is None:
                    self.written.append(sampler.out)
                else:
                    warn(problem)


def _process_tree(pid: int) -> list[int]:
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        with suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                queue += [int(x) for x in (task / "children").read_text().split()]
    return pids


def batch_counts(metrics: str) -> BatchCounts:
    """Stage -> (events, batches) of ``dom_stage_batch_size`` in a worker's metrics."""
    samples = health.parse(metrics)
    events = health.by_label(samples, "dom_stage_batch_size_sum", "stage")
    batches = health.by_label(samples, "dom_stage_batch_size_count", "stage")
    return {stage: (events.get(stage, 0.0), n) for stage, n in batches.items()}


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of ``pid`` and of every process below it (0 if gone)."""
    return sum(_cpu_ticks(x) for x in _process_tree(pid)) / os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # The name (field 2) may hold spaces; utime and stime are fields 14 and 15.
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def _vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---- the world and the orders -------------------------------------------------------------------


def world_records(result: BenchResult, now: datetime) -> tuple[DemoWorld, list[Message]]:
    """The demo world of the run's size and seed, and every record that publishes it: the
    default rules first, then locations, products and stock."""
    from streams.core.rules.files import load_rule_file

    r = result
    dcs = min(len(DC_CITIES), max(1, r.locations // 10))
    world = build_world(
        now=now,
        skus=r.skus,
        stores=r.locations - dcs,
        dcs=dcs,
        seed=r.seed,
        stock_scale=r.stock_scale,
    )
    rules = load_rule_file(
        DEFAULT_RULES.read_text(), str(DEFAULT_RULES), updated_by="dom-bench", now=now
    )
    return world, [*rules, *world.records()]


STOCKED_FOR_ORDERS = 5000
"""The orders the demo world's opening stock is made for (the bench's default run)."""


def stock_scale_for(orders: int) -> int:
    """How many times the demo world's stock a run of ``orders`` gets: a run of 100,000 meets
    the mix of outcomes of a default run (a few backorders, on the scarce skus) instead of
    selling out its bestsellers after the first few thousand orders."""
    return max(1, -(-orders // STOCKED_FOR_ORDERS))


def order_builder(
    world: DemoWorld, rng: random.Random, order_prefix: str
) -> Callable[[int], OrderPlaced]:
    """A builder of order ``n``, placed now: placed_at is the moment it is produced."""
    orders = ChannelOrders(world, rng)
    channels, weights = list(CHANNEL_MIX), list(CHANNEL_MIX.values())

    def build(n: int) -> OrderPlaced:
        channel = rng.choices(channels, weights=weights)[0]
        order_id = f"{order_prefix}-{n:07d}"
        return orders.build(channel, order_id, datetime.now(UTC))

    return build

"""`make run` from empty topics on a busy machine: the first orders get routed, the worker says
it is healthy, the console's Reports view fills with the demo's orders (signed in as the demo
user `make run` creates), and Ctrl-C stops every process the run started.

The stack is `python -m dom.run` (what `make run` runs) on the session's broker, under a fresh
topic prefix and data directory, with free ports for the worker, the connector and the console.
Before the fix the order stage of a fresh run could crash at its first table write
(``PartitionsMismatch``: Faust had just created the changelog and its consumer did not know
it yet) and again at every restart: not one order was routed. CPU burners beside the run make
that timing likely, as on the machine where it was seen.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from config.settings import Settings
from schemas.codec import Codec
from schemas.enums import ROUTING_OUTCOMES
from schemas.models import OrderStatusChanged
from tests.conftest import REPO_ROOT, free_port
from tests.e2e.cpu import cpu_burners

pytestmark = pytest.mark.broker

FIRST_OUTCOMES_WITHIN = 240.0
REPORTED_WITHIN = 120.0
STOPPED_WITHIN = 40.0  # dom.run's grace period (10 s) for its children, and a margin


def _takes_ctrl_c() -> None:
    """``make run`` as started from a terminal, which takes Ctrl-C. A suite started in the
    background (a shell without job control ignores SIGINT for its background commands) hands
    that on to everything it starts, and a Python started with SIGINT ignored never raises
    KeyboardInterrupt: dom run then sat out the 40 s below untouched."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_fresh_run_routes_is_healthy_and_stops_everything_on_ctrl_c(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"run{uuid.uuid4().hex[:8]}."
    web_port, console_port = free_port(), free_port()
    env = {
        **os.environ,
        "DOM_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "DOM_TOPIC_PREFIX": prefix,
        "DOM_DATA_DIR": str(tmp_path / "var"),
        "DOM_WEB_PORT": str(web_port),
        "DOM_CONNECTOR_PORT": str(free_port()),
        "DOM_CONSOLE_PORT": str(console_port),
        "DOM_STANDIN_PORT": str(free_port()),
        "DOM_SYNC_PORT": str(free_port()),
    }
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix)
    output = tmp_path / "run.out"
    with cpu_burners(), open(output, "wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "dom.run", "--rate", "3", "--skus", "150", "--stores", "4"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_takes_ctrl_c,
        )
        try:
            routed = first_outcomes(settings, run, FIRST_OUTCOMES_WITHIN)
            assert routed, f"no routing outcome:\n{logs(tmp_path)}"
            status, report = health(web_port)
            assert status == 200, report
            assert {s: v["crashes"] for s, v in report["stages"].items()} == dict.fromkeys(
                report["stages"], 0
            ), report
            placed = orders_reported(console_port, tmp_path / "var", REPORTED_WITHIN)
            assert placed > 0, f"the Reports view shows no order placed today:\n{logs(tmp_path)}"
            started = processes_of(prefix)
            assert len(started) >= 7, started  # dom.run, worker, connector, stand-ins, sync, ...

            run.send_signal(signal.SIGINT)  # Ctrl-C
            deadline = time.monotonic() + STOPPED_WITHIN
            while processes_of(prefix) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert processes_of(prefix) == {}, output.read_text(errors="replace")[-3000:]
            # Its own /proc entry loses its environment as it begins to exit, a moment before
            # it can be reaped: wait for that moment rather than poll once.
            assert run.wait(10) == 0
        finally:
            kill_all(run, prefix)
    shown = output.read_text(errors="replace")
    assert "worker-1 stopped" in shown and "killed" not in shown
    started_at = shown.index("started worker-1")
    for table in ("orders", "inventory"):  # made before the worker, not by Faust at its start
        assert -1 < shown.find(f"created  {prefix}dom-{table}-changelog") < started_at, table


def first_outcomes(settings: Settings, run: subprocess.Popen[bytes], within: float) -> list[str]:
    """Routing outcomes on dom.order-status.v1 from its start, as soon as there are some."""
    name = settings.topic("dom.order-status.v1")
    consumer = Consumer(
        settings.librdkafka_config(
            **{"group.id": f"reader-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
        )
    )
    codec = Codec()
    deadline = time.monotonic() + within
    try:
        partitions: list[int] = []
        while not partitions and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.5)  # dom.run creates the topic
            topic = consumer.list_topics(name, timeout=10).topics[name]
            partitions = list(topic.partitions) if topic.error is None else []
        consumer.assign([TopicPartition(name, p, 0) for p in partitions])
        while time.monotonic() < deadline and run.poll() is None:
            outcomes = [
                record.status.value
                for message in consumer.consume(500, 1.0)
                if message.error() is None and message.value()
                for record in [codec.decode(message.value())]
                if isinstance(record, OrderStatusChanged)
                and record.status.value in ROUTING_OUTCOMES
            ]
            if outcomes:
                return outcomes
    finally:
        consumer.close()
    return []


def orders_reported(console_port: int, data_dir: Path, within: float) -> int:
    """Orders placed today, as the console's Reports view shows them (0 until some are)."""
    base = f"http://127.0.0.1:{console_port}"
    password = (data_dir / "console" / "demo-password").read_text().strip()
    login = urllib.request.Request(
        f"{base}/api/login",
        data=json.dumps({"user": "demo", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(login, timeout=10) as response:
                cookie = response.headers["Set-Cookie"].split(";")[0]
            break
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)  # the console is still starting
    report = urllib.request.Request(
        f"{base}/api/reports/run?kpi=orders_placed&period=today&grain=hour",
        headers={"Cookie": cookie},
    )
    while True:
        with urllib.request.urlopen(report, timeout=30) as response:
            rows = json.loads(response.read())["rows"]
        placed = sum(int(row["value"]) for row in rows)
        if placed or time.monotonic() > deadline:
            return placed
        time.sleep(2)


def health(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def processes_of(prefix: str) -> dict[int, str]:
    """Every live process whose environment carries this run's topic prefix: what it started."""
    marker = f"DOM_TOPIC_PREFIX={prefix}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if state != "Z":
            found[int(entry.name)] = command
    return found


def kill_all(run: subprocess.Popen[bytes], prefix: str) -> None:
    """Whatever this test started and is still there (only when the test failed)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(run.pid, signal.SIGKILL)
    for pid in processes_of(prefix):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    run.wait(30)


def logs(tmp_path: Path) -> str:
    worker = tmp_path / "var" / "logs" / "worker-1.log"
    text = worker.read_text(errors="replace") if worker.exists() else "(no worker log)"
    return text[-4000:]

"""A stage that crashes in a loop makes the worker unhealthy, and that is what the operator sees:
``/metrics``, the ``/health/`` report, and the red line of ``make run``'s live summary."""

from __future__ import annotations

import http.server
import io
import json
import threading
from collections.abc import Iterator

import pytest
from rich.console import Console

from dom.summary import STALL_AFTER, SummaryState, render
from dom.worker_health import PATIENCE, WorkerAnswer, fetch, health_lines
from streams.health import RECENT_CRASH, REPEATED, WorkerHealth
from streams.metrics import PipelineMetrics
from tests.unit.factories import make_order

MISMATCH = (
    "The source topic 't.dom.orders.v1' for table 'orders'\nhas 6 partitions, but the "
    "changelog\ntopic 't.dom-orders-changelog' has 0 partitions.\n\nPlease make sure the "
    "topics have the same number of partitions\nby configuring Kafka correctly.\n"
)


class PartitionsMismatch(Exception):
    """Stands for Faust's own: what the stage raised at its first table write."""


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def crash(health: WorkerHealth, stage: str, error: Exception) -> None:
    """One run of a stage's batch loop that fails, as ``Outbox.process`` runs it."""
    with pytest.raises(type(error)) as raised, health.stage(stage):
        health.running(stage)
        raise error
    assert raised.value is error  # raised on unchanged, for Faust to restart the agent


def sample(metrics: PipelineMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def screen(state: SummaryState, health: list[tuple[str, str]], now: float) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render(state, ["http://w1/"], now, health))
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_a_stage_crashing_in_a_loop_shows_in_metrics_health_and_the_summary() -> None:
    clock = Clock()
    metrics = PipelineMetrics()
    metrics.health = health = WorkerHealth(
        lambda stage: metrics.stage_crashes.labels(stage).inc(), clock=clock
    )
    with health.stage("inventory"):
        health.running("inventory")
    assert health.report()["status"] == "ok"
    assert sample(metrics, "dom_worker_healthy") == 1.0

    for _ in range(7):  # Faust restarts the agent every 5 s; it fails at its first write
        crash(health, "orders", PartitionsMismatch(MISMATCH))
        clock.now += 5

    assert sample(metrics, "dom_stage_crashes_total", stage="orders") == 7
    assert sample(metrics, "dom_worker_healthy") == 0.0
    report = health.report()
    assert report["status"] == "unhealthy" and not report["healthy"]
    assert report["stages"]["orders"]["crashes"] == 7
    assert report["stages"]["orders"]["failing"] is True
    assert report["stages"]["orders"]["last_error"].startswith(
        "PartitionsMismatch: The source topic 't.dom.orders.v1' for table 'orders' has 6 "
        "partitions, but the changelog topic 't.dom-orders-changelog' has 0 partitions."
    )
    assert report["stages"]["inventory"]["crashes"] == 0
    [problem] = report["problems"]
    assert problem.startswith(
        "ROUTING STOPPED: orders stage crashed 7 times, last: PartitionsMismatch: The source "
        "topic 't.dom.orders.v1'"
    )

    answer = WorkerAnswer("http://w1/health/", report["status"], tuple(report["problems"]))
    lines = health_lines([answer], clock.now)
    assert lines == [("bold red", problem)]
    shown = screen(SummaryState(), lines, clock.now)
    assert "ROUTING STOPPED: orders stage crashed 7 times, last: PartitionsMismatch" in shown


def test_one_crash_then_work_is_healthy_again_but_repeated_crashes_are_not() -> None:
    clock = Clock()
    health = WorkerHealth(clock=clock)
    crash(health, "orders", RuntimeError("a bug"))
    assert health.report()["status"] == "unhealthy"

    with health.stage("orders") as stage:  # restarted, and a batch went through
        health.running("orders")
        clock.now += 1
        health.batch_done(stage)
    assert health.report()["status"] == "ok"
    assert health.report()["stages"]["orders"]["crashes"] == 1

    for _ in range(REPEATED - 1):  # a poison input: a batch or two pass between crashes
        crash(health, "orders", RuntimeError("a bug"))
        with health.stage("orders") as stage:
            health.running("orders")
            clock.now += 1
            health.batch_done(stage)
    assert health.report()["status"] == "unhealthy"

    clock.now += RECENT_CRASH
    assert health.report()["status"] == "ok"


def test_a_crash_with_no_work_since_stays_unhealthy_for_the_window_only() -> None:
    clock = Clock()
    health = WorkerHealth(clock=clock)
    crash(health, "rules", ValueError("boom"))
    status, problems = health.problems()
    assert status == "unhealthy"
    assert problems == ["STAGE FAILING: rules stage crashed once, last: ValueError: boom"]
    clock.now += RECENT_CRASH - 1
    assert not health.healthy()
    clock.now += 1
    assert health.healthy()


def test_cancelling_a_stage_is_no_crash() -> None:
    health = WorkerHealth()
    with pytest.raises(KeyboardInterrupt), health.stage("orders"):
        raise KeyboardInterrupt  # stands for asyncio.CancelledError: a rebalance or a stop
    assert health.report()["stages"]["orders"]["crashes"] == 0
    assert health.report()["stages"]["orders"]["state"] == "stopped"


def test_starting_while_the_view_loads_or_a_stage_waits_for_its_topics() -> None:
    health = WorkerHealth()
    ready = False
    health.view_ready = lambda: ready
    assert health.problems() == ("starting", ["starting: the network view is still loading"])
    ready = True
    with health.stage("orders"):  # waiting for its topics: not running yet
        assert health.problems() == ("starting", ["starting: orders stage waits for its topics"])
        health.running("orders")
    assert health.problems() == ("ok", [])


def test_a_background_task_that_dies_makes_the_worker_unhealthy() -> None:
    health = WorkerHealth()
    with pytest.raises(ConnectionError), health.task("follow_network"):
        raise ConnectionError("broker gone")
    report = health.report()
    assert report["status"] == "unhealthy"
    assert report["problems"] == [
        "WORKER UNHEALTHY: background task follow_network crashed: ConnectionError: broker gone"
    ]


def test_the_summary_says_which_worker_is_silent_or_still_starting() -> None:
    down = WorkerAnswer("http://w1/health/", "down", ("ConnectionRefusedError",), since=0.0)
    assert health_lines([down], PATIENCE - 1)[0][0] == "yellow"
    assert health_lines([down], PATIENCE) == [
        ("bold red", f"WORKER NOT ANSWERING for {PATIENCE:.0f}s: http://w1/health/")
    ]
    starting = WorkerAnswer(
        "http://w1/health/", "starting", ("starting: the network view is still loading",)
    )
    assert health_lines([starting], 1.0) == [
        ("yellow", "worker starting: the network view is still loading")
    ]
    assert health_lines([WorkerAnswer("http://w1/health/", "ok")], 1.0) == [
        ("green", "the worker is healthy")
    ]


def test_routing_stalls_when_orders_come_in_and_no_outcome_comes_out() -> None:
    state = SummaryState()
    for n in range(5):
        state.add(make_order(order_id=f"O-{n}"), at=100.0 + n)
    assert state.stalled(100.0 + STALL_AFTER - 1) is None
    assert state.stalled(100.0 + STALL_AFTER + 10) == (
        "ROUTING STALLED: no routing outcome for 70s while 5 orders came in"
    )
    assert "ROUTING STALLED" in screen(state, [], 100.0 + STALL_AFTER + 10)


class _Reports(http.server.BaseHTTPRequestHandler):
    status = 503
    body: dict[str, object] = {}

    def do_GET(self) -> None:
        data = json.dumps(self.body).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def worker_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Reports)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health/"
    finally:
        server.shutdown()
        server.server_close()


def test_the_summary_reads_the_report_of_a_503(worker_url: str) -> None:
    health = WorkerHealth()
    crash(health, "orders", PartitionsMismatch(MISMATCH))
    _Reports.status, _Reports.body = 503, health.report()
    status, problems = fetch(worker_url)
    assert status == "unhealthy"
    assert problems[0].startswith("ROUTING STOPPED: orders stage crashed once, last:")

    _Reports.status, _Reports.body = 200, WorkerHealth().report()
    assert fetch(worker_url) == ("ok", ())

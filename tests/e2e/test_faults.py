"""Faults in the middle of a burst: the broker restarted, the broker away for two minutes, a
worker SIGKILLed (w1 here; test_burst.py kills w2) and a rolling restart of both workers. After
each, every order has exactly one outcome and nothing is lost, doubled or over-reserved.

The broker tests stop a broker of their own (its own ports and data directory), never the
session's broker that every other test uses."""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from dom.kafka_local import LocalKafka
from schemas.models import Availability, OrderPlaced
from tests.conftest import free_port
from tests.e2e import world
from tests.e2e.faults import Fault, add, burst_with_fault, scrape
from tests.e2e.harness import Pipeline
from tests.integration.workers import WorkerProcess

pytestmark = pytest.mark.broker

SKUS = 40
ORDERS = 400
OUTAGE_S = 120.0


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A broker the broker tests may stop: its data is kept across its restarts."""
    home = tmp_path_factory.mktemp("own-kafka")
    settings = Settings(
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        kafka_data_dir=home,
        kafka_heap="512m",
    )
    broker = LocalKafka(settings)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        if not os.environ.get("DOM_KEEP_TEST_TOPICS"):  # kept: start it again to look inside
            shutil.rmtree(home / "data", ignore_errors=True)


def _running(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` with its two workers started and the burst's stock visible."""
    pipeline.start_worker("w1")
    pipeline.start_worker("w2")
    pipeline.produce(world.master_data(SKUS))
    # routing starts once the stock is visible: every sku has published its availability
    pipeline.read(
        "dom.inventory.availability.v1",
        lambda r: len({a.sku for a in r if isinstance(a, Availability)}) >= SKUS,
        timeout=120,
    )
    return pipeline


@pytest.fixture
def pipeline(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[Pipeline]:
    """Two workers on the session broker."""
    pipeline = Pipeline(make_settings(topic_partitions=4), tmp_path)
    try:
        yield _running(pipeline)
    finally:
        pipeline.stop_all()


@pytest.fixture
def pipeline_on_own_broker(own_broker: LocalKafka, tmp_path: Path) -> Iterator[Pipeline]:
    """Two workers on the broker the test may stop (its topics go with the broker)."""
    settings = Settings(
        kafka_bootstrap=own_broker.bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        topic_partitions=4,
        data_dir=tmp_path / "var",
    )
    pipeline = Pipeline(settings, tmp_path)
    try:
        yield _running(pipeline)
    finally:
        pipeline.stop_all()


def _orders(prefix: str) -> list[OrderPlaced]:
    return list(world.orders(ORDERS, SKUS, seed=31, prefix=prefix))


def test_broker_restart_mid_burst(pipeline_on_own_broker: Pipeline, own_broker: LocalKafka) -> None:
    """The broker stopped and started again at once; the rest of the burst once it is back."""

    def restart(pipeline: Pipeline, rest_of_burst: Callable[[], None]) -> None:
        own_broker.stop()
        own_broker.start()
        fault.over()
        rest_of_burst()

    fault = Fault("broker restart", restart)
    burst_with_fault(pipeline_on_own_broker, _orders("R"), fault)


def test_broker_down_two_minutes_mid_burst(
    pipeline_on_own_broker: Pipeline, own_broker: LocalKafka
) -> None:
    """The workers keep running while the broker is away; nothing is lost once it is back."""

    def outage(pipeline: Pipeline, rest_of_burst: Callable[[], None]) -> None:
        stopped = time.monotonic()  # it stops serving as soon as it is told to
        own_broker.stop()
        # the fault itself is the wait: the broker is away this long (and its start-up)
        time.sleep(max(0.0, stopped + OUTAGE_S - time.monotonic()))
        own_broker.start()
        fault.over()
        for name, worker in pipeline.workers.items():  # none exited, ever: they ran throughout
            assert worker.proc is not None and worker.proc.poll() is None, (
                f"{name} exited while the broker was away:\n{_crash_of(worker)}"
            )
        rest_of_burst()

    fault = Fault("broker down 2 min", outage)
    burst_with_fault(pipeline_on_own_broker, _orders("D"), fault)


def _crash_of(worker: WorkerProcess) -> str:
    """The lines of a worker's log that say why it stopped (during an outage its tail is
    aiokafka's connection errors, hundreds of thousands of lines)."""
    text = worker.log_file.read_text(errors="replace")
    said = [line for line in text.splitlines() if "Crashed reason" in line or "crashed" in line]
    return "\n".join(said[:10]) or worker.log_tail()


def test_sigkill_of_w1_mid_burst(pipeline: Pipeline) -> None:
    """The other worker's SIGKILL is test_burst.py's (with restocks and retries besides)."""

    def sigkill(pipeline: Pipeline, rest_of_burst: Callable[[], None]) -> None:
        add(fault.counts, scrape(pipeline, "w1"))  # its counters die with it
        pipeline.workers["w1"].kill()
        rest_of_burst()
        pipeline.start_worker("w1")  # same name: same data directory, as a restarted pod

    fault = Fault("SIGKILL of w1", sigkill)
    burst_with_fault(pipeline, _orders("K"), fault)


def test_rolling_restart_of_both_workers_mid_burst(pipeline: Pipeline) -> None:
    """SIGTERM w1, start it again and wait until it is ready; then the same for w2, with the
    second half of the burst arriving between the two."""

    def rolling(pipeline: Pipeline, rest_of_burst: Callable[[], None]) -> None:
        _restart_cleanly(pipeline, "w1", fault)
        rest_of_burst()
        fault.strike("the SIGTERM of w2")
        _restart_cleanly(pipeline, "w2", fault)

    fault = Fault("rolling restart", rolling)
    burst_with_fault(pipeline, _orders("L"), fault)


def _restart_cleanly(pipeline: Pipeline, name: str, fault: Fault) -> None:
    """SIGTERM worker ``name``, check it stopped by itself, start it again (ready)."""
    add(fault.counts, scrape(pipeline, name))  # its counters end with it
    worker = pipeline.workers[name]
    worker.stop()
    assert worker.proc is not None and worker.proc.returncode != -signal.SIGKILL, (
        f"{name} did not stop on SIGTERM:\n{worker.log_tail()}"
    )
    pipeline.start_worker(name)  # same name: same data directory, as a restarted pod

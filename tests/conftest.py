"""Test-session wiring: one real Kafka broker for every test that crosses Kafka.

Where it comes from, in order: the cluster named by ``DOM_KAFKA_BOOTSTRAP``; testcontainers'
Kafka when a Docker engine answers; otherwise the project's own local broker from Maven jars
(`dom.kafka_local`), started fresh for the session and stopped at its end. Each test gets
settings with a fresh topic prefix, so tests never see each other's records. Under pytest-xdist
(``make test`` runs two test files at once) every xdist worker is a session of its own: its own
broker, or the one given cluster shared under those prefixes.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import socket
import subprocess
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_KAFKA_DIR = REPO_ROOT / "var" / "test-kafka"


def free_port() -> int:
    """A port nothing listens on, for a process the test is about to start.

    Alone, the kernel picks one (``bind`` to port 0). Under pytest-xdist (``make test`` runs two
    tests at once) each xdist worker takes its ports in turn from a range of its own, below the
    kernel's ephemeral range (32768-60999): the port handed out here is free only until the
    process it is meant for binds it, and in that gap the other worker's kernel-picked port, or
    a client connection's, must not land on it."""
    if _XDIST_PORTS is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    start, size = _XDIST_PORTS
    for _ in range(size):
        port = start + next(_port_turn) % size
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}-{start + size - 1}")


def _xdist_ports() -> tuple[int, int] | None:
    """First port and size of this xdist worker's range (gw0 20000-22999, gw1 23000-25999, ...
    up to gw3); None when not under xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not worker[2:].isdigit():
        return None
    size = 3000
    return 20000 + (int(worker[2:]) % 4) * size, size


_XDIST_PORTS = _xdist_ports()
# A random start: two sessions side by side (or a rerun right after one) rarely take the same turn.
_port_turn = itertools.count(random.randrange(3000))


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=20)
    return probe.returncode == 0


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the session's real broker."""
    given = os.environ.get("DOM_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    from dom.kafka_local import LocalKafka

    # One directory per session: two sessions side by side never share (or stop) a broker.
    home = TEST_KAFKA_DIR / f"session-{os.getpid()}"
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        kafka_data_dir=home,
        kafka_heap="1g",  # headroom over `make run`'s 512 MB: a whole run's tests use it
    )
    broker = LocalKafka(settings)
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def make_settings(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Callable[..., Settings]]:
    """Settings on the session broker under a topic prefix unique to this test; the test's
    topics (Faust's changelogs included) are deleted once it is done.

    Without the clean-up every test's topics stayed (about 20, of 3 to 6 partitions, per
    pipeline test): the long-lived broker of a day's runs held 14,359 partition directories,
    its 512 MB heap was full and it spent minutes in full collections, and tests that ran late
    (the SIGKILL burst) met a broker that answered in seconds, or not at all."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    made: list[Settings] = []

    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "kafka_bootstrap": kafka_bootstrap,
            "topic_prefix": prefix,
            "topic_partitions": 3,
            "data_dir": tmp_path / "var",
        }
        values.update(overrides)
        made.append(Settings(**values))  # type: ignore[arg-type]
        return made[-1]

    yield build
    if made and not os.environ.get("DOM_KEEP_TEST_TOPICS"):  # kept: to look into a failure
        _delete_prefixed(made[0], prefix)


def _delete_prefixed(settings: Settings, prefix: str) -> None:
    """Delete every topic whose name starts with ``prefix`` (a unit test made none: a no-op)."""
    from dom.admin import admin_client, delete_topics

    try:
        names = admin_client(settings).list_topics(timeout=10).topics
        delete_topics(settings, [n for n in names if n.startswith(prefix)])
    except Exception as error:  # the broker is gone: the test has failed on it already
        warnings.warn(f"could not delete the topics of {prefix}: {error}", stacklevel=1)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()

"""The local broker as a user drives it: start, status, stop, and start again with data kept."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from config.settings import Settings
from dom.cli import main
from dom.kafka_local import LocalKafka
from tests.conftest import free_port
from tests.integration.kafka_io import consume, produce


@pytest.fixture
def own_broker(tmp_path: Path):
    """A second broker of the test's own, so stopping it leaves the session's broker alone."""
    settings = Settings(
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        kafka_data_dir=tmp_path / "kafka",
        topic_partitions=1,
    )
    broker = LocalKafka(settings)
    yield broker
    broker.stop()


def _env(broker: LocalKafka) -> dict[str, str]:
    s = broker.settings
    return {
        "DOM_KAFKA_PORT": str(s.kafka_port),
        "DOM_KAFKA_CONTROLLER_PORT": str(s.kafka_controller_port),
        "DOM_KAFKA_DATA_DIR": str(s.local_kafka_dir),
    }


def test_start_status_stop_start_keeps_data(own_broker: LocalKafka) -> None:
    runner = CliRunner()
    env = _env(own_broker)
    started = runner.invoke(main, ["kafka", "start"], env=env)
    assert started.exit_code == 0, started.output
    assert "ready at" in started.output
    status = runner.invoke(main, ["kafka", "status"], env=env)
    assert status.exit_code == 0 and "running, ready" in status.output

    client = own_broker.settings.model_copy(update={"kafka_bootstrap": own_broker.bootstrap})
    created = runner.invoke(
        main, ["topics", "create"], env={**env, "DOM_KAFKA_BOOTSTRAP": own_broker.bootstrap}
    )
    assert created.exit_code == 0 and "created  dom.orders.v1" in created.output
    assert produce(client, "dom.orders.v1", [(b"o-1", b"kept across restarts")]) == 1

    stopped = runner.invoke(main, ["kafka", "stop"], env=env)
    assert stopped.exit_code == 0 and "stopped" in stopped.output
    after_stop = runner.invoke(main, ["kafka", "status"], env=env)
    assert after_stop.exit_code == 1 and "not running" in after_stop.output

    again = runner.invoke(main, ["kafka", "start"], env=env)
    assert again.exit_code == 0, again.output
    records = consume(client, "dom.orders.v1", expected=1)
    assert [(k, v) for k, v, _ in records] == [(b"o-1", b"kept across restarts")]
    rerun = runner.invoke(
        main, ["topics", "create"], env={**env, "DOM_KAFKA_BOOTSTRAP": own_broker.bootstrap}
    )
    assert "exists   dom.orders.v1" in rerun.output


def test_kcat_lists_produces_and_consumes(kafka_bootstrap: str, settings: Settings) -> None:
    """A client nobody here wrote (Debian's kcat, installed by `make test`) speaks to the broker."""
    kcat = shutil.which("kcat")
    assert kcat, "kcat is installed by `make test` (scripts/test-tools); run it through make"
    from dom.admin import create_topics
    from schemas.topics import ORDERS

    create_topics(settings, [ORDERS])
    topic = settings.topic(ORDERS.name)
    listing = subprocess.run(
        [kcat, "-b", kafka_bootstrap, "-L", "-t", topic],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert f'topic "{topic}" with 3 partitions' in listing.stdout
    subprocess.run(
        [kcat, "-b", kafka_bootstrap, "-P", "-t", topic, "-k", "o-7"],
        input="from kcat",
        text=True,
        timeout=30,
        check=True,
    )
    read = subprocess.run(
        [
            kcat,
            "-b",
            kafka_bootstrap,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%k=%s\\n",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert read.stdout.strip() == "o-7=from kcat"

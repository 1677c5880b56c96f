"""Settings that reach the worker's Faust app: built, not started (nothing connects)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from streams.app import create_app
from streams.runtime.faust_app import faust_worker


def test_the_producer_linger_is_the_setting_in_milliseconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOM_PRODUCER_LINGER_MS", "1")
    settings = Settings(data_dir=tmp_path)
    assert settings.producer_linger_ms == 1

    pipeline = create_app(settings)

    assert pipeline.app.conf.producer_linger == pytest.approx(0.001)


def test_the_producer_linger_defaults_to_5_ms(tmp_path: Path) -> None:
    pipeline = create_app(Settings(data_dir=tmp_path))
    assert pipeline.app.conf.producer_linger == pytest.approx(0.005)


def test_every_producer_batches_up_to_a_million_bytes_a_partition_by_default(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path)

    assert create_app(settings).app.conf.producer_max_batch_size == 1_000_000
    assert settings.producer_config()["batch.size"] == 1_000_000


def test_the_producer_batch_size_is_the_setting_within_the_broker_s_default_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOM_PRODUCER_BATCH_BYTES", "262144")
    settings = Settings(data_dir=tmp_path)

    assert create_app(settings).app.conf.producer_max_batch_size == 262_144
    assert settings.producer_config()["batch.size"] == 262_144
    monkeypatch.setenv("DOM_PRODUCER_BATCH_BYTES", "2000000")  # past message.max.bytes
    with pytest.raises(ValueError, match="less than or equal to 1048576"):
        Settings(data_dir=tmp_path)


def test_no_producer_compresses_by_default(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)

    assert create_app(settings).app.conf.producer_compression_type is None
    assert settings.producer_config()["compression.type"] == "none"


@pytest.mark.parametrize("codec", ["zstd", "lz4", "snappy", "gzip"])
def test_every_producer_compresses_as_the_setting_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str
) -> None:
    monkeypatch.setenv("DOM_PRODUCER_COMPRESSION", codec)
    settings = Settings(data_dir=tmp_path)

    assert create_app(settings).app.conf.producer_compression_type == codec
    assert settings.producer_config()["compression.type"] == codec


def test_an_unknown_codec_is_refused_with_the_ones_there_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOM_PRODUCER_COMPRESSION", "brotli")

    with pytest.raises(ValueError, match="'none', 'gzip', 'snappy', 'lz4' or 'zstd'"):
        Settings()


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The root logger's level and handlers, and the standard streams (a worker sends them to
    the log), as they were, after the test set them up."""
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    streams = sys.stdout, sys.stderr
    yield
    root.setLevel(level)
    root.handlers[:] = handlers
    sys.stdout, sys.stderr = streams


@pytest.mark.parametrize("loglevel", ["warn", "error", "info"])
def test_a_worker_logs_nothing_below_its_level(
    tmp_path: Path, root_logging: None, loglevel: str
) -> None:
    pipeline = create_app(Settings(data_dir=tmp_path))
    worker = faust_worker(pipeline.app, loglevel)

    worker._setup_logging()  # what the worker does first when it runs

    wanted = logging.INFO if loglevel == "info" else logging.WARNING
    assert logging.getLogger().getEffectiveLevel() >= wanted
    # aiokafka logs at debug for every record it sends: not even built.
    assert not logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)


def test_table_standby_replicas_is_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOM_TABLE_STANDBY_REPLICAS", "1")
    pipeline = create_app(Settings(data_dir=tmp_path))
    assert pipeline.app.conf.table_standby_replicas == 1


def test_table_standby_replicas_defaults_to_none(tmp_path: Path) -> None:
    pipeline = create_app(Settings(data_dir=tmp_path))
    assert pipeline.app.conf.table_standby_replicas == 0


def test_a_worker_is_a_dynamic_member_of_its_group_by_default(tmp_path: Path) -> None:
    pipeline = create_app(Settings(data_dir=tmp_path))

    assert pipeline.app.conf.consumer_group_instance_id is None


def test_a_static_member_is_named_by_worker_and_web_address(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        static_membership=True,
        topic_prefix="acme.",
        worker_name="worker 0",
        web_host="dom-worker-0.dom-worker",
        web_port=6066,
    )
    pipeline = create_app(settings)

    # only the characters Kafka takes in an instance id ([a-zA-Z0-9._-]): a space is not one
    assert pipeline.app.conf.consumer_group_instance_id == (
        "acme.dom-worker-0-dom-worker-0.dom-worker-6066"
    )

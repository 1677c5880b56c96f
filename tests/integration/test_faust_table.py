"""A minimal Faust agent with a RocksDB-backed table processes real messages on the real broker,
and its table survives a restart of the worker."""

from __future__ import annotations

from pathlib import Path

from config.settings import Settings
from dom.admin import create_topics
from schemas.topics import Direction, Topic
from tests.conftest import free_port
from tests.integration.kafka_io import consume, produce
from tests.integration.workers import faust_worker


def _counts(records: list[tuple[bytes | None, bytes | None, list]]) -> dict[str, int]:
    latest: dict[str, int] = {}
    for _key, value, _headers in records:
        assert value is not None
        name, count = value.decode().split("=")
        latest[name] = max(latest.get(name, 0), int(count))
    return latest


def test_faust_rocksdb_table_counts_and_survives_restart(
    settings: Settings, tmp_path: Path
) -> None:
    topics = [Topic(n, "key", (), Direction.INTERNAL) for n in ("counter.in", "counter.out")]
    create_topics(settings, topics)
    data_dir = tmp_path / "faust-data"
    env = {
        "DOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "DOM_TOPIC_PREFIX": settings.topic_prefix,
        "COUNTER_APP_ID": f"{settings.topic_prefix}counter",
        "COUNTER_DATA_DIR": str(data_dir),
    }
    worker = faust_worker(
        "tests.integration.faust_counter_app", env, tmp_path / "w.log", free_port()
    ).start()
    try:
        keys = [f"sku-{i % 3}".encode() for i in range(30)]
        assert produce(settings, settings.topic("counter.in"), [(k, b"x") for k in keys]) == 30
        first = consume(settings, settings.topic("counter.out"), expected=30)
        assert _counts(first) == {"sku-0": 10, "sku-1": 10, "sku-2": 10}, worker.log_tail()
    finally:
        worker.stop()
    stores = list((data_dir).rglob("counts-*.db"))
    assert stores and all((s / "CURRENT").exists() for s in stores), "RocksDB files expected"

    worker = faust_worker(
        "tests.integration.faust_counter_app", env, tmp_path / "w2.log", free_port()
    ).start()
    try:
        assert produce(settings, settings.topic("counter.in"), [(b"sku-1", b"x")]) == 1
        after = consume(settings, settings.topic("counter.out"), expected=31)
        assert _counts(after)["sku-1"] == 11, worker.log_tail()
    finally:
        worker.stop()

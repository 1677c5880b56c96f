"""The worker takes no input before its clients know every topic it uses, and `dom topics create`
makes every one of them: the registry's, and each table's changelog under Faust's own name."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from config.settings import Settings
from dom.admin import PIPELINE_TOPICS
from schemas.topics import ALL_TOPICS, CHANGELOG_TOPICS
from streams.app import create_app
from streams.runtime.topic_check import (
    Expected,
    Problem,
    TopicsUnusable,
    problems_of,
    stage_topics,
    wait_until_known,
)


def test_every_table_of_the_worker_has_its_changelog_in_the_topics_create_makes(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, topic_prefix="t1.", topic_partitions=4, kpis=True)
    pipeline = create_app(settings)

    changelogs = {t.changelog_topic_name: t.partitions for t in pipeline.app.tables.values()}
    assert changelogs == {
        "t1.dom-orders-changelog": 4,
        "t1.dom-inventory-changelog": 4,
        "t1.dom-rules-changelog": 4,
        "t1.dom-kpi-facts-changelog": 4,  # the KPI stages' (DOM_KPIS)
        "t1.dom-kpi-buckets-changelog": 4,
    }
    created = {settings.topic(t.name): t for t in PIPELINE_TOPICS}
    assert set(changelogs) <= set(created)
    for name in changelogs:  # as Faust would create it: compacted
        assert created[name].config()["cleanup.policy"] == "compact"
    assert {settings.topic(t.name) for t in CHANGELOG_TOPICS} == set(changelogs)

    orders = pipeline.app.tables["orders"]
    assert stage_topics(settings, orders) == {
        **{settings.topic(t.name): None for t in ALL_TOPICS},
        "t1.dom-orders-changelog": 4,
    }
    assert stage_topics(settings, None) == {settings.topic(t.name): None for t in ALL_TOPICS}


def test_what_a_client_misses_is_named_topic_by_topic() -> None:
    expected: Expected = {"a": None, "a-changelog": 6}
    assert problems_of(expected, {"a": 6, "a-changelog": 6}) == []
    assert problems_of(expected, {"a": 0, "a-changelog": 6}) == [Problem("a (not in its metadata)")]
    assert problems_of(expected, {"a-changelog": 0}) == [
        Problem("a-changelog (not in its metadata)")
    ]
    assert problems_of(expected, {"a": 3, "a-changelog": 3}) == [
        Problem("a-changelog (3 partitions, 6 expected)", lasting=True)
    ]


class Client:
    """A client whose metadata learns of the changelog after a few refreshes."""

    def __init__(self, learns_after: int | None) -> None:
        self.refreshes = 0
        self.learns_after = learns_after

    async def read(self, expected: Expected) -> dict[str, int]:
        self.refreshes += 1
        knows = self.learns_after is not None and self.refreshes > self.learns_after
        return {name: 6 if knows or "changelog" not in name else 0 for name in expected}


def test_the_wait_ends_when_both_clients_know_every_topic() -> None:
    producer, consumer = Client(learns_after=0), Client(learns_after=3)
    expected = {"t.dom.orders.v1": None, "t.dom-orders-changelog": 6}
    readers = {"producer": producer.read, "consumer": consumer.read}

    asyncio.run(wait_until_known(readers, expected, timeout=30, interval=0.01))

    assert consumer.refreshes == 4  # it asked again until the consumer knew the changelog


def test_a_topic_still_missing_fails_the_stage_with_its_name() -> None:
    expected = {"t.dom.orders.v1": None, "t.dom-orders-changelog": 6}
    readers = {"producer": Client(0).read, "consumer": Client(learns_after=None).read}

    with pytest.raises(TopicsUnusable) as failed:
        asyncio.run(wait_until_known(readers, expected, timeout=0.2, interval=0.01))

    message = str(failed.value)
    assert "consumer: t.dom-orders-changelog (not in its metadata)" in message
    assert "producer" not in message
    assert "Run `dom topics create`" in message


def test_a_client_not_started_yet_is_waited_for() -> None:
    calls = 0

    async def not_yet(expected: Expected) -> dict[str, int]:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError("Producer service not yet started")
        return dict.fromkeys(expected, 6)

    asyncio.run(wait_until_known({"producer": not_yet}, {"t.x": None}, interval=0.01))
    assert calls == 3


def test_a_changelog_with_other_partitions_fails_the_stage_at_once() -> None:
    async def three(expected: Expected) -> dict[str, int]:
        return dict.fromkeys(expected, 3)

    expected = {"t.dom.orders.v1": None, "t.dom-orders-changelog": 6}
    with pytest.raises(TopicsUnusable) as failed:  # no timeout would be short enough otherwise
        asyncio.run(wait_until_known({"consumer": three}, expected, timeout=3600))

    assert "consumer: t.dom-orders-changelog (3 partitions, 6 expected)" in str(failed.value)

"""`dom topics create` on a real broker makes every topic the pipeline writes, the stages' table
changelogs included (as Faust would: compacted, as many partitions as the source topics), and
returns only once the cluster's metadata lists them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner
from confluent_kafka.admin import ConfigResource, ResourceType  # type: ignore[attr-defined]

from config.settings import Settings
from dom.admin import admin_client, create_topics
from dom.cli import main
from schemas.topics import ALL_TOPICS, CHANGELOG_TOPICS

pytestmark = pytest.mark.broker


def test_the_changelogs_exist_compacted_with_the_source_topics_partitions(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(topic_partitions=5)
    changelogs = [f"{settings.app_id}-orders-changelog", f"{settings.app_id}-inventory-changelog"]

    results = {r.name: r for r in create_topics(settings)}

    assert {n: (results[n].outcome, results[n].partitions) for n in changelogs} == {
        n: ("created", 5) for n in changelogs
    }
    admin = admin_client(settings)
    listed = admin.list_topics(timeout=10).topics
    for name in [settings.topic(t.name) for t in ALL_TOPICS] + changelogs:
        assert len(listed[name].partitions) == 5, name
    resources = [ConfigResource(ResourceType.TOPIC, n) for n in changelogs]
    for resource, future in admin.describe_configs(resources).items():
        assert future.result()["cleanup.policy"].value == "compact", resource

    again = {r.name: r.outcome for r in create_topics(settings)}
    assert set(again.values()) == {"exists"}  # safe to run again


def test_dom_topics_create_prints_the_changelogs(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    env = {
        "DOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "DOM_TOPIC_PREFIX": settings.topic_prefix,
        "DOM_TOPIC_PARTITIONS": str(settings.topic_partitions),
    }
    result = CliRunner().invoke(main, ["topics", "create"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"created  {settings.topic_prefix}dom-orders-changelog (3 partitions)" in result.output

    listing = CliRunner().invoke(main, ["topics", "list"], env=env, catch_exceptions=False)
    lines = listing.output.splitlines()
    assert len(lines) == len(ALL_TOPICS) + len(CHANGELOG_TOPICS)
    assert lines[0].split()[:2] == [f"{settings.topic_prefix}dom.locations.v1", "key=location_id"]
    assert lines[-len(CHANGELOG_TOPICS)].split() == [
        f"{settings.topic_prefix}dom-orders-changelog",
        "key=order_id",
        "compacted",
        "the",
        "orders",
        "table",
        "(changelog)",
    ]

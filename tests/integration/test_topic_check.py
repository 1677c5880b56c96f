"""On a real broker: a client that fetched its metadata before a topic was created does not know
it (aiokafka refreshes only every five minutes unless asked), and the worker's check makes it
learn the topic, with its partitions, before a stage takes input."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaProducer

from config.settings import Settings
from dom.admin import create_topics
from schemas.topics import Direction, Topic
from streams.runtime.topic_check import Expected, refresh_metadata, wait_until_known

pytestmark = pytest.mark.broker


def test_a_client_with_stale_metadata_learns_a_new_topic_when_asked(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(topic_partitions=3)
    late = Topic("late-changelog", "key", (), Direction.INTERNAL, compacted=True)
    name = settings.topic(late.name)

    async def scenario() -> tuple[int | None, int]:
        producer = AIOKafkaProducer(**settings.aiokafka_config())
        await producer.start()
        try:
            client = producer.client
            await client.force_metadata_update()  # what the client knew before the topic
            await asyncio.to_thread(create_topics, settings, [late])
            before = client.cluster.partitions_for_topic(name)

            async def read(expected: Expected) -> dict[str, int]:
                return await refresh_metadata(client, list(expected))

            await wait_until_known({"producer": read}, {name: 3}, timeout=30)
            return (None if before is None else len(before)), len(
                client.cluster.partitions_for_topic(name) or ()
            )
        finally:
            await producer.stop()

    before, after = asyncio.run(scenario())
    assert before is None  # created, listed by the broker, still unknown to the client
    assert after == 3

"""On a real broker: a worker's network view reads the fulfillment commands from the start of
the current UTC day only (it counts today's shipments), not the whole topic, and is ready even
when nothing was sent today; the compacted topics are still read from the beginning."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer

from config.settings import Settings
from dom.admin import create_topics
from schemas import topics as registry
from schemas.codec import Codec
from schemas.models import Message
from streams.views import DAY_START_MARGIN, NetworkView, follow_topics
from tests.unit.factories import make_fulfillment_command, make_location

pytestmark = pytest.mark.broker

TODAY = datetime.now(UTC)
MIDNIGHT = TODAY.replace(hour=0, minute=0, second=0, microsecond=0)
YESTERDAY = MIDNIGHT - DAY_START_MARGIN - timedelta(hours=1)  # yesterday, whatever the hour


def _produce(settings: Settings, topic: registry.Topic, records: Iterable[Message]) -> None:
    """Produce ``records``, each stamped with its own time (``created_at``, or two days ago for
    master data), as the stage that wrote it would have."""
    codec = Codec()
    producer = Producer(settings.producer_config())
    failed: list[object] = []
    for record in records:
        stamp = getattr(record, "created_at", MIDNIGHT - timedelta(days=2))
        producer.produce(
            settings.topic(topic.name),
            key=str(getattr(record, topic.key)).encode(),
            value=codec.encode(record),
            timestamp=int(stamp.timestamp() * 1000),
            on_delivery=lambda err, _msg: failed.append(err) if err else None,
        )
    producer.flush(30)
    assert not failed, failed


def _commands(location_id: str, count: int, created_at: datetime, tag: str) -> list[Message]:
    return [
        make_fulfillment_command(f"ORD-{tag}-{i}", location_id, created_at=created_at)
        for i in range(count)
    ]


async def _follow_until_ready(settings: Settings) -> NetworkView:
    """Run the view as a worker does until it is ready, and return it."""
    view = NetworkView()
    follower = asyncio.create_task(
        follow_topics(
            view,
            Codec(),
            settings.aiokafka_config(),
            [settings.topic(registry.LOCATIONS.name), _commands_topic(settings)],
            locations_topic=settings.topic(registry.LOCATIONS.name),
            today_topics=[_commands_topic(settings)],
        )
    )
    try:
        await asyncio.wait_for(view.ready.wait(), timeout=60)
        await asyncio.sleep(1)  # anything read past the start-up ends would show here too
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    return view


def _commands_topic(settings: Settings) -> str:
    return settings.topic(registry.FULFILLMENT_COMMANDS.name)


def _setup(make_settings: Callable[..., Settings]) -> Settings:
    settings = make_settings(topic_partitions=3)
    create_topics(settings, [registry.LOCATIONS, registry.FULFILLMENT_COMMANDS])
    _produce(settings, registry.LOCATIONS, [make_location("DC-EAST"), make_location("ST-1")])
    return settings


def test_the_view_reads_todays_commands_only(make_settings: Callable[..., Settings]) -> None:
    settings = _setup(make_settings)
    _produce(settings, registry.FULFILLMENT_COMMANDS, _commands("DC-EAST", 5, YESTERDAY, "old"))
    _produce(settings, registry.FULFILLMENT_COMMANDS, _commands("DC-EAST", 3, TODAY, "new"))
    _produce(settings, registry.FULFILLMENT_COMMANDS, _commands("ST-1", 2, TODAY, "store"))

    view = asyncio.run(_follow_until_ready(settings))

    assert view.records_read[_commands_topic(settings)] == 5  # yesterday's 5 never fetched
    load = {info.location_id: info.orders_today for info in view.location_infos()}
    assert load == {"DC-EAST": 3, "ST-1": 2}


def test_the_view_is_ready_when_nothing_was_sent_today(
    make_settings: Callable[..., Settings],
) -> None:
    settings = _setup(make_settings)
    _produce(settings, registry.FULFILLMENT_COMMANDS, _commands("DC-EAST", 4, YESTERDAY, "old"))

    view = asyncio.run(_follow_until_ready(settings))

    assert view.records_read[_commands_topic(settings)] == 0
    # the compacted topic is the state: read from its beginning, old as its records are
    assert set(view.locations) == {"DC-EAST", "ST-1"}
    assert {info.orders_today for info in view.location_infos()} == {0}

"""Consumers outside the stages' group: for reading a few offsets on the side (a hole to fill,
a topic's end offsets) without joining or disturbing the group, and for the network view's
readers (:func:`reader`). The rest of the pipeline names aiokafka's types through here."""

from __future__ import annotations

from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["Reader", "SideConsumer", "TopicPartition", "reader", "side_consumer_config"]

Reader: TypeAlias = AIOKafkaConsumer
"""A group-less consumer, as :func:`reader` makes it."""


class SideConsumer:
    """One group-less consumer, started when first asked for and stopped by :meth:`close`."""

    def __init__(self, consumer_conf: dict[str, Any]) -> None:
        self._conf = consumer_conf
        self._consumer: AIOKafkaConsumer | None = None

    async def started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(**side_consumer_config(self._conf))
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


def side_consumer_config(conf: dict[str, Any]) -> dict[str, Any]:
    """A group-less consumer's settings over ``conf`` (the cluster's): no commits, and committed
    records only, as the stages read (streams/runtime/faust_fixes.py): an aborted upstream
    transaction is never applied, nor counted in what a reader waits for."""
    return {
        **conf,
        "enable_auto_commit": False,
        "group_id": None,
        "isolation_level": "read_committed",
    }


def reader(conf: dict[str, Any]) -> Reader:
    """A group-less consumer over ``conf`` (the cluster's), not started."""
    return AIOKafkaConsumer(**side_consumer_config(conf))

"""Read a topic from the beginning to its current end, outside any consumer group: what the
command line needs to show the live rules or replay recent orders."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from config.settings import Settings

POLL = 1.0


def read_to_end(settings: Settings, topic_name: str, timeout: float = 30.0) -> list[Message]:
    """Every message of a registry topic (by unprefixed name) up to the end seen at the start
    (a partition whose last offsets hold no record, a transaction marker or a compacted one,
    ends once the consumer's position passes them)."""
    name = settings.topic(topic_name)
    consumer = Consumer(
        settings.librdkafka_config(
            **{
                "group.id": f"dom-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
    )
    try:
        metadata = consumer.list_topics(name, timeout=timeout).topics[name]
        if metadata.error is not None:
            raise RuntimeError(f"topic {name}: {metadata.error}; run `dom topics create`")
        ends: dict[int, int] = {}
        for partition in metadata.partitions:
            low, high = _watermarks(consumer, TopicPartition(name, partition), timeout)
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(name, p, 0) for p in ends])
        messages: list[Message] = []
        while ends:
            batch = consumer.consume(1000, POLL)
            if not batch:  # past a partition's last record, when its last offsets hold none
                for at in consumer.position([TopicPartition(name, p) for p in list(ends)]):
                    if at.offset >= ends[at.partition]:
                        del ends[at.partition]
            for message in batch:
                if message.error() is not None:
                    continue
                messages.append(message)
                partition, offset = message.partition() or 0, message.offset() or 0
                if partition in ends and offset + 1 >= ends[partition]:
                    del ends[partition]
        return messages
    finally:
        consumer.close()


def latest_by_key(messages: list[Message]) -> dict[bytes, bytes | None]:
    """What compaction keeps: the last value per key (None: a tombstone)."""
    latest: dict[bytes, bytes | None] = {}
    for message in messages:
        key = message.key()
        if key is not None:
            latest[key] = message.value()
    return latest


RETRIABLE = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)
"""What a topic created a moment ago answers until its partitions have leaders."""


def _watermarks(consumer: Consumer, partition: TopicPartition, timeout: float) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=timeout)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            code = error.code() if isinstance(error, KafkaError) else None
            if code not in RETRIABLE or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)

"""Cluster administration with confluent-kafka's AdminClient: creating the registry's topics."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from dom.settings import Settings
from schemas.topics import ALL_TOPICS, Topic


@dataclass(frozen=True)
class TopicResult:
    """What happened to one topic: ``created`` or ``exists`` (with its partition count)."""

    name: str
    outcome: str
    partitions: int


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(settings.librdkafka_config())


def create_topics(
    settings: Settings, topics: Iterable[Topic] = ALL_TOPICS, timeout: float = 30.0
) -> list[TopicResult]:
    """Create every topic that is missing; existing ones are left alone, so re-runs are safe."""
    admin = admin_client(settings)
    wanted = {settings.topic(t.name): t for t in topics}
    existing = admin.list_topics(timeout=timeout).topics
    missing = [
        NewTopic(
            name,
            num_partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            config=topic.config(),
        )
        for name, topic in wanted.items()
        if name not in existing
    ]
    created: set[str] = set()
    if missing:
        for name, future in admin.create_topics(missing, operation_timeout=timeout).items():
            try:
                future.result()
                created.add(name)
            except KafkaException as exc:
                # Another process may have created it between our look and our request.
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    metadata = admin.list_topics(timeout=timeout).topics
    return [
        TopicResult(
            name,
            "created" if name in created else "exists",
            len(metadata[name].partitions) if name in metadata else 0,
        )
        for name in wanted
    ]


def delete_topics(settings: Settings, names: Iterable[str], timeout: float = 30.0) -> None:
    """Delete topics by real name (tests and `dom topics delete` for a fresh start)."""
    admin = admin_client(settings)
    names = list(names)
    if not names:
        return
    for future in admin.delete_topics(names, operation_timeout=timeout).values():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise

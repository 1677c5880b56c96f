"""Cluster administration with confluent-kafka's AdminClient: creating the registry's topics.

``create_topics`` makes every topic the pipeline writes, the stages' table changelogs included,
and returns only once the cluster's metadata lists each of them with its partitions: a worker
started afterwards finds them all in its first metadata, instead of racing Faust's own lazy
creation of the changelogs (see ``schemas.topics.CHANGELOG_TOPICS``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from config.settings import Settings
from schemas.topics import ALL_TOPICS, CHANGELOG_TOPICS, Topic

PIPELINE_TOPICS: tuple[Topic, ...] = ALL_TOPICS + CHANGELOG_TOPICS
"""Everything `dom topics create` makes: the registry and the stages' changelogs."""


@dataclass(frozen=True)
class TopicResult:
    """What happened to one topic: ``created`` or ``exists`` (with its partition count)."""

    name: str
    outcome: str
    partitions: int


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(settings.librdkafka_config())


class TopicsNotVisible(RuntimeError):
    """Created topics the cluster's metadata did not list in time."""


def create_topics(
    settings: Settings, topics: Iterable[Topic] = PIPELINE_TOPICS, timeout: float = 30.0
) -> list[TopicResult]:
    """Create every topic that is missing; existing ones are left alone, so re-runs are safe.

    Returns once the cluster's metadata lists every wanted topic with its partitions (or
    raises :class:`TopicsNotVisible` after ``timeout``).
    """
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
    metadata = _listed(admin, list(wanted), timeout)
    return [
        TopicResult(
            name,
            "created" if name in created else "exists",
            len(metadata[name].partitions) if name in metadata else 0,
        )
        for name in wanted
    ]


def _listed(admin: AdminClient, names: list[str], timeout: float) -> dict[str, Any]:
    """The cluster's topic metadata once it lists every one of ``names`` with partitions.

    A topic just created may be missing from a broker's metadata, or listed without its
    partitions, for a moment.
    """
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=timeout).topics
        absent = [n for n in names if n not in metadata or not metadata[n].partitions]
        if not absent:
            return dict(metadata)
        if time.monotonic() >= deadline:
            raise TopicsNotVisible(f"not in the cluster's metadata after {timeout:.0f}s: {absent}")
        time.sleep(0.1)


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

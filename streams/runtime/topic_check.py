"""Before a stage takes its first input, the worker's own Kafka clients know every topic it uses.

Faust creates a table's changelog itself at start-up when it is missing, and aiokafka refreshes
a client's metadata only every five minutes unless asked. A changelog created a moment too late
was "0 partitions" to the consumer (whose metadata Faust's partition check reads) at the first
table write: ``PartitionsMismatch``, and the stage crashed at every restart for minutes.
`dom topics create` now makes every changelog up front; this is the worker's own guarantee on
top: both clients, the producer and the consumer, refresh their metadata until they know
every topic with its partitions, and the stage fails with the names of the missing ones when
the wait runs out, or at once when a topic has the wrong number of partitions (its crash
shows in the worker's health).

This module reaches into Faust's and aiokafka's clients (their metadata has no public API).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from config.settings import Settings
from schemas import topics as registry

log = logging.getLogger(__name__)

WAIT = 60.0
"""Seconds a stage waits for its topics before it fails (Faust then starts it again)."""
INTERVAL = 0.25

Expected = Mapping[str, int | None]
"""Topics by real name, with the partitions each must have (None: any)."""
Reader = Callable[[Expected], Awaitable[dict[str, int]]]
"""Refreshes one client's metadata and returns the partitions it knows (0: none) of each of
the expected topics that client must know: its scope."""


class TopicsUnusable(RuntimeError):
    """Topics the worker uses that its clients do not know, or know with other partitions."""


@dataclass(frozen=True)
class Problem:
    """What is wrong with one topic in one client's metadata."""

    text: str
    lasting: bool = False  # a wrong partition count: no wait fixes it


def stage_topics(settings: Settings, table: Any | None) -> dict[str, int | None]:
    """Every topic a stage uses, by real name, with the partitions it must have (None: any).

    The registry's topics (a stage may send to any of them: its records, the dead letters),
    and the changelog of the stage's Faust ``table``, if it has one, which must have the
    table's partitions (else Faust refuses the first write with ``PartitionsMismatch``).
    """
    expected: dict[str, int | None] = {settings.topic(t.name): None for t in registry.ALL_TOPICS}
    if table is not None:
        expected[table.changelog_topic_name] = table.partitions
    return expected


def problems_of(expected: Expected, known: Mapping[str, int]) -> list[Problem]:
    """What is wrong with ``known`` (what a client knows of the topics in its scope) against
    ``expected``, topic by topic."""
    problems = []
    for name, have in known.items():
        partitions = expected.get(name)
        if not have:
            problems.append(Problem(f"{name} (not in its metadata)"))
        elif partitions is not None and have != partitions:
            problems.append(Problem(f"{name} ({have} partitions, {partitions} expected)", True))
    return problems


async def wait_until_known(
    readers: Mapping[str, Reader],
    expected: Expected,
    *,
    timeout: float = WAIT,
    interval: float = INTERVAL,
) -> None:
    """Return once every reader knows every expected topic with its partitions. Raise
    :class:`TopicsUnusable` naming each client's problems when ``timeout`` runs out, or at
    once when a topic has the wrong number of partitions (waiting would not fix that)."""
    deadline = time.monotonic() + timeout
    logged: list[str] = []
    while True:
        problems: list[Problem] = []
        for client, read in readers.items():
            try:
                known = await asyncio.wait_for(read(expected), timeout=max(interval, 5.0))
            except Exception as error:  # not started yet, or the broker did not answer in time
                problems.append(Problem(f"{client}: no metadata ({type(error).__name__} {error})"))
                continue
            problems += [
                Problem(f"{client}: {p.text}", p.lasting) for p in problems_of(expected, known)
            ]
        if not problems:
            return
        texts = [p.text for p in problems]
        if any(p.lasting for p in problems):
            raise TopicsUnusable(
                "topics the worker uses have the wrong number of partitions: "
                + "; ".join(p.text for p in problems if p.lasting)
                + ". Every topic, table changelogs included, needs DOM_TOPIC_PARTITIONS "
                "partitions; `dom topics create` makes the missing ones only."
            )
        if time.monotonic() >= deadline:
            raise TopicsUnusable(
                f"after {timeout:.0f}s the worker's clients still miss topics it uses: "
                + "; ".join(texts)
                + ". Run `dom topics create` against this cluster (same DOM_TOPIC_PREFIX and "
                "DOM_TOPIC_PARTITIONS)."
            )
        if texts != logged:
            log.info("waiting for the worker's clients to know: %s", "; ".join(texts))
            logged = texts
        await asyncio.sleep(interval)


def worker_readers(app: Any) -> dict[str, Reader]:
    """The metadata of the Faust worker's producer (every topic) and of its consumer (the
    tables' changelogs and what it subscribed to; it runs in a thread of its own, so it is
    asked there). Each client is told to track the topics first: a client's refresh asks
    only for the topics it tracks."""

    async def producer(expected: Expected) -> dict[str, int]:
        client = app.producer._ensure_producer().client
        return await refresh_metadata(client, list(expected))

    async def consumer(expected: Expected) -> dict[str, int]:
        thread = app.consumer._thread

        async def refresh() -> dict[str, int]:
            aiokafka_consumer = thread._ensure_consumer()
            subscribed = aiokafka_consumer.subscription()
            scope = [n for n, p in expected.items() if p is not None or n in subscribed]
            return await refresh_metadata(aiokafka_consumer._client, scope)

        result: dict[str, int] = await thread.call_thread(refresh)
        return result

    return {"producer": producer, "consumer": consumer}


async def refresh_metadata(client: Any, names: list[str]) -> dict[str, int]:
    """Have an aiokafka client fetch its metadata now, ``names`` included; the partitions it
    then knows of each."""
    for name in names:
        client.add_topic(name)  # only tracked: the update below fetches them all at once
    await client.force_metadata_update()
    return {name: len(client.cluster.partitions_for_topic(name) or ()) for name in names}

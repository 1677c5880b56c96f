"""A stage's inputs acknowledged in offset order, those whose change waits held back.

A stage's table may keep a change unwritten for a while (``BatchTable.put(..., lazy=True)``:
an order's state after one sku's answer, while its other skus' are still awaited). The inputs
that made it are not done until it is written: committed before, a crash would lose the change.
So their acknowledgements are held until a batch writes their key, and so is every later input
of their partitions. Faust commits what was acknowledged up to the first offset that was not,
but lets one unacknowledged offset at the head of a partition pass, and checks nothing while
the committed offset is 0 (``Consumer._new_offset`` in faust-streaming 0.15.3): only
acknowledgements in offset order keep a held input from being committed.

A held input is taken out of the messages Faust waits for before it gives partitions up
(``Consumer.wait_empty``): what releases it is a later batch of the stage, and the rebalance
itself pauses the stage. Whoever owns the partition next reads it from the committed offset,
so a new consumer generation releases every hold (:meth:`HeldAcks.follow`, as the table forgets
the changes that waited); those acknowledgements are stale, and the runtime has the partition
read again from them instead of committing them (``faust_fixes._ack``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from streams.runtime.batch_table import BatchTable
from streams.runtime.envelopes import BatchedMessage

WAIT_MAX_S = 5.0
"""Seconds a key's change may wait unwritten (``BatchTable.put(..., lazy=True)``) before the
next batch writes it anyway: what a crash reads again stays short, whatever keeps the key's
next change away (a sku owner that does not answer)."""
WAIT_MAX_KEYS = 2_000
"""Keys whose changes may wait at once: the oldest past them are written (their decoded
values are kept in memory meanwhile, and their inputs' partitions are not committed)."""
Holds = list[tuple[bytes, list[Any], list[Any]]]
"""Keys whose changes wait after a batch, each with the stream events and the inputs of the
batch that made them."""

_UNSET: Any = object()


class HeldAcks:
    """One stage's inputs not yet acknowledged, per partition in offset order, and the keys
    whose waiting changes hold some of them."""

    def __init__(self) -> None:
        self._queues: dict[tuple[str, int], deque[Any]] = {}
        self._holds: dict[int, int] = {}
        """id(stream event) -> how many keys hold it (the key holds the event object too)."""
        self._held: dict[bytes, list[Any]] = {}
        """Key -> the stream events (messages as Faust delivered them) its waiting change holds."""
        self.inputs: dict[bytes, list[Any]] = {}
        """Key -> the inputs whose change of it waits, in order (what a reset applies again)."""
        self._generation: object = _UNSET

    def __len__(self) -> int:
        """How many keys hold inputs."""
        return len(self._held)

    def follow(self, generation: object) -> None:
        """The consumer generation of the input about to be applied: a new one releases every
        hold (the partitions are read again from their committed offsets)."""
        if generation == self._generation:
            return
        if self._generation is not _UNSET:
            self.release(list(self._held))
        self._generation = generation

    def hold(self, key: bytes, events: Iterable[Any], inputs: Iterable[Any]) -> None:
        """Hold ``events`` (stream events) until ``key`` is written; ``inputs`` are the ones
        of them (or the records they carry) whose change of ``key`` waits."""
        held = self._held.setdefault(key, [])
        for event in events:
            held.append(event)
            self._holds[id(event)] = self._holds.get(id(event), 0) + 1
        self.inputs.setdefault(key, []).extend(inputs)

    def release(self, keys: Iterable[bytes]) -> None:
        """``keys`` were written (or their changes forgotten): what they held may go."""
        for key in keys:
            self.inputs.pop(key, None)
            for event in self._held.pop(key, ()):
                left = self._holds[id(event)] - 1
                if left:
                    self._holds[id(event)] = left
                else:
                    del self._holds[id(event)]

    def held_keys(self) -> list[bytes]:
        return list(self._held)

    def done(self, events: Iterable[Any]) -> list[Any]:
        """``events``, a batch the stage is done with, join their partitions' queues; returns
        every queued event that may be acknowledged now, in offset order per partition (those
        still queued wait for a hold before them)."""
        for event in events:
            message = event.message
            tp = (message.topic, message.partition)
            queue = self._queues.get(tp)
            if queue is None:
                queue = self._queues[tp] = deque()
            queue.append(event)
        ready: list[Any] = []
        holds = self._holds
        for tp, queue in list(self._queues.items()):
            while queue and id(queue[0]) not in holds:
                ready.append(queue.popleft())
            if not queue:
                del self._queues[tp]
        return ready

    def waiting(self) -> int:
        """Events queued behind a hold (or held)."""
        return sum(len(queue) for queue in self._queues.values())


def waiting_changes(table: BatchTable[Any], inputs: list[Any], events: list[Any]) -> Holds:
    """The keys whose changes may still wait after a batch of stream ``events`` that applied
    ``inputs``, with the stream events and the inputs of the batch that made them. Those that
    have waited past ``WAIT_MAX_S``, past the newest ``WAIT_MAX_KEYS``, or that an input read
    outside the stream (a filled hole: it cannot be held) changed are written now instead."""
    waiting = table.waiting()
    if not waiting:
        return []
    now = time.monotonic()
    write = {key for key, since in waiting.items() if now - since > WAIT_MAX_S}
    if len(waiting) - len(write) > WAIT_MAX_KEYS:
        oldest = sorted((k for k in waiting if k not in write), key=waiting.__getitem__)
        write.update(oldest[: len(waiting) - len(write) - WAIT_MAX_KEYS])
    carriers = {id(event.message): event for event in events}
    made_by: dict[bytes, list[Any]] = {}
    for event in inputs:
        if event.key in waiting and event.key not in write:
            made_by.setdefault(event.key, []).append(event)
    holds: Holds = []
    for key, made in made_by.items():
        held = [carriers.get(id(carrier_message(event))) for event in made]
        if any(event is None for event in held):
            write.add(key)
        else:
            holds.append((key, list({id(e): e for e in held}.values()), made))
    table.write_now(write)
    return holds


def hold_waiting(acks: HeldAcks, table: BatchTable[Any], holds: Holds) -> list[Any]:
    """Once a batch's records are delivered: release what the keys written now held, and
    hold this batch's inputs of the keys whose changes still wait; returns the events held."""
    waiting = table.waiting()
    acks.release([key for key in acks.held_keys() if key not in waiting])
    held: list[Any] = []
    for key, events, inputs in holds:
        if key in waiting:
            acks.hold(key, events, inputs)
            held += events
    return held


def carrier_message(event: Any) -> Any:
    """The message Faust delivered that carried ``event`` (itself, or its ``RecordBatch``)."""
    message = event.message
    if isinstance(message, BatchedMessage):
        return message._carrier
    return message

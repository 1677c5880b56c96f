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

from collections import deque
from collections.abc import Iterable
from typing import Any

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

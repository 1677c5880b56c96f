"""Every input in offset order, none skipped: the guard between Faust and the stages.

Faust (0.15.3) can hand a stream a partition's records with a hole in them around a
rebalance: records it fetched and then dropped, while its read position moved past them
(seen as "reads sku-results[4] at 121 (after 101)"). Committing after such a hole loses
the records in it for good. The sequencer watches each partition's offsets within one
consumer generation: a record that follows on, or repeats an earlier one (a harmless
replay), is admitted; a record past a hole is refused unacknowledged, and the partition is
sought back to the first missing offset so the hole is fetched again. A new generation
(a rebalance) starts every partition afresh from wherever Faust's seek put it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

MAX_REWINDS = 5
"""Rewinds to one offset before the hole is accepted (the log start may have moved past it)."""
RETRY_AFTER = 5000
"""Records past the hole dropped while a rewind is pending before the rewind is asked again."""

ADMIT = -1
DROP = -2


@dataclass
class _Partition:
    generation: int | None
    expected: int
    rewinds: dict[int, int] = field(default_factory=dict)  # offset -> rewinds asked for it
    dropped_since_rewind: int | None = None  # None: no rewind pending


class Sequencer:
    """Admits a partition's records in order; asks for a rewind across a hole."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._partitions: dict[tuple[str, int], _Partition] = {}

    def admit(self, message: Any) -> int:
        """ADMIT to process ``message``; DROP to drop it without an ack (a rewind is pending);
        else the offset its partition must be sought back to (and the message dropped)."""
        tp = (message.topic, message.partition)
        generation = getattr(message, "generation_id", None)
        state = self._partitions.get(tp)
        if state is None or state.generation != generation:
            log.info("%s reads %s[%s] from %s", self.stage, *tp, message.offset)
            self._partitions[tp] = _Partition(generation, message.offset + 1)
            return ADMIT
        if message.offset < state.expected:
            return ADMIT  # a replay of what was read: the stages answer it as before
        if message.offset == state.expected:
            state.expected += 1
            state.dropped_since_rewind = None
            return ADMIT
        if state.dropped_since_rewind is not None:
            state.dropped_since_rewind += 1  # fetched before the rewind took effect
            if state.dropped_since_rewind < RETRY_AFTER:
                return DROP
        return self._hole(tp, state, message.offset)

    def _hole(self, tp: tuple[str, int], state: _Partition, offset: int) -> int:
        missing = state.expected
        asked = state.rewinds.get(missing, 0)
        if asked >= MAX_REWINDS:
            log.error(
                "%s accepts a hole in %s[%s]: %s..%s never came back after %s rewinds",
                self.stage,
                *tp,
                missing,
                offset - 1,
                asked,
            )
            state.expected = offset + 1
            state.dropped_since_rewind = None
            return ADMIT
        state.rewinds[missing] = asked + 1
        state.dropped_since_rewind = 0
        log.warning(
            "%s found a hole in %s[%s]: expected %s, got %s; rewinding",
            self.stage,
            *tp,
            missing,
            offset,
        )
        return missing


def drop_unacked(consumer: Any, message: Any) -> None:
    """Take ``message`` out of the stream's accounting without committing its offset: it is
    fetched again after the rewind and processed then."""
    message.acked = True  # Message.ack() is then a no-op: the offset is never marked done
    consumer._unacked_messages.discard(message)

"""A partition that holds records a stage never got is read again: the backstop of the fixes.

:mod:`streams.runtime.faust_fixes` closes the windows around a rebalance in which Faust moves
a partition's fetch position past records no stream ever processes, and the sequencer fills a
hole once a later record shows it. Neither helps when a partition gets no record at all: a
restarted worker once read three of its partitions of ``dom.orders.v1`` and never the other
two, and 184 orders placed before its start waited with no answer (once, in the SIGKILL burst
of a full test run; not in 8 runs of it alone). The window behind it is not known.

So, whatever the cause: every few seconds, for each stage that has been idle for
:data:`STALL_S` (no batch), the watch asks the broker where each of its assigned partitions
ends. A partition that ends past the next offset the stage expects there (the sequencer's, or
the committed offset when it has read nothing of it yet), at two checks in a row with no
progress, and not only past offsets that hold no record (transaction markers:
:mod:`streams.runtime.gaps`), is sought back to that offset, with a warning and
``dom_stage_stalls_total``. The seek goes through the consumer's fetch loop once the flow is
active (:func:`~streams.runtime.faust_fixes.read_again`), and the records it brings are the
next ones the sequencer expects, so nothing is applied twice or skipped. A busy stage is never
judged: its records may be queued behind the batch it works on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from streams.runtime import gaps
from streams.runtime.faust_fixes import read_again, start_offset
from streams.runtime.sequencer import Sequencer

log = logging.getLogger(__name__)

STALL_S = 10.0
"""How long a stage must have had no batch before its partitions are judged."""
CHECK_S = 5.0
"""How often the watch looks."""
AGAIN_S = 60.0
"""A partition sought back that is still stalled at the same offset is sought again after this
(an upstream transaction still open ends past what a read-committed consumer may read)."""


@dataclass
class _Reading:
    sequencer: Sequencer
    topics: Collection[str]
    idle_since: float
    working: bool = False


@dataclass
class StallWatch:
    """What each stage reads and since when it has been idle; what looked stalled last time."""

    clock: Callable[[], float] = time.monotonic
    stages: dict[str, _Reading] = field(default_factory=dict)
    suspects: dict[tuple[str, int], int] = field(default_factory=dict)
    sought: dict[tuple[str, int], tuple[int, float]] = field(default_factory=dict)

    def reading(self, stage: str, sequencer: Sequencer, topics: Collection[str]) -> None:
        """``stage`` reads ``topics`` (real names) with ``sequencer`` from now on."""
        self.stages[stage] = _Reading(sequencer, frozenset(topics), self.clock())

    def working(self, stage: str, working: bool) -> None:
        """``stage`` began (True) or finished (False) a batch: idle from its end."""
        reading = self.stages.get(stage)
        if reading is not None:
            reading.working = working
            reading.idle_since = self.clock()

    def stopped(self, stage: str) -> None:
        self.stages.pop(stage, None)

    def expected(self, app: Any) -> dict[tuple[str, int], tuple[str, int]]:
        """(topic, partition) -> (stage, next offset it expects) for each assigned partition
        of a stage idle for :data:`STALL_S`."""
        consumer = app.consumer
        now = self.clock()
        generation = app.consumer_generation_id
        wanted: dict[tuple[str, int], tuple[str, int]] = {}
        for tp in consumer.assignment():
            for stage, reading in self.stages.items():
                idle = not reading.working and now - reading.idle_since >= STALL_S
                if tp.topic not in reading.topics or not idle:
                    continue
                next_ = reading.sequencer.next_offset(tp.topic, tp.partition, generation)
                if next_ is None:
                    next_ = start_offset(consumer, tp.topic, tp.partition)
                if next_ is not None:
                    wanted[(tp.topic, tp.partition)] = (stage, next_)
        return wanted

    def judge(
        self, wanted: dict[tuple[str, int], tuple[str, int]], ends: dict[tuple[str, int], int]
    ) -> list[tuple[str, str, int, int, int]]:
        """The partitions to seek back now: (stage, topic, partition, offset, end)."""
        stalled = {
            tp: (stage, next_)
            for tp, (stage, next_) in wanted.items()
            if ends.get(tp, 0) > next_ and not gaps.known(*tp, next_, ends[tp])
        }
        now = self.clock()
        seek = []
        for tp, (stage, next_) in stalled.items():
            if self.suspects.get(tp) != next_:
                continue  # first seen there: give the fetcher one more round
            last = self.sought.get(tp)
            if last is not None and last[0] == next_ and now - last[1] < AGAIN_S:
                continue
            self.sought[tp] = (next_, now)
            seek.append((stage, tp[0], tp[1], next_, ends[tp]))
        self.suspects = {tp: next_ for tp, (_stage, next_) in stalled.items()}
        return seek

    async def check(self, app: Any, count: Callable[[str], None]) -> None:
        """One look (skipped while partitions move or tables recover)."""
        if app.rebalancing or app.in_recovery or not app.flow_control.is_active():
            self.suspects.clear()
            return
        wanted = self.expected(app)
        if not wanted:
            self.suspects.clear()
            return
        highwaters = await app.consumer.highwaters(*(TP(t, p) for t, p in wanted))
        ends = {(tp.topic, tp.partition): int(end) for tp, end in highwaters.items()}
        for stage, topic, partition, offset, end in self.judge(wanted, ends):
            log.warning(
                "%s got no record of %s[%s] for %.0fs though it ends at %s: reading it again "
                "from %s",
                stage,
                topic,
                partition,
                STALL_S,
                end,
                offset,
            )
            count(stage)
            read_again({(topic, partition): offset})

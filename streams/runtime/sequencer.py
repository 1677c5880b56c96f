"""Every input in offset order, none skipped: the guard between Faust and the stages.

Faust (0.15.3) can hand a stream a partition's records with a hole in them around a
rebalance: records it fetched and then dropped while its read position moved past them
(seen as "reads sku-results[4] at 121 (after 101)"). Committing after such a hole loses the
records in it for good, and seeking Faust's consumer back races with its own fetcher. So
the sequencer watches each partition's offsets within one consumer generation: a record
that follows on, or repeats an earlier one (a harmless replay), is admitted; a record past
a hole is admitted only after the hole is filled, by reading the missing offsets straight
from the broker with a client of our own (:class:`HoleFiller`). A gap the fetcher passed over
itself (an upstream transaction's marker, an aborted transaction, compacted offsets:
:mod:`streams.runtime.gaps`) is no hole: the record after it is admitted at once. A new
generation (a rebalance) starts every partition afresh from wherever Faust's seek put it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import TopicPartition
from faust.events import Event
from faust.types import TP

from streams.runtime import gaps
from streams.runtime.side_consumer import SideConsumer

log = logging.getLogger(__name__)

ADMIT = -1
FILL_TIMEOUT = 30.0


class Sequencer:
    """Admits a partition's records in order; reports the start of a hole to fill first."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._expected: dict[tuple[str, int], tuple[int | None, int]] = {}

    def next_offset(self, topic: str, partition: int, generation: Any) -> int | None:
        """The offset of the partition's next record in ``generation`` (None: none read yet)."""
        known = self._expected.get((topic, partition))
        return known[1] if known is not None and known[0] == generation else None

    def admit(self, message: Any, start: int | None = None) -> int:
        """ADMIT to process ``message`` now; else the first offset of a hole in its partition:
        the records from there up to ``message.offset`` must be processed before it.

        ``start`` is where the partition's reading began in this generation (its committed
        offset, or the log start): the first record seen must be that one, or a hole opens.
        """
        tp = (message.topic, message.partition)
        generation = getattr(message, "generation_id", None)
        known = self._expected.get(tp)
        if known is None or known[0] != generation:
            log.info("%s reads %s[%s] from %s", self.stage, *tp, message.offset)
            known = (generation, message.offset if start is None else start)
        expected = known[1]
        if message.offset < expected:
            self._expected[tp] = known
            return ADMIT  # a replay of what was read: the stages answer it as before
        self._expected[tp] = (generation, message.offset + 1)
        if message.offset == expected or gaps.known(*tp, expected, message.offset):
            return ADMIT  # next, or after offsets that hold no record for us (markers...)
        log.warning(
            "%s found a hole in %s[%s]: %s..%s; reading it from the broker",
            self.stage,
            *tp,
            expected,
            message.offset - 1,
        )
        return expected


class HoleFiller:
    """Reads a range of a partition with its own consumer (no group), as Faust events."""

    def __init__(self, app: Any, consumer_conf: dict[str, Any]) -> None:
        self._app = app
        self._side = SideConsumer(consumer_conf)

    async def fill(self, topic: str, partition: int, start: int, end: int) -> list[Event]:
        """The records at offsets ``start`` to ``end - 1`` that exist (compaction may have
        removed some), in order."""
        consumer = await self._side.started()
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        records: list[Any] = []
        deadline = asyncio.get_running_loop().time() + FILL_TIMEOUT
        position = start
        while position < end and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=end - start)
            for record in batch.get(tp, []):
                if start <= record.offset < end:
                    records.append(record)
                position = max(position, record.offset + 1)
            position = max(position, await consumer.position(tp))
        if position < end:
            log.error("could not read %s[%s] %s..%s in time", topic, partition, start, end - 1)
        faust_tp = TP(topic, partition)
        to_message = self._app.consumer._to_message
        return [
            Event(self._app, r.key, r.value, r.headers, to_message(faust_tp, r)) for r in records
        ]

    async def close(self) -> None:
        await self._side.close()

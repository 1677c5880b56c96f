"""Offsets a partition has but no consumer is ever handed: known gaps, not holes to fill.

A partition's offsets are not all records a consumer sees. An upstream producer that uses
transactions leaves a commit (or abort) marker after each transaction, and with
``read_committed`` the records of an aborted one are skipped too; compaction removes records
and leaves their offsets empty. Each is a gap in the offsets a stage reads, and the sequencer
(:mod:`streams.runtime.sequencer`) takes a gap for records Faust dropped, to be read back from the
broker: one round trip per transaction, for nothing.

aiokafka's fetcher knows which offsets it passed over without handing a record on: the
markers, the aborted batches and the compacted offsets of every batch it unpacks. This module
wraps that unpacking and notes each such range per partition, before the record after it is
handed on; the sequencer admits a gap these ranges cover without reading it again. A record
Faust drops was handed on by the fetcher, so it is never in a noted range: such a hole is
still read back. The ranges kept per partition are bounded (:data:`KEEP`); a gap whose note
was pushed out is read back, which is slower, never wrong.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from aiokafka.consumer.fetcher import PartitionRecords

KEEP = 4096
"""Noted ranges kept per partition: a stage reads a gap within a batch or two of the fetch
that noted it, while a partition no stage reads (a table's changelog) is noted too."""

_noted: dict[tuple[str, int], deque[tuple[int, int]]] = {}


def note(topic: str, partition: int, start: int, end: int) -> None:
    """Offsets ``start`` to ``end - 1`` of the partition hold nothing a consumer is handed."""
    ranges = _noted.get((topic, partition))
    if ranges is None:
        ranges = _noted[(topic, partition)] = deque(maxlen=KEEP)
    if ranges and ranges[-1][1] == start:
        ranges[-1] = (ranges[-1][0], end)  # a run of markers or compacted offsets: one range
    else:
        ranges.append((start, end))


def known(topic: str, partition: int, start: int, end: int) -> bool:
    """Whether every offset from ``start`` to ``end - 1`` lies in noted ranges."""
    position = start
    for low, high in _noted.get((topic, partition), ()):
        if high <= position:
            continue
        if low > position:
            return False
        position = high
        if position >= end:
            return True
    return position >= end


def forget() -> None:
    """Drop every note (for tests)."""
    _noted.clear()


_original_unpack = PartitionRecords._unpack_records


def _unpack_records(self: Any) -> Iterator[Any]:
    tp = self._tp
    expected = self.next_fetch_offset
    for record in _original_unpack(self):
        if record.offset > expected:
            note(tp.topic, tp.partition, expected, record.offset)
        expected = record.offset + 1
        yield record
    if self.next_fetch_offset > expected:  # the fetch ended on a marker or compacted offsets
        note(tp.topic, tp.partition, expected, self.next_fetch_offset)


def apply() -> None:
    """Have aiokafka's fetcher note the gaps it passes over (idempotent)."""
    PartitionRecords._unpack_records = _unpack_records

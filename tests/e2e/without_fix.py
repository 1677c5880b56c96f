"""``python -m tests.e2e.without_fix FIX worker ...``: a ``dom worker`` with one of the runtime's
fixes (:mod:`streams.runtime.faust_fixes`) left out, so that a test can show the loss or the
harm that fix prevents. For tests only: nothing in the pipeline runs this. The minimal Faust
app of ``tests/integration/test_faust_fixes.py`` leaves fixes out through :data:`UNDO` too.

``slow-batches`` leaves no fix out: it keeps a backlog queued behind the stages. Each stage
batch holds at most :data:`SLOW_BATCH` inputs and waits :data:`PAUSE_S` before its work, as a
batch waits for a slow broker; what arrives meanwhile queues up in Faust's stream buffer."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from aiokafka.consumer.fetcher import PartitionRecords
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.producer import ProducerBuffer

from streams.runtime import faust_fixes, gaps, outbox
from streams.runtime.outbox import Outbox

_FAUST_FLUSH = ProducerBuffer.flush  # taken before the fixes replace it
PAUSE_S = 1.0
"""How long each stage batch waits before its work under ``slow-batches``."""
SLOW_BATCH = 20
"""The most inputs of a stage batch under ``slow-batches``."""


def _reads_uncommitted() -> None:
    def create(self: Any, transport: Any) -> Any:
        consumer = faust_fixes._create_worker_consumer(self, transport)
        consumer._isolation_level = "read_uncommitted"  # Faust's own choice without exactly-once
        return consumer

    AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]


def _slow_batches() -> None:
    work = Outbox._work

    async def slow(self: Outbox, *args: Any) -> None:
        await asyncio.sleep(PAUSE_S)
        await work(self, *args)

    Outbox._work = slow  # type: ignore[method-assign]
    outbox.BATCH_MAX = SLOW_BATCH


async def _hand_over_all(_consumer: Any, records: Any, _active: Any) -> Any:
    return records  # Faust's getmany then skips those of partitions that are not active


UNDO: dict[str, Callable[[], None]] = {
    # the worker reads what upstream transactions wrote and then aborted
    "read-committed": _reads_uncommitted,
    # the fetcher notes no gap, so markers and aborted records look like lost records
    "gaps": lambda: setattr(PartitionRecords, "_unpack_records", gaps._original_unpack),
    # a partition with no committed offset stays where a fetch dropped in a rebalance left it
    "seek": lambda: setattr(Consumer, "perform_seek", faust_fixes._original_perform_seek),
    # a stream acknowledges the records it skips while a rebalance is under way
    "ack": lambda: setattr(Consumer, "ack", faust_fixes._original_ack),
    # the records fetched for a partition paused before their hand-over are skipped
    "paused-fetch": lambda: setattr(faust_fixes, "_rewind_inactive", _hand_over_all),
    # the producer buffer gives up flushing table writes after 0.1 s without progress
    "drain": lambda: setattr(ProducerBuffer, "flush", _FAUST_FLUSH),
    # no fix left out: a backlog behind the stages
    "slow-batches": _slow_batches,
}


def main() -> None:
    fix = sys.argv.pop(1)
    undo = UNDO[fix]
    apply = faust_fixes.apply

    def apply_without(**kwargs: Any) -> None:
        apply(**kwargs)
        undo()

    faust_fixes.apply = apply_without  # type: ignore[assignment]
    from dom.cli import main as cli

    cli()


if __name__ == "__main__":
    main()

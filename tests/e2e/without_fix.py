"""``python -m tests.e2e.without_fix FIX worker ...``: a ``dom worker`` with one of the runtime's
fixes (:mod:`streams.runtime.faust_fixes`) left out, so that a test can show the loss or the
harm that fix prevents. For tests only: nothing in the pipeline runs this.

``slow-batches`` leaves no fix out: it keeps a backlog queued behind the stages. Each stage
batch holds at most :data:`SLOW_BATCH` inputs and waits :data:`PAUSE_S` before its work, as a
batch waits for a slow broker; what arrives meanwhile queues up in Faust's stream buffer."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from aiokafka.consumer.fetcher import PartitionRecords
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from streams.runtime import faust_fixes, gaps, outbox
from streams.runtime.outbox import Outbox

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


UNDO: dict[str, Callable[[], None]] = {
    # the worker reads what upstream transactions wrote and then aborted
    "read-committed": _reads_uncommitted,
    # the fetcher notes no gap, so markers and aborted records look like lost records
    "gaps": lambda: setattr(PartitionRecords, "_unpack_records", gaps._original_unpack),
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

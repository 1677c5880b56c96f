"""``python -m tests.e2e.without_fix FIX worker ...``: a ``dom worker`` with one of the runtime's
fixes (:mod:`streams.runtime.faust_fixes`) left out, so that a test can show the loss or the
harm that fix prevents. For tests only: nothing in the pipeline runs this."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from aiokafka.consumer.fetcher import PartitionRecords
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from streams.runtime import faust_fixes, gaps


def _reads_uncommitted() -> None:
    def create(self: Any, transport: Any) -> Any:
        consumer = faust_fixes._create_worker_consumer(self, transport)
        consumer._isolation_level = "read_uncommitted"  # Faust's own choice without exactly-once
        return consumer

    AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]


UNDO: dict[str, Callable[[], None]] = {
    # the worker reads what upstream transactions wrote and then aborted
    "read-committed": _reads_uncommitted,
    # the fetcher notes no gap, so markers and aborted records look like lost records
    "gaps": lambda: setattr(PartitionRecords, "_unpack_records", gaps._original_unpack),
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

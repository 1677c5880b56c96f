"""Repeated client errors in the log at a bounded rate.

While the broker is away, aiokafka's clients log the same error in a tight loop: a 2-minute
outage wrote 275,000 "Unable connect to node" lines, 51 MB, from one worker. A disk filled by a
log is an outage of its own, and the lines that matter drown. :class:`RepeatLimit` lets a line
through once per :data:`PERIOD` per logger and text, and says how many it held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

PERIOD = 10.0
CLIENT_LOGGERS = (
    "aiokafka",  # its client module logs under the package name
    "aiokafka.conn",
    "aiokafka.cluster",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.producer.sender",
)


class RepeatLimit(logging.Filter):
    """Passes a line at most once per ``period`` for the same logger and text."""

    def __init__(self, period: float = PERIOD, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.period = period
        self.clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # -> (passed at, held since)

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = (record.name, str(record.msg)), self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.period:
            self._seen[key] = (seen[0], seen[1] + 1)
            return False
        if seen is not None and seen[1]:
            record.msg = f"{record.msg} ({seen[1]} more like it in the last {now - seen[0]:.0f}s)"
        self._seen[key] = (now, 0)
        return True


def limit_client_logs(period: float = PERIOD) -> None:
    """Install one :class:`RepeatLimit` on each of aiokafka's chatty loggers (idempotent)."""
    for name in CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatLimit) for f in logger.filters):
            logger.addFilter(RepeatLimit(period))

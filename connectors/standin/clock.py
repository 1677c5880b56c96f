"""The stand-ins' two clocks, both injectable: ``now`` (monotonic seconds: rate limits, URL
expiry, feed delays) and ``wall`` (the timestamps the JSON shows). A test passes its own and
moves time without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)

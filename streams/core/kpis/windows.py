"""Tumbling report windows, by hour and by day, in the retailer's time zone (``DOM_TIMEZONE``).

A window is named by its local start, as an aware datetime with a *fixed* UTC offset
(``2024-10-27T02:00:00+02:00``): its ISO text is the window's key. A fixed offset and not the
zone itself, because on the night clocks go back the hour 02:00 happens twice, and two
datetimes with the same ``ZoneInfo`` compare equal on wall time alone (``fold`` is ignored),
so both hours would be one key. With the offset, they are ``02:00+02:00`` and ``02:00+01:00``.

A day runs from local midnight to the next (23 hours when clocks go forward, 25 when they go
back); an hour is 60 minutes of elapsed time from a local full hour. Where midnight does not
exist (a zone that springs forward at 00:00), the day starts at its first instant.

Retention (``DOM_REPORT_RETENTION_DAYS``): a window is expired once it ended more than the
retention before ``now``; :func:`retention_cutoff` gives the first window start kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta, timezone, tzinfo
from enum import StrEnum


class Grain(StrEnum):
    """How long a window lasts."""

    HOUR = "hour"
    DAY = "day"


GRAINS = (Grain.HOUR, Grain.DAY)
"""The grains the stage keeps tables of."""

_HOUR = timedelta(hours=1)


def window_start(at: datetime, grain: Grain, tz: tzinfo) -> datetime:
    """The start of the ``grain`` window holding the instant ``at`` (aware), local to ``tz``."""
    if at.tzinfo is None:
        raise ValueError("a window needs an aware datetime; naive times are ambiguous")
    local = at.astimezone(tz)
    if grain is Grain.HOUR:
        # astimezone sets fold on the repeated hour, so utcoffset() tells the two apart
        return _fixed(local.replace(minute=0, second=0, microsecond=0))
    return _day_start(local, tz)


def window_end(start: datetime, grain: Grain, tz: tzinfo) -> datetime:
    """The end (exclusive) of the window starting at ``start``: the next window's start."""
    if grain is Grain.HOUR:
        return _fixed((start + _HOUR).astimezone(tz))
    local = start.astimezone(tz)
    return _day_start(local.replace(hour=12) + timedelta(days=1), tz)


def windows(start: datetime, end: datetime, grain: Grain, tz: tzinfo) -> Iterator[datetime]:
    """The starts of the windows that begin in ``[start, end)``, in order."""
    at = window_start(start, grain, tz)
    if at < start:
        at = window_end(at, grain, tz)
    while at < end:
        yield at
        at = window_end(at, grain, tz)


def retention_cutoff(now: datetime, grain: Grain, tz: tzinfo, retention_days: float) -> datetime:
    """The first window start still kept: every window starting earlier ended at least
    ``retention_days`` before ``now`` and is expired."""
    return window_start(now - timedelta(days=retention_days), grain, tz)


def is_expired(
    start: datetime, grain: Grain, tz: tzinfo, now: datetime, retention_days: float
) -> bool:
    """Whether the window starting at ``start`` is past ``DOM_REPORT_RETENTION_DAYS``."""
    return start < retention_cutoff(now, grain, tz, retention_days)


def _day_start(local: datetime, tz: tzinfo) -> datetime:
    midnight = datetime.combine(local.date(), time(), tzinfo=tz)
    # Through UTC and back: a midnight that does not exist becomes the day's first instant.
    return _fixed(midnight.astimezone(UTC).astimezone(tz))


def _fixed(local: datetime) -> datetime:
    offset = local.utcoffset()
    assert offset is not None  # local is aware
    return local.replace(tzinfo=timezone(offset), fold=0)

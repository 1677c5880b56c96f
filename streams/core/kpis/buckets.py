"""Increments and the buckets they add into: the KPI stage's stored numbers.

An :class:`Increment` says what one event adds to one series: a count, a sum, a histogram
sample, or (the backlog gauge) a change of the orders waiting since a given time. It carries
its event's own time, so a late event lands in the window of when it happened.

A :class:`KpiBucket` holds the sums of one ``(series, grain, window start, dimension)``, the
:class:`BucketKey`. Buckets only ever add (:func:`merge`), so the order increments arrive in
changes nothing, and a redelivery is harmless only because :mod:`~.observe` never emits an
increment twice (its per-order facts remember what was counted). :func:`deltas` groups a batch
of increments into one bucket per key and grain; the stage merges each into its table.

:func:`retire` drops the windows past the retention. A gauge's windows cannot simply go: its
level is the sum of every change before a window, so they are folded into a *carried* bucket,
stored under the series' carried name with the first window start it does not cover. The report
reads the latest carried bucket and only the windows from its start on, so a retirement applied
halfway (writes first, then deletes) never counts a window twice.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from streams.core.kpis.catalogue import GAUGES, Series
from streams.core.kpis.histogram import add, bin_of
from streams.core.kpis.windows import GRAINS, Grain, retention_cutoff, window_start

CARRIED = ".carried"
"""Suffix of the series name a gauge's carried bucket is stored under."""


@dataclass(frozen=True)
class Increment:
    """What one event adds to one series.

    ``count`` and ``total`` add as they are (a ratio's denominator and numerator, a mean's
    count and sum); ``sample`` is one value for the percentiles; ``since`` (gauges only) is when
    the order ``count`` (+1 or -1) is about started waiting. ``source`` names the event (its id),
    for a consumer that must drop repeats after a re-keying hop.
    """

    series: Series
    at: datetime
    dimension: tuple[str, ...] = ()
    count: int = 0
    total: Decimal = Decimal(0)
    sample: float | None = None
    since: datetime | None = None
    source: str = ""


class BucketKey(NamedTuple):
    """Which bucket: a series (or a gauge's carried name), grain, window start, dimension."""

    series: str
    grain: Grain
    start: datetime
    dimension: tuple[str, ...] = ()

    def text(self) -> str:
        """The key as text, for a table or a compacted topic: a JSON array."""
        return json.dumps([self.series, self.grain.value, self.start.isoformat(), *self.dimension])

    @classmethod
    def parse(cls, text: str) -> BucketKey:
        series, grain, start, *dimension = json.loads(text)
        return cls(series, Grain(grain), datetime.fromisoformat(start), tuple(dimension))


class KpiBucket(BaseModel):
    """The sums of one bucket. ``waiting_since`` (gauges): orders per the epoch second they
    started waiting, +1 when one starts, -1 in the window it stops; summed over every window
    up to a time, the positive entries are the orders waiting then."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = 0
    total: Decimal = Decimal(0)
    histogram: dict[int, int] = Field(default_factory=dict)
    waiting_since: dict[int, int] = Field(default_factory=dict)


EMPTY = KpiBucket()


def merge(bucket: KpiBucket | None, other: KpiBucket) -> KpiBucket:
    """Both buckets as one: everything added."""
    if bucket is None:
        return other
    return KpiBucket(
        count=bucket.count + other.count,
        total=bucket.total + other.total,
        histogram=add(bucket.histogram, other.histogram),
        waiting_since={
            k: v for k, v in add(bucket.waiting_since, other.waiting_since).items() if v != 0
        },
    )


def bucket_of(increment: Increment) -> KpiBucket:
    """The bucket holding just ``increment``."""
    histogram = {} if increment.sample is None else {bin_of(increment.sample): 1}
    since = increment.since
    waiting = {} if since is None else {_epoch_second(since): increment.count}
    return KpiBucket(
        count=increment.count,
        total=increment.total,
        histogram=histogram,
        waiting_since={k: v for k, v in waiting.items() if v != 0},
    )


def deltas(
    increments: Iterable[Increment], tz: tzinfo, grains: Iterable[Grain] = GRAINS
) -> dict[BucketKey, KpiBucket]:
    """What ``increments`` add, one bucket per key, for each grain: the stage merges each into
    the bucket stored under its key."""
    out: dict[BucketKey, KpiBucket] = {}
    grains = tuple(grains)
    for increment in increments:
        piece = bucket_of(increment)
        for grain in grains:
            start = window_start(increment.at, grain, tz)
            key = BucketKey(increment.series.value, grain, start, increment.dimension)
            out[key] = merge(out.get(key), piece)
    return out


def carried_name(series: Series) -> str:
    """The series name a gauge's carried bucket is stored under."""
    return f"{series.value}{CARRIED}"


@dataclass(frozen=True)
class Retirement:
    """What :func:`retire` asks of the stage: store ``writes``, then delete ``deletes``."""

    writes: dict[BucketKey, KpiBucket] = field(default_factory=dict)
    deletes: list[BucketKey] = field(default_factory=list)


def retire(
    buckets: Mapping[BucketKey, KpiBucket], *, now: datetime, tz: tzinfo, retention_days: float
) -> Retirement:
    """The windows past ``DOM_REPORT_RETENTION_DAYS`` at ``now``: deleted, except that a
    gauge's are first folded into its carried bucket."""
    cutoffs = {grain: retention_cutoff(now, grain, tz, retention_days) for grain in GRAINS}
    gauge_names = {s.value for s in GAUGES} | {carried_name(s) for s in GAUGES}
    result = Retirement()
    for key in buckets:
        if key.series not in gauge_names and key.start < cutoffs[key.grain]:
            result.deletes.append(key)
    families: dict[tuple[Series, Grain, tuple[str, ...]], list[BucketKey]] = defaultdict(list)
    for key in buckets:
        series = _gauge_of(key.series)
        if series is not None:
            families[(series, key.grain, key.dimension)].append(key)
    for (series, grain, dimension), keys in families.items():
        target = BucketKey(carried_name(series), grain, cutoffs[grain], dimension)
        _fold(buckets, keys, target, result)
    return result


def _fold(
    buckets: Mapping[BucketKey, KpiBucket],
    keys: list[BucketKey],
    target: BucketKey,
    result: Retirement,
) -> None:
    """Fold one gauge family's expired windows into a carried bucket at ``target``."""
    carried = sorted((k for k in keys if k.series == target.series), key=lambda k: k.start)
    latest = carried[-1] if carried else None
    result.deletes.extend(carried[:-1])  # superseded by the latest
    expired = [k for k in keys if k.series != target.series and k.start < target.start]
    result.deletes.extend(expired)
    if latest is not None and latest.start >= target.start:
        return  # every expired window is in it already
    folded = buckets[latest] if latest is not None else EMPTY
    for key in expired:
        if latest is None or key.start >= latest.start:
            folded = merge(folded, buckets[key])
    if latest is None and not expired:
        return
    result.writes[target] = folded
    if latest is not None:
        result.deletes.append(latest)


def latest_carried(
    buckets: Mapping[BucketKey, KpiBucket], series: Series, grain: Grain
) -> dict[tuple[str, ...], tuple[datetime, KpiBucket]]:
    """Per dimension, the start and bucket of a gauge's latest carried bucket."""
    name = carried_name(series)
    found: dict[tuple[str, ...], tuple[datetime, KpiBucket]] = {}
    for key, bucket in buckets.items():
        if key.series == name and key.grain == grain:
            known = found.get(key.dimension)
            if known is None or key.start > known[0]:
                found[key.dimension] = (key.start, bucket)
    return found


def _gauge_of(name: str) -> Series | None:
    for series in GAUGES:
        if name in (series.value, carried_name(series)):
            return series
    return None


def _epoch_second(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() // 1)

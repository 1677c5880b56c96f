"""Report rows of one KPI from stored buckets, and the same rows as CSV.

:func:`build_report` reads the buckets of the KPI's series at one grain whose window starts in
``[start, end)``, sums them per window and per the asked breakdown (the dimension parts not
asked for are summed across, except the KPI's ``kept`` ones, such as the currency of money),
and turns each sum into a :class:`Row`:

- ``count`` / ``sum``: the summed count or total;
- ``ratio`` / ``mean``: summed total over summed count, never an average of windows' ratios;
  ``numerator`` and ``denominator`` are the sums; a window with nothing counted has no row;
- ``p50`` / ``p90``: from the summed histograms (within ``histogram.RELATIVE_ERROR``);
  ``denominator`` is the number of samples;
- gauges (``level``, ``oldest_age``, ``median_age``): at each window's end (or ``now``, if
  earlier), from the latest carried bucket plus every change before; every window of the
  period has a row, a window with no change too; ``denominator`` is the number waiting.

Other KPIs list only windows with data. Rows are ordered by window, then dimension.
:func:`render_csv` writes exactly the rows' values (``str`` of each Decimal), so a table and its
CSV show the same numbers.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal

from streams.core.kpis.buckets import EMPTY, BucketKey, KpiBucket, latest_carried, merge
from streams.core.kpis.catalogue import GAUGE_MEASURES, QUANTILES, Dimension, Kpi, Measure, kpi
from streams.core.kpis.histogram import quantile
from streams.core.kpis.windows import Grain, window_end, windows

Buckets = Mapping[BucketKey, KpiBucket]
Value = tuple[Decimal, Decimal | None, int | None]  # value, numerator, denominator


@dataclass(frozen=True)
class Row:
    """One window (and dimension) of a report."""

    window_start: datetime
    window_end: datetime
    dimension: tuple[str, ...]
    value: Decimal
    numerator: Decimal | None = None
    denominator: int | None = None


@dataclass(frozen=True)
class Report:
    """The rows of one KPI at one grain; ``breakdown`` names the parts of each row's
    dimension, in order."""

    kpi: Kpi
    grain: Grain
    breakdown: tuple[Dimension, ...]
    rows: tuple[Row, ...]


def build_report(
    buckets: Buckets,
    name: str,
    *,
    start: datetime,
    end: datetime,
    grain: Grain | str,
    tz: tzinfo,
    breakdown: Sequence[str] = (),
    now: datetime | None = None,
) -> Report:
    """The rows of KPI ``name`` over the windows starting in ``[start, end)``, broken down by
    the dimension parts ``breakdown`` (any of the KPI's ``breakdowns``). ValueError names what
    is not known or not allowed."""
    wanted, grain = kpi(name), Grain(grain)
    parts = _parts(wanted, breakdown)
    if wanted.measure in GAUGE_MEASURES:
        rows = _gauge_rows(buckets, wanted, start, end, grain, tz, now)
    else:
        rows = _rows(buckets, wanted, start, end, grain, tz, parts)
    return Report(wanted, grain, parts, tuple(rows))


def render_csv(report: Report) -> str:
    """The report as CSV: a header, then one line per row with exactly its values."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["kpi", "unit", "grain", "window_start", "window_end"]
        + [part.value for part in report.breakdown]
        + ["value", "numerator", "denominator"]
    )
    for row in report.rows:
        writer.writerow(
            [
                report.kpi.name,
                report.kpi.unit.value,
                report.grain.value,
                row.window_start.isoformat(),
                row.window_end.isoformat(),
                *row.dimension,
                str(row.value),
                _blank(row.numerator),
                _blank(row.denominator),
            ]
        )
    return out.getvalue()


def _blank(value: object | None) -> str:
    return "" if value is None else str(value)


def _parts(wanted: Kpi, breakdown: Sequence[str]) -> tuple[Dimension, ...]:
    asked = set()
    for part in breakdown:
        if part not in wanted.breakdowns:
            allowed = ", ".join(d.value for d in wanted.breakdowns) or "nothing"
            raise ValueError(f"{wanted.name} breaks down by {allowed}, not {part!r}")
        asked.add(part)
    return tuple(d for d in wanted.breakdowns if d in asked or d in wanted.kept)


def _rows(
    buckets: Buckets,
    wanted: Kpi,
    start: datetime,
    end: datetime,
    grain: Grain,
    tz: tzinfo,
    parts: tuple[Dimension, ...],
) -> list[Row]:
    at = [wanted.breakdowns.index(part) for part in parts]
    sums: dict[tuple[datetime, tuple[str, ...]], KpiBucket] = {}
    for key, bucket in buckets.items():
        if key.series != wanted.series.value or key.grain != grain:
            continue
        if not start <= key.start < end or len(key.dimension) != len(wanted.breakdowns):
            continue
        group = (key.start, tuple(key.dimension[i] for i in at))
        sums[group] = merge(sums.get(group), bucket)
    rows = []
    for (window, dimension), bucket in sorted(sums.items(), key=lambda item: item[0]):
        value = _value(wanted, bucket)
        if value is not None:
            rows.append(Row(window, window_end(window, grain, tz), dimension, *value))
    return rows


def _value(wanted: Kpi, bucket: KpiBucket) -> Value | None:
    measure = wanted.measure
    if measure is Measure.COUNT:
        return Decimal(bucket.count), None, None
    if measure is Measure.SUM:
        return _round(bucket.total, wanted), None, None
    if measure in (Measure.RATIO, Measure.MEAN):
        if bucket.count == 0:
            return None
        return _round(bucket.total / bucket.count, wanted), _tidy(bucket.total), bucket.count
    found = quantile(bucket.histogram, QUANTILES[measure])
    if found is None:
        return None
    return _round(Decimal(found), wanted), None, sum(bucket.histogram.values())


def _gauge_rows(
    buckets: Buckets,
    wanted: Kpi,
    start: datetime,
    end: datetime,
    grain: Grain,
    tz: tzinfo,
    now: datetime | None,
) -> list[Row]:
    since, level = latest_carried(buckets, wanted.series, grain).get((), (None, EMPTY))
    changes = sorted(
        (
            (key.start, bucket)
            for key, bucket in buckets.items()
            if key.series == wanted.series.value
            and key.grain == grain
            and (since is None or key.start >= since)  # earlier ones are in the carried one
        ),
        key=lambda change: change[0],
    )
    rows, done = [], 0
    for window in windows(start, end, grain, tz):
        closes = window_end(window, grain, tz)
        if since is not None and closes <= since:
            continue  # folded away: the level then is not known any more
        while done < len(changes) and changes[done][0] < closes:
            level = merge(level, changes[done][1])
            done += 1
        as_of = closes if now is None else min(closes, now)
        rows.append(Row(window, closes, (), *_gauge_value(wanted, level, as_of)))
    return rows


def _gauge_value(wanted: Kpi, level: KpiBucket, as_of: datetime) -> Value:
    waiting = sorted(s for s, n in level.waiting_since.items() for _ in range(max(n, 0)))
    if wanted.measure is Measure.LEVEL or not waiting:
        value = Decimal(level.count) if wanted.measure is Measure.LEVEL else Decimal(0)
        return value, None, len(waiting)
    pick = 0 if wanted.measure is Measure.OLDEST_AGE else math.ceil(len(waiting) / 2) - 1
    age = max(0.0, as_of.timestamp() - waiting[pick])
    return _round(Decimal(age), wanted), None, len(waiting)


def _round(value: Decimal, wanted: Kpi) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-wanted.decimals), rounding=ROUND_HALF_EVEN)


def _tidy(value: Decimal) -> Decimal:
    """A sum without trailing zeros: 3 rather than 3.000."""
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()

"""``dom report``: a KPI over a period, from ``dom.kpis.v1``, as a table or as CSV.

It reads the compacted topic to its end (:mod:`dom.topic_reader`), keeps the latest value per
key (a tombstone: an expired window), and hands the buckets to the core's
:func:`~streams.core.kpis.build_report`; the CSV is :func:`~streams.core.kpis.render_csv` of the
same rows, so the table and the CSV show the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo

import click

from config.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.kpis import KpiValue
from streams.core.kpis import CATALOGUE, BucketKey, KpiBucket, Report, build_report, render_csv
from streams.core.kpis import GRAINS as KEPT_GRAINS
from streams.kpi_records import bucket_of

PERIODS = ("today", "7d", "30d")
GRAINS = tuple(grain.value for grain in KEPT_GRAINS)
MAX_WINDOWS = 10_000
"""The most windows one report may span (a year by hour is 8,760)."""


def parse_period(text: str, now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """``[start, end)`` of ``today``, ``7d``, ``30d`` (whole local days up to now) or
    ``FROM..TO`` (dates, both days included, or ISO times in ``tz`` unless they say)."""
    local = now.astimezone(tz)
    days = {"today": 1, "7d": 7, "30d": 30}.get(text)
    if days is not None:
        return _midnight(local.date() - timedelta(days=days - 1), tz), now
    start_text, sep, end_text = text.partition("..")
    if not sep or not start_text or not end_text:
        raise ValueError(f"a period is today, 7d, 30d or FROM..TO, not {text!r}")
    start = _moment(start_text, tz, end=False)
    end = _moment(end_text, tz, end=True)
    if end <= start:
        raise ValueError(f"the period {text!r} ends before it starts")
    return start, end


def _moment(text: str, tz: tzinfo, *, end: bool) -> datetime:
    if text == "today":
        text = datetime.now(tz).date().isoformat()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return _midnight(day + timedelta(days=1) if end else day, tz)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a date (YYYY-MM-DD) nor an ISO time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz)


def read_buckets(settings: Settings, timeout: float) -> dict[BucketKey, KpiBucket]:
    """Every bucket ``dom.kpis.v1`` holds now (the topic read to its end)."""
    from dom.topic_reader import latest_by_key, read_to_end

    latest = latest_by_key(read_to_end(settings, registry.KPIS.name, timeout))
    registry_config = settings.schema_registry_config() or {}
    return buckets_of(latest, Codec.from_url(settings.schema_registry_url, **registry_config))


def report_problems(
    kpi: str, period: str, grain: str, by: Sequence[str], *, tz: tzinfo, now: datetime
) -> list[tuple[str, str]]:
    """What is wrong with asking for this report, as ``(field, message)``; nothing when it can
    be built. ``dom report`` and the console's Reports view ask it before reading the topic."""
    if kpi not in CATALOGUE:
        return [("kpi", f"no KPI {kpi!r}; the catalogue lists them")]
    if grain not in GRAINS:
        return [("grain", f"a grain is {' or '.join(GRAINS)}, not {grain!r}")]
    try:
        start, end = parse_period(period, now, tz)
    except ValueError as error:
        return [("period", str(error))]
    step = 3600 if grain == "hour" else 86400
    if (end - start).total_seconds() / step > MAX_WINDOWS:
        return [("period", f"the period spans more than {MAX_WINDOWS} windows")]
    try:  # the breakdown, as the core checks it: on no data, nothing to read
        build_report({}, kpi, start=start, end=end, grain=grain, tz=tz, breakdown=by, now=now)
    except ValueError as error:
        return [("by", str(error))]
    return []


def run_report(
    buckets: Mapping[BucketKey, KpiBucket],
    kpi: str,
    *,
    period: str,
    grain: str,
    by: Sequence[str],
    tz: tzinfo,
    now: datetime,
) -> Report:
    """The report as asked by name, once :func:`report_problems` found nothing wrong."""
    start, end = parse_period(period, now, tz)
    return build_report(
        buckets, kpi, start=start, end=end, grain=grain, tz=tz, breakdown=by, now=now
    )


def buckets_of(latest: Mapping[bytes, bytes | None], codec: Codec) -> dict[BucketKey, KpiBucket]:
    """The buckets of ``dom.kpis.v1``'s latest values (tombstones and what cannot be read
    skipped)."""
    out: dict[BucketKey, KpiBucket] = {}
    for value in latest.values():
        if value is None:
            continue
        try:
            record = codec.decode_as(value, KpiValue)
        except DecodeError:
            continue
        key, bucket = bucket_of(record)
        out[key] = bucket
    return out


def render_table(report: Report) -> str:
    """The report as aligned columns, with its title."""
    header = ["window_start", "window_end", *(p.value for p in report.breakdown)]
    header += ["value", "numerator", "denominator"]
    rows = [
        [
            row.window_start.isoformat(),
            row.window_end.isoformat(),
            *row.dimension,
            str(row.value),
            "" if row.numerator is None else str(row.numerator),
            "" if row.denominator is None else str(row.denominator),
        ]
        for row in report.rows
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"{report.kpi.title} ({report.kpi.unit.value}, by {report.grain.value})"]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    if not rows:
        lines.append("(no data in this period)")
    return "\n".join(lines) + "\n"


def render_list() -> str:
    lines = []
    for item in CATALOGUE.values():
        by = ", ".join(d.value for d in item.breakdowns) or "-"
        lines.append(f"{item.name:28} {item.unit.value:8} by: {by:22} {item.title}")
    return "\n".join(lines) + "\n"


@click.command("report")
@click.argument("kpi", required=False)
@click.option("--period", default="today", show_default=True, help="today, 7d, 30d or FROM..TO")
@click.option("--grain", type=click.Choice(GRAINS), default="day", show_default=True)
@click.option("--by", "by", multiple=True, help="A dimension to break down by (repeatable).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of a table.")
@click.option("--list", "listing", is_flag=True, help="List the KPIs and their dimensions.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to reach the broker.")
@click.pass_obj
def report(
    settings: Settings,
    kpi: str | None,
    period: str,
    grain: str,
    by: tuple[str, ...],
    as_csv: bool,
    listing: bool,
    timeout: float,
) -> None:
    """A KPI over a period, from dom.kpis.v1 (windows in DOM_TIMEZONE)."""
    if listing:
        click.echo(render_list(), nl=False)
        return
    if kpi is None:
        raise click.UsageError("name a KPI (dom report --list shows them)")
    tz, now = settings.tz, datetime.now(settings.tz)
    problems = report_problems(kpi, period, grain, by, tz=tz, now=now)  # before the broker
    if problems:
        field, message = problems[0]
        hint = " (dom report --list)" if field == "kpi" else ""
        raise click.BadParameter(message + hint)
    buckets = read_buckets(settings, timeout)
    built = run_report(buckets, kpi, period=period, grain=grain, by=by, tz=tz, now=now)
    click.echo(render_csv(built) if as_csv else render_table(built), nl=False)

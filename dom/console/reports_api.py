"""The console's Reports view: fulfilment KPIs over a period, as ``dom report`` shows them,
and the saved reports that make an operator's dashboard.

- ``GET /api/reports/catalogue``: the KPIs (title, unit, what each breaks down by), periods,
  grains, the time zone, and whether the chart library is there.
- ``GET /api/reports/run?kpi=&period=&grain=&by=``: one report's rows. Values are strings,
  exactly as the CSV writes them; the chart draws the same strings as numbers.
- ``GET /api/reports/csv?...``: the same report as the CSV ``dom report --csv`` prints, as a
  download.
- ``GET /api/reports/saved``; ``PUT|DELETE /api/reports/saved/{name}`` (operators and above):
  the saved reports (:mod:`dom.console.reports_store`), saved by the signed-in user.

The rows come from ``dom.kpis.v1`` read to its end (``dom report``'s own :func:`read_buckets`
and :func:`run_report`), at most every :data:`FRESH_S` seconds whoever asks: a dashboard of
several reports, refreshed by several people, reads the topic once. A question that cannot be
answered is a 400 naming its field (a saved report's body: 422); a broker that does not answer
is a 503.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from aiohttp import web

from config.settings import Settings
from dom.console.assets import fetched
from dom.console.login_api import current_user
from dom.console.reports_store import MAX_NAME, ReportStore, SavedReport
from dom.console.state import json_body, json_error
from dom.report_cli import (
    GRAINS,
    PERIODS,
    parse_period,
    read_buckets,
    report_problems,
    run_report,
)
from streams.core.kpis import CATALOGUE, BucketKey, KpiBucket, Report, Row, render_csv
from streams.core.kpis.catalogue import GAUGE_MEASURES

log = logging.getLogger(__name__)

Buckets = Mapping[BucketKey, KpiBucket]
BucketReader = Callable[[], Buckets]
"""Every bucket of ``dom.kpis.v1`` now (a blocking call)."""

FRESH_S = 3.0
"""How old the buckets a report is built from may be."""
MAX_TEXT = 64
NAME = re.compile(rf"[^\x00-\x1f\x7f]{{1,{MAX_NAME}}}")
READ_TIMEOUT_S = 10.0


class Reports:
    """What the handlers share: the settings (time zone, cache), the buckets (read at most
    every FRESH_S seconds) and the saved reports."""

    def __init__(self, settings: Settings, read: BucketReader, store: ReportStore | None) -> None:
        self.settings = settings
        self.read = read
        self._store = store
        self._buckets: Buckets = {}
        self._read_at = -FRESH_S
        self._lock = asyncio.Lock()

    @property
    def store(self) -> ReportStore:
        """The saved reports' file, opened when first used (a console nobody asks for reports
        creates no file)."""
        if self._store is None:
            self._store = ReportStore(self.settings.console_reports_path)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    async def buckets(self) -> Buckets:
        async with self._lock:  # one read for everyone waiting
            if time.monotonic() - self._read_at >= FRESH_S:
                self._buckets = await asyncio.to_thread(self.read)
                self._read_at = time.monotonic()
            return self._buckets


REPORTS: web.AppKey[Reports] = web.AppKey("reports", Reports)


def install(
    app: web.Application,
    settings: Settings,
    *,
    store: ReportStore | None = None,
    read: BucketReader | None = None,
) -> None:
    """The saved reports' file and ``dom.kpis.v1`` behind the API (tests may give either)."""
    reports = Reports(settings, read or (lambda: read_buckets(settings, READ_TIMEOUT_S)), store)
    app[REPORTS] = reports
    if store is None:  # the console's own file: closed with it

        async def close_store(app: web.Application) -> None:
            reports.close()

        app.on_cleanup.append(close_store)


# ---- handlers ------------------------------------------------------------------------------


async def catalogue(request: web.Request) -> web.Response:
    """What a report can ask for."""
    settings = request.app[REPORTS].settings
    kpis = [
        {
            "name": k.name,
            "title": k.title,
            "unit": k.unit.value,
            "by": [d.value for d in k.breakdowns if d not in k.kept],
            "kept": [d.value for d in k.kept],
            "gauge": k.measure in GAUGE_MEASURES,
        }
        for k in CATALOGUE.values()
    ]
    return web.json_response(
        {
            "kpis": kpis,
            "periods": list(PERIODS),
            "grains": list(GRAINS),
            "timezone": str(settings.timezone),
            "chart": fetched(settings) is not None,
        }
    )


async def run(request: web.Request) -> web.Response:
    """One report's rows, as the table and the chart show them."""
    answered = await _answered(request)
    if isinstance(answered, web.Response):
        return answered
    asked, built = answered
    start, end = parse_period(asked.period, datetime.now(_tz(request)), _tz(request))
    return web.json_response(
        {
            **asked.shown(),
            "title": built.kpi.title,
            "unit": built.kpi.unit.value,
            "decimals": built.kpi.decimals,
            "breakdown": [part.value for part in built.breakdown],
            "start": start.isoformat(),
            "end": end.isoformat(),
            "timezone": str(request.app[REPORTS].settings.timezone),
            "rows": [_row(row) for row in built.rows],
        }
    )


async def csv(request: web.Request) -> web.StreamResponse:
    """The report as the CSV ``dom report --csv`` prints, as a download."""
    answered = await _answered(request)
    if isinstance(answered, web.Response):
        return answered
    asked, built = answered
    return web.Response(
        text=render_csv(built),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{asked.file_name()}"'},
    )


async def list_saved(request: web.Request) -> web.Response:
    store = request.app[REPORTS].store
    saved = await asyncio.to_thread(store.reports)
    return web.json_response({"reports": [report.shown() for report in saved]})


async def save(request: web.Request) -> web.Response:
    """Save the body's report under the path's name, as the signed-in user."""
    name = request.match_info["name"].strip()
    body = await json_body(request)
    user = current_user(request).name
    errors = []
    if not NAME.fullmatch(name):
        errors.append(_problem("name", f"a report's name is 1 to {MAX_NAME} printable characters"))
    by = body.get("by", [])
    if isinstance(by, str):
        by = [by] if by else []
    fields = {key: body.get(key) for key in ("kpi", "period", "grain")}
    for key, value in fields.items():
        if not isinstance(value, str) or not value:
            errors.append(_problem(key, f"{key} is missing: a string, as in the report's form"))
    if not isinstance(by, list) or not all(isinstance(x, str) for x in by):
        errors.append(_problem("by", "by is a list of dimension names"))
    if not errors:
        asked = Asked(str(fields["kpi"]), str(fields["period"]), str(fields["grain"]), tuple(by))
        errors = asked.problems(_tz(request))
    if errors:
        return json_error(422, errors[0]["message"], errors)
    report = SavedReport(name, asked.kpi, asked.period, asked.grain, asked.by)
    saved = await asyncio.to_thread(request.app[REPORTS].store.save, report, user)
    log.info("console: %s saved report %r (%s)", user, name, asked.kpi)
    return web.json_response(
        {"ok": True, "report": saved.shown(), "message": f"saved {name!r} for everyone"}
    )


async def delete(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    user = current_user(request).name
    if not await asyncio.to_thread(request.app[REPORTS].store.delete, name):
        return json_error(404, f"there is no saved report {name!r}")
    log.info("console: %s deleted report %r", user, name)
    return web.json_response({"ok": True, "message": f"deleted {name!r}"})


# ---- asking ----------------------------------------------------------------------------------


class Asked:
    """A report as asked: KPI, period, grain, breakdown."""

    def __init__(self, kpi: str, period: str, grain: str, by: Sequence[str]) -> None:
        self.kpi, self.period, self.grain, self.by = kpi, period, grain, tuple(by)

    def shown(self) -> dict[str, Any]:
        return {"kpi": self.kpi, "period": self.period, "grain": self.grain, "by": list(self.by)}

    def file_name(self) -> str:
        parts = [self.kpi, self.period, self.grain, *self.by]
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts)) + ".csv"

    def problems(self, tz: tzinfo) -> list[dict[str, str]]:
        """What is wrong with the asking, by field (nothing: it can be answered)."""
        for field, text in (("kpi", self.kpi), ("period", self.period), ("grain", self.grain)):
            if len(text) > MAX_TEXT:
                return [_problem(field, f"{field} is longer than {MAX_TEXT} characters")]
        found = report_problems(
            self.kpi, self.period, self.grain, self.by, tz=tz, now=datetime.now(tz)
        )
        return [_problem(field, message) for field, message in found]


async def _answered(request: web.Request) -> tuple[Asked, Report] | web.Response:
    """The report the query asks for, or the answer that refuses it (400: the asking; 503:
    the topic could not be read)."""
    query = request.query
    by = [part for value in query.getall("by", []) for part in value.split(",") if part]
    asked = Asked(query.get("kpi", ""), query.get("period", "today"), query.get("grain", "day"), by)
    tz = _tz(request)
    errors = asked.problems(tz)
    if errors:
        return json_error(400, errors[0]["message"], errors)
    try:
        buckets = await request.app[REPORTS].buckets()
    except Exception as error:  # the broker or the topic, not the request: say so, not 500
        log.warning("console: reading dom.kpis.v1 failed: %s", error)
        return json_error(503, f"the KPIs could not be read: {error}")
    now = datetime.now(tz)
    built = run_report(
        buckets, asked.kpi, period=asked.period, grain=asked.grain, by=asked.by, tz=tz, now=now
    )
    return asked, built


def _tz(request: web.Request) -> tzinfo:
    return request.app[REPORTS].settings.tz


def _row(row: Row) -> dict[str, Any]:
    return {
        "window_start": row.window_start.isoformat(),
        "window_end": row.window_end.isoformat(),
        "dimension": list(row.dimension),
        "value": str(row.value),
        "numerator": None if row.numerator is None else str(row.numerator),
        "denominator": row.denominator,
    }


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}

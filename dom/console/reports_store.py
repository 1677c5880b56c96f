"""The console's saved reports: the operators' dashboard, a small SQLite file.

A saved report is a name and what ``dom report`` would be asked: a KPI, a period (``today``,
``7d``, ``30d`` or ``FROM..TO``), a grain and a breakdown. Saved reports are shared: everyone
signed in sees them; operators and above save and delete them (:mod:`dom.console.auth`). Each
records who saved it last, and when.

The file (``DOM_CONSOLE_REPORTS_FILE``, default ``DATA_DIR/console/reports.sqlite``) starts
with :data:`DEFAULTS`, once: a default that was deleted stays deleted. Names are unique
regardless of case; saving under a name that exists replaces that report.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MAX_NAME = 80

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS reports (
        name TEXT PRIMARY KEY COLLATE NOCASE,
        kpi TEXT NOT NULL,
        period TEXT NOT NULL,
        grain TEXT NOT NULL,
        breakdown TEXT NOT NULL,
        saved_by TEXT NOT NULL,
        saved_at REAL NOT NULL
    )
    """,
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_COLUMNS = "name, kpi, period, grain, breakdown, saved_by, saved_at"


@dataclass(frozen=True, slots=True)
class SavedReport:
    name: str
    kpi: str
    period: str
    grain: str
    breakdown: tuple[str, ...] = ()
    saved_by: str = "dom"
    saved_at: float = 0.0

    def shown(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kpi": self.kpi,
            "period": self.period,
            "grain": self.grain,
            "by": list(self.breakdown),
            "saved_by": self.saved_by,
            "saved_at": self.saved_at,
        }


DEFAULTS = (
    SavedReport("Orders by channel today", "orders_placed", "today", "hour", ("channel",)),
    SavedReport("Fill rate, last 7 days", "fill_rate", "7d", "day"),
    SavedReport("Split rate by channel, last 7 days", "split_rate", "7d", "day", ("channel",)),
    SavedReport("Ship-from-store share today", "ship_from_store_share", "today", "hour"),
    SavedReport("Units shipped by location kind today", "units_shipped", "today", "hour",
                ("location_kind",)),
    SavedReport("Backorder backlog today", "backorder_backlog", "today", "hour"),
    SavedReport("Placed to allocated, median, today", "placed_to_allocated_p50", "today", "hour"),
)  # fmt: skip
"""What a new file starts with: the questions merchants ask first."""


class ReportStore:
    """The saved reports file (one connection, one lock: safe from the event loop)."""

    def __init__(self, path: Path, defaults: tuple[SavedReport, ...] = DEFAULTS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._seed(defaults)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection, alone and inside one transaction (another console or process
        sharing the file waits for it)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _seed(self, defaults: tuple[SavedReport, ...]) -> None:
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM meta WHERE key = 'seeded'").fetchone() is not None:
                return
            now = time.time()
            for report in defaults:
                db.execute(
                    f"INSERT OR IGNORE INTO reports ({_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
                    _row(report, report.saved_by, now),
                )
            db.execute("INSERT INTO meta (key, value) VALUES ('seeded', '1')")

    def reports(self) -> list[SavedReport]:
        """Every saved report, by name."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM reports ORDER BY name COLLATE NOCASE"
            ).fetchall()
        return [_report(row) for row in rows]

    def get(self, name: str) -> SavedReport | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM reports WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else _report(row)

    def save(self, report: SavedReport, saved_by: str) -> SavedReport:
        """Save ``report`` under its name (replacing one of that name, whatever its case)."""
        with self._transaction() as db:
            db.execute("DELETE FROM reports WHERE name = ?", (report.name,))
            db.execute(
                f"INSERT INTO reports ({_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
                _row(report, saved_by, time.time()),
            )
        saved = self.get(report.name)
        assert saved is not None
        return saved

    def delete(self, name: str) -> bool:
        """Delete the report called ``name``; False when there is none."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM reports WHERE name = ?", (name,))
        return cursor.rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _row(report: SavedReport, saved_by: str, at: float) -> tuple[object, ...]:
    by = ",".join(report.breakdown)
    return (report.name, report.kpi, report.period, report.grain, by, saved_by, at)


def _report(row: tuple[object, ...]) -> SavedReport:
    name, kpi, period, grain, breakdown, saved_by, saved_at = row
    by = tuple(part for part in str(breakdown).split(",") if part)
    return SavedReport(
        str(name), str(kpi), str(period), str(grain), by, str(saved_by), float(str(saved_at))
    )

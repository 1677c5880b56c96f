"""What a connector remembers across restarts: the webhook deliveries it already turned into
records (`SeenIds`), and per order what it told the pipeline (`OrderNotes`).

A web store re-sends a webhook when it saw no 2xx in time, with the same webhook id. The ids
of deliveries the broker confirmed live in a small SQLite file, so a repeat is answered as a
duplicate even after the connector restarted. The file is bounded: past ``max_entries`` the
oldest ids are forgotten (a store stops retrying after a couple of days; the deterministic
``event_id`` of every event covers anything older).

Beside them, in the same file, one small JSON document per order (`connectors.order_memory`'s
``OrderMemory``: units asked to cancel, the address on record), bounded likewise: past
``max_orders`` the orders least recently touched are forgotten. One connector process owns the
file.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_MAX_ORDERS = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    note TEXT NOT NULL DEFAULT '',
    seen_at REAL NOT NULL
)
"""


_NOTES_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS order_notes (
        order_id TEXT PRIMARY KEY,
        note TEXT NOT NULL,
        touched_at REAL NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS order_notes_touched ON order_notes (touched_at)",
)


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Only the event loop's thread touches it; check_same_thread off so tests and shutdown hooks
    # may close it from elsewhere. Autocommit: every write is its own transaction.
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class SeenIds:
    """A bounded, persistent set of delivery ids (``source:id``), oldest forgotten first."""

    def __init__(self, path: Path, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.path = path
        self.max_entries = max_entries
        self._db = _connect(path)
        self._db.execute(_SCHEMA)
        self._count = int(self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])

    def __contains__(self, key: object) -> bool:
        row = self._db.execute("SELECT 1 FROM seen WHERE key = ?", (str(key),)).fetchone()
        return row is not None

    def __len__(self) -> int:
        return self._count

    def note(self, key: str) -> str | None:
        """What was remembered with ``key`` (an order id, say), or None if it is unknown."""
        row = self._db.execute("SELECT note FROM seen WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def remember(self, key: str, note: str = "") -> None:
        """Record ``key`` as done; forget the oldest keys beyond the bound."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO seen (key, note, seen_at) VALUES (?, ?, ?)",
            (key, note, time.time()),
        )
        self._count += cursor.rowcount
        if self._count > self.max_entries:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        # Trim to 90% of the bound, so a full store does not delete on every insert.
        keep = max(1, self.max_entries * 9 // 10)
        self._db.execute(
            "DELETE FROM seen WHERE seq NOT IN (SELECT seq FROM seen ORDER BY seq DESC LIMIT ?)",
            (keep,),
        )
        self._count = int(self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SeenIds:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OrderNotes:
    """A bounded, persistent map of order id to a note (a JSON document), least recently
    touched forgotten first."""

    def __init__(self, path: Path, max_orders: int = DEFAULT_MAX_ORDERS) -> None:
        if max_orders < 1:
            raise ValueError("max_orders must be at least 1")
        self.path = path
        self.max_orders = max_orders
        self._db = _connect(path)
        for statement in _NOTES_SCHEMA:
            self._db.execute(statement)
        self._count = int(self._db.execute("SELECT COUNT(*) FROM order_notes").fetchone()[0])

    def __len__(self) -> int:
        return self._count

    def get(self, order_id: str) -> str | None:
        row = self._db.execute(
            "SELECT note FROM order_notes WHERE order_id = ?", (order_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def put(self, order_id: str, note: str) -> None:
        """Keep ``note`` for ``order_id`` (replacing what was kept); forget beyond the bound."""
        known = self.get(order_id) is not None
        self._db.execute(
            "INSERT OR REPLACE INTO order_notes (order_id, note, touched_at) VALUES (?, ?, ?)",
            (order_id, note, time.time()),
        )
        self._count += 0 if known else 1
        if self._count > self.max_orders:
            keep = max(1, self.max_orders * 9 // 10)
            self._db.execute(
                "DELETE FROM order_notes WHERE order_id NOT IN "
                "(SELECT order_id FROM order_notes ORDER BY touched_at DESC LIMIT ?)",
                (keep,),
            )
            self._count = int(self._db.execute("SELECT COUNT(*) FROM order_notes").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> OrderNotes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

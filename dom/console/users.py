"""Who may sign in to the console, and as what: a small SQLite file managed with ``dom users``.

The file (``DOM_CONSOLE_USERS_FILE``, default ``DATA_DIR/console/users.sqlite``, created
readable by its owner only) holds each user's name, role, whether they are disabled, and an
Argon2id hash of their password (argon2-cffi: salted, slow and memory-hard on purpose), never
the password. A user's ``generation`` goes up when their password changes or they are
disabled, which ends the sessions they opened before. The console and ``dom users`` share the
file; SQLite keeps their writes apart.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dom.console.auth import NAME, Role, valid_name

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
"""Longer passwords are refused before hashing: each costs the server memory and time."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
)
"""
_COLUMNS = "name, role, disabled, generation, created_at, updated_at"


class UserError(ValueError):
    """A request about users that cannot be done (the message says why)."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    disabled: bool
    generation: int
    created_at: float
    updated_at: float


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"a password may have at most {MAX_PASSWORD} characters")


class UserStore:
    """The users file. Safe to share between the event loop and the thread that checks a
    password (one connection, one lock)."""

    def __init__(self, path: Path, hasher: PasswordHasher | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))  # never readable by others
        self.path = path
        self.hasher = hasher or PasswordHasher()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._dummy_hash: str | None = None

    # ---- reads ---------------------------------------------------------------------------

    def get(self, name: str) -> User | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else _user(row)

    def users(self) -> list[User]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name").fetchall()
        return [_user(row) for row in rows]

    def check_password(self, name: str, password: str) -> User | None:
        """The user, if ``password`` is theirs and they are enabled; slow on purpose."""
        with self._lock:
            row = self._db.execute(
                "SELECT password_hash FROM users WHERE name = ?", (name,)
            ).fetchone()
        stored = row[0] if row else self._dummy()
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        user = self.get(name) if row else None
        if user is None or user.disabled:
            return None
        if self.hasher.check_needs_rehash(stored):  # the library's parameters grew
            self._update(user.name, "password_hash = ?", self.hasher.hash(password), bump=False)
        return user

    # ---- writes (``dom users``, the admin API) ----------------------------------------------

    def add(self, name: str, role: Role, password: str) -> User:
        if not valid_name(name):
            raise UserError(
                f"{name!r} is not a user name: 1 to 64 letters, digits, '.', '_', '@' or '-'"
                f" (pattern {NAME.pattern})"
            )
        check_password_rules(password)
        hashed = self.hasher.hash(password)
        now = time.time()
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO users (name, role, password_hash, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (name, Role(role).value, hashed, now, now),
                )
        except sqlite3.IntegrityError:
            raise UserError(f"a user {name!r} exists already") from None
        return self._must(name)

    def set_password(self, name: str, password: str) -> User:
        """A new password; the user's sessions end."""
        check_password_rules(password)
        self._update(name, "password_hash = ?", self.hasher.hash(password))
        return self._must(name)

    def set_role(self, name: str, role: Role) -> User:
        self._update(name, "role = ?", Role(role).value, bump=False)
        return self._must(name)

    def set_disabled(self, name: str, disabled: bool) -> User:
        """Disable (their sessions end, they cannot sign in) or enable again."""
        self._update(name, "disabled = ?", int(disabled), bump=disabled)
        return self._must(name)

    def _dummy(self) -> str:
        """A hash checked for unknown names, so a wrong name takes as long as a wrong
        password."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash("not the password of anyone")
        return self._dummy_hash

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _update(self, name: str, assignment: str, value: object, bump: bool = True) -> None:
        generation = ", generation = generation + 1" if bump else ""
        with self._lock:
            cursor = self._db.execute(
                f"UPDATE users SET {assignment}, updated_at = ?{generation} WHERE name = ?",
                (value, time.time(), name),
            )
        if cursor.rowcount == 0:
            raise UserError(f"there is no user {name!r}")

    def _must(self, name: str) -> User:
        user = self.get(name)
        if user is None:
            raise UserError(f"there is no user {name!r}")
        return user


def _user(row: tuple[object, ...]) -> User:
    name, role, disabled, generation, created, updated = row
    return User(
        str(name),
        Role(str(role)),
        bool(disabled),
        int(str(generation)),
        float(str(created)),
        float(str(updated)),
    )

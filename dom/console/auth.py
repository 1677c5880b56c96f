"""Who may do what in the console, and the checks around signing in, without any HTTP.

Roles are cumulative: a viewer sees everything; an operator may also act on orders and save or
delete the shared reports (the Reports view's dashboard); a rule editor may also publish,
disable and roll back rules and change channel policies; an admin may also manage users.

Sessions live in the console's memory (a restart signs everyone out) and expire a fixed time
after sign-in. The cookie carries a random token; the session also holds a CSRF token the page
sends back in a header on every write. Failed sign-ins are limited per user name and per client
address in a sliding window. The host allow-list refuses a request whose ``Host`` is not the
console's own, which defeats DNS rebinding. A trusted reverse-proxy header (single sign-on) is
honoured only when it is configured. The clock is injected, so tests move time themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from config.settings import Settings

Clock = Callable[[], float]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
"""A user name: also what a rule's ``updated_by`` records."""
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
MAX_TRACKED = 10_000
"""Names and addresses the login limiter keeps at most (beyond it, the stalest go first)."""


class Permission(StrEnum):
    VIEW = "view"
    ACT_ON_ORDERS = "act_on_orders"
    SAVE_REPORTS = "save_reports"
    EDIT_RULES = "edit_rules"
    MANAGE_USERS = "manage_users"


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    RULE_EDITOR = "rule-editor"
    ADMIN = "admin"


_ADDED = {
    Role.VIEWER: {Permission.VIEW},
    Role.OPERATOR: {Permission.ACT_ON_ORDERS, Permission.SAVE_REPORTS},
    Role.RULE_EDITOR: {Permission.EDIT_RULES},
    Role.ADMIN: {Permission.MANAGE_USERS},
}


def _cumulative() -> dict[Role, frozenset[Permission]]:
    grants: dict[Role, frozenset[Permission]] = {}
    held: set[Permission] = set()
    for role in Role:  # declared from least to most
        held |= _ADDED[role]
        grants[role] = frozenset(held)
    return grants


GRANTS = _cumulative()
WHAT = {
    Permission.VIEW: "see the console",
    Permission.ACT_ON_ORDERS: "act on orders",
    Permission.SAVE_REPORTS: "save or delete the shared reports",
    Permission.EDIT_RULES: "publish, disable or roll back rules or change channel policies",
    Permission.MANAGE_USERS: "manage users",
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]


def valid_name(name: object) -> bool:
    return isinstance(name, str) and NAME.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class Identity:
    """Who sends a request, as what role, and the CSRF token their writes must carry."""

    name: str
    role: Role
    csrf: str
    via: str = "session"
    expires_at: float | None = None

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)

    def describe(self) -> dict[str, object]:
        """What the page is told about its user."""
        return {
            "user": self.name,
            "role": self.role.value,
            "permissions": sorted(p.value for p in GRANTS[self.role]),
            "csrf_token": self.csrf,
            "via": self.via,
            "expires_at": self.expires_at,
        }


# ---- sessions ------------------------------------------------------------------------------


@dataclass(slots=True)
class Session:
    user: str
    generation: int
    """The user's generation at sign-in: a new password or a disable ends older sessions."""
    csrf: str
    expires_at: float


class Sessions:
    """Signed-in browsers, by a hash of their cookie's token (the token itself is not kept)."""

    def __init__(self, ttl: float, clock: Clock = time.time) -> None:
        self.ttl = ttl
        self.clock = clock
        self._by_hash: dict[str, Session] = {}

    def open(self, user: str, generation: int) -> tuple[str, Session]:
        """A new session and the token for its cookie."""
        self._forget_expired()
        token = secrets.token_urlsafe(32)
        session = Session(user, generation, secrets.token_urlsafe(32), self.clock() + self.ttl)
        self._by_hash[_digest(token)] = session
        return token, session

    def find(self, token: str | None) -> Session | None:
        """The live session of ``token``; an expired one is forgotten."""
        if not token:
            return None
        key = _digest(token)
        session = self._by_hash.get(key)
        if session is not None and session.expires_at <= self.clock():
            del self._by_hash[key]
            return None
        return session

    def close(self, token: str | None) -> None:
        if token:
            self._by_hash.pop(_digest(token), None)

    def __len__(self) -> int:
        return len(self._by_hash)

    def _forget_expired(self) -> None:
        now = self.clock()
        for key in [k for k, s in self._by_hash.items() if s.expires_at <= now]:
            del self._by_hash[key]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_ok(expected: str, given: str | None) -> bool:
    """Whether a write carries its session's CSRF token (compared in constant time)."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


# ---- login rate limit ----------------------------------------------------------------------


@dataclass(slots=True)
class _Failures:
    limit: int
    window: float
    by_key: dict[str, deque[float]] = field(default_factory=dict)

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        times = self.by_key.get(key)
        if times is None:
            return 0.0
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) < self.limit:
            return 0.0
        return times[0] + self.window - now

    def add(self, key: str, now: float) -> None:
        times = self.by_key.setdefault(key, deque(maxlen=self.limit))
        times.append(now)
        if len(self.by_key) > MAX_TRACKED:
            self._trim(now)

    def _trim(self, now: float) -> None:
        stale = [k for k, t in self.by_key.items() if not t or t[-1] <= now - self.window]
        for key in stale:
            del self.by_key[key]
        by_age = sorted(self.by_key, key=lambda k: self.by_key[k][-1])
        for key in by_age[: max(0, len(self.by_key) - MAX_TRACKED)]:
            del self.by_key[key]


class LoginLimiter:
    """At most ``per_user`` failed sign-ins per user name and ``per_address`` per client
    address within ``window`` seconds; past either, the answer is "wait this long"."""

    def __init__(
        self, per_user: int, per_address: int, window: float, clock: Clock = time.monotonic
    ) -> None:
        self.clock = clock
        self._users = _Failures(per_user, window)
        self._addresses = _Failures(per_address, window)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = time.monotonic) -> LoginLimiter:
        return cls(
            settings.console_login_failures_per_user,
            settings.console_login_failures_per_address,
            settings.console_login_window_s,
            clock,
        )

    def retry_after(self, user: str, address: str) -> int:
        """Whole seconds to wait before trying (0: go ahead)."""
        now = self.clock()
        wait = max(self._users.wait(user.lower(), now), self._addresses.wait(address, now))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, user: str, address: str) -> None:
        now = self.clock()
        self._users.add(user.lower(), now)
        self._addresses.add(address, now)

    def succeeded(self, user: str) -> None:
        """The user's own count restarts (an address's does not: one good password must not
        buy an address more guesses at other names)."""
        self._users.by_key.pop(user.lower(), None)


# ---- the Host header ------------------------------------------------------------------------


def allowed_hosts(configured: str | None, local_address: str | None, port: int | None) -> set[str]:
    """The ``Host`` values the console answers to, lower-cased.

    Configured (``DOM_CONSOLE_ALLOWED_HOSTS``): exactly those (``name`` matches any port,
    ``name:port`` that port). Otherwise the loopback names and the address the request came
    in on, each with the port it came in on.
    """
    if configured:
        return {h.strip().lower() for h in configured.split(",") if h.strip()}
    names = set(LOOPBACK_NAMES)
    if local_address:
        names.add(_bracketed(local_address))
    if port is None:
        return names
    with_port = {f"{name}:{port}" for name in names}
    return with_port | names if port in (80, 443) else with_port  # a browser omits those


def host_allowed(host: str | None, allowed: Collection[str]) -> bool:
    if not host:
        return False
    host = host.strip().lower()
    if host in allowed:
        return True
    name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    return bool(port.isdigit() and name in allowed)


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def is_loopback_host(host: str | None) -> bool:
    """``localhost``, ``*.localhost`` or a loopback address: where browsers keep Secure cookies
    without https."""
    if not host:
        return False
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")]
    elif name.count(":") == 1:
        name = name.split(":")[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# ---- single sign-on through a reverse proxy --------------------------------------------------


class ProxyRefused(Exception):
    """The proxy named a user the console cannot accept (a bad name, or no role)."""


@dataclass(frozen=True, slots=True)
class TrustedProxy:
    """Headers a trusted reverse proxy sets after it authenticated the user."""

    user_header: str
    role_header: str | None
    default_role: Role | None
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> TrustedProxy | None:
        """None unless ``DOM_CONSOLE_TRUSTED_USER_HEADER`` is set: off by default."""
        if not settings.console_trusted_user_header:
            return None
        default = settings.console_trusted_default_role
        return cls(
            settings.console_trusted_user_header,
            settings.console_trusted_role_header,
            Role(default) if default else None,
        )

    def identify(self, headers: Mapping[str, str]) -> Identity | None:
        """The user the proxy vouches for; None when its header is absent."""
        name = headers.get(self.user_header)
        if name is None:
            return None
        name = name.strip()
        if not valid_name(name):
            raise ProxyRefused(f"the proxy's {self.user_header} header is not a valid user name")
        raw_role = headers.get(self.role_header, "").strip() if self.role_header else ""
        if raw_role:
            try:
                role = Role(raw_role.lower())
            except ValueError:
                raise ProxyRefused(f"the proxy named an unknown role {raw_role!r}") from None
        elif self.default_role is not None:
            role = self.default_role
        else:
            raise ProxyRefused(f"the proxy gave {name} no role and no default role is set")
        # No session to keep a token in: derive one only this process can make.
        csrf = hmac.new(self.secret, f"csrf:{name}".encode(), "sha256").hexdigest()
        return Identity(name, role, csrf, via="proxy")

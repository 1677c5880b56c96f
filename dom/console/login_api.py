"""Signing in to the console over HTTP: the host check, who sends each request, the CSRF check
on writes, the role check of each route, and the sign-in, sign-out and "who am I" handlers.

Every request first passes :func:`check_host` (a foreign ``Host`` is 421, before anything else
looks at it), then :func:`authenticate`: the user comes from a trusted proxy header when one
is configured, else from the session cookie. Under ``/api/`` only ``/api/login`` and
``/api/session`` answer without a user (401 otherwise), and every write must carry the
session's CSRF token in ``X-CSRF-Token`` (403 otherwise). Each API route is registered with
the permission it needs (:func:`guard`), so a route without one cannot exist.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import hdrs, web

from config.settings import Settings
from dom.console.auth import (
    WHAT,
    Identity,
    LoginLimiter,
    Permission,
    ProxyRefused,
    Sessions,
    TrustedProxy,
    allowed_hosts,
    csrf_ok,
    host_allowed,
    is_loopback_host,
)
from dom.console.state import json_body, json_error
from dom.console.users import MAX_PASSWORD, UserStore

log = logging.getLogger(__name__)

COOKIE = "dom_session"
CSRF_HEADER = "X-CSRF-Token"
PUBLIC = frozenset({"/api/login", "/api/session"})
"""API paths that answer without a signed-in user."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CONCURRENT_CHECKS = 2
"""Password checks at once: each takes ~0.1 s of CPU and 64 MiB (Argon2id)."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Auth:
    """Everything sign-in needs, built once per app."""

    users: UserStore
    sessions: Sessions
    limiter: LoginLimiter
    proxy: TrustedProxy | None = None
    hosts: str | None = None
    cookie_secure: bool | None = None
    checking: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(CONCURRENT_CHECKS)
    )

    @classmethod
    def from_settings(cls, settings: Settings, users: UserStore) -> Auth:
        return cls(
            users=users,
            sessions=Sessions(settings.console_session_ttl_s),
            limiter=LoginLimiter.from_settings(settings),
            proxy=TrustedProxy.from_settings(settings),
            hosts=settings.console_allowed_hosts,
            cookie_secure=settings.console_cookie_secure,
        )

    def identify(self, request: web.Request) -> Identity | None:
        """Who sends ``request``: the proxy's user, else the session's; None if nobody."""
        if self.proxy is not None:
            identity = self.proxy.identify(request.headers)
            if identity is not None:
                return identity
        token = request.cookies.get(COOKIE)
        session = self.sessions.find(token)
        if session is None:
            return None
        user = self.users.get(session.user)
        if user is None or user.disabled or user.generation != session.generation:
            self.sessions.close(token)  # disabled, or a new password since: signed out
            return None
        return Identity(user.name, user.role, session.csrf, expires_at=session.expires_at)


AUTH = web.AppKey("auth", Auth)
IDENTITY = web.RequestKey("identity", Identity)


def current_user(request: web.Request) -> Identity:
    """The signed-in user of a guarded handler (the guard made sure there is one)."""
    identity: Identity | None = request.get(IDENTITY)
    if identity is None:
        raise web.HTTPUnauthorized(reason="sign in first")
    return identity


def guard(permission: Permission, handler: Handler) -> Handler:
    """``handler``, answered only for a user whose role has ``permission``."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        identity: Identity | None = request.get(IDENTITY)
        if identity is None:
            return json_error(401, "sign in first")
        if not identity.can(permission):
            return json_error(
                403, f"{identity.name} is a {identity.role.value} and may not {WHAT[permission]}"
            )
        return await handler(request)

    guarded.__name__ = getattr(handler, "__name__", "guarded")
    return guarded


# ---- middlewares ---------------------------------------------------------------------------


@web.middleware
async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer only to the console's own names (a DNS-rebinding page sends a foreign one)."""
    local, port = _local_address(request)
    allowed = allowed_hosts(request.app[AUTH].hosts, local, port)
    if not host_allowed(request.headers.get(hdrs.HOST), allowed):
        message = "this console does not answer to that host name (DOM_CONSOLE_ALLOWED_HOSTS)"
        if request.path.startswith("/api/"):
            return json_error(421, message)
        return web.Response(status=421, text=message)
    return await handler(request)


def _local_address(request: web.Request) -> tuple[str | None, int | None]:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return str(sockname[0]), int(sockname[1])
    return None, None


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Find the user; refuse the API without one, and a write without its CSRF token."""
    auth = request.app[AUTH]
    try:
        identity = auth.identify(request)
    except ProxyRefused as error:
        log.warning("console: %s", error)
        return json_error(403, str(error))
    if identity is not None:
        request[IDENTITY] = identity
    if not request.path.startswith("/api/") or request.path in PUBLIC:
        return await handler(request)
    if identity is None:
        return json_error(401, "sign in first")
    if request.method not in SAFE_METHODS and not csrf_ok(
        identity.csrf, request.headers.get(CSRF_HEADER)
    ):
        return json_error(403, f"the request lacks this session's {CSRF_HEADER}; reload the page")
    return await handler(request)


# ---- handlers ------------------------------------------------------------------------------


async def session_info(request: web.Request) -> web.Response:
    """Who the page's user is, their permissions and CSRF token; 401 when nobody."""
    identity: Identity | None = request.get(IDENTITY)
    if identity is None:
        return json_error(401, "sign in first")
    return web.json_response({"ok": True, **identity.describe()})


async def login(request: web.Request) -> web.Response:
    """Check a name and password; open a session in an HttpOnly, SameSite=Strict cookie."""
    auth = request.app[AUTH]
    body = await json_body(request)
    name, password = body.get("user"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        return json_error(400, "send your user name and password")
    if len(name) > 64 or len(password) > MAX_PASSWORD:
        return json_error(401, "wrong user name or password")
    address = request.remote or "unknown"
    wait = auth.limiter.retry_after(name, address)
    if wait:
        refused = json_error(429, f"too many failed sign-ins; try again in {wait} s")
        refused.headers[hdrs.RETRY_AFTER] = str(wait)
        return refused
    async with auth.checking:
        user = await asyncio.to_thread(auth.users.check_password, name, password)
    if user is None:
        auth.limiter.failed(name, address)
        log.warning("console: failed sign-in for %r from %s", name[:64], address)
        return json_error(401, "wrong user name or password")
    auth.limiter.succeeded(name)
    token, session = auth.sessions.open(user.name, user.generation)
    identity = Identity(user.name, user.role, session.csrf, expires_at=session.expires_at)
    log.info("console: %s signed in (%s) from %s", user.name, user.role.value, address)
    response = web.json_response({"ok": True, **identity.describe()})
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(auth.sessions.ttl),
        path="/",
        secure=_secure(request, auth),
        httponly=True,
        samesite="Strict",
    )
    return response


async def logout(request: web.Request) -> web.Response:
    auth = request.app[AUTH]
    auth.sessions.close(request.cookies.get(COOKIE))
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/", secure=_secure(request, auth), httponly=True,
                        samesite="Strict")  # fmt: skip
    return response


def _secure(request: web.Request, auth: Auth) -> bool:
    """Secure on https and on loopback names (browsers keep such a cookie over plain http
    there); elsewhere over plain http a Secure cookie would be dropped and nobody could sign
    in, so it is left off unless DOM_CONSOLE_COOKIE_SECURE says otherwise."""
    if auth.cookie_secure is not None:
        return auth.cookie_secure
    return request.secure or is_loopback_host(request.headers.get(hdrs.HOST))

"""The console's composition root: ``create_app(settings, workers)`` builds the aiohttp app
(static page, JSON API, the feed of topics, the rule store); nothing connects until it runs.

What the page can do is fixed here: GETs that read, and POSTs under ``/api/rules`` that
validate, dry-run or publish a rule, for operators ``/api/orders/{id}/actions`` (an order
action, :mod:`dom.console.actions_api`), for rule editors PUT and DELETE
``/api/channels/{channel}`` (a channel's policy, :mod:`dom.console.channels_api`), for
operators PUT and DELETE ``/api/reports/saved/{name}`` (the shared saved reports,
:mod:`dom.console.reports_api`), and for admins ``/api/users``: each route with the
permission it needs (see :mod:`dom.console.auth` for the roles). A request must name the
console's own host; the API answers only a signed-in user (:mod:`dom.console.login_api`). A
write (POST, PUT, DELETE) must be JSON from the console's own origin (a page elsewhere cannot
post a form to it) and carry the session's CSRF token, bodies are small, and every answer
carries a content security policy that only runs the console's own script (and the charting
library it serves, :mod:`dom.console.assets`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from config.settings import Settings
from dom.console import (
    actions_api,
    api,
    channels_api,
    login_api,
    reports_api,
    rules_api,
    users_api,
    validate,
)
from dom.console.assets import fetched
from dom.console.auth import Permission
from dom.console.feed import Feed, FeedState
from dom.console.login_api import AUTH, Auth, guard
from dom.console.reports_store import ReportStore
from dom.console.rule_store import RuleStore
from dom.console.rules_api import KafkaRuleStore
from dom.console.state import CONSOLE, MAX_BODY, Console, json_error
from dom.console.users import UserStore
from dom.console.workers import WorkerClient

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
RULE_FIELDS = frozenset(
    {"rule_id", "stage", "priority", "condition", "actions", "description", "enabled",
     "stop_processing", "updated_by", "version", "last"}
)  # fmt: skip
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    settings: Settings,
    workers: list[str],
    *,
    grafana_url: str | None = None,
    store: RuleStore | None = None,
    feed: FeedState | None = None,
    follow_topics: bool = True,
    lookback: float = 3600.0,
    users: UserStore | None = None,
    reports: ReportStore | None = None,
) -> web.Application:
    """The console over ``workers`` (base URLs) and the cluster of ``settings``.

    Tests pass their own ``store``, ``feed``, ``users`` and ``reports`` and
    ``follow_topics=False`` to run without Kafka. Without ``users`` the console opens
    ``settings.console_users_path``, without ``reports`` ``settings.console_reports_path``.
    """
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[
            _headers,
            login_api.check_host,  # before anything else reads the request
            _errors,
            _same_origin,
            login_api.authenticate,
        ],
        # aiohttp's parser answers a longer request line in plain text before any handler
        # runs; 16 KiB lets an absurd id (10 KB, say) reach the check that refuses it in JSON.
        handler_args={"max_line_size": 16 * 1024},
    )
    console = Console(
        client=WorkerClient(workers),
        feed=feed or FeedState(),
        store=store or KafkaRuleStore(settings),
        grafana_url=grafana_url,
        topic_prefix=settings.topic_prefix,
    )
    app[CONSOLE] = console
    app[AUTH] = Auth.from_settings(settings, users or UserStore(settings.console_users_path))
    app[actions_api.SENDER] = actions_api.KafkaActions(settings)  # tests may put a fake
    channels_api.install(app, settings)  # tests may put a fake reader and writer
    reports_api.install(app, settings, store=reports)  # tests may put a fake bucket reader
    app.cleanup_ctx.append(_users_file(close=users is None))
    app.cleanup_ctx.append(_workers_client)
    if follow_topics:
        app.cleanup_ctx.append(_following(settings, lookback))
    _routes(app, vendor=fetched(settings))
    return app


def _routes(app: web.Application, vendor: Path | None) -> None:
    r = app.router
    r.add_get("/", _index)
    r.add_get("/static/{name}", _static_file(STATIC))
    if vendor is not None:  # the chart library (dom.console.assets); without it, tables only
        r.add_get("/static/vendor/{name}", _static_file(vendor))
    r.add_get("/api/session", login_api.session_info)
    r.add_post("/api/login", login_api.login)
    r.add_post("/api/logout", login_api.logout)
    view, edit, admin = Permission.VIEW, Permission.EDIT_RULES, Permission.MANAGE_USERS
    act = Permission.ACT_ON_ORDERS
    for method, path, handler, permission in (
        ("GET", "/api/config", api.config, view),
        ("GET", "/api/inventory/{sku}", api.inventory, view),
        ("GET", "/api/low-stock", api.low_stock, view),
        ("GET", "/api/skus", api.skus, view),
        ("GET", "/api/orders/{order_id}", api.order, view),
        ("GET", "/api/queues", api.queues, view),
        ("POST", "/api/orders/{order_id}/actions", actions_api.act, act),
        ("GET", "/api/outcomes", api.outcomes, view),
        ("GET", "/api/health", api.health, view),
        ("GET", "/api/rules", rules_api.list_rules, view),
        ("GET", "/api/rules/{rule_id}/history", rules_api.history, view),
        ("POST", "/api/rules/validate", rules_api.validate_rule, view),  # changes nothing
        ("POST", "/api/rules/dry-run", rules_api.dry_run, view),  # emits nothing
        ("POST", "/api/rules/publish", rules_api.publish, edit),
        ("POST", "/api/rules/{rule_id}/rollback", rules_api.rollback, edit),
        ("GET", "/api/channels", channels_api.list_channels, view),
        ("PUT", "/api/channels/{channel}", channels_api.set_channel, edit),
        ("DELETE", "/api/channels/{channel}", channels_api.reset_channel, edit),
        ("GET", "/api/reports/catalogue", reports_api.catalogue, view),
        ("GET", "/api/reports/run", reports_api.run, view),
        ("GET", "/api/reports/csv", reports_api.csv, view),
        ("GET", "/api/reports/saved", reports_api.list_saved, view),
        ("PUT", "/api/reports/saved/{name}", reports_api.save, Permission.SAVE_REPORTS),
        ("DELETE", "/api/reports/saved/{name}", reports_api.delete, Permission.SAVE_REPORTS),
        ("GET", "/api/users", users_api.list_users, admin),
        ("POST", "/api/users", users_api.add_user, admin),
        ("POST", "/api/users/{name}", users_api.change_user, admin),
    ):
        if method == "GET":
            r.add_get(path, guard(permission, handler))  # a GET answers HEAD too
        else:
            r.add_route(method, path, guard(permission, handler))


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


def _static_file(directory: Path) -> Handler:
    """The page's own files, found by name in a fixed list: what a request names is never
    resolved on disk (aiohttp's static route answered a 500 to a name over the system's
    limit, its lookup raising "File name too long")."""
    files = {path.name: path for path in directory.iterdir() if path.is_file()}

    async def static_file(request: web.Request) -> web.StreamResponse:
        path = files.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    return static_file


def _users_file(close: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    async def users_file(app: web.Application) -> AsyncIterator[None]:
        auth = app[AUTH]
        if auth.proxy is None and not auth.users.users():
            log.warning(
                "console: nobody can sign in: add a user with `dom users add NAME --role admin`"
                " (users file %s)",
                auth.users.path,
            )
        yield
        if close:
            auth.users.close()

    return users_file


async def _workers_client(app: web.Application) -> AsyncIterator[None]:
    client = app[CONSOLE].client
    await client.start()
    yield
    await client.close()


def _following(
    settings: Settings, lookback: float
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def follow(app: web.Application) -> AsyncIterator[None]:
        feed = Feed(settings, app[CONSOLE].feed, lookback=lookback).start()
        yield
        feed.stop()

    return follow


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as error:
        error.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    return response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refused input as 400 (how it was asked) or 422 (what a rule says), never a traceback."""
    try:
        return await handler(request)
    except validate.InputError as error:
        status = 422 if any(e["field"] in RULE_FIELDS for e in error.errors) else 400
        return json_error(status, error.errors[0]["message"], error.errors)
    except web.HTTPRequestEntityTooLarge:
        return json_error(413, f"the request is larger than {MAX_BODY // 1024} KiB")
    except web.HTTPException as error:
        if not request.path.startswith("/api/") or error.status < 400:
            raise
        return json_error(error.status, error.reason)
    except Exception:
        log.exception("console: %s %s failed", request.method, request.path)
        return json_error(500, "the console failed to answer; see its log")


@web.middleware
async def _same_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Writes only as JSON and only from the console's own pages."""
    if request.method not in ("GET", "HEAD"):
        if request.content_type != "application/json":
            return json_error(415, "send the request as application/json")
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return json_error(403, "requests from other sites are refused")
    return await handler(request)

"""The operator console's API under fuzz: whatever a page (or anyone) sends to ``/api/``, the
answer is a 2xx, or a 4xx that is JSON and says why; never a 5xx. Every route the app has is
fuzzed, found from its router, so an endpoint added later is covered without a new test.
Requests go as a signed-in admin (session cookie and CSRF token), so the fuzz reaches the
handlers rather than stopping at the 401.

The rule store encodes every rule it is asked to publish with the contract's codec, as the
Kafka store does, and so does the channel policies' writer: a rule or a policy the console
accepts but no topic could carry fails here too. The last tests are the regressions the fuzz
found, one example each.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import currently_in_test_context, event, given
from hypothesis import strategies as st

from config.settings import Settings
from dom.console import channels_api
from dom.console.app import create_app
from dom.console.auth import Role
from dom.console.feed import FeedState
from dom.console.users import UserStore
from schemas.codec import Codec
from schemas.enums import Channel
from schemas.models import Rule
from schemas.sellable import ChannelPolicy
from tests.conftest import free_port
from tests.unit.http_fuzz import (
    CONTENT_TYPES,
    FUZZ,
    METHODS,
    LoopbackApp,
    Reply,
    assert_answered,
    encodings,
    fill_path,
    json_values,
    mutations_of,
    odd_values,
    path_segments,
    query_strings,
    texts,
    to_body,
)
from tests.unit.test_console_api import GOOD, FakeStore, fake_worker

JSON = {"Content-Type": "application/json"}
USER, PASSWORD = "fuzzer", "correct horse battery staple"
# Every field any rules or channels endpoint reads, so that mutations reach each check.
FORM = {
    **GOOD, "updated_by": "anna", "version": 1, "last": 20, "enabled": True,
    "location_ids": ["DC-EAST", "ST-1"], "location_kinds": ["DC"], "buffer_units": 2,
    "buffer_pct": 10, "low_stock_threshold": 1,
}  # fmt: skip
WRITES = ("POST", "PUT", "DELETE")


class EncodingStore(FakeStore):
    """The rules and channel policies topics in memory; a rule or a policy goes in only if the
    contract's codec encodes it."""

    def __init__(self) -> None:
        super().__init__()
        self.codec = Codec()
        self.policies: dict[str, ChannelPolicy] = {}

    def publish(self, rule: Rule) -> None:
        self.codec.encode(rule)
        super().publish(rule)

    def read_policies(self) -> dict[str, ChannelPolicy]:
        return dict(self.policies)

    def write_policy(self, channel: Channel, policy: ChannelPolicy | None) -> None:
        if policy is None:
            self.policies.pop(channel.value, None)
            return
        self.codec.encode(policy)
        self.policies[channel.value] = policy


class Console:
    """The console on loopback, the routes it has and the store behind it; requests go as
    a signed-in admin (session cookie and CSRF token) unless they say otherwise."""

    def __init__(self, app: LoopbackApp, store: EncodingStore, routes: list[tuple[str, str]]):
        self.app = app
        self.store = store
        self.routes = routes
        self.session: dict[str, str] = {}

    def sign_in(self) -> None:
        body = to_body({"user": USER, "password": PASSWORD})
        reply = self.app.request("POST", "/api/login", body=body, headers=JSON)
        assert reply.status == 200, reply.body
        self.session = {
            "Cookie": reply.cookies,
            "X-CSRF-Token": reply.json()["csrf_token"],
        }

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str) -> Reply:
        """The answer, checked: under ``/api/`` never a 5xx and every 4xx JSON with a reason;
        elsewhere (the page, its static files) never a 5xx."""
        # Signing out would end the session every other example runs in: not with this one.
        session = {} if path.startswith("/api/logout") else self.session
        reply = self.app.request(method, path, body=body, headers={**session, **headers})
        if currently_in_test_context():  # shown by pytest --hypothesis-show-statistics
            event(f"HTTP {reply.status}")
        if path.startswith("/api/"):
            assert_answered(reply, path[:200])
        else:
            assert reply.status < 500, (reply.status, path[:200], reply.body[:300])
        return reply


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    store = EncodingStore()
    routes: list[tuple[str, str]] = []
    data_dir = tmp_path_factory.mktemp("console")
    users = UserStore(data_dir / "users.sqlite")
    users.add(USER, Role.ADMIN, PASSWORD)

    async def build(stack: contextlib.AsyncExitStack) -> web.Application:
        worker = TestServer(fake_worker())
        await worker.start_server()
        stack.push_async_callback(worker.close)
        workers = [str(worker.make_url("")).rstrip("/"), "http://127.0.0.1:9"]  # one is down
        # Nothing listens at its bootstrap: whatever the console asks Kafka fails, never lands.
        nowhere = f"127.0.0.1:{free_port()}"
        app = create_app(
            Settings(data_dir=data_dir, kafka_bootstrap=nowhere),
            workers,
            store=store,
            feed=FeedState(),
            follow_topics=False,
            users=users,
        )
        app[channels_api.READER] = store.read_policies
        app[channels_api.WRITER] = store.write_policy
        routes.extend(
            (route.method, route.resource.canonical)
            for route in app.router.routes()
            if route.resource is not None and route.method in ("GET", *WRITES)
        )
        return app

    with LoopbackApp(build) as app:
        console = Console(app, store, routes)
        console.sign_in()
        published = console.request("POST", "/api/rules/publish", to_body(FORM), **JSON)
        assert published.status == 200, published.body  # so that a roll back has a version
        yield console
    users.close()


def api_routes(console: Console, method: str) -> list[str]:
    return sorted(path for m, path in console.routes if m == method and path.startswith("/api/"))


def api_writes(console: Console) -> list[tuple[str, str]]:
    return sorted((m, path) for m, path in console.routes if m in WRITES)


rule_ids = st.one_of(st.just("protect-big"), st.just("MARKETPLACE"), path_segments())


def post_json(console: Console, data: st.DataObject, rule_id: str, body: bytes) -> None:
    """``body`` to one of the API's writes (drawn), its path parameter ``rule_id``."""
    method, route = data.draw(st.sampled_from(api_writes(console)), label="route")
    reply = console.request(method, fill_path(route, rule_id), body, **JSON)
    if reply.status in (400, 422):
        assert all(e["field"] and e["message"] for e in reply.json()["errors"]), reply.body


# ---- Fuzz ---------------------------------------------------------------------------------------


@FUZZ
@given(data=st.data(), body=json_values | odd_values, encoding=encodings, rule_id=rule_ids)
def test_any_json_to_any_write_is_answered_with_a_reason(
    console: Console, data: st.DataObject, body: Any, encoding: str, rule_id: str
) -> None:
    post_json(console, data, rule_id, to_body(body, encoding))


@FUZZ
@given(data=st.data(), body=mutations_of(FORM), encoding=encodings, rule_id=rule_ids)
def test_rule_forms_with_fields_mutated_are_answered_with_a_reason(
    console: Console, data: st.DataObject, body: Any, encoding: str, rule_id: str
) -> None:
    post_json(console, data, rule_id, to_body(body, encoding))


@FUZZ
@given(
    data=st.data(),
    body=st.binary(max_size=300),
    content_type=st.sampled_from(CONTENT_TYPES),
    origin=st.sampled_from([None, "http://evil.example", "null", "http://127.0.0.1"]),
)
def test_raw_bytes_of_any_content_type_and_origin_are_answered_with_a_reason(
    console: Console, data: st.DataObject, body: bytes, content_type: str | None, origin: str | None
) -> None:
    route = data.draw(st.sampled_from(api_routes(console, "POST")), label="route")
    headers = {"Content-Type": content_type} if content_type is not None else {}
    if origin is not None:
        headers["Origin"] = origin
    console.request("POST", fill_path(route, "protect-big"), body, **headers)


@FUZZ
@given(
    data=st.data(),
    method=st.sampled_from(METHODS),
    segment=path_segments(),
    how=st.sampled_from(["fill", "append", "alone"]),
    query=query_strings(),
)
def test_odd_paths_methods_and_queries_are_answered_with_a_reason(
    console: Console, data: st.DataObject, method: str, segment: str, how: str, query: str
) -> None:
    route = data.draw(st.sampled_from(sorted(path for _m, path in console.routes)), label="route")
    path = {
        "fill": fill_path(route, segment),
        "append": f"{route.rstrip('/')}/{segment}",
        "alone": f"/api/{segment}",
    }[how]
    # Under the console's request-line limit (16 KiB): beyond it aiohttp's HTTP parser
    # answers a plain-text 400 before the app sees anything.
    target = f"{path}?{query[:2_000]}" if query else path
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    console.request(method, target, body, **JSON)


@FUZZ
@given(
    data=st.data(),
    name=st.sampled_from(
        ["Cookie", "X-CSRF-Token", "Host", "Origin", "Content-Type", "Authorization"]
    ),
    value=texts.filter(lambda t: t.isprintable() and len(t) < 8_000),
)
def test_odd_headers_are_answered_with_a_reason(
    console: Console, data: st.DataObject, name: str, value: str
) -> None:
    method, route = data.draw(st.sampled_from(sorted(console.routes)), label="route")
    body = to_body(FORM) if method in WRITES else None
    console.request(method, fill_path(route, "protect-big"), body, **{**JSON, name: value})


# ---- What the fuzz found, and limits: one example each ---------------------------------------


def test_a_body_over_the_limit_is_a_413_with_a_reason(console: Console) -> None:
    for method, route in api_writes(console):
        if route == "/api/logout" or method == "DELETE":
            continue  # sent without the session (see Console.request): a 401 before any body;
            # a reset reads no body
        huge = b"{" + b" " * (64 * 1024) + b"}"
        segment = "MARKETPLACE" if "{channel}" in route else "protect-big"
        reply = console.request(method, fill_path(route, segment), huge, **JSON)
        assert (reply.status, reply.json()["error"]) == (413, "the request is larger than 64 KiB")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/rules/validate", "priority"),
        ("/api/rules/publish", "priority"),
        ("/api/rules/dry-run", "last"),
        ("/api/rules/protect-big/rollback", "version"),
    ],
)
def test_infinity_for_a_whole_number_is_a_422(console: Console, path: str, field: str) -> None:
    body = to_body({**FORM, field: float("inf")})  # Python's json writes (and reads) Infinity
    reply = console.request("POST", path, body, **JSON)
    problem = {"field": field, "message": f"{field} must be a whole number, not 'inf'"}
    if path == "/api/rules/validate":  # its answer is the verdict itself
        assert (reply.status, reply.json()["errors"]) == (200, [problem])
    else:
        assert (reply.status, reply.json()["errors"]) == (422, [problem])


@pytest.mark.parametrize("field", ["description", "condition", "rule_id"])
def test_a_lone_surrogate_is_a_400_and_publishes_nothing(console: Console, field: str) -> None:
    before = len(console.store.records)
    body = to_body({**FORM, "rule_id": "surrogate", field: "half a pair: \ud800"})
    reply = console.request("POST", "/api/rules/publish", body, **JSON)
    assert reply.status == 400
    assert reply.json()["errors"] == [
        {
            "field": "body",
            "message": "the request body has a \\u escape that is half a character "
            "(a lone surrogate)",
        }
    ]
    assert len(console.store.records) == before


def test_a_10_kb_id_in_a_path_is_refused_in_json(console: Console) -> None:
    reply = console.request("GET", "/api/orders/" + "x" * 10_240)
    assert reply.status == 400 and reply.json()["errors"][0]["field"] == "order id"
    reply = console.request("GET", f"/api/rules/{'r' * 10_240}/history")
    assert reply.status == 422 and reply.json()["errors"][0]["field"] == "rule_id"


def test_a_static_file_name_over_the_system_limit_is_a_404(console: Console) -> None:
    assert console.request("GET", "/static/" + "x" * 300).status == 404
    assert console.request("GET", "/static/..%2Fapp.py").status == 404
    assert console.request("GET", "/static/app.js").status == 200

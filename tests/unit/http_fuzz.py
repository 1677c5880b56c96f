"""What the HTTP fuzz tests share: an aiohttp app served on loopback from a thread of its own
(so that Hypothesis, which calls plain functions, can drive it), the check every answer must
pass, and strategies for hostile input: any JSON, JSON close to a real payload with its
fields mutated one by one, raw bytes, odd content types, odd path segments and queries."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from yarl import URL

FUZZ = settings(
    max_examples=400,
    derandomize=True,  # the same examples on every run, so CI is reproducible
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""Bounded: every fuzz test of a module together stays within a few seconds."""

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
CONTENT_TYPES = (
    None,
    "application/json",
    "application/json; charset=latin-1",
    "text/plain",
    "text/html",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "application/json; boundary=\u00e9",
    "",
)


# ---- The app, on loopback ---------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    method: str
    status: int
    content_type: str
    body: bytes
    cookies: str = ""
    """What the answer set, as a ``Cookie`` header would send it back."""

    def json(self) -> Any:
        return json.loads(self.body)


Build = Callable[[contextlib.AsyncExitStack], Awaitable[web.Application]]


class LoopbackApp:
    """An aiohttp app on 127.0.0.1, its event loop in a thread; ``request`` is a plain call."""

    def __init__(self, build: Build) -> None:
        self._build = build
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stack = contextlib.AsyncExitStack()
        self._base = ""
        self._session: ClientSession | None = None

    def __enter__(self) -> LoopbackApp:
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._stack.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = await self._build(self._stack)
        server = TestServer(app)
        await server.start_server()
        self._stack.push_async_callback(server.close)
        self._base = str(server.make_url("")).rstrip("/")
        self._session = await self._stack.enter_async_context(ClientSession())

    def _call(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)  # type: ignore[arg-type]

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """``path`` goes on the wire as it is given (already percent-encoded, or not)."""
        return self._call(self._request(method, path, body, headers or {}))  # type: ignore[no-any-return]

    async def _request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> Reply:
        assert self._session is not None
        url = URL(self._base + path, encoded=True)
        skip = ("Content-Type",) if "Content-Type" not in headers else ()
        async with self._session.request(
            method, url, data=body, headers=headers, skip_auto_headers=skip
        ) as response:
            body = await response.read()
            cookies = "; ".join(f"{name}={c.value}" for name, c in response.cookies.items())
            return Reply(method, response.status, response.content_type, body, cookies)


def assert_answered(reply: Reply, what: object = "") -> None:
    """Never a 5xx; every 4xx is JSON that says why (``error``, or ``errors`` with messages)."""
    shown = reply.body[:300]
    assert reply.status < 500, (reply.status, shown, what)
    if reply.status < 400 or reply.method == "HEAD":  # a HEAD answer has headers only
        return
    assert reply.content_type == "application/json", (reply.status, reply.content_type, shown)
    assert has_reason(reply.json()), (reply.status, shown, what)


def has_reason(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    if isinstance(body.get("error"), str) and body["error"].strip():
        return True
    errors = body.get("errors")
    return (
        isinstance(errors, list)
        and bool(errors)
        and all(isinstance(e, dict) and str(e.get("message", "")).strip() for e in errors)
    )


# ---- Strategies -------------------------------------------------------------------------------

ODD_STRINGS = (
    "",
    " ",
    "\x00",
    "\n\r\t",
    "a" * 10_000,
    "\U0001f600" * 64,
    "\u202eevil",
    "\ud800",
    "x\udfffy",
    "\ufeff",
    "../../etc/passwd",
    "a/b",
    "%00",
    "'; DROP TABLE orders; --",
    "<script>alert(1)</script>",
    "NaN",
    "1e308",
    "-1",
    "null",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "2024-02-30T00:00:00Z",
    "2024-05-01T08:15:42",
)
ODD_NUMBERS = (
    0,
    -1,
    -0.0,
    0.5,
    2**31,
    2**63,
    10**30,
    -(10**30),
    10**4000,
    1e308,
    -1e308,
    5e-324,
    float("inf"),
    float("-inf"),
    float("nan"),
)

texts = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.text(st.characters() | st.characters(categories=["Cs"]), max_size=40),
)
numbers = st.one_of(st.sampled_from(ODD_NUMBERS), st.integers(), st.floats())
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)


def deep(depth: int) -> str:
    """A stand-in that `to_body` turns into a list nested ``depth`` deep (json.dumps cannot)."""
    return f"__deep_{depth}__"


_DEEP = re.compile(r'"__deep_(\d+)__"')
odd_values = st.one_of(
    scalars,
    st.sampled_from([[], {}, [[[[[]]]]], {"a": {"b": {"c": {}}}}, deep(60), deep(900)]),
    st.sampled_from([deep(5_000), deep(30_000)]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def to_body(value: Any, encoding: str = "ascii") -> bytes:
    """``value`` as a JSON body: escaped (ascii), as UTF-8 (a lone surrogate as invalid
    bytes), or as UTF-16 (which Python's decoder also reads); `deep` stand-ins expanded."""
    text = json.dumps(value, ensure_ascii=encoding == "ascii")
    text = _DEEP.sub(lambda m: "[" * int(m[1]) + "]" * int(m[1]), text)
    if encoding == "utf-16":
        return text.encode("utf-16", "surrogatepass")
    return text.encode("utf-8", "surrogatepass")


encodings = st.sampled_from(["ascii", "ascii", "utf-8", "utf-16"])
DELETE = object()


def mutations_of(document: dict[str, Any]) -> st.SearchStrategy[Any]:
    """``document`` with one to three of its fields (at any depth) replaced by an odd value,
    by any JSON, or deleted; the document itself may be replaced too."""
    paths = list(_paths(document))
    mutation = st.tuples(
        st.sampled_from(paths), st.one_of(st.just(DELETE), odd_values, json_values)
    )
    return st.lists(mutation, min_size=1, max_size=3).map(lambda ms: _mutated(document, ms))


def _paths(node: Any, here: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield here
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*here, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, (*here, index))


def _mutated(document: dict[str, Any], mutations: list[tuple[tuple[str | int, ...], Any]]) -> Any:
    result: Any = copy.deepcopy(document)
    for path, value in mutations:
        if not path:
            result = value if value is not DELETE else {}
            continue
        try:
            parent = result
            for part in path[:-1]:
                parent = parent[part]
            if value is DELETE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation changed the shape: this one has nothing to touch
    return result


def path_segments() -> st.SearchStrategy[str]:
    """A path segment as it goes on the wire: escaped (a slash as %2F), or raw (a slash
    splits it), unicode, a lone surrogate as invalid UTF-8, 10 KB long."""
    raw = st.one_of(st.sampled_from(ODD_STRINGS), texts, st.just("x" * 10_240))
    return st.tuples(raw, st.booleans()).map(
        lambda pair: _escaped(pair[0], safe="/" if pair[1] else "")
    )


def query_strings() -> st.SearchStrategy[str]:
    """``a=b&c=d`` with odd names and values, percent-encoded (surrogates as invalid UTF-8)."""
    names = st.one_of(texts, st.sampled_from(["limit", "threshold", "channel", "status"]))
    pairs = st.lists(st.tuples(names, st.one_of(texts, numbers.map(str))), max_size=3)
    return pairs.map(lambda items: "&".join(f"{_escaped(k)}={_escaped(v)}" for k, v in items))


def _escaped(text: str, safe: str = "") -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe=safe)


def fill_path(template: str, segment: str) -> str:
    """A route's path with every ``{param}`` replaced by ``segment``."""
    return re.sub(r"\{[^}]+\}", lambda _m: segment, template)

"""The outside world of the channel tests: the stand-in shop and marketplace on a port of their
own, the sync service as `dom sync` runs it, each in a thread with its own event loop, and the
stand-ins' control API as the tests use it (what a merchant would see in the admin)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from config.settings import Settings
from connectors.standin.app import running_standin
from connectors.standin.shopify import StandinShop, WebhookTarget
from connectors.standin.spapi import StandinSpApi
from connectors.sync.process import serve_sync

SHOP_TOKEN = "shpat_0123456789abcdef0123456789abcdef"
SPAPI_TOKEN = "Atza|IwEBIstand-in-access-token"


class InThread:
    """``main(stop)`` in a thread with its own event loop, until `close`."""

    def __init__(self, main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        self._main = main
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def body() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._started.set()
            await self._main(self._stop)

        try:
            asyncio.run(body())
        except BaseException as exc:  # the test reads it: a service that died says why
            self.error = exc

    def start(self) -> InThread:
        self._thread.start()
        assert self._started.wait(10), "the thread did not start"
        return self

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        assert not self._thread.is_alive(), "the service did not stop"


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None


class Standins:
    """The stand-in shop (sending its webhooks to ``webhook_url``) and marketplace."""

    def __init__(self, webhook_url: str | None = None, secret: str | None = None) -> None:
        target = WebhookTarget(webhook_url, secret) if webhook_url and secret else None
        self.shop = StandinShop(access_token=SHOP_TOKEN, webhook=target)
        self.spapi = StandinSpApi(access_token=SPAPI_TOKEN)
        self.url = ""
        self._ready = threading.Event()
        self._thread = InThread(self._serve)

    async def _serve(self, stop: asyncio.Event) -> None:
        async with running_standin(self.shop, self.spapi) as url:
            self.url = url
            self._ready.set()
            await stop.wait()

    def __enter__(self) -> Standins:
        self._thread.start()
        assert self._ready.wait(10), "the stand-ins did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.close()

    def control(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = http(method, f"{self.url}/_standin/{path}", body)
        assert status < 300, (status, answer)
        return answer

    def shop_order(self, order_id: int) -> dict[str, Any]:
        return dict(self.control("GET", f"shopify/orders/{order_id}"))

    def shop_calls(self, method: str, path_part: str) -> list[dict[str, Any]]:
        calls = self.control("GET", "shopify/calls")["calls"]
        return [c for c in calls if c["method"] == method and path_part in c["path"]]


class RunningSync:
    """`dom sync` for ``settings``, in a thread; its ``/stats`` read over HTTP."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._thread = InThread(lambda stop: serve_sync(settings, stop))

    def __enter__(self) -> RunningSync:
        self._thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if http("GET", self.url("/healthz"))[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the sync did not answer /healthz ({self._thread.error!r})")

    def __exit__(self, *exc: object) -> None:
        self._thread.close()
        assert self._thread.error is None, self._thread.error

    def url(self, path: str) -> str:
        return f"http://{self.settings.sync_host}:{self.settings.sync_port}{path}"

    def counts(self) -> dict[str, int]:
        return dict(http("GET", self.url("/stats"))[1]["counts"])

    def stock(self) -> dict[str, int]:
        """The stock push's counts: pushed, refused, held, failed, calls, retried."""
        return dict(http("GET", self.url("/stats"))[1]["stock"] or {})


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something true; that value, or a failure naming it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")

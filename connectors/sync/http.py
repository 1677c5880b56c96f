"""One HTTP exchange with a channel's API, its answer sorted into done, try again, or give up.

- 2xx, or a status the caller said it handles (a 404 that means "not there", say): returned.
- 429 and 5xx, a refused or dropped connection, a timeout: `TryAgain` (with the channel's
  ``Retry-After`` when it sent one). A 429 is ``throttled``: the channel is fine, we were fast.
- Any other 4xx: `GiveUp`. The request is wrong, and the same request will stay wrong; the
  error names the call and quotes the channel's error body.

Every call is counted on ``/metrics`` by channel, call and result, with its latency.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram

from connectors.sync.backoff import CallBudget, retry_after_seconds

MAX_QUOTED_BODY = 500
CALL_LIMIT_HEADER = "X-Shopify-Shop-Api-Call-Limit"


class Credentials(Protocol):
    """Headers that prove who calls, renewed as they expire (`connectors.sync.lwa`)."""

    async def headers(self) -> dict[str, str]: ...

    def forget(self) -> None: ...


class ChannelError(Exception):
    """A call that did not do what it was for; ``detail`` says what the channel answered."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TryAgain(ChannelError):
    """The same call may work later: the channel was busy, down or unreachable."""

    def __init__(
        self, detail: str, *, retry_after: float | None = None, throttled: bool = False
    ) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.throttled = throttled


class GiveUp(ChannelError):
    """The channel refused the call for good (bad request, unknown order, bad credentials)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # parsed JSON, or the text when it is not JSON, or None when empty
    headers: Mapping[str, str] = field(default_factory=dict)  # case-insensitive from aiohttp


class CallMetrics:
    """Calls by channel, call and result (the status code, or ``error`` with no answer)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "dom_channel_calls",
            "HTTP calls to sales channels, by channel, call and result (status code or error).",
            ["channel", "call", "result"],
            registry=registry,
        )
        self.seconds = Histogram(
            "dom_channel_call_seconds",
            "Latency of HTTP calls to sales channels.",
            ["channel", "call"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )


class ChannelHttp:
    """A channel's API at ``base_url``, reached with ``headers`` (its credentials)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        channel: str,
        base_url: str,
        headers: Mapping[str, str],
        metrics: CallMetrics,
        *,
        budget: CallBudget | None = None,
        credentials: Credentials | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.channel = channel
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.metrics = metrics
        self.budget = budget
        self.credentials = credentials
        self.clock = clock

    async def call(
        self,
        method: str,
        path: str,
        name: str,
        *,
        body: Any = None,
        handles: Collection[int] = (),
    ) -> Answer:
        """``method path`` (``name`` labels it in metrics); see the module doc for errors."""
        if self.budget is not None:
            await asyncio.sleep(self.budget.wait(self.clock()))
            self.budget.spend(self.clock())
        headers = dict(self.headers)
        if self.credentials is not None:
            headers.update(await self.credentials.headers())
        started = self.clock()
        try:
            async with self.session.request(
                method, self.base_url + path, headers=headers, json=body
            ) as response:
                raw = await response.read()
                answered = response.headers
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._count(name, "error", started)
            raise TryAgain(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        self._count(name, str(status), started)
        if self.budget is not None:
            self.budget.observe(answered.get(CALL_LIMIT_HEADER), self.clock())
        answer = Answer(status, _parse(raw), answered)
        if 200 <= status < 300 or status in handles:
            return answer
        said = f"{method} {path} answered {status}: {quote(answer.body)}"
        if status == 403 and self.credentials is not None and "expired" in said:
            self.credentials.forget()  # renewed by the next attempt, made at once
            raise TryAgain(said, retry_after=0.0)
        retry_after = retry_after_seconds(answered.get("Retry-After"))
        if status == 429:
            raise TryAgain(said, retry_after=retry_after, throttled=True)
        if status >= 500:
            raise TryAgain(said, retry_after=retry_after)
        raise GiveUp(said)

    def _count(self, name: str, result: str, started: float) -> None:
        self.metrics.calls.labels(self.channel, name, result).inc()
        self.metrics.seconds.labels(self.channel, name).observe(self.clock() - started)


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def quote(body: Any) -> str:
    """An error body, short enough for a log line and a dead-letter header."""
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return text if len(text) <= MAX_QUOTED_BODY else text[: MAX_QUOTED_BODY - 1] + "…"

"""The workers' HTTP endpoints, as the console reads them: ask one worker, and the next when
one is down. Every worker answers ``/inventory`` and ``/rules`` from its own view of the
network; ``/orders`` is routed by Faust to the worker that owns the order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=8.0)


class WorkersUnavailable(RuntimeError):
    """No worker answered; the message says which were tried and why."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    worker: str


class WorkerClient:
    """GETs against a list of worker base URLs (``http://host:port``)."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=TIMEOUT)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "WorkerClient.start() first"
        return self._session

    async def get_json(self, *segments: str, params: Mapping[str, str] | None = None) -> Answer:
        """The first worker's answer that is a 2xx, else the last 404, else unavailable.

        Segments are quoted, so a value can never change the path it is put in; ``params``
        become the query string (encoded by aiohttp).
        """
        path = "/" + "/".join(quote(s, safe="") for s in segments) + "/"
        not_found: Answer | None = None
        problems = []
        for url in self.urls:
            try:
                async with self.session.get(url + path, params=params) as response:
                    body = await _body(response)
                    if response.status < 300:
                        return Answer(response.status, body, url)
                    if response.status == 404:
                        not_found = Answer(404, body, url)
                        continue
                    problems.append(f"{url}: HTTP {response.status}")
            except (TimeoutError, aiohttp.ClientError) as error:
                problems.append(f"{url}: {type(error).__name__} {error}".strip())
        if not_found is not None:
            return not_found
        raise WorkersUnavailable("no worker answered (" + "; ".join(problems) + ")")

    async def get_report(self, url: str, path: str) -> tuple[int, Any]:
        """One worker's JSON answer whatever its status (``/health/`` answers 503 with its
        report when the worker is unhealthy); raises aiohttp errors as they come."""
        async with self.session.get(url + path) as response:
            return response.status, await _body(response)

    async def get_text(self, url: str, path: str) -> str:
        """One worker's text answer (``/metrics``); raises aiohttp errors as they come."""
        async with self.session.get(url + path) as response:
            response.raise_for_status()
            return await response.text()


async def _body(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return {"error": (await response.text())[:500]}

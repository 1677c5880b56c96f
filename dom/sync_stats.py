"""The channel sync's own figures (``GET /stats`` of `dom sync`), for the live summary: what
it pushed of the web channel's stock, which no topic records (each figure is set in the shop,
not journalled). Asked every few seconds in a thread of its own."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

POLL_EVERY = 2.0
TIMEOUT = 2.0


class SyncStatsPoller:
    """The last ``/stats`` answer of the sync at ``url`` (None until one came)."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.last: dict[str, Any] | None = None
        self._stop = threading.Event()

    def start(self) -> SyncStatsPoller:
        if self.url is not None:
            threading.Thread(target=self._poll, name="sync-stats", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def stock(self) -> dict[str, int]:
        """The stock push's counts (pushed, refused, held, failed, calls, retried), or none."""
        stock = (self.last or {}).get("stock")
        return {str(k): int(v) for k, v in stock.items()} if isinstance(stock, dict) else {}

    def fetch_once(self) -> None:
        """Ask once; a sync that does not answer (not up yet, restarting) leaves the last."""
        if self.url is None:
            return
        try:
            with urllib.request.urlopen(self.url, timeout=TIMEOUT) as response:
                answer = json.loads(response.read())
            self.last = answer if isinstance(answer, dict) else None
        except (OSError, ValueError):
            pass

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.fetch_once()
            self._stop.wait(POLL_EVERY)

"""Keeping the cyclic garbage collector's full passes short on a worker whose heap is large.

A worker holds hundreds of thousands of long-lived objects: the network view, the decoded
orders and skus kept between batches, the availability records reused for unchanged
locations. CPython's full collection walks every one of them, and the kept values churn (a
value decoded, kept a few batches, dropped for another), so full passes come every few
seconds; with a long history each one stopped the event loop for 0.25 to 1 s, and every
order in flight waited it out.

What the worker does instead:

1. once its view is complete, it collects and freezes what exists (:func:`freeze_heap`):
   modules, the app, its clients, the view;
2. after each full collection the collector ran on its own, it freezes what survived it
   (:class:`HeapSettler`): the next full pass walks only what came since. Objects frozen and
   later released are still freed by reference counting; only a cycle among frozen objects
   that becomes garbage afterwards is not collected;
3. so that such cycles cannot pile up, every :data:`THAW_SECONDS` it unfreezes everything,
   collects once (one long pause, then), and freezes again.

``dom_gc_frozen_objects`` shows what is frozen, ``dom_gc_pause_seconds`` each pause.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger(__name__)

SETTLE_SECONDS = 1.0
"""How often the settler looks whether a full collection ran since it last froze."""

THAW_SECONDS = 600.0
"""How often everything is unfrozen and collected once, so no garbage cycle stays frozen."""


def freeze_heap() -> None:
    """Collect, then leave what exists now out of the collector's passes."""
    gc.collect()
    gc.freeze()


class HeapSettler:
    """Freezes what survived each of the collector's own full passes (see the module)."""

    def __init__(self, thaw_seconds: float = THAW_SECONDS) -> None:
        self.thaw_seconds = thaw_seconds
        self.full_passes = 0  # full collections seen since the last freeze
        self.freezes = 0
        self.thaws = 0
        self._next_thaw = time.monotonic() + thaw_seconds

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        # Runs inside the collector: only count here.
        if phase == "stop" and info["generation"] == 2:
            self.full_passes += 1

    def settle(self) -> None:
        """Freeze if a full pass ran since the last freeze; thaw and collect when it is due."""
        if time.monotonic() >= self._next_thaw:
            self._next_thaw = time.monotonic() + self.thaw_seconds
            gc.unfreeze()
            freed = gc.collect()
            gc.freeze()
            self.thaws += 1
            self.full_passes = 0
            log.debug("heap thawed and collected: %d unreachable objects", freed)
        elif self.full_passes:
            gc.freeze()
            self.freezes += 1
            self.full_passes = 0

    async def run(self) -> None:
        """Settle every :data:`SETTLE_SECONDS`, for as long as the worker runs."""
        gc.callbacks.append(self.on_gc)
        try:
            while True:
                await asyncio.sleep(SETTLE_SECONDS)
                self.settle()
        finally:
            gc.callbacks.remove(self.on_gc)

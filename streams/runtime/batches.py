"""A stream's events in batches that grow with the load, with no timer between them.

Faust's ``take_events(max, within)`` stops taking events while the caller works on a batch
and then collects for ``within`` seconds only, so a stage that spends tens of milliseconds
on a batch (its flush waits for the broker) got batches of a handful of events however long
the queue behind them was: measured at 7 events a batch with thousands of orders waiting.

Here the stream is drained all the time into the next batch, up to ``max_`` events (then
the drain waits, which is Faust's back-pressure). A batch is handed over as soon as it
holds one event: on a quiet stream an event goes through at once, and under load the next
batch is whatever arrived while the last one was worked on. The caller acknowledges the
events once it is done with them (:mod:`streams.runtime.acks`: in offset order, some held for a
while): at-least-once.

It leans on the same stream internals as ``take_events`` (a processor and the passive
drainer), pinned with faust-streaming 0.15.3.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

WAKE_EVERY = 1.0
"""Seconds an idle batch loop sleeps before it looks again whether the stream stops."""


async def event_batches(stream: Any, max_: int) -> AsyncIterator[list[Any]]:
    """Every event of ``stream`` in order, in batches of 1 to ``max_``; the caller acks them."""
    pending: list[Any] = []
    arrived = asyncio.Event()
    room = asyncio.Event()
    room.set()

    async def collect(value: Any) -> Any:
        # Waits before it adds, so a batch never holds more than max_ events.
        while len(pending) >= max_:
            room.clear()
            await room.wait()
        pending.append(stream.current_event)
        arrived.set()
        return value

    # Acked by the caller, once it is done with them; and never by the stream itself, even
    # after the stage crashed: the stream's drainer reads the flag when it starts waiting for
    # its next event, so a flag put back on a crash acked the restarted stage's first event
    # before its batch was done (committed, and lost if that batch failed).
    stream.enable_acks = False
    stream.add_processor(collect)
    stream._enable_passive(aiter(stream.channel))
    try:
        while not stream.should_stop:
            await stream.wait_for_stopped(arrived, timeout=WAKE_EVERY)
            if not pending:
                continue
            batch = pending[:]
            pending.clear()
            arrived.clear()
            room.set()
            yield batch
    finally:
        stream._processors.remove(collect)

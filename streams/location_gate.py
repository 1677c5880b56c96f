"""Stock for a location the network does not know: wait until the view has read the locations
topic as of now, then decide.

A location and its first stock often arrive close together (a new store is published, then
its opening count) on different topics and partitions, so a stock event can reach the
inventory stage before this worker's network view has read its location; a worker that has
just started knows fewer still. Refusing the event then would refuse good stock; applying it
unchecked publishes availability at a place that does not exist (a typo, a location that was
deleted), which channels would show and routing could never use.

So the stage asks :meth:`LocationGate.knows`: a location the view knows passes at once; for
any other the gate takes the locations topic's end offsets, which are taken after the stock
event arrived, and waits until the view's follower has read up to them (at most
``CATCH_UP_TIMEOUT`` seconds). Any location published before its stock is known by then; one
still unknown is refused ("unknown location ..."). Only an unknown location pays the wait.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from streams.runtime.side_consumer import SideConsumer, TopicPartition
from streams.views import NetworkView

log = logging.getLogger(__name__)

CATCH_UP_TIMEOUT = 5.0
"""Seconds a stock event for an unknown location waits for the view to read the locations."""


class LocationGate:
    """Tells whether a location exists, as of now, for the stage that applies stock."""

    def __init__(self, view: NetworkView, consumer_conf: dict[str, Any], topic: str) -> None:
        self._view = view
        self._side = SideConsumer(consumer_conf)
        self._topic = topic

    async def knows(self, location_id: str) -> bool:
        """Whether ``location_id`` exists, once the view has read every location published up
        to now (at once when the view already knows it)."""
        if location_id in self._view.locations:
            return True
        try:
            ends = await self._end_offsets()
            await asyncio.wait_for(self._view.read_locations_to(ends), CATCH_UP_TIMEOUT)
        except TimeoutError:
            log.warning(
                "the view did not read %s up to its end within %ss; %s is judged on what it has",
                self._topic,
                CATCH_UP_TIMEOUT,
                location_id,
            )
        return location_id in self._view.locations

    async def _end_offsets(self) -> dict[int, int]:
        consumer = await self._side.started()
        partitions = [TopicPartition(self._topic, p) for p in sorted(self._view.locations_read)]
        if not partitions:  # the follower has not assigned itself yet
            return {}
        ends = await asyncio.wait_for(consumer.end_offsets(partitions), CATCH_UP_TIMEOUT)
        return {tp.partition: offset for tp, offset in ends.items()}

    async def start(self) -> None:
        """Connect now, so that the first unknown location waits for one round trip only."""
        await self._side.started()

    async def close(self) -> None:
        await self._side.close()

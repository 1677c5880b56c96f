"""The inventory stage's channel figures: what each sales channel may sell of each sku, figured
by the sku's owner. They travel in the sku's availability record (``Availability.channels``),
and on ``dom.channel-availability.v1``, one record per channel and sku, when the worker runs
with ``DOM_CHANNEL_AVAILABILITY_TOPIC`` (consumers built on that topic).

Where they are figured. The owner of a sku already holds every location's figures of it, so it
figures the channels too, with the channel plan its worker's view builds from the policies of
``dom.channels.v1`` and the locations (every worker follows both, as it follows the locations
for routing). That scales with the partitions: each worker figures only the skus it owns.

When. Once per batch and sku, as the sku's changed value is settled for the write-back
(:class:`ChannelFigures`, the table's ``settle``), never per input: a burst of reservations on
one sku is one figuring. The sku's availability record, sent for every sku a batch changed,
carries every published channel's figure. On the topic a channel's figure is published only
when it differs from the one the sku's value says was published, so a stock change at a store
sends nothing there for a channel the DCs alone serve. The figures published are stored in the
same value, in the same write, as the stock they come from.

A change of the plan (a policy set or reset, a location added, closed or of another kind)
reaches every sku through :class:`ChannelRefresher`: each worker, once its view has the new
plan, looks through the skus it owns for those figured under another plan, figures each
(reading only), and sends a ``ChannelRefresh`` to the owner of each whose figures would move.
The owner figures it again in its own order, like any input, and publishes the sku's
availability (and on the topic what changed); a sku whose figures the change does not move
costs no message. It looks again after every rebalance (a partition may arrive whose previous
owner had not seen the change yet).

A batch that reads again what an earlier batch of the sku read (a restart, a rewound group)
may follow one whose records never went out: its sku publishes every channel again
(``streams.core.channels.sku.publish_again``), as it publishes its availability again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic_core import from_json

from schemas.internal import ChannelRefresh
from schemas.sellable import ChannelAvailability
from streams.core.channels.plan import ChannelPlan
from streams.core.channels.sku import channel_records, needs_refigure, refigure
from streams.core.inventory import stock as inventory
from streams.core.inventory.stock import SkuInventory
from streams.runtime import Runtime
from streams.views import NetworkView

log = logging.getLogger(__name__)

CHECK_S = 1.0
"""How often a worker looks whether the channel plan or its partitions changed."""
SCAN_STEP = 200
"""Skus a refresh figures between two yields to the event loop."""


class ChannelFigures:
    """Figures each changed sku's channels as its value is settled, and, with ``topic``,
    keeps what changed for the stage's ``finish`` (:meth:`records`)."""

    def __init__(self, view: NetworkView, topic: bool = False) -> None:
        self.view = view
        self.topic = topic
        self._news: dict[bytes, dict[str, int]] = {}

    def settle(self, key: bytes, state: SkuInventory) -> SkuInventory:
        """``state`` with its channels figured under the plan in force; with ``topic``, what
        changed is kept for :meth:`records` (overwriting what an earlier settling of the key
        kept)."""
        settled, news = refigure(state, self.view.channel_plan())
        if self.topic:
            self._news[key] = news
        return settled

    def records(
        self, changed: dict[bytes, SkuInventory], now_of: Callable[[bytes], datetime]
    ) -> list[ChannelAvailability]:
        """The records of the figures that changed in the settled values ``changed``;
        ``now_of(key)`` is the time they carry."""
        records = [
            record
            for key, state in changed.items()
            if (news := self._news.get(key))
            for record in channel_records(state.sku, news, now_of(key))
        ]
        for key in changed:  # only once every record is made: a failure tries key by key
            self._news.pop(key, None)
        return records


def plan_marker(fingerprint: str) -> bytes:
    """What a stored sku value figured under the plan ``fingerprint`` holds, byte for byte
    (its JSON, as ``inventory_stage`` writes it): found without decoding the value."""
    return b'"channels_plan":"' + fingerprint.encode() + b'"'


class ChannelRefresher:
    """Sends a ``ChannelRefresh`` to the owner of every sku of this worker whose channel
    figures a new plan moves (see the module docstring)."""

    def __init__(self, runtime: Runtime, table: Any, view: NetworkView) -> None:
        self.runtime = runtime
        self.table = table
        self.view = view
        self.done: tuple[str, int] | None = None
        """(plan fingerprint, consumer generation) of the last complete look."""

    async def check(self) -> None:
        """Look through this worker's skus if the plan or the partitions changed since the last
        complete look; a look cut short (the partitions or the plan moved) is made again."""
        if not self.view.ready.is_set() or self.runtime.rebalancing():
            return
        plan = self.view.channel_plan()
        mark = (plan.fingerprint, self.runtime.generation())
        if mark == self.done:
            return
        refreshes = await self.stale_skus(plan, mark)
        if refreshes is None:
            return
        if refreshes:
            try:
                await self.runtime.send_all(refreshes, "channel refresh")
            except Exception as exc:  # the broker away: the next look sends them again
                log.warning("channel refresh not sent, tried again shortly: %r", exc)
                return
            log.info("channel plan %s: %d skus to figure again", plan.fingerprint, len(refreshes))
        self.done = mark

    async def stale_skus(
        self, plan: ChannelPlan, mark: tuple[str, int]
    ) -> list[ChannelRefresh] | None:
        """A refresh for each sku of this worker whose figures ``plan`` moves; None when the
        partitions or the plan changed meanwhile."""
        marker = plan_marker(plan.fingerprint)
        # One pass over the stored values without decoding them (and without yielding, as no
        # store may close under an open iterator); those figured under this plan are current.
        stale = [key for key, raw in self.table.items() if raw and marker not in raw]
        now = datetime.now(UTC)
        refreshes = []
        for n, key in enumerate(stale):
            if n % SCAN_STEP == 0:
                await asyncio.sleep(0)
                if self._moved(mark):
                    return None
            raw = self.table.get(key)
            state = _decoded(key, raw)
            if state is not None and needs_refigure(state, plan):
                refreshes.append(
                    ChannelRefresh(sku=state.sku, plan=plan.fingerprint, issued_at=now)
                )
        return None if self._moved(mark) else refreshes

    def _moved(self, mark: tuple[str, int]) -> bool:
        current = (self.view.channel_plan().fingerprint, self.runtime.generation())
        return self.runtime.rebalancing() or current != mark


def _decoded(key: bytes, raw: bytes | None) -> SkuInventory | None:
    if not raw:
        return None
    try:
        return inventory.from_dict(from_json(raw))
    except Exception:  # its stage dead-letters what it cannot read; a refresh would not help
        log.warning("channel refresh skips %r: its stored value cannot be read", key)
        return None


def register_channel_refresh(runtime: Runtime, table: Any, view: NetworkView) -> ChannelRefresher:
    """The timer that keeps every sku's channel figures on the plan in force."""
    refresher = ChannelRefresher(runtime, table, view)

    @runtime.every(CHECK_S)
    async def refresh_channels() -> None:
        """Figure again the skus whose channel figures a new plan moves."""
        await refresher.check()

    return refresher

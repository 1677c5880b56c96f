"""One sku's channel figures as its owner keeps them: figured from the sku's stock under the
channel plan, compared with what was published, and the records for those that changed.

The owner figures a sku once per batch that changed it (never per input), so a burst of
reservations on one sku costs one figure per channel, and publishes a channel's figure only
when it moved: a stock change at a store does not republish what a channel served by the DCs
alone may sell. A sku whose published figures may not have gone out (its batch was replayed)
forgets them, so the next figuring publishes every channel again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from schemas.enums import Channel
from schemas.sellable import ChannelAvailability
from streams.core.channels.plan import ChannelPlan, changed_figures
from streams.core.inventory.stock import SkuInventory


def figures_of(state: SkuInventory, plan: ChannelPlan) -> dict[str, int]:
    """What each channel may sell of the sku now, under ``plan``."""
    return plan.figures((location, stock.available) for location, stock in state.locations.items())


def refigure(state: SkuInventory, plan: ChannelPlan) -> tuple[SkuInventory, dict[str, int]]:
    """The sku's figures under ``plan``: the state that records them as published, and the
    figures that differ from those published before (to publish). ``state`` itself when
    nothing changed."""
    figures = figures_of(state, plan)
    news = changed_figures(state.channels, figures)
    if not news and state.channels_plan == plan.fingerprint:
        return state, {}
    return replace(state, channels=figures, channels_plan=plan.fingerprint), news


def needs_refigure(state: SkuInventory, plan: ChannelPlan) -> bool:
    """Whether figuring the sku under ``plan`` would publish anything."""
    return bool(changed_figures(state.channels, figures_of(state, plan)))


def publish_again(state: SkuInventory) -> SkuInventory:
    """The sku with its published figures forgotten: the next figuring publishes them all."""
    return replace(state, channels={}) if state.channels else state


def channel_records(sku: str, news: dict[str, int], now: datetime) -> list[ChannelAvailability]:
    """One record per channel whose figure changed, in the contract's order of channels."""
    return [
        ChannelAvailability(channel=channel, sku=sku, available=news[channel.value], updated_at=now)
        for channel in Channel
        if channel.value in news
    ]

"""Pydantic models of what each sales channel may sell: its policy and its figures.

A `ChannelPolicy` names the locations that serve a channel and the units held back from it;
operators keep them on the compacted ``dom.channels.v1`` (key ``channel``), and every worker
follows it. What a channel may sell of a sku under its policy is a `ChannelSellable` in the
sku's ``Availability.channels``, and, for consumers built on the topic, a `ChannelAvailability`
on the compacted ``dom.channel-availability.v1`` (key ``<channel>|<sku>``) when the workers run
with ``DOM_CHANNEL_AVAILABILITY_TOPIC``.
"""

from typing import Annotated, ClassVar

from pydantic import Field

from schemas.common import Count, DomModel, Id, InboundId, Message, Timestamp
from schemas.enums import Channel, LocationKind

Percent = Annotated[int, Field(ge=0, le=100)]


class ChannelPolicy(Message):
    """Which locations serve a channel, and what is held back from it.

    A location serves the channel when ``location_ids`` names it or ``location_kinds`` holds
    its kind; with both empty, every location does.
    """

    avro_name: ClassVar[str] = "dom.v1.ChannelPolicy"

    channel: Channel
    location_ids: tuple[InboundId, ...] = ()
    location_kinds: tuple[LocationKind, ...] = ()
    buffer_units: Count = 0
    buffer_pct: Percent = 0
    low_stock_threshold: Count = 0
    updated_by: InboundId
    updated_at: Timestamp


class ChannelSellable(DomModel):
    """What one channel may sell of a sku: an entry of ``Availability.channels``."""

    channel: Channel
    available: Count


class ChannelAvailability(Message):
    """What one channel may sell of one sku."""

    avro_name: ClassVar[str] = "dom.v1.ChannelAvailability"

    channel: Channel
    sku: Id
    available: Count
    updated_at: Timestamp

    @property
    def channel_sku(self) -> str:
        """The record's key: ``<channel>|<sku>``."""
        return f"{self.channel.value}|{self.sku}"

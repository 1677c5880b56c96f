"""Pydantic model of what the channel sync (`dom sync`) reports to the sales channels.

A `ChannelCall` is one thing a channel must learn (a shipment left, an order was cancelled)
and where telling it stands. The sync service writes one record per state it reaches to the
compacted ``dom.channel-sync.v1`` (key ``call_id``); an operator's retry is a record too.
"""

from typing import ClassVar

from schemas.common import Count, Id, Message, Timestamp
from schemas.enums import ChannelCallKind, ChannelCallState
from schemas.orders import ShipmentLine


class ChannelCall(Message):
    """One report to a sales channel and how it went."""

    avro_name: ClassVar[str] = "dom.v1.ChannelCall"

    call_id: Id
    order_id: Id
    channel: Id
    channel_order_ref: Id
    kind: ChannelCallKind
    state: ChannelCallState
    shipment_id: Id | None = None
    lines: tuple[ShipmentLine, ...] = ()
    picked_up: bool = False
    tracking_number: str | None = None
    carrier: str | None = None
    reason: str | None = None
    status_event_id: Id
    reported_at: Timestamp
    attempts: Count = 0
    detail: str = ""
    channel_ref: str | None = None
    requested_by: str | None = None
    at: Timestamp

"""Which calls to a sales channel an order status asks for. Pure: no network, no clock.

An order belongs to the channel its connector named it after: ``WEB-<id>`` came from Shopify
(``<id>`` is Shopify's order id), ``MKT-<AmazonOrderId>`` from the marketplace
(`connectors.shopify`, `connectors.marketplace`). Other orders (a POS, a wholesale feed, the
demo's own) have no channel API to tell.

- A shipment that left (``fulfillment_status`` set on a ``SHIPPED`` or ``COMPLETED`` status)
  becomes a ``FULFIL`` of exactly its lines, with its tracking. A transfer leaving a DC for
  the pickup store is between our own locations: the channel hears of it when the customer
  collects it (``picked_up``).
- A ``CANCELLED`` status becomes a ``CANCEL`` of the order; an applied ``CANCEL_LINES`` (its
  status names the units, ``cancelled``) a ``CANCEL`` of those lines, call id
  ``<channel>:CANCEL:<order id>/<action id>``.

Call ids are deterministic (``<channel>:<kind>:<shipment or order id>``): a redelivered status,
or a later status repeating the news, asks for the same call, which is made once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connectors.order_memory import CANCEL_LINES_PREFIX
from schemas.channels import ChannelCall
from schemas.enums import (
    ChannelCallKind,
    ChannelCallState,
    FulfillmentKind,
    FulfillmentStatus,
    OrderStatus,
)
from schemas.orders import OrderStatusChanged, Shipment

SHOPIFY = "shopify"
AMAZON = "amazon"
CHANNELS = (SHOPIFY, AMAZON)
ORDER_ID_PREFIXES = {"WEB-": SHOPIFY, "MKT-": AMAZON}
"""What each connector puts in front of the channel's own order id."""

CANCELS_SENT = frozenset({SHOPIFY, AMAZON})
"""Channels told of a cancel (each client finds one the channel made itself done)."""
COLLECTED_KINDS = frozenset({FulfillmentKind.PICKUP, FulfillmentKind.TRANSFER})


@dataclass(frozen=True)
class Done:
    """What the channel did (or had done already), for the record."""

    detail: str
    channel_ref: str | None = None


def channel_of(order_id: str) -> tuple[str, str] | None:
    """(channel, the channel's own order id) of an order, or None for an order of no API."""
    for prefix, channel in ORDER_ID_PREFIXES.items():
        if order_id.startswith(prefix) and len(order_id) > len(prefix):
            return channel, order_id[len(prefix) :]
    return None


def call_id(channel: str, kind: ChannelCallKind, subject: str) -> str:
    return f"{channel}:{kind.value}:{subject}"


def calls_for(status: OrderStatusChanged) -> list[ChannelCall]:
    """The calls ``status`` asks for (RETRYING with no attempt yet: about to be made)."""
    target = channel_of(status.order_id)
    if target is None:
        return []
    channel, ref = target
    if status.status == OrderStatus.CANCELLED:
        if channel not in CANCELS_SENT:
            return []
        return [_call(status, channel, ref, ChannelCallKind.CANCEL, status.order_id)]
    if status.cancelled and status.action_id and channel in CANCELS_SENT:
        if status.action_id.startswith(CANCEL_LINES_PREFIX):
            return []  # Shopify's own edit: it removed the units already
        subject = f"{status.order_id}/{status.action_id}"
        call = _call(status, channel, ref, ChannelCallKind.CANCEL, subject)
        return [call.model_copy(update={"lines": status.cancelled})]
    return [
        _call(status, channel, ref, ChannelCallKind.FULFIL, shipment.shipment_id, shipment)
        for shipment in status.shipments
        if _reaches_customer(shipment)
    ]


def _reaches_customer(shipment: Shipment) -> bool:
    """The status reports that this shipment's units left for, or reached, the customer."""
    if shipment.fulfillment_status is None:
        return False  # routed, not gone: its status says ALLOCATED or similar
    in_transfer = shipment.kind == FulfillmentKind.TRANSFER
    return not (in_transfer and shipment.fulfillment_status == FulfillmentStatus.SHIPPED)


def _call(
    status: OrderStatusChanged,
    channel: str,
    ref: str,
    kind: ChannelCallKind,
    subject: str,
    shipment: Shipment | None = None,
) -> ChannelCall:
    picked_up = (
        shipment is not None
        and shipment.fulfillment_status == FulfillmentStatus.PICKED_UP
        and shipment.kind in COLLECTED_KINDS
    )
    return ChannelCall(
        call_id=call_id(channel, kind, subject),
        order_id=status.order_id,
        channel=channel,
        channel_order_ref=ref,
        kind=kind,
        state=ChannelCallState.RETRYING,
        shipment_id=shipment.shipment_id if shipment else None,
        lines=shipment.lines if shipment else (),
        picked_up=picked_up,
        tracking_number=None if picked_up or shipment is None else shipment.tracking_number,
        carrier=None if picked_up or shipment is None else shipment.carrier,
        reason=status.reason if kind == ChannelCallKind.CANCEL else None,
        status_event_id=status.event_id,
        reported_at=status.at,
        at=status.at,
    )


def reached(
    call: ChannelCall,
    state: ChannelCallState,
    now: datetime,
    *,
    attempts: int,
    detail: str,
    channel_ref: str | None = None,
) -> ChannelCall:
    """The record of ``call`` having reached ``state``."""
    return call.model_copy(
        update={
            "state": state,
            "attempts": attempts,
            "detail": detail,
            "channel_ref": channel_ref,
            "requested_by": None,
            "at": now,
        }
    )

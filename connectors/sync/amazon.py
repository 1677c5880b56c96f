"""Shipments told to the marketplace, through Amazon's Selling Partner API (Orders API v0).

A shipment is confirmed with ``POST /orders/v0/orders/{orderId}/shipmentConfirmation``: one
package per shipment, its order items and units (our line ids are the ``OrderItemId``s the
connector read), the carrier and the tracking number. SP-API wants:

- ``packageReferenceId``: a positive number unique within the order. Ours is derived from the
  shipment id, so the same shipment always names the same package.
- ``carrierCode`` from Amazon's list; a carrier not on it is sent as ``Other`` with its name
  in ``carrierName``.
- ``shipDate``: when the pipeline reported the shipment, ISO 8601 in UTC.

Made once: SP-API takes a confirmation of a ``packageReferenceId`` it has as an edit of that
package, so a repeat changes nothing (and costs one call of confirmShipment's 2 a second, not
the 0.5 a second an order lookup would). A cancel is not
sent: see `connectors.sync.calls` (marketplace cancels are the buyer's or Amazon's, and reach
us as documents; a seller-side cancel goes through the order acknowledgement feed, which is
left for later).
"""

from __future__ import annotations

import hashlib
from typing import Any

from connectors.sync.calls import Done
from connectors.sync.http import ChannelHttp, GiveUp
from schemas.channels import ChannelCall
from schemas.enums import ChannelCallKind

CARRIER_CODES = {
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "FedEx",
    "dhl": "DHL",
    "dhl express": "DHL",
    "ontrac": "OnTrac",
    "amazon shipping": "Amazon Shipping",
}
OTHER_CARRIER = "Other"


def package_reference(shipment_id: str) -> str:
    """A positive number, the same for the same shipment, unlikely to meet another in an order."""
    digest = hashlib.sha256(shipment_id.encode()).digest()
    return str(int.from_bytes(digest[:6], "big") % 10**12 + 1)


def package_detail(call: ChannelCall) -> dict[str, Any]:
    if not call.tracking_number:
        raise GiveUp(f"shipment {call.shipment_id} has no tracking number to confirm with")
    carrier = (call.carrier or "").strip()
    code = CARRIER_CODES.get(carrier.lower(), OTHER_CARRIER)
    detail: dict[str, Any] = {
        "packageReferenceId": package_reference(call.shipment_id or call.call_id),
        "carrierCode": code,
        "trackingNumber": call.tracking_number,
        "shipDate": call.reported_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "orderItems": [
            {"orderItemId": line.line_id, "quantity": line.quantity} for line in call.lines
        ],
    }
    if code == OTHER_CARRIER:
        detail["carrierName"] = carrier or "Unknown"
    return detail


class AmazonSync:
    """Makes a `ChannelCall` happen on one SP-API endpoint and marketplace."""

    channel = "amazon"

    def __init__(self, http: ChannelHttp, marketplace_id: str) -> None:
        self.http = http
        self.marketplace_id = marketplace_id

    async def perform(self, call: ChannelCall) -> Done:
        if call.kind != ChannelCallKind.FULFIL:
            raise GiveUp(f"{call.kind.value} is not sent to the marketplace")
        order = call.channel_order_ref
        detail = package_detail(call)
        await self.http.call(
            "POST",
            f"/orders/v0/orders/{order}/shipmentConfirmation",
            "confirm_shipment",
            body={"marketplaceId": self.marketplace_id, "packageDetail": detail},
        )
        package = str(detail["packageReferenceId"])
        return Done(f"shipment confirmed as package {package}", package)

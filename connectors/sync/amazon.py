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
the 0.5 a second an order lookup would).

A cancel goes the way SP-API has for a seller: the order acknowledgement feed
(``POST_ORDER_ACKNOWLEDGEMENT_DATA``, Feeds API 2021-06-30): ``StatusCode`` ``Failure`` cancels
the order, or, with ``Item`` elements, those items, each with a ``CancelReason``. The order is
read first (``getOrder``): one Amazon cancelled already (the buyer or Amazon did, and the news
reached us) is done. The feed cancels whole items only, and nothing once an item was confirmed
shipped (Amazon would refund the whole order): a line cancel of part of an item, or of an
order that shipped in part, is given up saying so, for a person in Seller Central. Then the
feed document is created, the XML uploaded to its presigned URL, and the feed created; Amazon
processes it within minutes, so the call is done when the feed is accepted (its id is the
record's ``channel_ref``; ``getFeed`` tells how it went).

A confirmation Amazon refuses (400) is given up; when the order reads ``Canceled`` (a shipment
that left after the cancel), the give-up says so, with the tracking number, for a person.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp

from connectors.sync.calls import Done
from connectors.sync.http import ChannelHttp, GiveUp, TryAgain, quote
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
ACK_FEED = "POST_ORDER_ACKNOWLEDGEMENT_DATA"
FEED_CONTENT_TYPE = "text/xml; charset=UTF-8"
FEEDS = "/feeds/2021-06-30"


def cancel_reason(reason: str | None) -> str:
    """An acknowledgement feed ``CancelReason`` for ours."""
    text = (reason or "").lower()
    if "backorder" in text or "stock" in text or "inventory" in text:
        return "NoInventory"
    if "address" in text:
        return "ShippingAddressUndeliverable"
    if "customer" in text or "buyer" in text:
        return "BuyerCanceled"
    return "GeneralAdjustment"


def ack_feed(seller_id: str, order_id: str, items: list[str], reason: str) -> bytes:
    """The acknowledgement feed that cancels ``order_id`` (``items``: only those items)."""
    root = ET.Element(
        "AmazonEnvelope",
        {
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:noNamespaceSchemaLocation": "amzn-envelope.xsd",
        },
    )
    header = ET.SubElement(root, "Header")
    ET.SubElement(header, "DocumentVersion").text = "1.01"
    ET.SubElement(header, "MerchantIdentifier").text = seller_id
    ET.SubElement(root, "MessageType").text = "OrderAcknowledgement"
    message = ET.SubElement(root, "Message")
    ET.SubElement(message, "MessageID").text = "1"
    ack = ET.SubElement(message, "OrderAcknowledgement")
    ET.SubElement(ack, "AmazonOrderID").text = order_id
    ET.SubElement(ack, "StatusCode").text = "Failure"
    for code in items:
        item = ET.SubElement(ack, "Item")
        ET.SubElement(item, "AmazonOrderItemCode").text = code
        ET.SubElement(item, "CancelReason").text = reason
    return bytes(ET.tostring(root, encoding="UTF-8", xml_declaration=True))


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

    def __init__(self, http: ChannelHttp, marketplace_id: str, seller_id: str = "") -> None:
        self.http = http
        self.marketplace_id = marketplace_id
        self.seller_id = seller_id

    async def perform(self, call: ChannelCall) -> Done:
        if call.kind == ChannelCallKind.CANCEL:
            return await self.cancel(call)
        order = call.channel_order_ref
        detail = package_detail(call)
        path = f"/orders/v0/orders/{order}/shipmentConfirmation"
        answer = await self.http.call(
            "POST",
            path,
            "confirm_shipment",
            body={"marketplaceId": self.marketplace_id, "packageDetail": detail},
            handles=(400,),
        )
        if answer.status == 400:
            await self._not_cancelled(call)
            raise GiveUp(f"POST {path} answered 400: {quote(answer.body)}")
        package = str(detail["packageReferenceId"])
        return Done(f"shipment confirmed as package {package}", package)

    async def _not_cancelled(self, call: ChannelCall) -> None:
        """A confirmation refused because the order is cancelled on Amazon (the warehouse
        shipped before our cancel, or the buyer's, reached it): a person must act. The order is
        read to tell, not the refusal's wording, which Amazon does not document."""
        order = call.channel_order_ref
        found = await self._get(f"/orders/v0/orders/{order}", "get_order", order)
        if (found.get("payload") or {}).get("OrderStatus") == "Canceled":
            raise GiveUp(
                f"marketplace order {order} is cancelled, but shipment {call.shipment_id} left "
                f"anyway (tracking {call.tracking_number}): refund or reach the customer"
            )

    async def cancel(self, call: ChannelCall) -> Done:
        """The order, or the items of ``call.lines``, cancelled through the feed."""
        order = call.channel_order_ref
        found = await self._get(f"/orders/v0/orders/{order}", "get_order", order)
        status = str((found.get("payload") or {}).get("OrderStatus", ""))
        if status == "Canceled":
            return Done("already cancelled on the marketplace", order)
        if status in ("Shipped", "PartiallyShipped"):
            raise GiveUp(
                f"marketplace order {order} is {status}: Amazon takes no seller cancel once an"
                " item shipped (it would refund the whole order); settle it in Seller Central"
            )
        items = await self._whole_items(call) if call.lines else []
        content = ack_feed(self.seller_id, order, items, cancel_reason(call.reason))
        feed = await self._send_feed(content)
        what = f"items {', '.join(items)}" if items else "the order"
        return Done(f"cancel of {what} sent in feed {feed}", feed)

    async def _whole_items(self, call: ChannelCall) -> list[str]:
        """The order items ``call.lines`` cancel, each whole (the feed cancels no less)."""
        order = call.channel_order_ref
        found = await self._get(f"/orders/v0/orders/{order}/orderItems", "get_order_items", order)
        left = {
            str(item.get("OrderItemId")): int(item.get("QuantityOrdered", 0))
            for item in (found.get("payload") or {}).get("OrderItems", [])
        }
        for line in call.lines:
            if line.line_id not in left:
                raise GiveUp(f"line {line.line_id} is not an item of marketplace order {order}")
            if line.quantity < left[line.line_id]:
                raise GiveUp(
                    f"{line.quantity} of {left[line.line_id]} units of item {line.line_id}"
                    f" cancelled: Amazon's feed cancels whole items only; settle it in"
                    " Seller Central"
                )
        return [line.line_id for line in call.lines]

    async def _send_feed(self, content: bytes) -> str:
        made = await self.http.call(
            "POST",
            f"{FEEDS}/documents",
            "create_feed_document",
            body={"contentType": FEED_CONTENT_TYPE},
        )
        document = made.body if isinstance(made.body, dict) else {}
        await self._upload(str(document.get("url", "")), content)
        feed = await self.http.call(
            "POST",
            f"{FEEDS}/feeds",
            "create_feed",
            body={
                "feedType": ACK_FEED,
                "marketplaceIds": [self.marketplace_id],
                "inputFeedDocumentId": document.get("feedDocumentId"),
            },
        )
        return str((feed.body or {}).get("feedId"))

    async def _upload(self, url: str, content: bytes) -> None:
        """The feed's content to its presigned URL (no SP-API token: the URL is signed)."""
        headers = {"Content-Type": FEED_CONTENT_TYPE}
        try:
            async with self.http.session.put(url, data=content, headers=headers) as answer:
                said = (await answer.read())[:300].decode(errors="replace")
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TryAgain(f"PUT feed document: {type(exc).__name__}: {exc}") from exc
        if status != 200:  # an expired URL (403) too: the next attempt makes a new document
            raise TryAgain(f"PUT feed document answered {status}: {said}")

    async def _get(self, path: str, name: str, order: str) -> dict[str, Any]:
        answer = await self.http.call("GET", path, name, handles=(404,))
        if answer.status == 404:
            raise GiveUp(f"the marketplace has no order {order} (GET {path} answered 404)")
        return answer.body if isinstance(answer.body, dict) else {}

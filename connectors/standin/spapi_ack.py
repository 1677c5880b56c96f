"""The order acknowledgement feed (``POST_ORDER_ACKNOWLEDGEMENT_DATA``): how a seller cancels
a marketplace order, read and applied as Amazon does, with the processing report it writes.

The feed is XML: an ``AmazonEnvelope`` whose ``MessageType`` is ``OrderAcknowledgement`` and
whose ``Message`` elements each hold a ``MessageID`` and an ``OrderAcknowledgement`` with
``AmazonOrderID``, optionally ``MerchantOrderID``, ``StatusCode`` (``Success`` or
``Failure``) and any number of ``Item`` (``AmazonOrderItemCode``, ``MerchantOrderItemID``,
``CancelReason``). "Sending status code Failure will automatically cancel the order"; an
``Item`` names what to cancel, ``CancelReason`` is one of the ten listed below, "used only when
sending a StatusCode of Failure" (OrderAcknowledgement.xsd, release 4.1; the feed type is
listed at https://developer-docs.amazon.com/sp-api/docs/feed-type-values).

Where the docs leave the outcome open the stand-in is strict, so that a client bug shows:

- Amazon warns not to send ``Failure`` "after at least one item in the order has been
  confirmed as shipped" (it would refund the whole order); the stand-in refuses such a
  message with an error in the report instead of refunding.
- A ``Failure`` for an order already canceled, an unknown order or item, a bad reason: an
  error result for that message; the other messages still apply.

The report is the MWS/SP-API ``ProcessingReport`` envelope (``StatusCode`` ``Complete``,
``ProcessingSummary`` counts, one ``Result`` per message with an error). Its
``ResultMessageCode`` values are the stand-in's own: Amazon does not document which number
each of these cases gets.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field

from connectors.standin.spapi_orders import MarketOrder

CANCEL_REASONS = frozenset(
    {
        "NoInventory",
        "ShippingAddressUndeliverable",
        "CustomerExchange",
        "BuyerCanceled",
        "GeneralAdjustment",
        "CarrierCreditDecision",
        "RiskAssessmentInformationNotValid",
        "CarrierCoverageFailure",
        "CustomerReturn",
        "MerchandiseNotReceived",
    }
)
# The stand-in's result codes (see the module docstring).
CODE_INVALID = 90001
CODE_UNKNOWN_ORDER = 90002
CODE_UNKNOWN_ITEM = 90003
CODE_SHIPPED = 90004
CODE_CANCELED = 90005


class FeedDocumentError(ValueError):
    """The document as a whole is not an order acknowledgement feed (the feed is FATAL)."""


@dataclass(frozen=True)
class AckItem:
    order_item_code: str | None
    merchant_item_id: str | None
    cancel_reason: str | None


@dataclass(frozen=True)
class AckMessage:
    message_id: str
    order_id: str | None
    merchant_order_id: str | None
    status_code: str | None
    items: tuple[AckItem, ...]


@dataclass(frozen=True)
class AckResult:
    message_id: str
    code: int | None = None  # None: applied
    description: str = ""
    order_id: str | None = None


@dataclass
class Report:
    results: list[AckResult] = field(default_factory=list)

    @property
    def errors(self) -> list[AckResult]:
        return [result for result in self.results if result.code is not None]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(element: ET.Element | None, name: str) -> str | None:
    if element is None:
        return None
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip() or None
    return None


def parse_feed(content: bytes) -> list[AckMessage]:
    """The messages of an acknowledgement feed, or `FeedDocumentError` saying why not."""
    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
        # Amazon validates against its XSD and takes no DTD; refusing one also keeps entity
        # expansion out of the parser.
        raise FeedDocumentError("DOCTYPE and ENTITY declarations are not accepted")
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise FeedDocumentError(f"XML Parsing Fatal Error: {exc}") from None
    if _local(root.tag) != "AmazonEnvelope":
        raise FeedDocumentError("the root element must be AmazonEnvelope")
    if _text(root, "MessageType") != "OrderAcknowledgement":
        raise FeedDocumentError("MessageType must be OrderAcknowledgement")
    messages = [child for child in root if _local(child.tag) == "Message"]
    if not messages:
        raise FeedDocumentError("the envelope holds no Message")
    return [_message(index, message) for index, message in enumerate(messages, 1)]


def _message(index: int, message: ET.Element) -> AckMessage:
    ack = next((c for c in message if _local(c.tag) == "OrderAcknowledgement"), None)
    items = tuple(
        AckItem(
            _text(item, "AmazonOrderItemCode"),
            _text(item, "MerchantOrderItemID"),
            _text(item, "CancelReason"),
        )
        for item in (ack if ack is not None else [])
        if _local(item.tag) == "Item"
    )
    return AckMessage(
        message_id=_text(message, "MessageID") or str(index),
        order_id=_text(ack, "AmazonOrderID"),
        merchant_order_id=_text(ack, "MerchantOrderID"),
        status_code=_text(ack, "StatusCode"),
        items=items,
    )


def apply_feed(
    messages: list[AckMessage], orders: Mapping[str, MarketOrder], feed_id: str, at: str
) -> Report:
    return Report([apply_message(message, orders, feed_id, at) for message in messages])


def apply_message(
    message: AckMessage, orders: Mapping[str, MarketOrder], feed_id: str, at: str
) -> AckResult:
    """One message applied to the orders, or why it was not."""
    refusal = _invalid(message)
    if refusal is not None:
        return AckResult(message.message_id, CODE_INVALID, refusal, message.order_id)
    order = orders.get(message.order_id or "")
    if order is None:
        return AckResult(message.message_id, CODE_UNKNOWN_ORDER, "AmazonOrderID not found.")
    record = {"feedId": feed_id, "messageId": message.message_id, "at": at}
    if message.status_code == "Success":
        order.acknowledgements.append({**record, "merchantOrderId": message.merchant_order_id})
        return AckResult(message.message_id, order_id=order.id)
    return _cancel(message, order, record, at)


def _invalid(message: AckMessage) -> str | None:
    """What the XSD would refuse in this message."""
    if message.order_id is None:
        return "AmazonOrderID is required."
    if message.status_code not in ("Success", "Failure"):
        return "StatusCode must be Success or Failure."
    for item in message.items:
        if item.order_item_code is None:
            return "Item needs an AmazonOrderItemCode."
        if item.cancel_reason is not None and item.cancel_reason not in CANCEL_REASONS:
            return f"CancelReason {item.cancel_reason} is not a valid value."
        if item.cancel_reason is not None and message.status_code != "Failure":
            return "CancelReason is used only with StatusCode Failure."
    return None


def _cancel(
    message: AckMessage, order: MarketOrder, record: Mapping[str, object], at: str
) -> AckResult:
    mid = message.message_id
    if order.status() == "Canceled":
        return AckResult(mid, CODE_CANCELED, "The order is already canceled.", order.id)
    # _invalid() made sure every item has its code
    reasons = {str(item.order_item_code): item.cancel_reason for item in message.items}
    targets = list(reasons) if reasons else list(order.items)
    if unknown := [code for code in targets if code not in order.items]:
        return AckResult(mid, CODE_UNKNOWN_ITEM, f"AmazonOrderItemCode {unknown[0]} not found.")
    if any(order.shipped(code) for code in targets):
        return AckResult(mid, CODE_SHIPPED, "Items of this order were confirmed shipped.", order.id)
    canceled = []
    for code in targets:
        item = order.items[code]
        quantity = item.ordered - item.cancelled
        item.cancelled += quantity
        canceled.append({"orderItemId": code, "quantity": quantity, "reason": reasons.get(code)})
    order.cancellations.append({**record, "items": canceled})
    order.last_update = at
    return AckResult(mid, order_id=order.id)


def report_xml(report: Report, merchant: str, transaction_id: str) -> bytes:
    """The feed's processing report, as the result document holds it."""
    root = ET.Element(
        "AmazonEnvelope",
        {
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:noNamespaceSchemaLocation": "amzn-envelope.xsd",
        },
    )
    header = ET.SubElement(root, "Header")
    ET.SubElement(header, "DocumentVersion").text = "1.02"
    ET.SubElement(header, "MerchantIdentifier").text = merchant
    ET.SubElement(root, "MessageType").text = "ProcessingReport"
    message = ET.SubElement(root, "Message")
    ET.SubElement(message, "MessageID").text = "1"
    processing = ET.SubElement(message, "ProcessingReport")
    ET.SubElement(processing, "DocumentTransactionID").text = transaction_id
    ET.SubElement(processing, "StatusCode").text = "Complete"
    summary = ET.SubElement(processing, "ProcessingSummary")
    counts = {
        "MessagesProcessed": len(report.results),
        "MessagesSuccessful": len(report.results) - len(report.errors),
        "MessagesWithError": len(report.errors),
        "MessagesWithWarning": 0,
    }
    for name, count in counts.items():
        ET.SubElement(summary, name).text = str(count)
    for error in report.errors:
        _result(processing, error)
    declaration = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return (declaration + ET.tostring(root, encoding="unicode")).encode()


def _result(parent: ET.Element, error: AckResult) -> None:
    result = ET.SubElement(parent, "Result")
    ET.SubElement(result, "MessageID").text = error.message_id
    ET.SubElement(result, "ResultCode").text = "Error"
    ET.SubElement(result, "ResultMessageCode").text = str(error.code)
    ET.SubElement(result, "ResultDescription").text = error.description
    if error.order_id:
        info = ET.SubElement(result, "AdditionalInfo")
        ET.SubElement(info, "AmazonOrderID").text = error.order_id


def fatal_report_xml(reason: str, merchant: str, transaction_id: str) -> bytes:
    """The report of a feed that could not be read at all."""
    report = Report([AckResult("0", CODE_INVALID, reason)])
    return report_xml(report, merchant, transaction_id)

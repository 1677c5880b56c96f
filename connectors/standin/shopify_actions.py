"""What the shop does when a client fulfils, cancels or refunds: each request checked in full
against the shop's state before anything changes, then applied, then answered.

- Fulfil (https://shopify.dev/docs/api/admin-rest/2025-01/resources/fulfillment): the
  fulfillment orders must be of one order and one location ("The fulfillment orders are
  associated with the same order and are assigned to the same location") and open or in
  progress; omitted ``fulfillment_order_line_items`` means every remaining line; each quantity
  is at least 1 and at most what is left. Answer: ``201 {"fulfillment": ...}``.
- Cancel (https://shopify.dev/docs/api/admin-rest/2025-01/resources/order): refused for an
  order already cancelled, and since March 2018 for one with fulfillments
  (https://shopify.dev/changelog/fulfilled-and-partially-fulfilled-orders-can-no-longer-be-canceled-by-using-the-order-resource).
  Answer: ``200 {"order": ...}``.
- Refund (https://shopify.dev/docs/api/admin-rest/2025-01/resources/refund): ``cancel``
  takes back unfulfilled units ("The number of fulfillable units for this line item will
  decrease"), ``return`` fulfilled ones, ``no_restock`` only money; ``location_id`` is
  "required when the value of restock_type is return or cancel". Answer: ``201 {"refund"}``.

The docs give no wording for most refusals; the sentences here are the stand-in's own and say
so where they are defined.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from connectors.standin.shopify_models import (
    BAD_QUANTITY,
    NOT_OPEN,
    CancelOrder,
    FulfillmentCreate,
    LineItemsByFulfillmentOrder,
    RefundCreate,
    RefundLineItemInput,
    TrackingInfo,
    invalid_fields,
    parse_fields,
    parse_wrapped,
    unprocessable,
)
from connectors.standin.shopify_orders import (
    FULFILLABLE_STATUSES,
    FoLine,
    FulfillmentOrder,
    Order,
    OrderBook,
    line_item_json,
    order_json,
)

# The stand-in's own wording where Shopify documents the rule but not the sentence.
MIXED_FULFILLMENT_ORDERS = (
    "The fulfillment orders must belong to the same order and be assigned to the same location."
)
UNKNOWN_FO_LINE = "Invalid fulfillment order line item id."
NOTHING_REQUESTED = "No fulfillment order line items were requested."
ALREADY_CANCELLED = "Order has already been cancelled."
HAS_FULFILLMENTS = "Cannot cancel an order that has fulfillments."
# Tracking URLs Shopify builds for a known company (it documents that it does, not how).
TRACKING_URLS = {
    "UPS": "https://www.ups.com/WebTracking?loc=en_US&requester=ST&trackNums={}",
    "USPS": "https://tools.usps.com/go/TrackConfirmAction_input?qtc_tLabels1={}",
    "FedEx": "https://www.fedex.com/fedextrack/?trknbr={}",
    "DHL Express": "https://www.dhl.com/en/express/tracking.html?AWB={}",
}

Plan = list[tuple[FulfillmentOrder, FoLine, int]]


def create_fulfillment(book: OrderBook, body: Any) -> tuple[int, dict[str, Any]]:
    request = parse_wrapped(
        body, "fulfillment", FulfillmentCreate, required=("line_items_by_fulfillment_order",)
    )
    order, plan = _plan_fulfillment(book, request.line_items_by_fulfillment_order)
    at = book.timestamp()
    for _fo, line, quantity in plan:
        line.fulfillable -= quantity
        order.lines[line.line_item_id].fulfilled += quantity
    for fo in {id(fo): fo for fo, _, _ in plan}.values():
        fo.settle(at)
    fulfillment = _fulfillment_json(book, order, plan, request, at)
    order.fulfillments.append(fulfillment)
    order.updated_at = at
    return 201, {"fulfillment": fulfillment}


def _plan_fulfillment(
    book: OrderBook, groups: list[LineItemsByFulfillmentOrder]
) -> tuple[Order, Plan]:
    resolved = [(group, *book.fulfillment_order(group.fulfillment_order_id)) for group in groups]
    orders = {order.id for _, order, _ in resolved}
    locations = {fo.location_id for _, _, fo in resolved}
    if len(orders) > 1 or len(locations) > 1:
        raise unprocessable(MIXED_FULFILLMENT_ORDERS)
    if any(fo.status not in FULFILLABLE_STATUSES for _, _, fo in resolved):
        raise unprocessable(NOT_OPEN)
    wanted: Counter[tuple[int, int]] = Counter()
    lines: dict[tuple[int, int], tuple[FulfillmentOrder, FoLine]] = {}
    for group, _, fo in resolved:
        for line, quantity in _requested_lines(group, fo):
            wanted[fo.id, line.id] += quantity
            lines[fo.id, line.id] = (fo, line)
    for key, quantity in wanted.items():
        if quantity > lines[key][1].fulfillable:
            raise unprocessable(BAD_QUANTITY)
    if not wanted:  # only empty fulfillment_order_line_items lists: open orders have lines left
        raise unprocessable(NOTHING_REQUESTED)
    plan = [(*lines[key], quantity) for key, quantity in wanted.items()]
    return resolved[0][1], plan


def _requested_lines(
    group: LineItemsByFulfillmentOrder, fo: FulfillmentOrder
) -> list[tuple[FoLine, int]]:
    if group.fulfillment_order_line_items is None:
        return [(line, line.fulfillable) for line in fo.lines if line.fulfillable > 0]
    requested = []
    for item in group.fulfillment_order_line_items:
        line = fo.line(item.id)
        if line is None:
            raise unprocessable(UNKNOWN_FO_LINE)
        if item.quantity < 1:  # documented "(minimum: 1)"
            raise unprocessable(BAD_QUANTITY)
        requested.append((line, item.quantity))
    return requested


def _fulfillment_json(
    book: OrderBook, order: Order, plan: Plan, request: FulfillmentCreate, at: str
) -> dict[str, Any]:
    fulfillment_id = book.next_id()
    number, company, url = _tracking(request.tracking_info)
    line_items = []
    for _, fo_line, quantity in plan:
        line = order.lines[fo_line.line_item_id]
        shown = line_item_json(order, line)
        line_items.append(
            {**shown, "quantity": quantity, "fulfillment_line_item_id": book.next_id()}
        )
    origin = request.origin_address.model_dump() if request.origin_address else None
    return {
        "id": fulfillment_id,
        "order_id": order.id,
        "status": "success",
        "created_at": at,
        "service": "manual",
        "updated_at": at,
        "tracking_company": company,
        "shipment_status": None,
        "location_id": plan[0][0].location_id,
        "origin_address": origin,
        "line_items": line_items,
        "tracking_number": number,
        "tracking_numbers": [number] if number else [],
        "tracking_url": url,
        "tracking_urls": [url] if url else [],
        "receipt": {},
        "name": f"{order.name}.{len(order.fulfillments) + 1}",
        "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment_id}",
    }


def _tracking(info: TrackingInfo | None) -> tuple[str | None, str | None, str | None]:
    """Number, company and URL as Shopify stores them: a number in UPS's ``1Z`` format names
    UPS, a known company gets its URL built, a URL without a scheme gets ``http://``
    (all three documented under ``tracking_info``)."""
    if info is None:
        return None, None, None
    number = str(info.number) if info.number is not None else None
    company = info.company
    if company is None and number and number.upper().startswith("1Z"):
        company = "UPS"
    url = info.url
    if url and "://" not in url:
        url = f"http://{url}"
    if url is None and number and company in TRACKING_URLS:
        url = TRACKING_URLS[company].format(number)
    return number, company, url


def cancel_order(book: OrderBook, order_id: int, body: Any) -> tuple[int, dict[str, Any]]:
    order = book.order(order_id)
    request = parse_fields(body if isinstance(body, dict) else {}, CancelOrder)
    if order.cancelled:
        raise unprocessable(ALREADY_CANCELLED)
    if order.fulfillments:
        raise unprocessable(HAS_FULFILLMENTS)
    apply_cancel(book, order, request.reason)
    return 200, {"order": order_json(order)}


def apply_cancel(book: OrderBook, order: Order, reason: str) -> None:
    """Cancel ``order``: nothing of it is to be fulfilled any more. Its open fulfillment
    orders close (the docs do not say which status they end in; ``closed`` is what a
    fulfillment order with nothing left to fulfil shows)."""
    at = book.timestamp()
    order.cancelled_at = at
    order.cancel_reason = reason
    order.updated_at = at
    for fo in order.fulfillment_orders:
        for line in fo.lines:
            line.fulfillable = 0
        fo.settle(at)


def create_refund(book: OrderBook, order_id: int, body: Any) -> tuple[int, dict[str, Any]]:
    order = book.order(order_id)
    request = parse_wrapped(body, "refund", RefundCreate)
    _check_refund_lines(book, order, request.refund_line_items)
    at = book.timestamp()
    shown = [_apply_refund_line(book, order, item, at) for item in request.refund_line_items]
    refund = _refund_json(book, order, request, shown, at)
    order.refunds.append(refund)
    order.updated_at = at
    return 201, {"refund": refund}


def _check_refund_lines(book: OrderBook, order: Order, items: list[RefundLineItemInput]) -> None:
    """Every line checked before any applies. Messages are the stand-in's (Rails' usual
    "is invalid" / "can't be blank" where a field is wrong)."""
    wanted: Counter[tuple[int, str]] = Counter()
    for index, item in enumerate(items):
        where = f"refund_line_items.{index}"
        if item.line_item_id not in order.lines:
            raise invalid_fields({f"{where}.line_item_id": ["is invalid"]})
        if item.restock_type not in ("no_restock", "cancel", "return"):
            raise invalid_fields({f"{where}.restock_type": ["is not included in the list"]})
        if item.restock_type != "no_restock":
            if item.location_id is None:
                raise invalid_fields({f"{where}.location_id": ["can't be blank"]})
            if item.location_id not in book.locations:
                raise invalid_fields({f"{where}.location_id": ["is invalid"]})
        if item.quantity < 1:
            raise invalid_fields({f"{where}.quantity": ["must be greater than 0"]})
        wanted[item.line_item_id, item.restock_type] += item.quantity
    for (line_id, restock_type), quantity in wanted.items():
        if quantity > _refundable(order, line_id, restock_type):
            raise invalid_fields(
                {"refund_line_items.quantity": ["cannot refund more items than are refundable"]}
            )


def _refundable(order: Order, line_id: int, restock_type: str) -> int:
    line = order.lines[line_id]
    if restock_type == "cancel":
        return line.fulfillable(order.cancelled)
    if restock_type == "return":
        return line.fulfilled - line.returned
    return line.quantity - line.refunded


def _apply_refund_line(
    book: OrderBook, order: Order, item: RefundLineItemInput, at: str
) -> dict[str, Any]:
    line = order.lines[item.line_item_id]
    line.refunded += item.quantity
    if item.restock_type == "return":
        line.returned += item.quantity
    if item.restock_type == "cancel":
        line.removed += item.quantity
        _remove_from_fulfillment_orders(order, line.id, item.quantity, at)
    subtotal = line.unit_price() * item.quantity
    money = {"amount": f"{subtotal:.2f}", "currency_code": order.data.get("currency")}
    no_tax = {"amount": "0.00", "currency_code": order.data.get("currency")}
    return {
        "id": book.next_id(),
        "quantity": item.quantity,
        "line_item_id": line.id,
        "location_id": item.location_id if item.restock_type != "no_restock" else None,
        "restock_type": item.restock_type,
        "subtotal": float(subtotal),
        "total_tax": 0.0,
        "subtotal_set": {"shop_money": money, "presentment_money": money},
        "total_tax_set": {"shop_money": no_tax, "presentment_money": no_tax},
        "line_item": line_item_json(order, line),
    }


def _remove_from_fulfillment_orders(order: Order, line_id: int, quantity: int, at: str) -> None:
    for fo in order.fulfillment_orders:
        for line in fo.lines:
            if quantity > 0 and line.line_item_id == line_id and line.fulfillable > 0:
                taken = min(quantity, line.fulfillable)
                line.fulfillable -= taken
                line.quantity -= taken
                quantity -= taken
                fo.settle(at)


def _refund_json(
    book: OrderBook, order: Order, request: RefundCreate, lines: list[dict[str, Any]], at: str
) -> dict[str, Any]:
    refund_id = book.next_id()
    transactions = [
        {
            **given,
            "id": book.next_id(),
            "order_id": order.id,
            "kind": given.get("kind", "refund"),
            "status": "success",
            "created_at": at,
        }
        for given in request.transactions
    ]
    return {
        "id": refund_id,
        "order_id": order.id,
        "created_at": at,
        "note": request.note,
        "user_id": None,
        "processed_at": at,
        "restock": any(line["restock_type"] != "no_restock" for line in lines),
        "duties": [],
        "refund_shipping_lines": [],
        "order_adjustments": [],
        "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
        "refund_line_items": lines,
        "transactions": transactions,
    }

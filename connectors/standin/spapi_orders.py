"""The stand-in marketplace's orders and the seller's shipment confirmations (Orders API v0,
https://github.com/amzn/selling-partner-api-models/blob/main/models/orders-api-model/ordersV0.json).

``confirmShipment`` takes ``{"marketplaceId", "packageDetail": {"packageReferenceId",
"carrierCode", "carrierName"?, "shippingMethod"?, "trackingNumber", "shipDate",
"shipFromSupplySourceId"?, "orderItems": [{"orderItemId", "quantity",
"transparencyCodes"?}]}, "codCollectionMethod"?}``; the model's ``required`` lists name the
fields this checks for, ``shipDate`` "Must be in ISO 8601 date/time format", a
``packageReferenceId`` supports "Only positive numeric values", ``carrierName`` is "Required
when carrierCode is Other", ``codCollectionMethod`` is ``DirectPayment`` or absent. A second
confirmation with the same ``packageReferenceId`` edits that package
(https://developer-docs.amazon.com/sp-api/docs/confirm-the-shipment-status): its quantities
replace the earlier ones. Success is ``204`` without a body.

Refusals are ``400 {"errors": [{"code": "InvalidInput", "message", "details"}]}`` (the code the
model's examples use); the message is the stand-in's own wording and ``details`` names the
field. An order the marketplace does not have is ``404`` (the model's "The specified resource
does not exist.").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

NonEmpty = Annotated[StrictStr, Field(min_length=1)]
M = TypeVar("M", bound=BaseModel)


class SpApiError(Exception):
    """An SP-API refusal: the status and the ``errors`` list of its body."""

    def __init__(self, status: int, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{status}: {errors}")
        self.status = status
        self.errors = errors


def invalid_input(message: str, details: str = "") -> SpApiError:
    return SpApiError(400, [{"code": "InvalidInput", "message": message, "details": details}])


def not_found(what: str) -> SpApiError:
    message = "The specified resource does not exist."
    return SpApiError(404, [{"code": "NotFound", "message": message, "details": what}])


class NewOrderItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    OrderItemId: NonEmpty
    SellerSKU: str | None = None
    QuantityOrdered: int = Field(ge=1)


class NewOrder(BaseModel):
    """An order as the control API takes it; other SP-API order fields are kept as given."""

    model_config = ConfigDict(extra="allow")

    AmazonOrderId: NonEmpty
    MarketplaceId: NonEmpty
    OrderItems: list[NewOrderItem] = Field(min_length=1)


class ConfirmItem(BaseModel):
    orderItemId: NonEmpty
    quantity: StrictInt = Field(ge=1)
    transparencyCodes: list[StrictStr] | None = None


class PackageDetail(BaseModel):
    packageReferenceId: NonEmpty
    carrierCode: NonEmpty
    carrierName: StrictStr | None = None
    shippingMethod: StrictStr | None = None
    trackingNumber: NonEmpty
    shipDate: NonEmpty
    shipFromSupplySourceId: StrictStr | None = None
    orderItems: list[ConfirmItem] = Field(min_length=1)


class ConfirmShipmentRequest(BaseModel):
    marketplaceId: NonEmpty
    packageDetail: PackageDetail
    codCollectionMethod: Literal["DirectPayment"] | None = None


@dataclass
class ItemState:
    data: dict[str, Any]
    ordered: int
    cancelled: int = 0

    @property
    def id(self) -> str:
        return str(self.data["OrderItemId"])


@dataclass
class MarketOrder:
    data: dict[str, Any]
    items: dict[str, ItemState]
    last_update: str
    packages: dict[str, dict[str, Any]] = field(default_factory=dict)
    confirmations: list[dict[str, Any]] = field(default_factory=list)
    cancellations: list[dict[str, Any]] = field(default_factory=list)
    acknowledgements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.data["AmazonOrderId"])

    def shipped(self, item_id: str, except_package: str | None = None) -> int:
        return sum(
            quantity
            for reference, package in self.packages.items()
            if reference != except_package
            for line, quantity in package["items"].items()
            if line == item_id
        )

    def unshipped(self, item_id: str, except_package: str | None = None) -> int:
        item = self.items[item_id]
        return item.ordered - item.cancelled - self.shipped(item_id, except_package)

    def status(self) -> str:
        """OrderStatus as the model defines the values this stand-in reaches."""
        live = sum(item.ordered - item.cancelled for item in self.items.values())
        shipped = sum(self.shipped(item_id) for item_id in self.items)
        if live == 0:
            return "Canceled"
        if shipped == 0:
            return "Unshipped"
        return "Shipped" if shipped >= live else "PartiallyShipped"


def amazon_time(moment: datetime) -> str:
    """Timestamps as SP-API writes them: ``2024-05-01T14:32:07Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_order(order_json: Any, at: str) -> MarketOrder:
    """A marketplace order from the control API's JSON; `ValueError` saying why not."""
    parsed = NewOrder.model_validate(order_json)
    data = dict(order_json)
    data.setdefault("PurchaseDate", at)
    data.setdefault("FulfillmentChannel", "MFN")
    items = {}
    for item, raw in zip(parsed.OrderItems, data.pop("OrderItems"), strict=True):
        items[item.OrderItemId] = ItemState(
            {**raw, "OrderItemId": item.OrderItemId}, item.QuantityOrdered
        )
    if len(items) != len(parsed.OrderItems):
        raise ValueError("OrderItemId values repeat")
    return MarketOrder(data=data, items=items, last_update=at)


def confirm_shipment(order: MarketOrder, body: Any, at: str) -> None:
    """Record one package of ``order`` as shipped, or raise the 400 the API would answer."""
    request = parse_request(ConfirmShipmentRequest, body)
    detail = request.packageDetail
    _check_package(order, request)
    quantities: dict[str, int] = {}
    for item in detail.orderItems:
        quantities[item.orderItemId] = quantities.get(item.orderItemId, 0) + item.quantity
    for item_id, quantity in quantities.items():
        if item_id not in order.items:
            raise invalid_input(f"The order has no item {item_id}.", "packageDetail.orderItems")
        if quantity > order.unshipped(item_id, except_package=detail.packageReferenceId):
            raise invalid_input(
                f"Quantity {quantity} of item {item_id} is more than is left to ship.",
                "packageDetail.orderItems.quantity",
            )
    replaced = detail.packageReferenceId in order.packages
    order.packages[detail.packageReferenceId] = {**detail.model_dump(), "items": quantities}
    order.confirmations.append({**request.model_dump(), "receivedAt": at, "replaced": replaced})
    order.last_update = at


def parse_request(model: type[M], body: Any) -> M:
    """``body`` as ``model``, or the 400 naming the first field that is missing or wrong."""
    if not isinstance(body, dict):
        raise invalid_input("The request body must be a JSON object.", "body")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        if first["type"] == "missing":
            raise invalid_input(f"Missing required field: {path}.", path) from None
        raise invalid_input(f"Invalid value for {path}: {first['msg']}.", path) from None


def _check_package(order: MarketOrder, request: ConfirmShipmentRequest) -> None:
    detail = request.packageDetail
    if request.marketplaceId != order.data.get("MarketplaceId"):
        raise invalid_input("The marketplaceId is not the order's marketplace.", "marketplaceId")
    if order.status() == "Canceled":
        raise invalid_input("The order is canceled.", "orderId")
    reference = detail.packageReferenceId
    if not (reference.isdigit() and int(reference) > 0):
        raise invalid_input(
            "packageReferenceId must be a positive number.", "packageDetail.packageReferenceId"
        )
    if detail.carrierCode == "Other" and not detail.carrierName:
        raise invalid_input(
            "carrierName is required when carrierCode is Other.", "packageDetail.carrierName"
        )
    if not _is_iso_datetime(detail.shipDate):
        raise invalid_input("shipDate must be an ISO 8601 date-time.", "packageDetail.shipDate")


def _is_iso_datetime(value: str) -> bool:
    if "T" not in value:
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def order_payload(order: MarketOrder) -> dict[str, Any]:
    """``getOrder``'s answer: ``{"payload": Order}``."""
    shipped = sum(order.shipped(item_id) for item_id in order.items)
    live = sum(item.ordered - item.cancelled for item in order.items.values())
    return {
        "payload": {
            **order.data,
            "LastUpdateDate": order.last_update,
            "OrderStatus": order.status(),
            "NumberOfItemsShipped": shipped,
            "NumberOfItemsUnshipped": max(0, live - shipped),
        }
    }


def items_payload(order: MarketOrder) -> dict[str, Any]:
    """``getOrderItems``' answer. A canceled unit no longer counts as ordered: what Amazon
    shows for canceled items (the docs do not spell it out)."""
    items = [
        {
            "ASIN": item.data.get("ASIN", "B000000000"),
            **item.data,
            "QuantityOrdered": item.ordered - item.cancelled,
            "QuantityShipped": order.shipped(item.id),
        }
        for item in order.items.values()
    ]
    return {"payload": {"AmazonOrderId": order.id, "OrderItems": items}}

"""The marketplace channel: an Amazon SP-API-like order document as a contract `OrderPlaced`.

Pure mapping, no network: the HTTP endpoint and file-drop feeds both call
`marketplace_order`. Field names are SP-API's (``AmazonOrderId``, ``OrderItems``, ...); other
fields are ignored. Conventions:

- ``order_id`` is ``MKT-<AmazonOrderId>``, ``event_id`` ``marketplace-order-placed-<id>``:
  the same document always yields the same event.
- ``ItemPrice.Amount`` is, as in SP-API, the price of the whole line (unit price times
  quantity); the contract's ``unit_price`` is that divided by ``QuantityOrdered``.
- The customer is the (anonymised, per-seller stable) buyer e-mail, hashed into
  ``amazon-<digest>``; without one, ``amazon-guest-<AmazonOrderId>``.
- ``ShipmentServiceLevelCategory``: NextDay / SameDay -> NEXT_DAY, Expedited / SecondDay /
  Priority -> EXPRESS, anything else -> STANDARD.
- Marketplace orders always ship (no pickup).

Cancellations (`marketplace_cancellation`) arrive as the order's document again, as SP-API's
``getOrder`` returns it once the order is cancelled: ``OrderStatus`` ``Canceled`` (the only status
that cancels: a buyer's request alone, ``BuyerRequestedCancel.IsBuyerRequestedCancel`` on an
item, is for the seller to grant on the marketplace first), ``LastUpdateDate`` the time of the
cancellation, and the buyer's ``BuyerCancelReason``, when a buyer asked, in the reason. It is an
`OrderCancelled` of ``MKT-<AmazonOrderId>``, event id ``marketplace-order-cancelled-<id>``.

Problems come out as `MarketplaceOrderError`, whose ``errors`` hold ``{field, message}`` with
the field path in the document (``OrderItems.0.QuantityOrdered``).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectors.shopify import (
    FieldError,
    PayloadError,
    build_order,
    field_errors,
    field_path,
    validate_payload,
)

# Aliased: SP-API's field names (CurrencyCode, CountryCode) would shadow the types.
from schemas.common import Address, Id, Money, Quantity
from schemas.common import CountryCode as Country
from schemas.common import CurrencyCode as Currency
from schemas.enums import Channel, FulfillmentMethod, ServiceLevel
from schemas.orders import Customer, OrderCancelled, OrderLine, OrderPlaced

__all__ = [
    "FieldError",
    "MarketplaceCancellation",
    "MarketplaceOrder",
    "MarketplaceOrderError",
    "field_errors",
    "marketplace_cancellation",
    "marketplace_order",
    "order_placed",
    "parse_marketplace_order",
]

CANCELED = "canceled"
"""SP-API's ``OrderStatus`` of a cancelled order (the British spelling is taken too)."""

SERVICE_LEVELS: dict[str, ServiceLevel] = {
    "nextday": ServiceLevel.NEXT_DAY,
    "sameday": ServiceLevel.NEXT_DAY,
    "expedited": ServiceLevel.EXPRESS,
    "secondday": ServiceLevel.EXPRESS,
    "priority": ServiceLevel.EXPRESS,
}


class MarketplaceOrderError(PayloadError):
    """A marketplace order document that cannot become an `OrderPlaced`."""


class SpApiModel(BaseModel):
    """SP-API documents carry much more than we read: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class SpAmount(SpApiModel):
    Amount: Money
    CurrencyCode: Currency | None = None


class SpOrderTotal(SpApiModel):
    Amount: Money
    CurrencyCode: Currency


class SpShippingAddress(SpApiModel):
    Name: str = ""
    AddressLine1: Id
    AddressLine2: str | None = None
    City: Id
    StateOrRegion: str = ""
    PostalCode: str = ""
    CountryCode: Country


class SpOrderItem(SpApiModel):
    OrderItemId: Id | None = None
    SellerSKU: Id
    QuantityOrdered: Quantity
    ItemPrice: SpAmount


class SpBuyerInfo(SpApiModel):
    BuyerEmail: str | None = None


class MarketplaceOrder(SpApiModel):
    AmazonOrderId: Id
    PurchaseDate: AwareDatetime
    OrderTotal: SpOrderTotal
    ShipmentServiceLevelCategory: str | None = None
    ShippingAddress: SpShippingAddress
    OrderItems: Annotated[list[SpOrderItem], Field(min_length=1)]
    BuyerInfo: SpBuyerInfo | None = None
    IsPrime: bool = False


class SpBuyerRequestedCancel(SpApiModel):
    IsBuyerRequestedCancel: bool = False  # SP-API sends "true" / "false"
    BuyerCancelReason: str | None = None


class SpCancelledItem(SpApiModel):
    OrderItemId: str | None = None
    BuyerRequestedCancel: SpBuyerRequestedCancel | None = None


class MarketplaceCancellation(SpApiModel):
    AmazonOrderId: Id
    OrderStatus: str
    LastUpdateDate: AwareDatetime
    OrderItems: list[SpCancelledItem] = []

    @field_validator("OrderStatus")
    @classmethod
    def _cancelled(cls, status: str) -> str:
        if status.strip().lower() not in (CANCELED, "cancelled"):
            raise ValueError(
                f"is {status!r}: only an order whose status is Canceled is cancelled (a buyer's "
                "request is granted on the marketplace first)"
            )
        return status


def parse_marketplace_order(doc: Any) -> MarketplaceOrder:
    """The document as a `MarketplaceOrder`, or `MarketplaceOrderError`."""
    result: MarketplaceOrder = validate_payload(MarketplaceOrder, doc, MarketplaceOrderError)
    return result


def marketplace_order(doc: dict[str, Any]) -> OrderPlaced:
    """An SP-API-like order document (parsed JSON) as the `OrderPlaced` it announces.

    Raises `MarketplaceOrderError` (a ``ValueError``) listing every problem with its path.
    """
    return order_placed(parse_marketplace_order(doc))


def order_placed(order: MarketplaceOrder) -> OrderPlaced:
    """The contract event of a validated marketplace order."""
    _check_currencies(order)
    email = order.BuyerInfo.BuyerEmail if order.BuyerInfo else None
    fields: dict[str, Any] = {
        "event_id": f"marketplace-order-placed-{order.AmazonOrderId}",
        "order_id": f"MKT-{order.AmazonOrderId}",
        "channel": Channel.MARKETPLACE,
        "channel_order_ref": order.AmazonOrderId,
        "placed_at": order.PurchaseDate,
        "customer": Customer(customer_id=customer_id(order.AmazonOrderId, email), email=email),
        "fulfillment_method": FulfillmentMethod.SHIP,
        "ship_to": ship_to(order.ShippingAddress),
        "lines": [
            OrderLine(
                line_id=item.OrderItemId or str(number),
                sku=item.SellerSKU,
                quantity=item.QuantityOrdered,
                unit_price=item.ItemPrice.Amount / item.QuantityOrdered,
            )
            for number, item in enumerate(order.OrderItems, start=1)
        ],
        "currency": order.OrderTotal.CurrencyCode,
        "order_total": order.OrderTotal.Amount,
        "service_level": service_level(order.ShipmentServiceLevelCategory),
        "tags": ("marketplace:amazon", *(("prime",) if order.IsPrime else ())),
    }
    return build_order(fields, MarketplaceOrderError)


def marketplace_cancellation(doc: Any) -> OrderCancelled:
    """A cancelled order's SP-API-like document (parsed JSON) as the `OrderCancelled` it
    announces; `MarketplaceOrderError` lists every problem with its path."""
    cancelled: MarketplaceCancellation = validate_payload(
        MarketplaceCancellation, doc, MarketplaceOrderError
    )
    asked = [
        (item.BuyerRequestedCancel.BuyerCancelReason or "").strip()
        for item in cancelled.OrderItems
        if item.BuyerRequestedCancel and item.BuyerRequestedCancel.IsBuyerRequestedCancel
    ]
    reason = "cancelled on the marketplace"
    if asked:
        why = "; ".join(dict.fromkeys(r for r in asked if r))
        reason += f" at the buyer's request ({why})" if why else " at the buyer's request"
    try:
        return OrderCancelled(
            event_id=f"marketplace-order-cancelled-{cancelled.AmazonOrderId}",
            order_id=f"MKT-{cancelled.AmazonOrderId}",
            reason=reason,
            cancelled_at=cancelled.LastUpdateDate,
        )
    except ValidationError as exc:
        raise MarketplaceOrderError(field_errors(exc, prefix="order_cancelled")) from exc


def _check_currencies(order: MarketplaceOrder) -> None:
    # One order, one currency: a line priced in another would make the total meaningless.
    expected = order.OrderTotal.CurrencyCode
    errors = [
        FieldError(
            field=field_path(("OrderItems", n, "ItemPrice", "CurrencyCode")),
            message=f"is {item.ItemPrice.CurrencyCode}, the order total is in {expected}",
        )
        for n, item in enumerate(order.OrderItems)
        if item.ItemPrice.CurrencyCode not in (None, expected)
    ]
    if errors:
        raise MarketplaceOrderError(errors)


def customer_id(amazon_order_id: str, email: str | None) -> str:
    """A stable id for the buyer, without putting the e-mail itself in the id."""
    if not email or not email.strip():
        return f"amazon-guest-{amazon_order_id}"
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]
    return f"amazon-{digest}"


def ship_to(address: SpShippingAddress) -> Address:
    """The contract address of the shipping address (SP-API gives no coordinates)."""
    return Address(
        name=address.Name,
        line1=address.AddressLine1,
        line2=address.AddressLine2 or None,
        city=address.City,
        region=address.StateOrRegion,
        postal_code=address.PostalCode,
        country=address.CountryCode,
    )


def service_level(category: str | None) -> ServiceLevel:
    """The contract's service level of an SP-API ``ShipmentServiceLevelCategory``."""
    return SERVICE_LEVELS.get((category or "").strip().lower(), ServiceLevel.STANDARD)

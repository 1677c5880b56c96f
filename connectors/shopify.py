"""The web store channel: a Shopify ``orders/create`` webhook body as a contract `OrderPlaced`.

Pure mapping, no network. Only the part of Shopify's order JSON we read is modelled; every
other field is ignored. Conventions (what Shopify itself does not say):

- ``order_id`` is ``WEB-<id>``; ``event_id`` is ``shopify-orders-create-<id>``: the order id
  (not the webhook id) makes it, so any re-delivery of the same order, whatever its webhook
  id, is the same event to the pipeline.
- BOPIS: the storefront marks a pickup with the note attribute ``pickup_location_id`` (the
  store's location_id, e.g. ``ST-BOS``), or with a shipping line whose code is
  ``pickup:<location_id>``. If both are given they must agree. A pickup order has no ship_to.
- Service level: from the first shipping line's code or title (``next day`` / ``overnight``
  -> NEXT_DAY, ``express`` / ``expedited`` / ``priority`` / ``2-day`` -> EXPRESS, else
  STANDARD).
- Loyalty tier: the customer tag ``tier:<TIER>`` (case-insensitive, tier upper-cased).

Errors come out as `PayloadError`: a list of ``{field, message}`` with the field path in the
webhook body (pydantic's loc joined with dots), what an HTTP 422 answers with. The marketplace
mapping shares the error type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Protocol, TypedDict

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from schemas.common import (
    Address,
    CountryCode,
    CurrencyCode,
    Id,
    Latitude,
    Longitude,
    Money,
    Quantity,
)
from schemas.enums import Channel, FulfillmentMethod, ServiceLevel
from schemas.orders import Customer, OrderLine, OrderPlaced

PICKUP_ATTRIBUTE = "pickup_location_id"
PICKUP_CODE_PREFIX = "pickup:"
TIER_TAG_PREFIX = "tier:"

# Checked in order: the first keyword found in a shipping line's code or title decides.
SERVICE_LEVEL_KEYWORDS: tuple[tuple[str, ServiceLevel], ...] = (
    ("next day", ServiceLevel.NEXT_DAY),
    ("next_day", ServiceLevel.NEXT_DAY),
    ("nextday", ServiceLevel.NEXT_DAY),
    ("overnight", ServiceLevel.NEXT_DAY),
    ("express", ServiceLevel.EXPRESS),
    ("expedited", ServiceLevel.EXPRESS),
    ("priority", ServiceLevel.EXPRESS),
    ("2-day", ServiceLevel.EXPRESS),
    ("two day", ServiceLevel.EXPRESS),
)


class FieldError(TypedDict):
    """One problem of a payload: where (dotted path in the payload) and what."""

    field: str
    message: str


class PayloadError(ValueError):
    """A channel payload that cannot become a contract event; ``errors`` says where and why."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors: list[FieldError] = list(errors)
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in self.errors))


class ShopifyOrderError(PayloadError):
    """A Shopify order body that cannot become an `OrderPlaced`."""


def field_path(loc: Iterable[int | str], prefix: str = "") -> str:
    """pydantic's ``loc`` as a dotted path (``line_items.0.sku``); the whole body is ``body``."""
    path = ".".join(str(part) for part in (*([prefix] if prefix else []), *loc))
    return path or "body"


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """A validation error as ``{field, message}`` items."""
    return [
        FieldError(
            field=field_path(error["loc"], prefix),
            message=error["msg"].removeprefix("Value error, "),
        )
        for error in exc.errors(include_url=False)
    ]


def validate_payload(model: type[BaseModel], data: Any, error: type[PayloadError]) -> Any:
    """``model`` validated from ``data``, or ``error`` with the field paths of every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(field_errors(exc)) from exc


def build_order(fields: dict[str, Any], error: type[PayloadError]) -> OrderPlaced:
    """The contract record; a rule the channel model did not check is reported as ``error``."""
    try:
        return OrderPlaced(**fields)
    except ValidationError as exc:
        raise error(field_errors(exc, prefix="order_placed")) from exc


# ---- The part of Shopify's order JSON we read ----------------------------------------------------

ShopifyId = int | Id
"""Shopify ids are 64-bit integers in REST payloads; strings are accepted too."""
NonBlank = Id
"""Text that must not be empty or blank."""


class ShopifyModel(BaseModel):
    """Shopify sends far more than we read: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class ShopifyCustomer(ShopifyModel):
    id: ShopifyId
    email: str | None = None
    tags: str = ""  # comma-separated, as Shopify sends them


class ShopifyAddress(ShopifyModel):
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    address1: NonBlank
    address2: str | None = None
    city: NonBlank
    province_code: str | None = None
    zip: str | None = None
    country_code: CountryCode
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class ShopifyLineItem(ShopifyModel):
    id: ShopifyId
    sku: Id
    quantity: Quantity
    price: Money


class ShopifyShippingLine(ShopifyModel):
    code: str | None = None
    title: str | None = None


class NoteAttribute(ShopifyModel):
    name: str
    value: str | None = None


class ShopifyOrder(ShopifyModel):
    id: ShopifyId
    name: str | None = None
    order_number: int | None = None
    created_at: AwareDatetime
    currency: CurrencyCode
    total_price: Money
    email: str | None = None
    customer: ShopifyCustomer | None = None
    shipping_address: ShopifyAddress | None = None
    line_items: Annotated[list[ShopifyLineItem], Field(min_length=1)]
    shipping_lines: list[ShopifyShippingLine] = []
    note_attributes: list[NoteAttribute] = []
    tags: str = ""


# ---- Mapping -------------------------------------------------------------------------------------


def parse_shopify_order(body: Any) -> ShopifyOrder:
    """The webhook body (parsed JSON) as a `ShopifyOrder`, or `ShopifyOrderError`."""
    result: ShopifyOrder = validate_payload(ShopifyOrder, body, ShopifyOrderError)
    return result


def shopify_order(body: Any) -> OrderPlaced:
    """An ``orders/create`` webhook body (parsed JSON) as the `OrderPlaced` it announces."""
    return order_placed(parse_shopify_order(body))


def order_placed(order: ShopifyOrder) -> OrderPlaced:
    """The contract event of a validated Shopify order."""
    pickup = pickup_location(order)
    customer = order.customer
    fields: dict[str, Any] = {
        "event_id": f"shopify-orders-create-{order.id}",
        "order_id": f"WEB-{order.id}",
        "channel": Channel.WEB,
        "channel_order_ref": order.name or str(order.order_number or order.id),
        "placed_at": order.created_at,
        "customer": Customer(
            customer_id=f"shopify-{customer.id}" if customer else f"guest-WEB-{order.id}",
            loyalty_tier=loyalty_tier(split_tags(customer.tags)) if customer else None,
            email=order.email or (customer.email if customer else None),
        ),
        "fulfillment_method": FulfillmentMethod.PICKUP if pickup else FulfillmentMethod.SHIP,
        "pickup_location_id": pickup,
        "ship_to": None if pickup else ship_to(order.shipping_address),
        "lines": [
            OrderLine(
                line_id=str(item.id), sku=item.sku, quantity=item.quantity, unit_price=item.price
            )
            for item in order.line_items
        ],
        "currency": order.currency,
        "order_total": order.total_price,
        "service_level": service_level(order.shipping_lines),
        "tags": split_tags(order.tags),
    }
    return build_order(fields, ShopifyOrderError)


class FulfilmentHints(Protocol):
    """What says how an order is fulfilled: a created order's body, or an updated one's."""

    @property
    def note_attributes(self) -> Sequence[NoteAttribute]: ...

    @property
    def shipping_lines(self) -> Sequence[ShopifyShippingLine]: ...


def pickup_location(order: FulfilmentHints) -> str | None:
    """The store a BOPIS order is collected at, or None for an order to ship."""
    by_attribute = {
        (a.value or "").strip()
        for a in order.note_attributes
        if a.name == PICKUP_ATTRIBUTE and (a.value or "").strip()
    }
    by_code = {
        line.code[len(PICKUP_CODE_PREFIX) :].strip()
        for line in order.shipping_lines
        if line.code and line.code.lower().startswith(PICKUP_CODE_PREFIX)
    }
    by_code.discard("")
    found = by_attribute | by_code
    if len(found) > 1:
        raise ShopifyOrderError(
            [
                FieldError(
                    field="note_attributes",
                    message=f"pickup locations disagree: {', '.join(sorted(found))}",
                )
            ]
        )
    return found.pop() if found else None


def ship_to(address: ShopifyAddress | None) -> Address | None:
    """The contract address of a shipping address (None: routing reports the order)."""
    if address is None:
        return None
    full_name = " ".join(p for p in (address.first_name, address.last_name) if p)
    return Address(
        name=address.name or full_name,
        line1=address.address1,
        line2=address.address2 or None,
        city=address.city,
        region=address.province_code or "",
        postal_code=address.zip or "",
        country=address.country_code,
        lat=address.latitude,
        lon=address.longitude,
    )


def service_level(lines: Sequence[ShopifyShippingLine]) -> ServiceLevel:
    """The speed the customer paid for, read from the first shipping line."""
    if not lines:
        return ServiceLevel.STANDARD
    text = f"{lines[0].code or ''} {lines[0].title or ''}".lower()
    for keyword, level in SERVICE_LEVEL_KEYWORDS:
        if keyword in text:
            return level
    return ServiceLevel.STANDARD


def split_tags(tags: str) -> tuple[str, ...]:
    """Shopify's comma-separated tags as a tuple, blanks dropped."""
    return tuple(tag.strip() for tag in tags.split(",") if tag.strip())


def loyalty_tier(tags: Iterable[str]) -> str | None:
    """``GOLD`` from a ``tier:gold`` tag; None without one."""
    for tag in tags:
        if tag.lower().startswith(TIER_TAG_PREFIX):
            tier = tag[len(TIER_TAG_PREFIX) :].strip().upper()
            if tier:
                return tier
    return None

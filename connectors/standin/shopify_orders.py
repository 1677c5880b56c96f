"""The stand-in shop's orders, their fulfillment orders, and the JSON Shopify shows of them.

An order is created from the JSON an ``orders/create`` webhook carries. Shopify then splits
it into fulfillment orders, one per location the items are assigned to
(https://shopify.dev/docs/api/admin-rest/2025-01/resources/fulfillmentorder): here every
line item goes to the shop's default location unless an ``assignments`` map sends it
elsewhere. What each unit of a line item has become is counted on the line (fulfilled,
removed by a ``cancel`` refund, refunded, returned); the fulfillment order lines count what
is left to fulfil from their location.

Statuses follow the docs: a fulfillment order is ``open`` until something of it is
fulfilled, ``in_progress`` while some is left, ``closed`` when nothing is left to fulfil
(https://shopify.dev/docs/api/admin-graphql/latest/enums/FulfillmentOrderStatus); an order's
``fulfillment_status`` is ``null``, ``partial`` or ``fulfilled``
(https://shopify.dev/docs/api/admin-rest/2025-01/resources/order).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connectors.standin.shopify_models import not_found

FULFILLABLE_STATUSES = ("open", "in_progress")
# What Shopify lists for an open fulfillment order at a merchant-managed location (seen in
# GET fulfillment_orders.json answers); nothing is supported once it is closed.
OPEN_ACTIONS = ["create_fulfillment", "hold"]
DESTINATION_FIELDS = (
    "address1",
    "address2",
    "city",
    "company",
    "country",
    "first_name",
    "last_name",
    "phone",
    "province",
    "zip",
)


class WebhookLineItem(BaseModel):
    """The part of an ``orders/create`` line item the shop needs; the rest is kept as is."""

    model_config = ConfigDict(extra="allow")

    id: int
    quantity: int = Field(ge=1)
    variant_id: int | None = None
    sku: str | None = None
    price: str | float | int | None = None


class WebhookOrder(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int | None = None
    name: str | None = None
    line_items: list[WebhookLineItem] = Field(min_length=1)


@dataclass
class LineState:
    """One order line item and what each of its units has become."""

    data: dict[str, Any]
    quantity: int
    fulfilled: int = 0
    removed: int = 0  # refunded with restock_type "cancel": no longer to be fulfilled
    refunded: int = 0  # every refunded unit, whatever its restock type
    returned: int = 0

    @property
    def id(self) -> int:
        return int(self.data["id"])

    @property
    def current_quantity(self) -> int:
        return self.quantity - self.removed

    def fulfillable(self, cancelled: bool) -> int:
        return 0 if cancelled else max(0, self.current_quantity - self.fulfilled)

    def fulfillment_status(self) -> str | None:
        if self.fulfilled == 0:
            return None
        return "fulfilled" if self.fulfilled >= self.current_quantity else "partial"

    def unit_price(self) -> Decimal:
        try:
            return Decimal(str(self.data.get("price") or "0"))
        except InvalidOperation:
            return Decimal(0)


@dataclass
class FoLine:
    id: int
    line_item_id: int
    quantity: int
    fulfillable: int
    variant_id: int | None


@dataclass
class FulfillmentOrder:
    id: int
    order_id: int
    location_id: int
    lines: list[FoLine]
    created_at: str
    updated_at: str
    status: str = "open"

    def line(self, line_id: int) -> FoLine | None:
        return next((line for line in self.lines if line.id == line_id), None)

    def settle(self, at: str) -> None:
        """Move an open fulfillment order along after its lines changed."""
        self.updated_at = at
        if self.status not in FULFILLABLE_STATUSES:
            return
        if all(line.fulfillable == 0 for line in self.lines):
            self.status = "closed"
        elif any(line.quantity > line.fulfillable for line in self.lines):
            self.status = "in_progress"


@dataclass
class Order:
    data: dict[str, Any]
    lines: dict[int, LineState]
    fulfillment_orders: list[FulfillmentOrder]
    updated_at: str
    fulfillments: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    cancelled_at: str | None = None
    cancel_reason: str | None = None

    @property
    def id(self) -> int:
        return int(self.data["id"])

    @property
    def name(self) -> str:
        return str(self.data.get("name") or f"#{self.id}")

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None

    def fulfillment_status(self) -> str | None:
        statuses = [line.fulfillment_status() for line in self.lines.values()]
        if all(s is None for s in statuses):
            return None
        live = [line for line in self.lines.values() if line.current_quantity > 0]
        done = all(line.fulfilled >= line.current_quantity for line in live)
        return "fulfilled" if done else "partial"

    def financial_status(self) -> Any:
        refunded = sum(
            (_money(t.get("amount")) for r in self.refunds for t in r["transactions"]),
            Decimal(0),
        )
        if refunded <= 0:
            return self.data.get("financial_status")
        total = _money(self.data.get("total_price"))
        return "refunded" if refunded >= total > 0 else "partially_refunded"


def _money(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value is not None else "0"))
    except InvalidOperation:
        return Decimal(0)


class OrderBook:
    """Every order of the shop, indexed by order and by fulfillment order id."""

    def __init__(
        self,
        *,
        shop_id: int,
        location_id: int,
        wall: Callable[[], datetime],
        first_id: int = 1_000_000_001,
    ) -> None:
        self.shop_id = shop_id
        self.location_id = location_id
        self.wall = wall
        self.locations: set[int] = {location_id}
        self.orders: dict[int, Order] = {}
        self._ids: Iterator[int] = itertools.count(first_id)

    def next_id(self) -> int:
        return next(self._ids)

    def timestamp(self) -> str:
        return self.wall().isoformat(timespec="seconds")

    def order(self, order_id: int) -> Order:
        if order_id not in self.orders:
            raise not_found()
        return self.orders[order_id]

    def fulfillment_order(self, fo_id: int) -> tuple[Order, FulfillmentOrder]:
        for order in self.orders.values():
            for fo in order.fulfillment_orders:
                if fo.id == fo_id:
                    return order, fo
        raise not_found()

    def add_order(self, order_json: Any, assignments: Mapping[int, int] | None = None) -> Order:
        """Take an ``orders/create`` JSON; `ValueError` saying why when it cannot be one."""
        parsed = WebhookOrder.model_validate(order_json)  # pydantic's error is a ValueError
        data = copy.deepcopy(order_json)
        data["id"] = parsed.id if parsed.id is not None else self.next_id()
        if data["id"] in self.orders:
            raise ValueError(f"order {data['id']} exists already")
        data.setdefault("name", f"#{1000 + len(self.orders) + 1}")
        lines = {
            item.id: LineState(data=raw, quantity=item.quantity)
            for item, raw in zip(parsed.line_items, data["line_items"], strict=True)
        }
        if len(lines) != len(parsed.line_items):
            raise ValueError("line item ids repeat")
        now = self.timestamp()
        fos = self._split(data, lines, dict(assignments or {}), now)
        order = Order(data=data, lines=lines, fulfillment_orders=fos, updated_at=now)
        self.orders[order.id] = order
        return order

    def _split(
        self,
        data: dict[str, Any],
        lines: dict[int, LineState],
        assignments: dict[int, int],
        now: str,
    ) -> list[FulfillmentOrder]:
        """One fulfillment order per location, in the order the locations first appear."""
        if unknown := set(assignments) - set(lines):
            raise ValueError(f"assignments name line items not in the order: {sorted(unknown)}")
        by_location: dict[int, list[FoLine]] = {}
        for line in lines.values():
            location = assignments.get(line.id, self.location_id)
            variant = line.data.get("variant_id")
            by_location.setdefault(location, []).append(
                FoLine(self.next_id(), line.id, line.quantity, line.quantity, variant)
            )
        self.locations.update(by_location)
        return [
            FulfillmentOrder(self.next_id(), data["id"], location, fo_lines, now, now)
            for location, fo_lines in by_location.items()
        ]


def destination(order: Order) -> dict[str, Any] | None:
    address = order.data.get("shipping_address")
    if not isinstance(address, dict):
        return None
    shown = {name: address.get(name) for name in DESTINATION_FIELDS}
    return {"id": order.id, **shown, "email": order.data.get("email")}


def fulfillment_order_json(book: OrderBook, order: Order, fo: FulfillmentOrder) -> dict[str, Any]:
    """A fulfillment order as ``GET orders/{id}/fulfillment_orders.json`` shows it."""
    return {
        "id": fo.id,
        "created_at": fo.created_at,
        "updated_at": fo.updated_at,
        "shop_id": book.shop_id,
        "order_id": order.id,
        "assigned_location_id": fo.location_id,
        "request_status": "unsubmitted",  # merchant-managed: nothing is requested of anyone
        "status": fo.status,
        "fulfill_at": None,
        "fulfill_by": None,
        "supported_actions": OPEN_ACTIONS if fo.status in FULFILLABLE_STATUSES else [],
        "destination": destination(order),
        "line_items": [
            {
                "id": line.id,
                "shop_id": book.shop_id,
                "fulfillment_order_id": fo.id,
                "quantity": line.quantity,
                "line_item_id": line.line_item_id,
                # No inventory items here: the variant id stands in, as in Shopify's examples.
                "inventory_item_id": line.variant_id,
                "fulfillable_quantity": line.fulfillable,
                "variant_id": line.variant_id,
            }
            for line in fo.lines
        ],
        "international_duties": None,
        "fulfillment_holds": [],
        "delivery_method": None,
        "assigned_location": {"location_id": fo.location_id},
        "merchant_requests": [],
    }


def line_item_json(order: Order, line: LineState) -> dict[str, Any]:
    return {
        **line.data,
        "quantity": line.quantity,
        "current_quantity": line.current_quantity,
        "fulfillable_quantity": line.fulfillable(order.cancelled),
        "fulfillment_status": line.fulfillment_status(),
    }


def order_json(order: Order) -> dict[str, Any]:
    """The order as ``GET orders/{id}.json`` shows it: the webhook's JSON, brought up to date."""
    return {
        **order.data,
        "updated_at": order.updated_at,
        "cancelled_at": order.cancelled_at,
        "cancel_reason": order.cancel_reason,
        "financial_status": order.financial_status(),
        "fulfillment_status": order.fulfillment_status(),
        "line_items": [line_item_json(order, line) for line in order.lines.values()],
        "fulfillments": order.fulfillments,
        "refunds": order.refunds,
    }

"""Changes to a live web store order: Shopify's ``orders/cancelled``, ``orders/edited`` and
``orders/updated`` webhooks as contract records. Pure: no network, no clock, no store of its own.

- ``orders/cancelled`` (the full order JSON) is an `OrderCancelled` of ``WEB-<id>``, event id
  ``shopify-orders-cancelled-<id>``, its reason from ``cancel_reason``.
- ``orders/edited`` (``{"order_edit": {...}}``) is an `OrderEdit`: the units it removed, by
  line id (``str`` of Shopify's line item id, as `connectors.shopify` names lines). Units an
  edit adds are not carried: no action adds units to a live order.
- ``orders/updated`` (the full order JSON) is an `OrderUpdate`: per line, the units removed
  (``quantity - current_quantity``, less units refunded as returns: those had shipped), and the
  shipping address mapped as ``orders/create``'s is.

What they ask of the pipeline (``CANCEL_LINES``, ``CHANGE_SHIP_TO``), against what the connector
remembers of the order, is decided in `connectors.order_memory`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import AwareDatetime, BaseModel, ValidationError

from connectors.shopify import (
    FieldError,
    NoteAttribute,
    PayloadError,
    ShopifyAddress,
    ShopifyId,
    ShopifyModel,
    ShopifyShippingLine,
    field_errors,
    pickup_location,
    ship_to,
    validate_payload,
)
from schemas.common import Address, Count, Quantity
from schemas.orders import OrderCancelled

MAX_NOTE_CHARS = 200
"""The most of a staff note copied into each action's reason."""
RETURNED = "return"
"""Shopify's ``restock_type`` of units refunded after they shipped and came back."""

Record = TypeVar("Record", bound=BaseModel)


class ShopifyChangeError(PayloadError):
    """A Shopify change webhook body that cannot become a contract record."""


# ---- The part of Shopify's bodies we read --------------------------------------------------------


class EditedLine(ShopifyModel):
    id: ShopifyId
    delta: Quantity


class EditedLines(ShopifyModel):
    additions: list[EditedLine] = []
    removals: list[EditedLine] = []


class ShopifyOrderEdit(ShopifyModel):
    id: ShopifyId
    order_id: ShopifyId
    created_at: AwareDatetime | None = None
    committed_at: AwareDatetime | None = None  # since API 2024-07
    staff_note: str | None = None
    line_items: EditedLines = EditedLines()


class OrderEditedBody(ShopifyModel):
    order_edit: ShopifyOrderEdit


class CurrentLine(ShopifyModel):
    id: ShopifyId
    quantity: Count
    current_quantity: Count | None = None  # since API 2024-01; without it, nothing is known


class RefundLine(ShopifyModel):
    line_item_id: ShopifyId
    quantity: Count
    restock_type: str | None = None


class Refund(ShopifyModel):
    refund_line_items: list[RefundLine] = []


class ShopifyOrderUpdate(ShopifyModel):
    id: ShopifyId
    updated_at: AwareDatetime
    cancelled_at: AwareDatetime | None = None
    shipping_address: ShopifyAddress | None = None
    line_items: list[CurrentLine] = []
    refunds: list[Refund] = []
    note_attributes: list[NoteAttribute] = []
    shipping_lines: list[ShopifyShippingLine] = []


class ShopifyCancelledOrder(ShopifyModel):
    id: ShopifyId
    cancelled_at: AwareDatetime
    cancel_reason: str | None = None


# ---- What a webhook says ------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderEdit:
    """One ``orders/edited``: the units it removed, by line id."""

    order_id: str
    edit_id: str
    removals: Mapping[str, int]
    at: datetime | None
    staff_note: str | None = None


@dataclass(frozen=True)
class LineNow:
    """A line as an ``orders/updated`` shows it: ordered, and removed (not shipped) since."""

    quantity: int
    removed: int


@dataclass(frozen=True)
class OrderUpdate:
    """One ``orders/updated``: removals per line (where Shopify gave them) and the address."""

    order_id: str
    updated_at: datetime
    cancelled: bool
    lines: Mapping[str, LineNow]
    ship_to: Address | None
    pickup: bool


# ---- Parsing -------------------------------------------------------------------------------------


def order_cancelled(body: Any) -> OrderCancelled:
    """An ``orders/cancelled`` body (parsed JSON) as the `OrderCancelled` it announces."""
    order: ShopifyCancelledOrder = validate_payload(ShopifyCancelledOrder, body, ShopifyChangeError)
    why = (order.cancel_reason or "").strip()
    fields = {
        "event_id": f"shopify-orders-cancelled-{order.id}",
        "order_id": f"WEB-{order.id}",
        "reason": f"cancelled in Shopify ({why})" if why else "cancelled in Shopify",
        "cancelled_at": order.cancelled_at,
    }
    return build(OrderCancelled, fields, "order_cancelled")


def parse_order_edited(body: Any) -> OrderEdit:
    """An ``orders/edited`` body (parsed JSON) as an `OrderEdit`, or `ShopifyChangeError`."""
    parsed: OrderEditedBody = validate_payload(OrderEditedBody, body, ShopifyChangeError)
    edit = parsed.order_edit
    removals: dict[str, int] = defaultdict(int)
    for line in edit.line_items.removals:
        removals[str(line.id)] += line.delta
    return OrderEdit(
        order_id=f"WEB-{edit.order_id}",
        edit_id=str(edit.id),
        removals=dict(removals),
        at=edit.committed_at or edit.created_at,
        staff_note=_shortened((edit.staff_note or "").strip()) or None,
    )


def parse_order_updated(body: Any) -> OrderUpdate:
    """An ``orders/updated`` body (parsed JSON) as an `OrderUpdate`, or `ShopifyChangeError`."""
    order: ShopifyOrderUpdate = validate_payload(ShopifyOrderUpdate, body, ShopifyChangeError)
    returned = returned_units(order.refunds)
    lines = {
        str(item.id): LineNow(
            quantity=item.quantity,
            removed=max(0, item.quantity - item.current_quantity - returned.get(str(item.id), 0)),
        )
        for item in order.line_items
        if item.current_quantity is not None
    }
    pickup = pickup_location(order) is not None
    return OrderUpdate(
        order_id=f"WEB-{order.id}",
        updated_at=order.updated_at,
        cancelled=order.cancelled_at is not None,
        lines=lines,
        ship_to=None if pickup else ship_to(order.shipping_address),
        pickup=pickup,
    )


def returned_units(refunds: list[Refund]) -> dict[str, int]:
    """Units per line refunded as returns: they left the building, the pipeline's returns
    flow handles them, and they are no cancellation."""
    units: dict[str, int] = defaultdict(int)
    for refund in refunds:
        for line in refund.refund_line_items:
            if (line.restock_type or "").lower() == RETURNED:
                units[str(line.line_item_id)] += line.quantity
    return dict(units)


# ---- Deciding ------------------------------------------------------------------------------------


def _shortened(text: str) -> str:
    return text if len(text) <= MAX_NOTE_CHARS else text[: MAX_NOTE_CHARS - 1] + "…"


def build(model: type[Record], fields: dict[str, Any], what: str) -> Record:
    """The contract record; a rule the webhook model did not check is a `ShopifyChangeError`
    whose field paths start with ``what``."""
    try:
        record = model(**fields)
    except ValidationError as exc:
        raise ShopifyChangeError(field_errors(exc, prefix=what)) from exc
    try:  # refused here, not by the codec: one record of a webhook must not leave without the rest
        json.dumps(record.model_dump(mode="json"), ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        message = f"cannot be encoded ({exc.reason}): a lone surrogate in the body?"
        raise ShopifyChangeError([FieldError(field=what, message=message)]) from exc
    return record

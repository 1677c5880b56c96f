"""Shopify's request bodies as the stand-in checks them, and Shopify's error answers.

Error shapes, as the REST Admin API documents them
(https://shopify.dev/docs/api/admin-rest, "Status and error codes";
https://shopify.dev/docs/api/usage/response-codes):

- 400 for a missing root parameter: ``{"errors": {"fulfillment": "Required parameter missing
  or invalid"}}`` (what Shopify answers when the wrapping object is absent; reported on
  https://community.shopify.com/c/shopify-apis-and-sdks/quot-errors-quot-quot-fulfillment-quot-quot-required-parameter/td-p/1332548).
  A required array inside the root that is missing or empty gets the same answer naming it:
  Rails' ``params.require`` behaves so, and the docs mark it required without an example.
- 401 ``{"errors": "[API] Invalid API key or access token (unrecognized login or wrong
  password)"}``; 404 ``{"errors": "Not Found"}``; 429 ``{"errors": "Exceeded 2 calls per
  second for api client. Reduce request rates to resume uninterrupted service."}``; 500
  ``{"errors": "An unexpected error occurred"}``: verbatim from the docs.
- 422 ``{"errors": ["The fulfillment order is not in an open state."]}`` (the documented
  example: a list of sentences) for a request the shop's state refuses, and the Rails shape
  ``{"errors": {"<field>": ["<message>"]}}`` for a field whose value is wrong.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

UNAUTHORIZED = "[API] Invalid API key or access token (unrecognized login or wrong password)"
THROTTLED = (
    "Exceeded 2 calls per second for api client. Reduce request rates to resume "
    "uninterrupted service."
)
INTERNAL = "An unexpected error occurred"
MISSING = "Required parameter missing or invalid"
NOT_OPEN = "The fulfillment order is not in an open state."
# Shopify's answer to a quantity it cannot fulfil; seen verbatim in clients handling it,
# e.g. {"errors":["Invalid fulfillment order line item quantity requested."]}.
BAD_QUANTITY = "Invalid fulfillment order line item quantity requested."

CancelReason = Literal["customer", "inventory", "fraud", "declined", "other"]
RestockType = Literal["no_restock", "cancel", "return"]

M = TypeVar("M", bound=BaseModel)


class ShopifyError(Exception):
    """An answer other than success: the status and the JSON body Shopify would send."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def missing_parameter(name: str) -> ShopifyError:
    return ShopifyError(400, {"errors": {name: MISSING}})


def not_found() -> ShopifyError:
    return ShopifyError(404, {"errors": "Not Found"})


def unprocessable(*sentences: str) -> ShopifyError:
    return ShopifyError(422, {"errors": list(sentences)})


def invalid_fields(fields: dict[str, list[str]]) -> ShopifyError:
    return ShopifyError(422, {"errors": fields})


class _Input(BaseModel):
    # Shopify ignores parameters it does not know; so does the stand-in.
    model_config = ConfigDict(extra="ignore")


class TrackingInfo(_Input):
    number: str | int | None = None
    company: str | None = None
    url: str | None = None


class FulfillmentOrderLineItemInput(_Input):
    id: int
    quantity: int


class LineItemsByFulfillmentOrder(_Input):
    fulfillment_order_id: int
    # Absent means every remaining line item of the fulfillment order (documented).
    fulfillment_order_line_items: list[FulfillmentOrderLineItemInput] | None = None


class OriginAddress(_Input):
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    country_code: str  # the only field the docs mark required
    province_code: str | None = None
    zip: str | None = None


class FulfillmentCreate(_Input):
    """``POST fulfillments.json``'s ``fulfillment`` object
    (https://shopify.dev/docs/api/admin-rest/2025-01/resources/fulfillment#post-fulfillments)."""

    line_items_by_fulfillment_order: list[LineItemsByFulfillmentOrder]
    tracking_info: TrackingInfo | None = None
    notify_customer: bool = False
    message: str | None = None
    origin_address: OriginAddress | None = None


class CancelOrder(_Input):
    """``POST orders/{id}/cancel.json``'s parameters, at the root of the body (Shopify reads
    them unwrapped: https://community.shopify.com/t/cancel-order-api/631)."""

    reason: CancelReason = "other"
    email: bool = False
    restock: bool = False  # deprecated, still accepted
    amount: str | None = None  # deprecated
    currency: str | None = None
    refund: dict[str, Any] | None = None


class RefundLineItemInput(_Input):
    line_item_id: int
    quantity: int
    # Docs: "no_restock", "cancel", "return"; "legacy_restock" is "not accepted when creating
    # new refunds". Checked by hand so that the answer can say so.
    restock_type: str = "no_restock"
    location_id: int | None = None


class RefundCreate(_Input):
    """``POST orders/{id}/refunds.json``'s ``refund`` object
    (https://shopify.dev/docs/api/admin-rest/2025-01/resources/refund#post-orders-order-id-refunds)."""

    refund_line_items: list[RefundLineItemInput] = []
    notify: bool = False
    note: str | None = None
    shipping: dict[str, Any] | None = None
    transactions: list[dict[str, Any]] = []
    currency: str | None = None
    discrepancy_reason: str | None = None


def parse_wrapped(body: Any, root: str, model: type[M], required: tuple[str, ...] = ()) -> M:
    """``body[root]`` as ``model``: 400 when the root, or a ``required`` list in it, is missing
    or empty; 422 naming each field whose value is wrong."""
    inner = body.get(root) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        raise missing_parameter(root)
    for name in required:
        if not inner.get(name):
            raise missing_parameter(name)
    return parse_fields(inner, model)


def parse_fields(value: Any, model: type[M]) -> M:
    """``value`` as ``model``, or 422 ``{"errors": {"<field.path>": ["<message>"]}}``."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        fields: dict[str, list[str]] = {}
        for err in exc.errors():
            path = ".".join(str(part) for part in err["loc"]) or "base"
            fields.setdefault(path, []).append(err["msg"])
        raise invalid_fields(fields) from None

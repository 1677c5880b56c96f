"""The shop, its location and its products as the REST Admin API (2025-01) shows them.

- ``GET shop.json`` -> ``{"shop": {...}}``
  (https://shopify.dev/docs/api/admin-rest/2025-01/resources/shop);
- ``GET locations.json`` -> ``{"locations": [...]}``, the shop's one location
  (https://shopify.dev/docs/api/admin-rest/2025-01/resources/location);
- ``GET products.json`` -> ``{"products": [...]}`` in id order
  (https://shopify.dev/docs/api/admin-rest/2025-01/resources/product#get-products), each
  with its variants (``inventory_item_id``, ``inventory_quantity``: the available units).

``products.json`` pages as https://shopify.dev/docs/api/usage/pagination-rest says: ``limit``
(default 50, maximum 250), ``fields`` (a comma list of top-level fields to keep), and a
``Link`` header with ``<...products.json?limit=N&page_info=...>; rel="previous"`` and/or
``rel="next"`` (none when everything fit in one page). A ``page_info`` is opaque and carries
the first request's filters (``ids``, ``since_id``); a request with one may add only
``limit`` and ``fields``: any other parameter is refused with 400 ``{"errors": {"<param>":
"<param> cannot be passed when page_info is present. See
https://shopify.dev/api/usage/pagination-rest for more information."}}`` (Shopify's answer,
as clients have recorded it), and a ``page_info`` that is not one of ours with 400
``{"errors": {"page_info": "Invalid value."}}``. The docs give the maximum ``limit`` but not
the refusal of a larger one; clients report an error naming the request's parameters
(ShopifySharp #228: ``Invalid request parameters``), so the stand-in answers 400 ``{"errors":
"Invalid request parameters"}`` for a ``limit`` that is not a whole number from 1 to 250
rather than silently capping it. Other documented filters are not modelled and are ignored,
as Shopify ignores parameters it does not know.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from connectors.standin.shopify import StandinShop
from connectors.standin.shopify_inventory import Catalogue, Product, Variant
from connectors.standin.shopify_models import ShopifyError

DEFAULT_LIMIT = 50
MAX_LIMIT = 250
PAGE_PARAMETERS = frozenset({"page_info", "limit", "fields"})
PAGINATION_DOCS = "https://shopify.dev/api/usage/pagination-rest"


def shop_json(shop: StandinShop) -> dict[str, Any]:
    """The documented fields that say something about the stand-in; the rest are omitted."""
    return {
        "id": shop.shop_id,
        "name": shop.name,
        "email": f"owner@{shop.shop_domain}",
        "domain": shop.shop_domain,
        "myshopify_domain": shop.shop_domain,
        "primary_location_id": shop.location_id,
        "currency": "USD",
        "enabled_presentment_currencies": ["USD"],
        "money_format": "${{amount}}",
        "country_code": "US",
        "timezone": "(GMT+00:00) UTC",
        "iana_timezone": "UTC",
        "weight_unit": "kg",
        "plan_name": "basic",
        "plan_display_name": "Basic",
        "multi_location_enabled": True,
        "has_storefront": True,
        "password_enabled": False,
        "setup_required": False,
        "created_at": shop.created_at,
        "updated_at": shop.created_at,
    }


def location_json(shop: StandinShop) -> dict[str, Any]:
    return {
        "id": shop.location_id,
        "name": shop.location_name,
        "address1": None,
        "address2": None,
        "city": None,
        "zip": None,
        "province": None,
        "country": "US",
        "phone": None,
        "country_code": "US",
        "country_name": "United States",
        "province_code": None,
        "legacy": False,
        "active": True,
        "localized_country_name": "United States",
        "localized_province_name": None,
        "admin_graphql_api_id": f"gid://shopify/Location/{shop.location_id}",
        "created_at": shop.created_at,
        "updated_at": shop.created_at,
    }


def product_json(catalogue: Catalogue, product: Product) -> dict[str, Any]:
    variants = [variant_json(catalogue, variant) for variant in product.variants]
    return {
        "id": product.id,
        "title": product.title,
        "body_html": "",
        "vendor": "Stand-in Shop",
        "product_type": "",
        "created_at": product.created_at,
        "handle": product.handle,
        "updated_at": product.created_at,
        "published_at": product.created_at,
        "template_suffix": None,
        "published_scope": "global",
        "tags": "",
        "status": "active",
        "admin_graphql_api_id": f"gid://shopify/Product/{product.id}",
        "variants": variants,
        "options": [
            {
                "id": product.id,
                "product_id": product.id,
                "name": "Title",
                "position": 1,
                "values": [variant["title"] for variant in variants],
            }
        ],
        "images": [],
        "image": None,
    }


def variant_json(catalogue: Catalogue, variant: Variant) -> dict[str, Any]:
    quantity = catalogue.inventory_quantity(variant)
    return {
        "id": variant.id,
        "product_id": variant.product_id,
        "title": variant.title,
        "price": variant.price,
        "position": variant.position,
        "inventory_policy": "deny",
        "compare_at_price": None,
        "option1": variant.title,
        "option2": None,
        "option3": None,
        "created_at": variant.created_at,
        "updated_at": variant.created_at,
        "taxable": True,
        "barcode": None,
        "fulfillment_service": "manual",
        "grams": 0,
        "inventory_management": "shopify",
        "requires_shipping": True,
        "sku": variant.sku,
        "weight": 0.0,
        "weight_unit": "kg",
        "inventory_item_id": variant.inventory_item_id,
        "inventory_quantity": quantity,
        "old_inventory_quantity": quantity,
        "admin_graphql_api_id": f"gid://shopify/ProductVariant/{variant.id}",
        "image_id": None,
    }


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after ``anchor`` (``next``) or before it (``previous``), over the
    products the first request's filters chose."""

    direction: str
    anchor: int | None
    filters: dict[str, Any]

    def encode(self) -> str:
        raw = json.dumps(
            {"direction": self.direction, "anchor": self.anchor, **self.filters},
            separators=(",", ":"),
        )
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @staticmethod
    def decode(token: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            value = json.loads(base64.urlsafe_b64decode(padded.encode()))
            direction, anchor = value.pop("direction"), value.pop("anchor")
        except (ValueError, binascii.Error, KeyError, TypeError, AttributeError):
            raise ShopifyError(400, {"errors": {"page_info": "Invalid value."}}) from None
        if direction not in ("next", "previous") or not _valid_cursor(anchor, value):
            raise ShopifyError(400, {"errors": {"page_info": "Invalid value."}})
        return Cursor(direction, anchor, value)


def _valid_cursor(anchor: Any, filters: dict[str, Any]) -> bool:
    ids, since_id = filters.get("ids", []), filters.get("since_id", 0)
    return (
        isinstance(anchor, int)
        and set(filters) <= {"ids", "since_id"}
        and isinstance(ids, list)
        and all(isinstance(i, int) for i in ids)
        and isinstance(since_id, int)
    )


def list_products(shop: StandinShop, request: web.Request) -> tuple[int, Any, dict[str, str]]:
    """``GET products.json``: one page, and the ``Link`` header to its neighbours."""
    query = request.query
    cursor = _cursor(query)
    limit = _limit(query.get("limit"))
    fields = [f.strip() for f in query.get("fields", "").split(",") if f.strip()]
    chosen = _filtered(shop.catalogue, cursor.filters)
    page, before, after = _page(chosen, cursor, limit)
    shown = [product_json(shop.catalogue, product) for product in page]
    if fields:
        shown = [{k: v for k, v in product.items() if k in fields} for product in shown]
    links = []
    if before:
        links.append(_link(request, Cursor("previous", page[0].id, cursor.filters), limit))
    if after:
        links.append(_link(request, Cursor("next", page[-1].id, cursor.filters), limit))
    return 200, {"products": shown}, {"Link": ", ".join(links)} if links else {}


def _cursor(query: Any) -> Cursor:
    token = query.get("page_info")
    if token is None:
        return Cursor("next", None, _filters(query))
    extra = sorted(name for name in query if name not in PAGE_PARAMETERS)
    if extra:
        refusal = (
            f"cannot be passed when page_info is present. See {PAGINATION_DOCS} "
            "for more information."
        )
        raise ShopifyError(400, {"errors": {name: f"{name} {refusal}" for name in extra}})
    return Cursor.decode(token)


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.strip().isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ShopifyError(400, {"errors": "Invalid request parameters"})
    return int(raw)


def _filters(query: Any) -> dict[str, Any]:
    """The filters the stand-in models: ``ids`` (a comma list) and ``since_id``."""
    filters: dict[str, Any] = {}
    ids = [part.strip() for part in query.get("ids", "").split(",") if part.strip()]
    if ids:
        filters["ids"] = [int(part) for part in ids if part.isdigit()]
    since_id = query.get("since_id", "").strip()
    if since_id.isdigit():
        filters["since_id"] = int(since_id)
    return filters


def _filtered(catalogue: Catalogue, filters: dict[str, Any]) -> list[Product]:
    ids, since_id = filters.get("ids"), filters.get("since_id", 0)
    return [
        product
        for product_id, product in sorted(catalogue.products.items())
        if product_id > since_id and (ids is None or product_id in ids)
    ]


def _page(products: list[Product], cursor: Cursor, limit: int) -> tuple[list[Product], bool, bool]:
    """The page, whether products come before it, whether products come after it."""
    if cursor.anchor is None:
        return products[:limit], False, len(products) > limit
    anchor = cursor.anchor
    if cursor.direction == "next":
        rest = [product for product in products if product.id > anchor]
        page = rest[:limit]
        return page, bool(page) and len(rest) < len(products), len(rest) > limit
    earlier = [product for product in products if product.id < anchor]
    page = earlier[-limit:] if earlier else []
    return page, len(earlier) > limit, bool(page)


def _link(request: web.Request, cursor: Cursor, limit: int) -> str:
    params: list[tuple[str, str]] = [("limit", str(limit)), ("page_info", cursor.encode())]
    if "fields" in request.query:
        params.append(("fields", request.query["fields"]))
    url = f"{request.scheme}://{request.host}{request.path}?{urlencode(params, safe=',')}"
    rel = "next" if cursor.direction == "next" else "previous"
    return f'<{url}>; rel="{rel}"'

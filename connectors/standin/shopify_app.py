"""The stand-in shop over HTTP: the Admin API routes (REST and GraphQL) and the shop's
control routes.

REST, under ``/admin/api/{version}/`` (https://shopify.dev/docs/api/admin-rest/2025-01):

- ``GET orders/{id}/fulfillment_orders.json`` -> ``200 {"fulfillment_orders": [...]}``
- ``POST fulfillments.json`` -> ``201 {"fulfillment": {...}}``
- ``GET orders/{id}/fulfillments.json`` -> ``200 {"fulfillments": [...]}``
- ``POST orders/{id}/cancel.json`` -> ``200 {"order": {...}}``
- ``POST orders/{id}/refunds.json`` -> ``201 {"refund": {...}}``;
  ``GET orders/{id}/refunds.json`` -> ``200 {"refunds": [...]}``
- ``GET orders/{id}.json`` -> ``200 {"order": {...}}``
- ``GET shop.json`` -> ``200 {"shop": {...}}``; ``GET locations.json`` -> ``200
  {"locations": [...]}``; ``GET products.json`` -> ``200 {"products": [...]}`` with
  ``limit``, ``fields`` and cursor pagination in the ``Link`` header (`shopify_catalog`)

GraphQL: ``POST /admin/api/{version}/graphql.json`` (`shopify_graphql`): the
``inventorySetQuantities`` mutation and a few queries, rate-limited by calculated cost.

Every API call passes the same gate, in Shopify's order: a version other than the shop's
answers 404 (Shopify answers 404 for a version it does not know; for a retired one it falls
forward to the oldest supported version, https://shopify.dev/docs/api/usage/versioning: the
stand-in speaks one version and refuses the rest, so that a client pinned to the wrong one
fails loudly); a wrong ``X-Shopify-Access-Token`` answers 401; then a REST call takes its
marble from the leaky bucket (429 with ``Retry-After`` when full; GraphQL calls are not
counted there but pay their cost from their own bucket once the document is known valid);
then an armed fault, if one matches, answers instead; then the endpoint. Past
authentication every REST answer carries ``X-Shopify-Shop-Api-Call-Limit: <used>/<size>``
("All REST API responses include" it, https://shopify.dev/docs/api/admin-rest/usage/rate-limits)
and every answer ``X-Shopify-API-Version``. Every API call is recorded with its body.

Control, under ``/_standin/shopify/``: ``POST orders`` (an order JSON, optionally with
``assignments``: ``201 {"order_id", "webhook_status", "webhook_error"}``), ``GET orders/{id}``,
``POST orders/{id}/cancel`` (as the merchant would in the admin: webhooks follow), ``POST
products`` and ``GET inventory`` (the catalogue, `shopify_catalog_control`), ``GET calls``,
``GET``/``POST faults``, ``POST throttle`` (``{"bucket_size", "leak_rate"}``), ``POST
graphql-throttle`` (``{"maximum_available", "restore_rate"}``), ``POST reset``.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from connectors.json_input import load_json
from connectors.standin.control import json_object, recorder_routes, refuse, validated
from connectors.standin.recorder import CallRecord, FaultSpec, parse_body
from connectors.standin.shopify import StandinShop, WebhookResult
from connectors.standin.shopify_actions import cancel_order, create_fulfillment, create_refund
from connectors.standin.shopify_catalog import list_products, location_json, shop_json
from connectors.standin.shopify_catalog_control import catalogue_control_routes
from connectors.standin.shopify_graphql import graphql_answer
from connectors.standin.shopify_models import (
    INTERNAL,
    THROTTLED,
    UNAUTHORIZED,
    ShopifyError,
    not_found,
)
from connectors.standin.shopify_orders import OrderBook, fulfillment_order_json, order_json

TOKEN_HEADER = "X-Shopify-Access-Token"
CALL_LIMIT_HEADER = "X-Shopify-Shop-Api-Call-Limit"
VERSION_HEADER = "X-Shopify-API-Version"
DOCUMENTED_RETRY_AFTER = 2.0  # the docs' example 429 says "Retry-After: 2.0"
CONTROL = "/_standin/shopify"

Answer = tuple[int, Any, dict[str, str]]
Action = Callable[[StandinShop, web.Request, Any], Answer]
BookAction = Callable[[OrderBook, web.Request, Any], tuple[int, Any]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Gate = Callable[[StandinShop, web.Request, Any, Action], Answer]


def api_routes(shop: StandinShop) -> list[web.RouteDef]:
    base = "/admin/api/{version}"
    order = base + r"/orders/{order_id:\d+}"
    return [
        web.get(f"{order}/fulfillment_orders.json", _api(shop, _book(_fulfillment_orders))),
        web.post(f"{base}/fulfillments.json", _api(shop, _book(_fulfil))),
        web.get(f"{order}/fulfillments.json", _api(shop, _book(_fulfillments))),
        web.post(f"{order}/cancel.json", _api(shop, _book(_cancel))),
        web.post(f"{order}/refunds.json", _api(shop, _book(_refund))),
        web.get(f"{order}/refunds.json", _api(shop, _book(_refunds))),
        web.get(f"{order}.json", _api(shop, _book(_order))),
        web.get(f"{base}/shop.json", _api(shop, _shop)),
        web.get(f"{base}/locations.json", _api(shop, _locations)),
        web.get(f"{base}/products.json", _api(shop, _products)),
        web.post(f"{base}/graphql.json", _api(shop, _graphql, gate=_graphql_gate)),
        # Last: anything else under the API answers Shopify's JSON 404 after the same gate.
        web.route("*", base + "/{tail:.*}", _api(shop, _book(_nothing_here))),
    ]


def _api(shop: StandinShop, action: Action, gate: Gate | None = None) -> Handler:
    passing = gate if gate is not None else _rest_gate

    async def handle(request: web.Request) -> web.StreamResponse:
        body = parse_body(await request.read(), load_json)
        status, payload, headers = passing(shop, request, body, action)
        shop.recorder.record(
            CallRecord(request.method, request.path, request.query_string, status, shop.now(), body)
        )
        return web.json_response(payload, status=status, headers=headers)

    return handle


def _refusal(shop: StandinShop, request: web.Request) -> Answer | None:
    """The version's 404 or the token's 401, before anything is counted."""
    if request.match_info.get("version") != shop.api_version:
        return 404, {"errors": "Not Found"}, {}
    token = request.headers.get(TOKEN_HEADER, "")
    if not hmac.compare_digest(token.encode(), shop.access_token.encode()):
        return 401, {"errors": UNAUTHORIZED}, {}
    return None


def _rest_gate(shop: StandinShop, request: web.Request, body: Any, action: Action) -> Answer:
    refused = _refusal(shop, request)
    if refused is not None:
        return refused
    now = shop.now()
    admitted, wait = shop.bucket.take(now)
    headers = {CALL_LIMIT_HEADER: shop.bucket.header(now), VERSION_HEADER: shop.api_version}
    if not admitted:
        return 429, {"errors": THROTTLED}, {**headers, "Retry-After": _seconds(wait)}
    return _past_limits(shop, request, body, action, headers)


def _graphql_gate(shop: StandinShop, request: web.Request, body: Any, action: Action) -> Answer:
    """Version and token as for REST; no REST marble: GraphQL pays by cost, in the action."""
    refused = _refusal(shop, request)
    if refused is not None:
        return refused
    return _past_limits(shop, request, body, action, {VERSION_HEADER: shop.api_version})


def _past_limits(
    shop: StandinShop, request: web.Request, body: Any, action: Action, headers: dict[str, str]
) -> Answer:
    fault = shop.recorder.take_fault(request.method, request.path)
    if fault is not None:
        return _fault_answer(fault, headers)
    try:
        status, payload, extra = action(shop, request, body)
    except ShopifyError as refusal:
        status, payload, extra = refusal.status, refusal.body, {}
    return status, payload, {**headers, **extra}


def _book(action: BookAction) -> Action:
    """An order endpoint, which needs only the order book and sets no header of its own."""

    def on_book(shop: StandinShop, request: web.Request, body: Any) -> Answer:
        status, payload = action(shop.book, request, body)
        return status, payload, {}

    return on_book


def _seconds(wait: float) -> str:
    """``Retry-After`` as Shopify writes it (``2.0``), rounded up to the tenth."""
    return f"{math.ceil(wait * 10) / 10:.1f}"


def _fault_answer(fault: FaultSpec, headers: dict[str, str]) -> Answer:
    if fault.retry_after is not None or fault.status == 429:
        retry_after = fault.retry_after if fault.retry_after is not None else DOCUMENTED_RETRY_AFTER
        headers = {**headers, "Retry-After": _seconds(retry_after)}
    return (
        fault.status,
        fault.body if fault.body is not None else _fault_body(fault.status),
        headers,
    )


def _fault_body(status: int) -> Any:
    documented = {401: UNAUTHORIZED, 404: "Not Found", 429: THROTTLED, 500: INTERNAL}
    return {"errors": documented.get(status, HTTPStatus(status).phrase)}


def _order_id(request: web.Request) -> int:
    return int(request.match_info["order_id"])


def _fulfillment_orders(book: OrderBook, request: web.Request, body: Any) -> tuple[int, Any]:
    order = book.order(_order_id(request))
    shown = [fulfillment_order_json(book, order, fo) for fo in order.fulfillment_orders]
    return 200, {"fulfillment_orders": shown}


def _fulfil(book: OrderBook, request: web.Request, body: Any) -> tuple[int, Any]:
    return create_fulfillment(book, body)


def _fulfillments(book: OrderBook, request: web.Request, body: Any) -> tuple[int, Any]:
    return 200, {"fulfillments": book.order(_order_id(request)).fulfillments}


def _cancel(book: OrderBook, request: web.Request, body: Any) -> tuple[int, Any]:
    return cancel_order(book, _order_id(request), body)


def _refund(book: OrderBook, request: web.Request, body: Any) -> tuple[int, Any]:
    return create_refund(book, _order_id(request), body)


def _refunds(book: OrderBook, request: web.Request, body: Any) -> tuple[int, Any]:
    return 200, {"refunds": book.order(_order_id(request)).refunds}


def _order(book: OrderBook, request: web.Request, body: Any) -> tuple[int, Any]:
    return 200, {"order": order_json(book.order(_order_id(request)))}


def _nothing_here(book: OrderBook, request: web.Request, body: Any) -> tuple[int, Any]:
    raise not_found()


def _shop(shop: StandinShop, request: web.Request, body: Any) -> Answer:
    return 200, {"shop": shop_json(shop)}, {}


def _locations(shop: StandinShop, request: web.Request, body: Any) -> Answer:
    return 200, {"locations": [location_json(shop)]}, {}


def _products(shop: StandinShop, request: web.Request, body: Any) -> Answer:
    return list_products(shop, request)


def _graphql(shop: StandinShop, request: web.Request, body: Any) -> Answer:
    status, payload = graphql_answer(shop, body, request.content_type)
    return status, payload, {}


class PlaceOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignments: dict[int, int] = {}


class Throttle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bucket_size: int = Field(ge=1)
    leak_rate: float = Field(gt=0)


class AdminCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = "other"


def _webhook_json(result: WebhookResult | None) -> dict[str, Any]:
    if result is None:
        return {"webhook_status": None, "webhook_error": None}
    return {"webhook_status": result.status, "webhook_error": result.error}


def control_routes(shop: StandinShop) -> list[web.RouteDef]:
    async def throttle(request: web.Request) -> web.Response:
        limits = validated(Throttle, await json_object(request))
        shop.throttle(limits.bucket_size, limits.leak_rate)
        return web.json_response(limits.model_dump())

    async def reset(request: web.Request) -> web.Response:
        shop.reset()
        return web.json_response({"reset": True})

    return [
        *_order_control_routes(shop),
        *catalogue_control_routes(CONTROL, shop),
        web.post(f"{CONTROL}/throttle", throttle),
        web.post(f"{CONTROL}/reset", reset),
        *recorder_routes(CONTROL, shop.recorder),
    ]


def _order_control_routes(shop: StandinShop) -> list[web.RouteDef]:
    async def place(request: web.Request) -> web.Response:
        order = await json_object(request)
        placing = validated(PlaceOrder, {"assignments": order.pop("assignments", {})})
        try:
            order_id, result = await shop.place_order(order, placing.assignments)
        except ValueError as exc:
            refuse(f"not an order: {exc}")
        return web.json_response({"order_id": order_id, **_webhook_json(result)}, status=201)

    async def show(request: web.Request) -> web.Response:
        try:
            return web.json_response(shop.order_view(_order_id(request)))
        except KeyError:
            refuse("no such order", status=404)

    async def admin_cancel(request: web.Request) -> web.Response:
        reason = validated(AdminCancel, await json_object(request)).reason
        try:
            results = await shop.cancel_order_in_admin(_order_id(request), reason)
        except KeyError:
            refuse("no such order", status=404)
        return web.json_response({"webhooks": [_webhook_json(r) for r in results]})

    order_path = CONTROL + r"/orders/{order_id:\d+}"
    return [
        web.post(f"{CONTROL}/orders", place),
        web.get(order_path, show),
        web.post(f"{order_path}/cancel", admin_cancel),
    ]

"""The stand-in SP-API over HTTP: Orders v0 and Feeds 2021-06-30 routes, the presigned
document store, and the control routes.

API (https://github.com/amzn/selling-partner-api-models, ``ordersV0.json`` and
``feeds_2021-06-30.json``):

- ``GET /orders/v0/orders/{orderId}`` (getOrder) -> ``200 {"payload": Order}``
- ``GET /orders/v0/orders/{orderId}/orderItems`` (getOrderItems) -> ``200 {"payload":
  {"AmazonOrderId", "OrderItems"}}``
- ``POST /orders/v0/orders/{orderId}/shipmentConfirmation`` (confirmShipment) -> ``204``
- ``POST /feeds/2021-06-30/documents`` (createFeedDocument) -> ``201``;
  ``GET /feeds/2021-06-30/documents/{feedDocumentId}`` (getFeedDocument) -> ``200``
- ``POST /feeds/2021-06-30/feeds`` (createFeed) -> ``202``;
  ``GET /feeds/2021-06-30/feeds/{feedId}`` (getFeed) -> ``200``
- ``PUT``/``GET /_standin/s3/{documentId}``: the presigned URLs (S3's behaviour, no token)
- ``POST /auth/o2/token``: Login with Amazon, a refresh token for an access token (`lwa`)

Every API call passes the same gate: a wrong or missing ``x-amz-access-token`` answers ``403
{"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied.",
"details": ""}]}`` (Amazon's wording, e.g.
https://repost.aws/questions/QUDFcBdVvnQlCv2JWd4VitMg/sp-api-access-to-requested-resource-is-denied),
and one Login with Amazon issued that has expired (`lwa`, an hour after) ``403`` with
``"message": "The access token you provided has expired."``;
the operation's token bucket then admits it or answers ``429 {"errors": [{"code":
"QuotaExceeded", "message": "You exceeded your quota for the requested resource.", ...}]}``;
an armed fault answers instead of the operation if one matches. Headers as the models list
them: ``x-amzn-RequestId`` on every answer, ``x-amzn-RateLimit-Limit`` (the operation's rate,
e.g. ``2.0``) on 2xx, 400 and 404 answers and not on 403, 429, 5xx
(https://developer-docs.amazon.com/sp-api/docs/response-format).

Control, under ``/_standin/spapi/``: ``POST orders``, ``GET orders/{id}`` (with the
confirmations, packages, cancellations and acknowledgements received), ``GET calls``,
``GET``/``POST faults``, ``POST throttle`` (``{"operation", "rate", "burst"}``), ``POST reset``.
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
from connectors.standin.lwa import token_route
from connectors.standin.recorder import CallRecord, FaultSpec, parse_body
from connectors.standin.spapi import StandinSpApi
from connectors.standin.spapi_feeds import S3_PATH
from connectors.standin.spapi_orders import (
    MarketOrder,
    SpApiError,
    confirm_shipment,
    items_payload,
    not_found,
    order_payload,
)

TOKEN_HEADER = "x-amz-access-token"
REQUEST_ID_HEADER = "x-amzn-RequestId"
RATE_LIMIT_HEADER = "x-amzn-RateLimit-Limit"
CONTROL = "/_standin/spapi"
DENIED = {"code": "Unauthorized", "message": "Access to requested resource is denied."}
EXPIRED = {"code": "Unauthorized", "message": "The access token you provided has expired."}
QUOTA = {"code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource."}
# The stand-in's wording for faults armed without a body (Amazon's 5xx bodies vary).
INTERNAL = {"code": "InternalFailure", "message": "We encountered an internal error."}
UNAVAILABLE = {"code": "ServiceUnavailable", "message": "Service temporarily unavailable."}

Action = Callable[[StandinSpApi, web.Request, Any], tuple[int, Any]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Answer = tuple[int, Any, dict[str, str]]


def api_routes(api: StandinSpApi) -> list[web.RouteDef]:
    order = "/orders/v0/orders/{orderId}"
    feeds = "/feeds/2021-06-30"
    return [
        token_route(api.lwa, api.now),
        web.get(order, _api(api, "getOrder", _get_order)),
        web.get(f"{order}/orderItems", _api(api, "getOrderItems", _get_order_items)),
        web.post(f"{order}/shipmentConfirmation", _api(api, "confirmShipment", _confirm_shipment)),
        web.post(f"{feeds}/documents", _api(api, "createFeedDocument", _create_document)),
        web.get(
            f"{feeds}/documents/{{feedDocumentId}}", _api(api, "getFeedDocument", _get_document)
        ),
        web.post(f"{feeds}/feeds", _api(api, "createFeed", _create_feed)),
        web.get(f"{feeds}/feeds/{{feedId}}", _api(api, "getFeed", _get_feed)),
        web.put(f"{S3_PATH}/{{documentId}}", _s3_upload(api)),
        web.get(f"{S3_PATH}/{{documentId}}", _s3_download(api)),
    ]


def _api(api: StandinSpApi, operation: str, action: Action) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = parse_body(await request.read(), load_json)
        status, payload, headers = _answer(api, operation, request, body, action)
        api.recorder.record(
            CallRecord(request.method, request.path, request.query_string, status, api.now(), body)
        )
        if payload is None:
            return web.Response(status=status, headers=headers)
        return web.json_response(payload, status=status, headers=headers)

    return handle


def _answer(
    api: StandinSpApi, operation: str, request: web.Request, body: Any, action: Action
) -> Answer:
    bare = {REQUEST_ID_HEADER: api.request_ids()}
    token = request.headers.get(TOKEN_HEADER, "")
    issued = api.lwa.state(token, api.now())
    if issued == "expired":
        return 403, _errors(EXPIRED), bare
    if issued == "unknown" and not hmac.compare_digest(token.encode(), api.access_token.encode()):
        return 403, _errors(DENIED), bare
    bucket = api.buckets[operation]
    if not bucket.take(api.now()):
        return 429, _errors(QUOTA), bare
    limited = {**bare, RATE_LIMIT_HEADER: bucket.header()}
    api.settle()
    fault = api.recorder.take_fault(request.method, request.path)
    if fault is not None:
        status, payload = fault.status, fault.body if fault.body is not None else _fault_body(fault)
        return status, payload, _fault_headers(fault, limited if status in (400, 404) else bare)
    try:
        status, payload = action(api, request, body)
    except SpApiError as refusal:
        status, payload = refusal.status, {"errors": refusal.errors}
    return status, payload, limited


def _errors(*errors: dict[str, str]) -> dict[str, Any]:
    return {"errors": [{**error, "details": error.get("details", "")} for error in errors]}


def _fault_body(fault: FaultSpec) -> dict[str, Any]:
    known = {403: DENIED, 429: QUOTA, 500: INTERNAL, 503: UNAVAILABLE}
    phrase = HTTPStatus(fault.status).phrase
    return _errors(known.get(fault.status, {"code": phrase.replace(" ", ""), "message": phrase}))


def _fault_headers(fault: FaultSpec, headers: dict[str, str]) -> dict[str, str]:
    if fault.retry_after is None:
        return headers
    return {**headers, "Retry-After": str(math.ceil(fault.retry_after))}


def _order(api: StandinSpApi, request: web.Request) -> MarketOrder:
    order_id = request.match_info["orderId"]
    if order_id not in api.orders:
        raise not_found(f"orderId {order_id}")
    return api.orders[order_id]


def _get_order(api: StandinSpApi, request: web.Request, body: Any) -> tuple[int, Any]:
    return 200, order_payload(_order(api, request))


def _get_order_items(api: StandinSpApi, request: web.Request, body: Any) -> tuple[int, Any]:
    return 200, items_payload(_order(api, request))


def _confirm_shipment(api: StandinSpApi, request: web.Request, body: Any) -> tuple[int, Any]:
    confirm_shipment(_order(api, request), body, api.timestamp())
    return 204, None


def _origin(request: web.Request) -> str:
    return str(request.url.origin())


def _create_document(api: StandinSpApi, request: web.Request, body: Any) -> tuple[int, Any]:
    return 201, api.desk.create_document(body, api.now(), _origin(request))


def _get_document(api: StandinSpApi, request: web.Request, body: Any) -> tuple[int, Any]:
    return 200, api.desk.document(request.match_info["feedDocumentId"], _origin(request))


def _create_feed(api: StandinSpApi, request: web.Request, body: Any) -> tuple[int, Any]:
    created = api.desk.create_feed(body, api.now(), api.timestamp())
    api.settle()
    return 202, created


def _get_feed(api: StandinSpApi, request: web.Request, body: Any) -> tuple[int, Any]:
    return 200, api.desk.feed(request.match_info["feedId"])


def _s3_upload(api: StandinSpApi) -> Handler:
    async def upload(request: web.Request) -> web.Response:
        content = await request.read()
        status, answer = api.desk.upload(
            request.match_info["documentId"],
            request.headers.get("Content-Type", ""),
            content,
            api.now(),
        )
        shown = content.decode("utf-8", errors="replace")
        api.recorder.record(
            CallRecord(request.method, request.path, request.query_string, status, api.now(), shown)
        )
        return web.Response(status=status, body=answer, content_type="application/xml")

    return upload


def _s3_download(api: StandinSpApi) -> Handler:
    async def download(request: web.Request) -> web.Response:
        api.settle()
        status, content, content_type = api.desk.download(request.match_info["documentId"])
        response = web.Response(status=status, body=content)
        response.headers["Content-Type"] = content_type
        return response

    return download


class Throttle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operation: str
    rate: float = Field(gt=0)
    burst: int = Field(ge=1)


def control_routes(api: StandinSpApi) -> list[web.RouteDef]:
    async def add(request: web.Request) -> web.Response:
        try:
            order_id = api.add_order(await json_object(request))
        except ValueError as exc:
            refuse(f"not an order: {exc}")
        return web.json_response({"AmazonOrderId": order_id}, status=201)

    async def show(request: web.Request) -> web.Response:
        try:
            return web.json_response(api.order_view(request.match_info["orderId"]))
        except KeyError:
            refuse("no such order", status=404)

    async def feeds(request: web.Request) -> web.Response:
        api.settle()
        return web.json_response({"feeds": [f.as_json() for f in api.desk.feeds.values()]})

    async def throttle(request: web.Request) -> web.Response:
        plan = validated(Throttle, await json_object(request))
        try:
            api.throttle(plan.operation, plan.rate, plan.burst)
        except KeyError:
            refuse(f"no operation {plan.operation}; known: {sorted(api.buckets)}")
        return web.json_response(plan.model_dump())

    async def reset(request: web.Request) -> web.Response:
        api.reset()
        return web.json_response({"reset": True})

    return [
        web.post(f"{CONTROL}/orders", add),
        web.get(f"{CONTROL}/orders/{{orderId}}", show),
        web.get(f"{CONTROL}/feeds", feeds),
        web.post(f"{CONTROL}/throttle", throttle),
        web.post(f"{CONTROL}/reset", reset),
        *recorder_routes(CONTROL, api.recorder),
    ]

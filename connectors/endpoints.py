"""The connector's endpoints: a signed body in, a channel mapping, the records produced, and an
answer that says what became of them (the answers are listed in `connectors.web`).

Events (an order placed or cancelled) go through `Connector.publish`, deduplicated by the
delivery; changes to a live order (Shopify ``orders/edited`` and ``orders/updated``) through
`Connector.apply`, planned against what the connector remembers of the order
(`connectors.order_memory`). Handlers stay thin: mapping and planning are pure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from aiohttp import web
from pydantic import SecretStr

from connectors.delivery import Connector, Outcome
from connectors.json_input import JsonInputError, load_json
from connectors.marketplace import marketplace_cancellation, marketplace_order
from connectors.order_memory import OrderMemory, Plan, on_order_edited, on_order_updated
from connectors.shopify import FieldError, PayloadError, shopify_order
from connectors.shopify_changes import (
    OrderEdit,
    OrderUpdate,
    order_cancelled,
    parse_order_edited,
    parse_order_updated,
)
from schemas.orders import OrderCancelled, OrderPlaced

log = logging.getLogger(__name__)

SHOPIFY_HMAC_HEADER = "X-Shopify-Hmac-Sha256"
SHOPIFY_WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
SHOPIFY_TOPIC_HEADER = "X-Shopify-Topic"
DOM_HMAC_HEADER = "X-Dom-Hmac-Sha256"


def sign(secret: str, body: bytes) -> str:
    """The signature a sender puts in the HMAC header: base64 of HMAC-SHA256(secret, body)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signature_ok(secret: SecretStr | None, body: bytes, given: str | None) -> bool:
    """Whether ``given`` signs ``body``; never true without a secret (constant-time compare)."""
    if secret is None or not secret.get_secret_value() or not given:
        return False
    expected = sign(secret.get_secret_value(), body)
    return hmac.compare_digest(expected.encode(), given.strip().encode())


def parse_json(body: bytes) -> Any:
    """The body as JSON, or a `PayloadError` about the whole body (`connectors.json_input`)."""
    try:
        return load_json(body)
    except JsonInputError as exc:
        raise PayloadError([FieldError(field="body", message=str(exc))]) from exc


CONNECTOR = web.AppKey("connector", Connector)


# ---- Handlers ------------------------------------------------------------------------------------

Event = OrderPlaced | OrderCancelled


class Change(Protocol):
    """What a parsed change names: the order it changes."""

    @property
    def order_id(self) -> str: ...


C = TypeVar("C", bound=Change)


async def shopify_orders_create(request: web.Request) -> web.Response:
    """A Shopify ``orders/create`` webhook: an `OrderPlaced`."""
    return await _receive_event(
        request,
        "shopify",
        "orders/create",
        shopify_order,
        "shopify-order",
        _remember_placed,
    )


async def shopify_orders_cancelled(request: web.Request) -> web.Response:
    """A Shopify ``orders/cancelled`` webhook: an `OrderCancelled`."""
    return await _receive_event(
        request, "shopify-cancelled", "orders/cancelled", order_cancelled, "shopify-cancelled"
    )


async def shopify_orders_edited(request: web.Request) -> web.Response:
    """A Shopify ``orders/edited`` webhook: ``CANCEL_LINES`` for what it removed."""

    def key(edit: OrderEdit) -> str:
        return f"shopify-edit:{edit.edit_id}"

    def plan(edit: OrderEdit, memory: OrderMemory, connector: Connector) -> Plan:
        return on_order_edited(memory, edit, now=connector.clock())

    return await _receive_change(
        request, "shopify-edited", "orders/edited", parse_order_edited, key, plan
    )


async def shopify_orders_updated(request: web.Request) -> web.Response:
    """A Shopify ``orders/updated`` webhook: ``CANCEL_LINES`` and ``CHANGE_SHIP_TO`` for what
    the pipeline was not told yet; often nothing."""

    def key(update: OrderUpdate) -> str:
        return f"shopify-updated:{update.order_id}:{update.updated_at.isoformat()}"

    def plan(update: OrderUpdate, memory: OrderMemory, connector: Connector) -> Plan:
        return on_order_updated(memory, update, now=connector.clock())

    return await _receive_change(
        request, "shopify-updated", "orders/updated", parse_order_updated, key, plan
    )


async def marketplace_orders(request: web.Request) -> web.Response:
    """A marketplace order document: an `OrderPlaced`, once per ``AmazonOrderId``."""
    return await _receive_event(
        request, "marketplace", None, marketplace_order, "marketplace", by_order=True
    )


async def marketplace_cancellations(request: web.Request) -> web.Response:
    """A cancelled marketplace order's document: an `OrderCancelled`, once per order."""
    return await _receive_event(
        request,
        "marketplace-cancellations",
        None,
        marketplace_cancellation,
        "marketplace-cancel",
        by_order=True,
    )


async def _remember_placed(connector: Connector, event: Event) -> None:
    # On a duplicate too: the connector may have stopped between the broker's word and this.
    if isinstance(event, OrderPlaced):
        await connector.remember_placed(event)


def _delivery_key(request: web.Request, fallback: str) -> str:
    """The Shopify webhook id when given, else ``fallback`` (what the body names)."""
    webhook_id = request.headers.get(SHOPIFY_WEBHOOK_ID_HEADER, "").strip()
    return f"shopify:{webhook_id}" if webhook_id else fallback


async def _signed_body(
    request: web.Request, source: str, header: str, topic: str | None = None
) -> tuple[Connector, bytes | web.Response]:
    """The request's body if ``header`` signs it (and Shopify's topic header, if given, does
    not name another ``topic``), or the 401 or 422 to answer."""
    connector = request.app[CONNECTOR]
    body = await request.read()
    if not signature_ok(connector.settings.webhook_secret, body, request.headers.get(header)):
        log.warning("%s: refused a request with a bad or missing %s", source, header)
        refused = _answer(connector, source, "unauthorized", 401, {"error": "invalid signature"})
        return connector, refused
    given = request.headers.get(SHOPIFY_TOPIC_HEADER, "").strip().lower()
    if topic is not None and given and given != topic:
        # One address given every topic: an orders/updated must not be read as an order placed.
        message = f"is {given!r}: this endpoint takes {topic} (POST /webhooks/shopify takes any)"
        return connector, _invalid(
            connector,
            source,
            PayloadError([FieldError(field=SHOPIFY_TOPIC_HEADER, message=message)]),
        )
    return connector, body


async def shopify_webhook(request: web.Request) -> web.Response:
    """Any Shopify webhook at one address, handled by its ``X-Shopify-Topic``; a topic the
    connector does not take is acknowledged and ignored (Shopify would retry anything else)."""
    topic = request.headers.get(SHOPIFY_TOPIC_HEADER, "").strip().lower()
    handler = SHOPIFY_TOPICS.get(topic)
    if handler is not None:
        return await handler(request)
    connector, body = await _signed_body(request, "shopify-other", SHOPIFY_HMAC_HEADER)
    if isinstance(body, web.Response):
        return body
    if not topic:
        missing = FieldError(field=SHOPIFY_TOPIC_HEADER, message="is missing: which topic is it?")
        return _invalid(connector, "shopify-other", PayloadError([missing]))
    log.warning("shopify: ignored a webhook of topic %r", topic)
    ignored = {"ignored": True, "topic": topic}
    return _answer(connector, "shopify-other", "ignored", 200, ignored)


async def _receive_event(
    request: web.Request,
    source: str,
    topic: str | None,
    mapping: Callable[[Any], Event],
    key_prefix: str,
    on_accepted: Callable[[Connector, Event], Awaitable[None]] | None = None,
    *,
    by_order: bool = False,
) -> web.Response:
    """One event per request (of Shopify's ``topic``, or a marketplace document), deduplicated
    by the webhook id (``by_order``: by its order)."""
    header = DOM_HMAC_HEADER if topic is None else SHOPIFY_HMAC_HEADER
    connector, body = await _signed_body(request, source, header, topic)
    if isinstance(body, web.Response):
        return body
    try:
        event = mapping(parse_json(body))
    except PayloadError as exc:
        return _invalid(connector, source, exc)
    fallback = f"{key_prefix}:{event.order_id}"
    outcome = await connector.publish(
        fallback if by_order else _delivery_key(request, fallback), event
    )
    if outcome.status in ("accepted", "duplicate") and on_accepted is not None:
        await on_accepted(connector, event)
    return _answer_outcome(connector, source, event.order_id, {"event_id": event.event_id}, outcome)


async def _receive_change(
    request: web.Request,
    source: str,
    topic: str,
    parse: Callable[[Any], C],
    fallback_key: Callable[[C], str],
    plan: Callable[[C, OrderMemory, Connector], Plan],
) -> web.Response:
    """A Shopify change: planned against the order's memory, its actions produced."""
    connector, body = await _signed_body(request, source, SHOPIFY_HMAC_HEADER, topic)
    if isinstance(body, web.Response):
        return body
    try:
        change = parse(parse_json(body))
        outcome, planned = await connector.apply(
            _delivery_key(request, fallback_key(change)),
            change.order_id,
            lambda memory: plan(change, memory, connector),
        )
    except PayloadError as exc:
        return _invalid(connector, source, exc)
    action_ids = [a.action_id for a in planned.actions] if planned else []
    return _answer_outcome(connector, source, change.order_id, {"action_ids": action_ids}, outcome)


def _invalid(connector: Connector, source: str, exc: PayloadError) -> web.Response:
    log.warning("%s: invalid body: %s", source, exc)
    return _answer(connector, source, "invalid", 422, {"errors": exc.errors})


def _answer_outcome(
    connector: Connector, source: str, order_id: str, produced: dict[str, Any], outcome: Outcome
) -> web.Response:
    """The answer to a body that mapped: what became of its records."""
    if outcome.status == "accepted":
        log.info("%s: %s produced (%s)", source, order_id, produced)
        accepted = {"accepted": True, "order_id": order_id, **produced}
        return _answer(connector, source, "accepted", 202, accepted)
    if outcome.status == "duplicate":
        duplicate = {"duplicate": True, "order_id": order_id}
        return _answer(connector, source, "duplicate", 200, duplicate)
    if outcome.status == "unchanged":
        log.info("%s: %s: nothing to produce: %s", source, order_id, outcome.detail)
        unchanged = {"duplicate": True, "order_id": order_id, "detail": outcome.detail}
        return _answer(connector, source, "unchanged", 200, unchanged)
    if outcome.status == "too_large":
        return _answer(connector, source, "too_large", 413, {"error": outcome.detail})
    if outcome.status == "unencodable":
        errors = [FieldError(field="body", message=outcome.detail)]
        return _answer(connector, source, "invalid", 422, {"errors": errors})
    log.error("%s: %s not confirmed by the broker: %s", source, order_id, outcome.detail)
    unavailable = {"error": "the broker did not confirm the order", "detail": outcome.detail}
    return _answer(connector, source, "unavailable", 503, unavailable, headers={"Retry-After": "5"})


def _answer(
    connector: Connector,
    source: str,
    kind: str,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> web.Response:
    connector.answers[f"{source}.{kind}"] += 1
    return web.json_response(body, status=status, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.Response]]

SHOPIFY_TOPICS: dict[str, Handler] = {
    "orders/create": shopify_orders_create,
    "orders/cancelled": shopify_orders_cancelled,
    "orders/edited": shopify_orders_edited,
    "orders/updated": shopify_orders_updated,
}

ROUTES: tuple[tuple[str, Handler], ...] = (
    ("/webhooks/shopify", shopify_webhook),
    ("/webhooks/shopify/orders-create", shopify_orders_create),
    ("/webhooks/shopify/orders-cancelled", shopify_orders_cancelled),
    ("/webhooks/shopify/orders-edited", shopify_orders_edited),
    ("/webhooks/shopify/orders-updated", shopify_orders_updated),
    ("/marketplace/orders", marketplace_orders),
    ("/marketplace/cancellations", marketplace_cancellations),
)
"""Every POST endpoint, by path."""

"""A stand-in Shopify shop: the state behind the REST Admin API routes (`shopify_app`), the
shop's side of the webhooks, and the knobs a test or the demo turns.

`StandinShop` holds the orders (`shopify_orders.OrderBook`), the catalogue and its inventory
levels (`shopify_inventory.Catalogue`), the app's two rate limits (the REST call-limit bucket
and the GraphQL cost bucket), the call log and the armed faults. It is constructed with the
shop's facts (access token, the one API version it speaks, name, domain, ids, default
location, plan limits, webhook target) and two clocks: ``now`` (monotonic seconds, for the
buckets) and ``wall`` (timestamps in the JSON).

Webhooks (https://shopify.dev/docs/apps/build/webhooks): with a target configured, placing
an order POSTs the ``orders/create`` payload to it, signed like Shopify signs: header
``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the raw body with the secret
(https://shopify.dev/docs/apps/build/webhooks/verify-deliveries), beside ``X-Shopify-Topic``,
``X-Shopify-Shop-Domain``, ``X-Shopify-API-Version``, ``X-Shopify-Webhook-Id``,
``X-Shopify-Event-Id`` and ``X-Shopify-Triggered-At``. Shopify gives a receiver five seconds;
so does the stand-in, and it reports the receiver's status (or why there was none).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from connectors.standin.clock import utc_now
from connectors.standin.ratelimit import CostBucket, LeakyBucket
from connectors.standin.recorder import Recorder
from connectors.standin.shopify_actions import apply_cancel
from connectors.standin.shopify_inventory import Catalogue
from connectors.standin.shopify_orders import OrderBook, fulfillment_order_json, order_json

DEFAULT_VERSION = "2025-01"
WEBHOOK_TIMEOUT = 5.0


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    secret: str


@dataclass(frozen=True)
class WebhookResult:
    """What the receiver answered: its status, or the reason there was none."""

    status: int | None
    error: str | None = None


def sign(secret: str, body: bytes) -> str:
    """Shopify's webhook signature of ``body``: base64 of HMAC-SHA256 keyed with ``secret``."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class StandinShop:
    """One shop, one app installed on it (one access token, one call-limit bucket)."""

    def __init__(
        self,
        *,
        access_token: str = "shpat_standin",
        api_version: str = DEFAULT_VERSION,
        shop_domain: str = "standin-shop.myshopify.com",
        shop_id: int = 548380009,
        name: str = "Stand-in Shop",
        location_id: int = 24826418,
        location_name: str = "Shop location",
        bucket_size: int = 40,
        leak_rate: float = 2.0,
        graphql_maximum: float = 2000.0,
        graphql_restore_rate: float = 100.0,
        webhook: WebhookTarget | None = None,
        now: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utc_now,
    ) -> None:
        self.access_token = access_token
        self.api_version = api_version
        self.shop_domain = shop_domain
        self.shop_id = shop_id
        self.name = name
        self.location_id = location_id
        self.location_name = location_name
        self.webhook = webhook
        self.now = now
        self.wall = wall
        self.created_at = wall().isoformat(timespec="seconds")
        self._limits = (bucket_size, leak_rate)
        self._graphql_limits = (graphql_maximum, graphql_restore_rate)
        self.recorder = Recorder()
        self.bucket = LeakyBucket(bucket_size, leak_rate)
        self.graphql_bucket = CostBucket(graphql_maximum, graphql_restore_rate)
        self.book = self._new_book()
        self.catalogue = self._new_catalogue()

    def _new_book(self) -> OrderBook:
        return OrderBook(shop_id=self.shop_id, location_id=self.location_id, wall=self.wall)

    def _new_catalogue(self) -> Catalogue:
        return Catalogue(location_id=self.location_id, wall=self.wall)

    def reset(self) -> None:
        """Forget every order, product, inventory level, call and fault; the REST bucket is
        empty and the GraphQL bucket full, both sized as constructed."""
        self.book = self._new_book()
        self.catalogue = self._new_catalogue()
        self.bucket = LeakyBucket(*self._limits)
        self.graphql_bucket = CostBucket(*self._graphql_limits)
        self.recorder.clear()

    def throttle(self, bucket_size: int, leak_rate: float) -> None:
        """Another plan's limits (e.g. Plus: 400, 20/s), starting from an empty bucket."""
        self.bucket = LeakyBucket(bucket_size, leak_rate)

    def graphql_throttle(self, maximum_available: float, restore_rate: float) -> None:
        """Other GraphQL cost limits (Shopify Plus restores 1000 points/s), starting full."""
        self.graphql_bucket = CostBucket(maximum_available, restore_rate)

    def create_order(self, order_json: Any, assignments: Mapping[int, int] | None = None) -> int:
        """Take an order as its ``orders/create`` webhook carries it; its id. Line items go to
        the default location unless ``assignments`` ({line_item_id: location_id}) says
        otherwise: one fulfillment order per location. `ValueError` for an unusable order."""
        return self.book.add_order(order_json, assignments).id

    async def place_order(
        self, order_json: Any, assignments: Mapping[int, int] | None = None
    ) -> tuple[int, WebhookResult | None]:
        """`create_order`, then the ``orders/create`` webhook (``None``: no target set)."""
        order_id = self.create_order(order_json, assignments)
        return order_id, await self.send_webhook("orders/create", self.order(order_id))

    async def cancel_order_in_admin(
        self, order_id: int, reason: str = "other"
    ) -> list[WebhookResult | None]:
        """What a merchant cancelling in the admin causes: the order cancelled, then the
        ``orders/cancelled`` and ``orders/updated`` webhooks. `KeyError` for no such order."""
        if order_id not in self.book.orders:
            raise KeyError(order_id)
        apply_cancel(self.book, self.book.orders[order_id], reason)
        payload = self.order(order_id)
        return [
            await self.send_webhook("orders/cancelled", payload),
            await self.send_webhook("orders/updated", payload),
        ]

    def order(self, order_id: int) -> dict[str, Any]:
        """The order as ``GET orders/{id}.json`` shows it (`KeyError` for no such order)."""
        return order_json(self.book.orders[order_id])

    def order_view(self, order_id: int) -> dict[str, Any]:
        """Everything about one order, for the control API (`KeyError` for no such order)."""
        order = self.book.orders[order_id]
        return {
            "order": order_json(order),
            "fulfillment_orders": [
                fulfillment_order_json(self.book, order, fo) for fo in order.fulfillment_orders
            ],
            "fulfillments": order.fulfillments,
            "refunds": order.refunds,
            "cancellation": None
            if order.cancelled_at is None
            else {"cancelled_at": order.cancelled_at, "cancel_reason": order.cancel_reason},
        }

    async def send_webhook(self, topic: str, payload: Any) -> WebhookResult | None:
        if self.webhook is None:
            return None
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(self.webhook.secret, body),
            "X-Shopify-Shop-Domain": self.shop_domain,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": self.wall().isoformat(),
        }
        timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(self.webhook.url, data=body, headers=headers) as response,
            ):
                return WebhookResult(response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return WebhookResult(None, f"{type(exc).__name__}: {exc}")

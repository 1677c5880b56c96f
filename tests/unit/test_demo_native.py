"""The demo's native channel payloads: Shopify webhooks and SP-API documents that the connector's
own mappings accept and turn into the orders the demo meant; and the client that posts them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import random
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import Message as EmailMessage
from functools import cache
from typing import Any

import pytest

from connectors.demo_native import (
    MARKETPLACE_PATH,
    NATIVE_CHANNELS,
    SHOPIFY_PATH,
    ChannelPost,
    ConnectorClient,
    NativeOrders,
)
from connectors.demo_orders import ChannelOrders, distance_km
from connectors.demo_traffic import TrafficConfig, TrafficGenerator
from connectors.demo_world import DemoWorld, build_world
from connectors.marketplace import marketplace_order
from connectors.shopify import shopify_order
from connectors.web import DOM_HMAC_HEADER, SHOPIFY_HMAC_HEADER, SHOPIFY_WEBHOOK_ID_HEADER
from schemas.models import (
    Channel,
    FulfillmentMethod,
    OrderCancelled,
    OrderPlaced,
    ServiceLevel,
)

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@cache
def world() -> DemoWorld:
    return build_world(now=NOW, skus=300, stores=6, seed=7)


def native(run_id: str = "r1") -> NativeOrders:
    return NativeOrders(ChannelOrders(world(), random.Random(run_id)), run_id)


def test_shopify_webhooks_map_to_the_intended_web_orders() -> None:
    w, orders = world(), native()
    prices = {p.sku: p.unit_price for p in w.products}
    tiers = {c.customer.customer_id: c.customer.loyalty_tier for c in w.customers}
    stores = {s.location_id: s for s in w.stores}
    posts = [orders.shopify(n, NOW) for n in range(300)]
    placed = [shopify_order(json.loads(post.body)) for post in posts]
    for post, order in zip(posts, placed, strict=True):
        assert (post.channel, post.path, post.signature_header) == (
            Channel.WEB,
            SHOPIFY_PATH,
            SHOPIFY_HMAC_HEADER,
        )
        assert order.channel is Channel.WEB and order.order_id == post.order_id
        assert order.order_id == f"WEB-{post.payload['id']}"
        assert dict(post.headers)[SHOPIFY_WEBHOOK_ID_HEADER] == f"demo-{post.payload['id']}"
        assert [(x.sku, x.quantity) for x in order.lines] == [
            (item["sku"], item["quantity"]) for item in post.payload["line_items"]
        ]
        assert all(x.unit_price == prices[x.sku] for x in order.lines)
        assert order.order_total == sum(x.unit_price * x.quantity for x in order.lines)
        demo_id = order.customer.customer_id.removeprefix("shopify-")
        assert order.customer.loyalty_tier == tiers[demo_id]
        assert order.placed_at == NOW
        if order.fulfillment_method is FulfillmentMethod.PICKUP:
            assert order.pickup_location_id in stores and order.ship_to is None
        else:
            assert order.ship_to is not None and order.ship_to.lat is not None
    assert len({o.order_id for o in placed}) == len(placed)
    assert {o.service_level for o in placed} == set(ServiceLevel)
    assert 0.05 < sum(o.fulfillment_method is FulfillmentMethod.PICKUP for o in placed) / 300 < 0.3
    assert any(o.customer.loyalty_tier == "GOLD" for o in placed)
    assert any("gift" in o.tags for o in placed)


def test_a_pickup_goes_to_the_store_nearest_the_customer() -> None:
    orders = native("pickups")
    homes = {c.customer.customer_id: c.home for c in world().customers}
    stores = {s.location_id: s for s in world().stores}
    pickups = [
        o
        for o in (shopify_order(orders.shopify(n, NOW).payload) for n in range(200))
        if o.pickup_location_id is not None
    ]
    assert pickups
    for order in pickups:
        home = homes[order.customer.customer_id.removeprefix("shopify-")]
        store = stores[order.pickup_location_id or ""]
        chosen = distance_km(store.address, home.lat, home.lon)
        assert chosen == min(distance_km(s.address, home.lat, home.lon) for s in stores.values())


def test_sp_api_documents_map_to_the_intended_marketplace_orders() -> None:
    prices = {p.sku: p.unit_price for p in world().products}
    orders = native()
    posts = [orders.sp_api(n, NOW) for n in range(200)]
    placed = [marketplace_order(json.loads(post.body)) for post in posts]
    for post, order in zip(posts, placed, strict=True):
        assert (post.path, post.signature_header) == (MARKETPLACE_PATH, DOM_HMAC_HEADER)
        assert order.channel is Channel.MARKETPLACE and order.order_id == post.order_id
        assert order.order_id == f"MKT-{post.payload['AmazonOrderId']}"
        assert order.fulfillment_method is FulfillmentMethod.SHIP and order.ship_to is not None
        assert [(x.sku, x.quantity, x.unit_price) for x in order.lines] == [
            (item["SellerSKU"], item["QuantityOrdered"], prices[item["SellerSKU"]])
            for item in post.payload["OrderItems"]
        ]
        assert order.order_total == sum(x.unit_price * x.quantity for x in order.lines)
        assert 1 <= len(order.lines) <= 3
    assert len({o.order_id for o in placed}) == len(placed)
    assert {o.service_level for o in placed} == set(ServiceLevel)
    assert any("prime" in o.tags for o in placed)


def test_ids_are_unique_per_run() -> None:
    a, b = native("run-a"), native("run-b")
    assert a.shopify(0, NOW).order_id != b.shopify(0, NOW).order_id
    assert a.sp_api(0, NOW).order_id != b.sp_api(0, NOW).order_id
    with pytest.raises(ValueError, match="no native format"):
        a.build(Channel.POS, 0, NOW)


def test_traffic_sends_web_and_marketplace_as_posts_and_cancels_by_the_connectors_ids() -> None:
    config = TrafficConfig(rate=20, cancel_share=0.5)
    generator = TrafficGenerator(world(), config, run_id="t9", start=NOW, native=NATIVE_CHANNELS)
    out = []
    for n in range(1, 201):
        out += generator.tick(NOW + timedelta(seconds=n * 0.1))
    posts = [r for r in out if isinstance(r, ChannelPost)]
    direct = [r for r in out if isinstance(r, OrderPlaced)]
    assert {p.channel for p in posts} == NATIVE_CHANNELS
    assert {o.channel for o in direct} == set(Channel) - NATIVE_CHANNELS
    assert len(posts) + len(direct) == 400
    counts = Counter(p.channel for p in posts)
    assert counts[Channel.WEB] == generator.counts["orders.WEB"]
    cancelled = {r.order_id for r in out if isinstance(r, OrderCancelled)}
    placed = {p.order_id for p in posts} | {o.order_id for o in direct}
    assert cancelled and cancelled <= placed
    assert any(x.startswith("WEB-") for x in cancelled)
    assert any(x.startswith("MKT-") for x in cancelled)


# ---- the client, against a stand-in for urlopen ---------------------------------------------


class FakeResponse(io.BytesIO):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(json.dumps(body).encode())
        self.status = status


def http_error(url: str, code: int) -> urllib.error.HTTPError:
    body = io.BytesIO(json.dumps({"error": f"status {code}"}).encode())
    return urllib.error.HTTPError(url, code, "nope", EmailMessage(), body)


def test_client_signs_posts_retries_and_counts_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, dict[str, str]]] = []
    script: dict[str, list[tuple[int, dict[str, Any]]]] = {  # order id -> answers in turn
        "WEB-1": [(202, {})],
        "WEB-2": [(200, {"duplicate": True})],
        "WEB-3": [(401, {})],
        "MKT-4": [(503, {}), (202, {})],  # retried
        "MKT-5": [(503, {}), (503, {}), (503, {})],  # gives up after two retries
    }

    def urlopen(request: urllib.request.Request, timeout: float) -> FakeResponse:
        body = request.data
        assert isinstance(body, bytes)
        headers = {k.lower(): v for k, v in request.header_items()}
        order_id = json.loads(body)["order"]
        seen.append((order_id, headers))
        status, answer = script[order_id].pop(0)
        if status >= 400:
            raise http_error(request.full_url, status)
        return FakeResponse(status, answer)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    client = ConnectorClient("http://connector:8088/", "s3cret", workers=2, backoff=0.01)
    for order_id in script:
        header = SHOPIFY_HMAC_HEADER if order_id.startswith("WEB") else DOM_HMAC_HEADER
        client.send(ChannelPost(Channel.WEB, order_id, SHOPIFY_PATH, header, {"order": order_id}))
    answers = client.close(timeout=10)
    assert {k: v for k, v in answers.items() if v} == {
        "accepted": 2,
        "duplicate": 1,
        "4xx": 1,
        "5xx": 1,
    }
    assert client.last_refusal is not None
    assert len(seen) == 1 + 1 + 1 + 2 + 3
    order_id, headers = seen[0]
    body = json.dumps({"order": order_id}, separators=(",", ":")).encode()
    expected = base64.b64encode(hmac.new(b"s3cret", body, hashlib.sha256).digest()).decode()
    assert headers[SHOPIFY_HMAC_HEADER.lower()] == expected
    assert headers["content-type"] == "application/json"


def test_client_counts_an_unreachable_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(request: urllib.request.Request, timeout: float) -> FakeResponse:
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(urllib.request, "urlopen", refused)
    client = ConnectorClient("http://127.0.0.1:9", "s", retries=1, backoff=0.01)
    assert client.wait_until_up(0) is False
    client.send(ChannelPost(Channel.WEB, "WEB-1", SHOPIFY_PATH, SHOPIFY_HMAC_HEADER, {}))
    assert client.close(timeout=10)["unreachable"] == 1

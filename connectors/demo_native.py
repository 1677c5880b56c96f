"""Demo orders in their channels' own formats, and the client that posts them to the connector.

With ``dom demo --connector URL`` the web store and the marketplace do not produce contract
events: :class:`NativeOrders` builds a Shopify ``orders/create`` body or an SP-API-like order
document (drawn from the world the way `ChannelOrders` draws its orders), and
:class:`ConnectorClient` posts it, signed, to the HTTP connector, whose mapping makes the
`OrderPlaced`. Ids are chosen so the demo knows what the connector will call the order
(``WEB-<id>``, ``MKT-<AmazonOrderId>``) and can cancel it later; they are unique per run, so a
rerun is never answered as a duplicate of the last.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.demo_orders import ChannelOrders
from connectors.demo_world import DemoCustomer
from connectors.shopify import PICKUP_ATTRIBUTE
from connectors.web import DOM_HMAC_HEADER, SHOPIFY_HMAC_HEADER, SHOPIFY_WEBHOOK_ID_HEADER, sign
from schemas.models import Address, Channel, ServiceLevel

SHOPIFY_PATH = "/webhooks/shopify/orders-create"
MARKETPLACE_PATH = "/marketplace/orders"
NATIVE_CHANNELS = frozenset({Channel.WEB, Channel.MARKETPLACE})
DEMO_MARKETPLACE_ID = "ATVPDKIKX0DER"  # Amazon.com, the sync's default
"""The channels that go through the connector when the demo is given one."""

# (code, title) of the shipping line the storefront writes for each speed.
SHOPIFY_SHIPPING = {
    ServiceLevel.STANDARD: ("Standard", "Standard Shipping"),
    ServiceLevel.EXPRESS: ("Express", "Express 2-Day"),
    ServiceLevel.NEXT_DAY: ("Next Day", "Next Day Air"),
}
SP_API_LEVELS = {
    ServiceLevel.STANDARD: "Standard",
    ServiceLevel.EXPRESS: "Expedited",
    ServiceLevel.NEXT_DAY: "NextDay",
}
ANSWERS = ("accepted", "duplicate", "4xx", "5xx", "other", "unreachable", "unsent")


@dataclass(frozen=True)
class ChannelPost:
    """An order as its channel sends it: the JSON to POST, where, and the header to sign it in.

    ``order_id`` is what the connector will make of it (the demo cancels and returns by it).
    """

    channel: Channel
    order_id: str
    path: str
    signature_header: str
    payload: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def body(self) -> bytes:
        return json.dumps(self.payload, separators=(",", ":")).encode()


class NativeOrders:
    """WEB orders as Shopify webhooks, MARKETPLACE orders as SP-API documents."""

    def __init__(self, orders: ChannelOrders, run_id: str) -> None:
        self.orders = orders
        digest = hashlib.sha256(run_id.encode()).hexdigest()
        self.run_number = 1_000_000 + int(digest[:12], 16) % 9_000_000  # seven digits

    def build(self, channel: Channel, n: int, now: datetime) -> ChannelPost:
        """Order number ``n`` of this run, placed at ``now``, in ``channel``'s format."""
        if channel is Channel.WEB:
            return self.shopify(n, now)
        if channel is Channel.MARKETPLACE:
            return self.sp_api(n, now)
        raise ValueError(f"no native format for {channel.value} orders")

    def shopify(self, n: int, now: datetime) -> ChannelPost:
        """A Shopify ``orders/create`` body: ship, or pick up at the store nearest home."""
        o = self.orders
        person = o.rng.choice(o.people)
        tags = o.web_tags()
        lines = o.pick_lines(o.line_count(), (1, 2))
        shopify_id = self.run_number * 1_000_000 + n  # 13 digits, like Shopify's own
        items = [
            {
                "id": shopify_id * 10 + k,
                "sku": sku,
                "quantity": qty,
                "price": _money(o.by_sku[sku].unit_price),
                "title": o.by_sku[sku].name,
            }
            for k, (sku, qty) in enumerate(lines, start=1)
        ]
        total = sum((o.by_sku[sku].unit_price * qty for sku, qty in lines), Decimal(0))
        payload: dict[str, Any] = {
            "id": shopify_id,
            "name": f"#{1001 + n}",
            "order_number": 1001 + n,
            "created_at": now.isoformat(),
            "currency": "USD",
            "total_price": _money(total),
            "email": person.customer.email,
            "customer": _shopify_customer(person),
            "line_items": items,
            "tags": ", ".join(tags),
        }
        if o.stores and o.chance(0.15):
            store = o.nearest_store(person.home)
            payload["note_attributes"] = [{"name": PICKUP_ATTRIBUTE, "value": store.location_id}]
        else:
            code, title = SHOPIFY_SHIPPING[o.service((70, 22, 8))]
            payload["shipping_lines"] = [{"code": code, "title": title, "price": "0.00"}]
            payload["shipping_address"] = _shopify_address(person, o.ship_to(person))
        headers = (
            (SHOPIFY_WEBHOOK_ID_HEADER, f"demo-{shopify_id}"),
            ("X-Shopify-Topic", "orders/create"),
        )
        return ChannelPost(
            Channel.WEB, f"WEB-{shopify_id}", SHOPIFY_PATH, SHOPIFY_HMAC_HEADER, payload, headers
        )

    def sp_api(self, n: int, now: datetime) -> ChannelPost:
        """An SP-API-like order document: line prices are per line, as SP-API gives them."""
        o = self.orders
        person = o.rng.choice(o.people)
        lines = o.pick_lines(min(3, o.line_count()), (1, 2))
        amazon_id = f"11{n % 8 + 1}-{self.run_number:07d}-{n:07d}"
        items = [
            {
                "OrderItemId": f"{self.run_number}{n:07d}{k}",
                "SellerSKU": sku,
                "QuantityOrdered": qty,
                "ItemPrice": {
                    "Amount": _money(o.by_sku[sku].unit_price * qty),
                    "CurrencyCode": "USD",
                },
            }
            for k, (sku, qty) in enumerate(lines, start=1)
        ]
        total = sum((o.by_sku[sku].unit_price * qty for sku, qty in lines), Decimal(0))
        ship = o.ship_to(person)
        buyer = hashlib.sha256(person.customer.customer_id.encode()).hexdigest()[:16]
        payload = {
            "AmazonOrderId": amazon_id,
            "PurchaseDate": now.isoformat(),
            "OrderStatus": "Unshipped",
            "OrderTotal": {"Amount": _money(total), "CurrencyCode": "USD"},
            "ShipmentServiceLevelCategory": SP_API_LEVELS[o.service((60, 30, 10))],
            "ShippingAddress": {
                "Name": ship.name,
                "AddressLine1": ship.line1,
                "City": ship.city,
                "StateOrRegion": ship.region,
                "PostalCode": ship.postal_code,
                "CountryCode": ship.country,
            },
            "OrderItems": items,
            "BuyerInfo": {"BuyerEmail": f"{buyer}@marketplace.amazon.com"},
            "IsPrime": o.chance(0.35),
        }
        return ChannelPost(
            Channel.MARKETPLACE, f"MKT-{amazon_id}", MARKETPLACE_PATH, DOM_HMAC_HEADER, payload
        )


def _money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _shopify_customer(person: DemoCustomer) -> dict[str, Any]:
    tier = person.customer.loyalty_tier
    return {
        "id": person.customer.customer_id,
        "email": person.customer.email,
        "tags": f"tier:{tier}" if tier else "",
    }


def _shopify_address(person: DemoCustomer, ship: Address) -> dict[str, Any]:
    first, _, last = person.name.partition(" ")
    return {
        "first_name": first,
        "last_name": last,
        "name": ship.name,
        "address1": ship.line1,
        "city": ship.city,
        "province_code": ship.region,
        "zip": ship.postal_code,
        "country_code": ship.country,
        "latitude": ship.lat,
        "longitude": ship.lon,
    }


class ConnectorClient:
    """Posts channel payloads to the connector from a few threads and counts the answers.

    The connector answers only once the broker confirmed the order, so a post can take a
    while; the traffic loop hands posts over and never waits. A ``5xx`` or an unreachable
    connector is retried a couple of times (the sender's ids make a retry harmless).
    """

    def __init__(
        self,
        base_url: str,
        secret: str,
        *,
        shop_url: str | None = None,
        workers: int = 8,
        timeout: float = 15.0,
        retries: int = 2,
        backoff: float = 1.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.shop_url = shop_url.rstrip("/") if shop_url else None
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.last_refusal: str | None = None
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="demo-connector")
        self._lock = threading.Lock()
        self._answers: Counter[str] = Counter()
        self._in_flight: set[Future[None]] = set()
        self._closing = threading.Event()

    def wait_until_up(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Whether ``GET /healthz`` answers 200 within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                return False
            time.sleep(0.5)

    def stock_shop(self, skus: Sequence[str], timeout: float = 30.0) -> str:
        """The stand-in shop sells the world's skus (a product each), so that the sync can set
        the web channel's figures there; waits up to ``timeout`` for the shop to answer. What
        happened, in words (a shop that has them already refuses them again: 422)."""
        if self.shop_url is None:
            return "no shop"
        url = f"{self.shop_url}/_standin/shopify/products"
        deadline = time.monotonic() + timeout
        while True:
            kind, detail = _post_json(url, {"skus": list(skus)}, self.timeout)
            if kind != "unreachable" or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        if kind == "accepted":
            return f"the shop sells {len(skus)} skus"
        if kind == "4xx" and detail.startswith("422"):
            return "the shop sells these skus already"
        return f"the shop's catalogue was not stocked ({kind}: {detail})"

    def send(self, post: ChannelPost) -> None:
        """Post in the background; the answer shows up in :meth:`answers`."""
        future = self._pool.submit(self._deliver, post)
        with self._lock:
            self._in_flight.add(future)
        future.add_done_callback(self._done)

    def answers(self) -> Counter[str]:
        """Answers so far by kind (``accepted``, ``duplicate``, ``4xx``, ...) and ``in_flight``."""
        with self._lock:
            counts = Counter({kind: self._answers[kind] for kind in ANSWERS})
            counts["in_flight"] = len(self._in_flight)
        return counts

    def close(self, timeout: float = 30.0) -> Counter[str]:
        """Wait up to ``timeout`` seconds for posts under way; what is left is ``unsent``."""
        with self._lock:
            pending = list(self._in_flight)
        wait_for(pending, timeout)
        self._closing.set()  # no more retries
        self._pool.shutdown(wait=False, cancel_futures=True)
        return self.answers()

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._in_flight.discard(future)
            if future.cancelled():
                self._answers["unsent"] += 1

    def _deliver(self, post: ChannelPost) -> None:
        for attempt in range(self.retries + 1):
            kind, detail = self._post_once(post)
            if kind not in ("5xx", "unreachable") or attempt == self.retries:
                break
            if self._closing.wait(self.backoff * (attempt + 1)):
                break
        with self._lock:
            self._answers[kind] += 1
            if kind != "accepted" and kind != "duplicate":
                self.last_refusal = f"{post.order_id}: {detail}"

    def _post_once(self, post: ChannelPost) -> tuple[str, str]:
        if self.shop_url is not None and post.channel is Channel.WEB:
            return self._place_in_shop(post)
        if self.shop_url is not None and post.channel is Channel.MARKETPLACE:
            kind, detail = self._list_on_marketplace(post)
            if kind != "accepted":
                return kind, detail
        body = post.body
        headers = {
            "Content-Type": "application/json",
            post.signature_header: sign(self.secret, body),
            **dict(post.headers),
        }
        url = f"{self.base_url}{post.path}"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, text = response.status, response.read()
        except urllib.error.HTTPError as err:
            detail = f"{err.code} {err.read()[:300].decode(errors='replace')}"
            return ("4xx" if err.code < 500 else "5xx"), detail
        except OSError as exc:  # refused, reset, timed out
            return "unreachable", str(exc)
        if status == 202:
            return "accepted", ""
        if status == 200 and b'"duplicate"' in text:
            return "duplicate", ""
        return "other", f"unexpected {status} {text[:300].decode(errors='replace')}"

    def _place_in_shop(self, post: ChannelPost) -> tuple[str, str]:
        """The customer orders in the stand-in shop, which sends the signed ``orders/create``
        webhook to the connector; the connector's answer is the shop's report of it."""
        kind, answer = _post_json(
            f"{self.shop_url}/_standin/shopify/orders", post.payload, self.timeout
        )
        if kind != "accepted":
            return kind, answer
        status = json.loads(answer).get("webhook_status")
        if status == 202:
            return "accepted", ""
        if status == 200:
            return "duplicate", ""
        if status is None:
            return "unreachable", f"the shop's webhook got no answer: {answer}"
        return ("4xx" if status < 500 else "5xx"), f"webhook answered {status}"

    def _list_on_marketplace(self, post: ChannelPost) -> tuple[str, str]:
        """The stand-in marketplace learns of the order, so it can take its confirmations."""
        listing = {
            "AmazonOrderId": post.payload["AmazonOrderId"],
            "MarketplaceId": DEMO_MARKETPLACE_ID,
            "OrderItems": [
                {k: item[k] for k in ("OrderItemId", "SellerSKU", "QuantityOrdered")}
                for item in post.payload["OrderItems"]
            ],
        }
        kind, answer = _post_json(f"{self.shop_url}/_standin/spapi/orders", listing, self.timeout)
        if kind == "4xx" and "exists already" in answer:  # our own retry
            return "accepted", ""
        return kind, answer


def _post_json(url: str, payload: Any, timeout: float) -> tuple[str, str]:
    """POST ``payload`` as JSON: ("accepted", the body) on a 2xx, else the kind of failure."""
    data = json.dumps(payload, separators=(",", ":")).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return "accepted", response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        detail = f"{err.code} {err.read()[:300].decode(errors='replace')}"
        return ("4xx" if err.code < 500 else "5xx"), detail
    except OSError as exc:
        return "unreachable", str(exc)

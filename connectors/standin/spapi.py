"""A stand-in Amazon Selling Partner API for one seller: the state behind the Orders v0 and
Feeds 2021-06-30 routes (`spapi_app`), and the knobs a test or the demo turns.

`StandinSpApi` holds the marketplace orders (`spapi_orders`), the feed documents and feeds
(`spapi_feeds`), one token bucket per operation, the call log and the armed faults. Callers
authenticate with the LWA access token in ``x-amz-access-token`` (request signing with AWS
SigV4 is no longer required by SP-API and is not checked).

Usage plans are the operations' documented defaults (rate in requests a second, burst), from
the models' "Usage Plan" tables
(https://github.com/amzn/selling-partner-api-models/tree/main/models): ``throttle`` changes one,
as Amazon's dynamic usage plans may.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from connectors.standin.clock import utc_now
from connectors.standin.lwa import TokenDesk
from connectors.standin.ratelimit import TokenBucket
from connectors.standin.recorder import Recorder
from connectors.standin.spapi_feeds import FeedDesk
from connectors.standin.spapi_orders import (
    MarketOrder,
    amazon_time,
    items_payload,
    new_order,
    order_payload,
)

USAGE_PLANS: dict[str, tuple[float, int]] = {
    "getOrder": (0.5, 30),
    "getOrderItems": (0.5, 30),
    "confirmShipment": (2.0, 10),
    "createFeedDocument": (0.5, 15),
    "createFeed": (0.0083, 15),
    "getFeed": (2.0, 15),
    "getFeedDocument": (0.0222, 10),
}


def new_request_id() -> str:
    return str(uuid.uuid4())


class StandinSpApi:
    """One selling partner's view of the marketplace."""

    def __init__(
        self,
        *,
        access_token: str = "Atza|standin-access-token",
        merchant_id: str = "A1STANDINSELLER",
        feed_delay: float = 0.0,
        now: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utc_now,
        request_ids: Callable[[], str] = new_request_id,
        lwa: TokenDesk | None = None,
    ) -> None:
        self.access_token = access_token
        self.lwa = lwa or TokenDesk()  # tokens issued at /auth/o2/token are good too
        self.merchant_id = merchant_id
        self.feed_delay = feed_delay
        self.now = now
        self.wall = wall
        self.request_ids = request_ids
        self.recorder = Recorder()
        self.orders: dict[str, MarketOrder] = {}
        self.buckets = self._default_buckets()
        self.desk = FeedDesk(merchant=merchant_id, feed_delay=feed_delay)

    @staticmethod
    def _default_buckets() -> dict[str, TokenBucket]:
        return {name: TokenBucket(rate, burst) for name, (rate, burst) in USAGE_PLANS.items()}

    def timestamp(self) -> str:
        return amazon_time(self.wall())

    def reset(self) -> None:
        """Forget every order, feed, call and fault; every usage plan back to its default."""
        self.orders.clear()
        self.buckets = self._default_buckets()
        self.desk = FeedDesk(merchant=self.merchant_id, feed_delay=self.feed_delay)
        self.recorder.clear()

    def throttle(self, operation: str, rate: float, burst: int) -> None:
        """Another usage plan for ``operation`` (`KeyError` for one the stand-in lacks)."""
        if operation not in self.buckets:
            raise KeyError(operation)
        self.buckets[operation] = TokenBucket(rate, burst)

    def add_order(self, order_json: Any) -> str:
        """A marketplace order (``AmazonOrderId``, ``MarketplaceId``, ``OrderItems`` with
        ``OrderItemId``, ``SellerSKU``, ``QuantityOrdered``; other fields kept as given).
        `ValueError` saying why when it is not one."""
        order = new_order(order_json, self.timestamp())
        if order.id in self.orders:
            raise ValueError(f"order {order.id} exists already")
        self.orders[order.id] = order
        return order.id

    def settle(self) -> None:
        """Let queued feeds whose time has come be processed."""
        self.desk.settle(self.now(), self.timestamp(), self.orders)

    def order_view(self, order_id: str) -> dict[str, Any]:
        """Everything about one order, for the control API (`KeyError` for no such order)."""
        self.settle()
        order = self.orders[order_id]
        return {
            "order": order_payload(order)["payload"],
            "items": items_payload(order)["payload"]["OrderItems"],
            "confirmations": order.confirmations,
            "packages": order.packages,
            "cancellations": order.cancellations,
            "acknowledgements": order.acknowledgements,
        }

"""When to call a channel again, and how fast it may be called. Pure: the caller owns the clock.

- `Backoff`: exponential, with full jitter (the AWS architecture blog's "exponential backoff
  and jitter"): attempt n waits a random time up to ``min(cap, base * 2**n)``, so that many
  calls failing together do not come back together. A channel's ``Retry-After`` wins over it.
- `CallBudget`: Shopify's REST Admin API limits an app per shop with a leaky bucket: every
  answer says how full it is (``X-Shopify-Shop-Api-Call-Limit: 32/40``) and it leaks at a fixed
  rate (2 calls a second on a standard plan, 20 on Plus). Waiting before the bucket is full
  costs less than the 429 that follows when it is.
- `CostBudget`: Shopify's GraphQL Admin API limits by calculated query cost instead: every
  answer's ``extensions.cost.throttleStatus`` says how many points are left and how fast they
  come back (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """How long to wait after a failed attempt, and how many attempts a call gets."""

    base_s: float = 0.5
    cap_s: float = 30.0
    max_attempts: int = 6
    draw: Callable[[], float] = random.random  # in [0, 1): injected by tests

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1 for the first)."""
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = min(self.cap_s, self.base_s * 2 ** max(0, failures - 1))
        return float(ceiling * self.draw())

    def exhausted(self, failures: int) -> bool:
        return failures >= self.max_attempts


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (Shopify sends ``2.0``); None when absent or not
    a number of seconds (an HTTP date is not worth a clock-skew guess: back off instead)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


@dataclass
class CallBudget:
    """What a channel's leaky bucket leaves us, as its last answer said.

    ``headroom``: calls kept free for others using the same app and shop (the merchant's other
    tools share the bucket with us).
    """

    leak_per_s: float
    headroom: int = 4
    used: float = 0.0
    size: int = 0
    seen_at: float = 0.0

    def observe(self, header: str | None, now: float) -> None:
        """Take in ``X-Shopify-Shop-Api-Call-Limit`` (``used/size``) from an answer."""
        if not header or "/" not in header:
            return
        used, _, size = header.partition("/")
        try:
            self.used, self.size = float(used), int(size)
        except ValueError:
            return
        self.seen_at = now

    def wait(self, now: float) -> float:
        """Seconds to wait before the next call, so that the bucket keeps its headroom."""
        if self.size <= 0:
            return 0.0
        level = max(0.0, self.used - (now - self.seen_at) * self.leak_per_s)
        over = level + 1 - (self.size - self.headroom)
        return over / self.leak_per_s if over > 0 else 0.0

    def spend(self, now: float) -> None:
        """Count a call made now (its answer will correct the figure)."""
        if self.size > 0:
            level = max(0.0, self.used - (now - self.seen_at) * self.leak_per_s)
            self.used, self.seen_at = level + 1, now


@dataclass
class CostBudget:
    """Points left in a GraphQL cost bucket, as the last answer's ``throttleStatus`` said."""

    available: float = 0.0
    maximum: float = 0.0
    restore_per_s: float = 0.0
    seen_at: float = 0.0

    def observe(self, throttle_status: object, now: float) -> None:
        """Take in ``{"maximumAvailable", "currentlyAvailable", "restoreRate"}``."""
        if not isinstance(throttle_status, dict):
            return
        try:
            self.maximum = float(throttle_status["maximumAvailable"])
            self.available = float(throttle_status["currentlyAvailable"])
            self.restore_per_s = float(throttle_status["restoreRate"])
        except (KeyError, TypeError, ValueError):
            return
        self.seen_at = now

    def wait(self, cost: float, now: float) -> float:
        """Seconds until the bucket holds ``cost`` points (0 before any answer was seen)."""
        if self.restore_per_s <= 0:
            return 0.0
        return max(0.0, (cost - self._level(now)) / self.restore_per_s)

    def spend(self, cost: float, now: float) -> None:
        """Count a request made now (its answer will correct the figure)."""
        if self.restore_per_s > 0:
            self.available, self.seen_at = self._level(now) - cost, now

    def _level(self, now: float) -> float:
        return min(self.maximum, self.available + (now - self.seen_at) * self.restore_per_s)

"""The rate limiters the stand-ins answer with, as their providers document them.

- Shopify's REST Admin API: a leaky bucket per app and shop. Every request drops one marble
  in; the bucket leaks continuously at the plan's rate; a request that finds it full is
  refused with 429. Standard plan: bucket 40, leak 2 requests/s; Plus: ten times that
  (https://shopify.dev/docs/api/admin-rest/usage/rate-limits,
  https://shopify.dev/docs/api/usage/limits).
- Shopify's GraphQL Admin API: a bucket of cost points per app and shop
  (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits). It holds up to
  ``maximumAvailable`` points and restores ``restoreRate`` points a second; a request whose
  requested cost is more than what is available is throttled, and is charged nothing.
- Amazon SP-API: a token bucket per operation (usage plan). Tokens are added at the rate up
  to the burst; each request spends one; with none left the request is throttled
  (https://developer-docs.amazon.com/sp-api/docs/usage-plans-and-rate-limits).

All take the time as an argument (seconds on any monotonic clock): the servers pass their
injected clock, so a test moves time forward without sleeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# A level that is a whole number up to float noise still reads as that number.
_EPSILON = 1e-9


@dataclass
class LeakyBucket:
    """Shopify's call limit for one app on one shop."""

    size: int = 40
    leak_rate: float = 2.0
    level: float = 0.0
    updated: float | None = None

    def _leak(self, now: float) -> None:
        if self.updated is not None:
            self.level = max(0.0, self.level - (now - self.updated) * self.leak_rate)
        self.updated = now

    def take(self, now: float) -> tuple[bool, float]:
        """Admit one request at ``now``: ``(True, 0.0)``, or ``(False, seconds to wait)``."""
        self._leak(now)
        if self.level + 1 <= self.size + _EPSILON:
            self.level += 1
            return True, 0.0
        return False, (self.level + 1 - self.size) / self.leak_rate

    def used(self, now: float) -> int:
        """The marbles in the bucket at ``now``, as ``X-Shopify-Shop-Api-Call-Limit`` counts
        them: a partly leaked marble still counts, so a full bucket reads ``40/40``."""
        self._leak(now)
        return min(self.size, math.ceil(self.level - _EPSILON))

    def header(self, now: float) -> str:
        """The ``X-Shopify-Shop-Api-Call-Limit`` value, e.g. ``32/40``."""
        return f"{self.used(now)}/{self.size}"


@dataclass
class CostBucket:
    """Shopify's GraphQL calculated-cost limit for one app on one shop. Starts full."""

    maximum: float = 2000.0
    restore_rate: float = 100.0
    available: float | None = None
    updated: float | None = None

    def _restore(self, now: float) -> float:
        if self.available is None or self.updated is None:
            self.available = self.maximum
        else:
            elapsed = max(0.0, now - self.updated)
            self.available = min(self.maximum, self.available + elapsed * self.restore_rate)
        self.updated = now
        return self.available

    def take(self, cost: int, now: float) -> bool:
        """Charge ``cost`` points at ``now``; ``False`` (and nothing charged) when fewer are
        available."""
        available = self._restore(now)
        if available + _EPSILON < cost:
            return False
        self.available = available - cost
        return True

    def refund(self, points: int, now: float) -> None:
        """Give back what a request was charged beyond its actual cost."""
        self.available = min(self.maximum, self._restore(now) + points)

    def status(self, now: float) -> dict[str, float | int]:
        """``throttleStatus`` as Shopify writes it: the limits as floats, what is available as
        whole points (e.g. ``{"maximumAvailable": 2000.0, "currentlyAvailable": 1990,
        "restoreRate": 100.0}``)."""
        return {
            "maximumAvailable": float(self.maximum),
            "currentlyAvailable": math.floor(self._restore(now) + _EPSILON),
            "restoreRate": float(self.restore_rate),
        }


@dataclass
class TokenBucket:
    """One SP-API operation's usage plan: ``rate`` tokens a second, at most ``burst`` saved.

    The bucket starts full: a fresh caller may spend the whole burst at once."""

    rate: float
    burst: int
    tokens: float | None = None
    updated: float | None = None

    def take(self, now: float) -> bool:
        """Spend a token at ``now``; ``False`` when there is none (the caller answers 429)."""
        if self.tokens is None or self.updated is None:
            self.tokens = float(self.burst)
        else:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens + _EPSILON >= 1:
            self.tokens -= 1
            return True
        return False

    def header(self) -> str:
        """The ``x-amzn-RateLimit-Limit`` value: the rate in requests a second, e.g. ``2.0``."""
        return str(float(self.rate))

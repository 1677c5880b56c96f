"""The web channel's sellable figures set as Shopify's inventory levels, in batches.

What the pipeline publishes for channel ``WEB`` in a sku's availability record
(``Availability.channels`` on ``dom.inventory.availability.v1``) is what the web store may sell
of the sku. Shopify gets it as the ``available`` quantity of the sku's inventory item at one
Shopify location (``DOM_SHOPIFY_LOCATION_ID``, or the shop's primary location from ``GET
shop.json``), through the GraphQL Admin API's ``inventorySetQuantities``:
up to `BATCH` figures per call, meant for "a system that acts as the source of truth for
inventory quantities", absolute values, so a repeat sets the same figure again and changes
nothing. REST would take one call per sku (``inventory_levels/set.json``).

Mapping (learned): skus are matched to inventory items by variant SKU, read from the shop's
products (``GET products.json``, 250 a page, following the ``Link`` header). A figure for a sku
the shop does not sell is held, not pushed; the products are read again (at most every
``DOM_SHOPIFY_CATALOGUE_REFRESH_S``, every 15 s while the shop sells nothing at all, also
while no figure comes) and held figures go out once their sku is known.

Pace: GraphQL is limited by calculated cost (a mutation costs 10 points; 100 points a second
on a standard plan), paced from each answer's ``throttleStatus`` (`backoff.CostBudget`). A
``THROTTLED`` answer is `TryAgain` after the time the bucket needs; a figure Shopify refuses
(``userErrors``: an item not stocked at the location, say) is reported back by sku, and the
others are sent again without it, since a call with a user error applies nothing.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from connectors.sync.backoff import CostBudget
from connectors.sync.http import ChannelHttp, GiveUp, TryAgain, quote

BATCH = 250
EMPTY_SHOP_REFRESH_S = 15.0
MUTATION_COST = 10.0
REASON = "correction"
REFERENCE = "gid://dom-pipeline/ChannelAvailability/WEB"
SET_QUANTITIES = """
mutation SetSellable($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { id }
    userErrors { code field message }
  }
}
""".strip()


def item_gid(item_id: int) -> str:
    return f"gid://shopify/InventoryItem/{item_id}"


def location_gid(location_id: int) -> str:
    return f"gid://shopify/Location/{location_id}"


LINK = re.compile(r"<([^>]*)>((?:\s*;[^;,<]*)*)")
"""One link of a ``Link`` header: its URL (which may hold commas: ``fields=id,variants``)
and its parameters."""


def next_page(link_header: str | None) -> str | None:
    """The path and query of the ``rel="next"`` page in a REST ``Link`` header, if any."""
    for url, params in LINK.findall(link_header or ""):
        if 'rel="next"' in params:
            target = urlsplit(url)
            return f"{target.path}?{target.query}"
    return None


def refused_by_index(user_errors: Iterable[Any]) -> tuple[dict[int, str], list[str]]:
    """``userErrors`` sorted into those naming one quantity (by its index in the input) and
    those naming none (the whole call is wrong)."""
    by_index: dict[int, str] = {}
    general: list[str] = []
    for error in user_errors:
        path = [str(step) for step in (error.get("field") or [])]
        said = f"{error.get('code') or 'ERROR'}: {error.get('message', '')}"
        if len(path) >= 3 and path[:2] == ["input", "quantities"] and path[2].isdigit():
            by_index[int(path[2])] = said
        else:
            general.append(said)
    return by_index, general


@dataclass
class Pushed:
    """What one call did: figures set, and those Shopify refused, by sku, with the reason."""

    set: int = 0
    refused: dict[str, str] = field(default_factory=dict)


class ShopifyStock:
    """Figures by sku into one shop's inventory levels."""

    channel = "shopify"

    def __init__(
        self,
        rest: ChannelHttp,
        graphql: ChannelHttp,
        api_version: str,
        *,
        location_id: int | None = None,
        refresh_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rest = rest
        self.graphql = graphql
        self.prefix = f"/admin/api/{api_version}/"
        self.location_id = location_id
        self.refresh_s = refresh_s
        self.clock = clock
        self.items: dict[str, int] = {}  # sku -> inventory item id
        self.learned_at: float | None = None
        self.held: dict[str, int] = {}  # figures of skus the shop did not know when they came
        self.budget = CostBudget()

    async def learn(self, skus: Iterable[str]) -> None:
        """Read the shop's products (and its location) when never read, or when ``skus`` (or
        a held figure) names one the shop did not sell last time and that reading is old
        enough."""
        now = self.clock()
        unknown = any(sku not in self.items for sku in [*skus, *self.held])
        # A shop that sold nothing is being set up: read it again soon, not in refresh_s.
        wait = self.refresh_s if self.items else min(self.refresh_s, EMPTY_SHOP_REFRESH_S)
        due = self.learned_at is None or (unknown and now - self.learned_at >= wait)
        if not due:
            return
        if self.location_id is None:
            found = await self.rest.call("GET", self.prefix + "shop.json", "get_shop")
            shop = (found.body if isinstance(found.body, dict) else {}).get("shop") or {}
            if not shop.get("primary_location_id"):
                raise GiveUp(
                    "GET shop.json names no primary_location_id: set DOM_SHOPIFY_LOCATION_ID"
                )
            self.location_id = int(shop["primary_location_id"])
        self.items = await self._read_items()
        self.learned_at = now

    async def _read_items(self) -> dict[str, int]:
        items: dict[str, int] = {}
        page: str | None = self.prefix + "products.json?limit=250&fields=id,variants"
        while page is not None:
            answer = await self.rest.call("GET", page, "list_products")
            for product in (answer.body or {}).get("products", []):
                for variant in product.get("variants") or []:
                    if variant.get("sku") and variant.get("inventory_item_id"):
                        items[str(variant["sku"])] = int(variant["inventory_item_id"])
            page = next_page(answer.headers.get("Link"))
        return items

    def batches(self, figures: Mapping[str, int]) -> list[dict[str, int]]:
        """The figures to push now, `BATCH` a call: those given, and the held ones whose sku
        became known; figures of unknown skus are held (the latest of each)."""
        wanted = {**self.held, **figures}
        self.held = {sku: n for sku, n in wanted.items() if sku not in self.items}
        known = [(sku, n) for sku, n in wanted.items() if sku in self.items]
        return [dict(known[i : i + BATCH]) for i in range(0, len(known), BATCH)]

    async def push(self, figures: Mapping[str, int]) -> Pushed:
        """Set ``figures`` (skus the shop sells, at most `BATCH`). Figures Shopify refuses are
        named in the result; the rest are sent again without them."""
        done = Pushed()
        left = dict(figures)
        while left:
            refused = await self._set(left)
            if not refused:
                done.set += len(left)
                break
            done.refused.update(refused)
            left = {sku: n for sku, n in left.items() if sku not in refused}
        return done

    async def _set(self, figures: Mapping[str, int]) -> dict[str, str]:
        """One ``inventorySetQuantities``; the figures it refused, by sku (none: all set)."""
        skus = list(figures)
        quantities = [
            {
                "inventoryItemId": item_gid(self.items[sku]),
                "locationId": location_gid(self.location_id or 0),
                "quantity": figures[sku],
            }
            for sku in skus
        ]
        variables = {
            "input": {
                "name": "available",
                "reason": REASON,
                "referenceDocumentUri": REFERENCE,
                "ignoreCompareQuantity": True,
                "quantities": quantities,
            }
        }
        body = await self._graphql(SET_QUANTITIES, variables, "set_inventory")
        payload = ((body.get("data") or {}).get("inventorySetQuantities")) or {}
        by_index, general = refused_by_index(payload.get("userErrors") or [])
        if general:
            raise GiveUp(f"inventorySetQuantities refused: {'; '.join(general)}")
        return {skus[i]: said for i, said in by_index.items() if i < len(skus)}

    async def _graphql(self, query: str, variables: dict[str, Any], name: str) -> dict[str, Any]:
        await asyncio.sleep(self.budget.wait(MUTATION_COST, self.clock()))
        self.budget.spend(MUTATION_COST, self.clock())
        request = {"query": query, "variables": variables}
        answer = await self.graphql.call("POST", self.prefix + "graphql.json", name, body=request)
        body = answer.body if isinstance(answer.body, dict) else {}
        cost = (body.get("extensions") or {}).get("cost") or {}
        self.budget.observe(cost.get("throttleStatus"), self.clock())
        errors = body.get("errors") or []
        if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
            requested = float(cost.get("requestedQueryCost") or MUTATION_COST)
            wait = self.budget.wait(requested, self.clock())
            raise TryAgain(f"POST graphql.json {name}: Throttled", retry_after=wait, throttled=True)
        if errors:
            raise GiveUp(f"POST graphql.json {name} answered errors: {quote(errors)}")
        return body

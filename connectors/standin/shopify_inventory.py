"""The stand-in shop's catalogue and inventory: products, their variants, and what each
variant's inventory item holds at each location.

Shapes follow Shopify's resources (https://shopify.dev/docs/api/admin-rest/2025-01/resources/product,
.../product-variant, .../inventorylevel): a product has variants; each variant has its own
``inventory_item_id``; an inventory level is one (inventory item, location) pair. Every
variant is stocked at the shop's location from the moment it is created. Ids come from one
counter, so they are distinct across products, variants, inventory items and adjustment
groups, and the same seeding gives the same ids.

A level holds two of Shopify's named quantities, ``available`` and ``on_hand``
(https://shopify.dev/docs/apps/build/orders-fulfillment/inventory-management-apps).
The stand-in has no committed, reserved or unavailable units, so setting one moves the other
by the same amount, as Shopify reports it: an adjustment of ``available`` lists the
``available`` change and the ``on_hand`` change beside it (the documented examples of
``inventoryAdjustQuantities``). `shopify_inventory_set` applies ``inventorySetQuantities``.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

QUANTITY_NAMES = ("available", "on_hand")
FIRST_ID = 7_000_000_001


@dataclass(frozen=True)
class VariantSpec:
    sku: str
    price: Decimal = Decimal("0.00")
    available: int = 0


@dataclass(frozen=True)
class ProductSpec:
    title: str
    variants: tuple[VariantSpec, ...]


@dataclass
class Variant:
    id: int
    product_id: int
    position: int
    title: str
    sku: str
    price: str
    inventory_item_id: int
    created_at: str


@dataclass
class Product:
    id: int
    title: str
    handle: str
    created_at: str
    variants: list[Variant] = field(default_factory=list)


@dataclass
class Level:
    """One inventory item at one location; ``sets`` counts the mutations that set it."""

    inventory_item_id: int
    location_id: int
    available: int
    on_hand: int
    updated_at: str
    sets: int = 0

    def quantity(self, name: str) -> int:
        return self.available if name == "available" else self.on_hand


class DuplicateSkus(ValueError):
    """Seeding refused: these skus are already in the catalogue or given twice."""

    def __init__(self, skus: Sequence[str]) -> None:
        super().__init__(f"duplicate skus: {', '.join(skus)}")
        self.skus = list(skus)


class Catalogue:
    """Every product of the shop and every inventory level, indexed for the API."""

    def __init__(
        self, *, location_id: int, wall: Callable[[], datetime], first_id: int = FIRST_ID
    ) -> None:
        self.location_id = location_id
        self.locations: set[int] = {location_id}
        self.wall = wall
        self.products: dict[int, Product] = {}
        self.items: dict[int, Variant] = {}  # by inventory item id
        self.levels: dict[tuple[int, int], Level] = {}
        self._ids: Iterator[int] = itertools.count(first_id)

    def next_id(self) -> int:
        return next(self._ids)

    def timestamp(self) -> str:
        return self.wall().isoformat(timespec="seconds")

    def skus(self) -> set[str]:
        return {variant.sku for variant in self.items.values()}

    def add(self, specs: Sequence[ProductSpec]) -> list[Product]:
        """Create the products, every variant stocked at the shop's location with its
        ``available``; `DuplicateSkus` (and nothing created) when a sku is taken."""
        given = [variant.sku for spec in specs for variant in spec.variants]
        taken = self.skus()
        times = Counter(given)
        duplicates = sorted({sku for sku in given if sku in taken or times[sku] > 1})
        if duplicates:
            raise DuplicateSkus(duplicates)
        return [self._add_product(spec) for spec in specs]

    def _add_product(self, spec: ProductSpec) -> Product:
        now = self.timestamp()
        product = Product(self.next_id(), spec.title, self._handle(spec.title), now)
        single = len(spec.variants) == 1
        for position, seed in enumerate(spec.variants, start=1):
            variant = Variant(
                id=self.next_id(),
                product_id=product.id,
                position=position,
                title="Default Title" if single else seed.sku,
                sku=seed.sku,
                price=f"{seed.price:.2f}",
                inventory_item_id=self.next_id(),
                created_at=now,
            )
            product.variants.append(variant)
            self.items[variant.inventory_item_id] = variant
            key = (variant.inventory_item_id, self.location_id)
            self.levels[key] = Level(*key, seed.available, seed.available, now)
        self.products[product.id] = product
        return product

    def _handle(self, title: str) -> str:
        """The product's handle as Shopify derives it: the title in lower case, runs of other
        characters as one hyphen; a suffix when another product has it."""
        base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "product"
        handles = {product.handle for product in self.products.values()}
        suffixes = (f"{base}-{n}" for n in itertools.count(1))
        return base if base not in handles else next(h for h in suffixes if h not in handles)

    def level(self, inventory_item_id: int, location_id: int) -> Level | None:
        return self.levels.get((inventory_item_id, location_id))

    def inventory_quantity(self, variant: Variant) -> int:
        """The variant's ``inventory_quantity``: ``available`` summed over its locations."""
        return sum(
            level.available
            for (item, _), level in self.levels.items()
            if item == variant.inventory_item_id
        )

    def levels_json(self) -> list[dict[str, Any]]:
        """What the shop holds, for the control API: one entry per level, in creation order."""
        return [
            {
                "sku": self.items[level.inventory_item_id].sku,
                "inventory_item_id": level.inventory_item_id,
                "location_id": level.location_id,
                "available": level.available,
                "updated_at": level.updated_at,
                "sets": level.sets,
            }
            for level in self.levels.values()
        ]

    def seeded_json(self, product: Product) -> dict[str, Any]:
        """A created product as the control API answers it: the ids a test needs."""
        return {
            "id": product.id,
            "title": product.title,
            "variants": [
                {
                    "id": variant.id,
                    "product_id": product.id,
                    "sku": variant.sku,
                    "price": variant.price,
                    "inventory_item_id": variant.inventory_item_id,
                    "available": self.inventory_quantity(variant),
                }
                for variant in product.variants
            ],
        }

"""The shop's catalogue through the control API, under ``/_standin/shopify/``:

- ``POST products``: ``{"products": [{"title", "variants": [{"sku", "price"?, "available"?}]}]}``,
  or the shorthand ``{"skus": ["SKU-1", ...]}`` (one single-variant product per sku, titled
  by it, nothing available) -> ``201 {"products": [{"id", "title", "variants": [{"id",
  "product_id", "sku", "price", "inventory_item_id", "available"}]}]}``. Every variant is
  stocked at the shop's location. A sku already in the catalogue, or given twice, refuses
  the whole request: ``422 {"error": "duplicate skus: ...", "details": {"skus": [...]}}``.
- ``GET inventory`` -> ``{"levels": [{"sku", "inventory_item_id", "location_id",
  "available", "updated_at", "sets"}]}``, ``sets`` counting the mutations that set the level.
- ``POST graphql-throttle``: ``{"maximum_available", "restore_rate"}`` -> the GraphQL cost
  bucket's new limits, the bucket full.
"""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.standin.control import json_object, refuse, validated
from connectors.standin.shopify import StandinShop
from connectors.standin.shopify_inventory import DuplicateSkus, ProductSpec, VariantSpec


class _Control(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariantSeed(_Control):
    sku: str = Field(min_length=1)
    price: Decimal = Field(default=Decimal("0.00"), ge=0, max_digits=12, decimal_places=2)
    available: int = Field(default=0, ge=0, le=1_000_000_000)


class ProductSeed(_Control):
    title: str = Field(min_length=1)
    variants: list[VariantSeed] = Field(min_length=1)


class CatalogueSeed(_Control):
    products: list[ProductSeed] | None = None
    skus: list[str] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> CatalogueSeed:
        if (self.products is None) == (self.skus is None):
            raise ValueError('give either "products" or "skus"')
        if self.skus is not None and not all(self.skus):
            raise ValueError("a sku is empty")
        return self

    def specs(self) -> list[ProductSpec]:
        if self.skus is not None:
            return [ProductSpec(sku, (VariantSpec(sku),)) for sku in self.skus]
        return [
            ProductSpec(
                product.title,
                tuple(VariantSpec(v.sku, v.price, v.available) for v in product.variants),
            )
            for product in self.products or []
        ]


class GraphQLThrottle(_Control):
    maximum_available: float = Field(gt=0)
    restore_rate: float = Field(gt=0)


def catalogue_control_routes(prefix: str, shop: StandinShop) -> list[web.RouteDef]:
    async def seed(request: web.Request) -> web.Response:
        specs = validated(CatalogueSeed, await json_object(request)).specs()
        try:
            created = shop.catalogue.add(specs)
        except DuplicateSkus as exc:
            refuse(str(exc), {"skus": exc.skus}, status=422)
        shown = [shop.catalogue.seeded_json(product) for product in created]
        return web.json_response({"products": shown}, status=201)

    async def inventory(request: web.Request) -> web.Response:
        return web.json_response({"levels": shop.catalogue.levels_json()})

    async def graphql_throttle(request: web.Request) -> web.Response:
        limits = validated(GraphQLThrottle, await json_object(request))
        shop.graphql_throttle(limits.maximum_available, limits.restore_rate)
        return web.json_response(limits.model_dump())

    return [
        web.post(f"{prefix}/products", seed),
        web.get(f"{prefix}/inventory", inventory),
        web.post(f"{prefix}/graphql-throttle", graphql_throttle),
    ]

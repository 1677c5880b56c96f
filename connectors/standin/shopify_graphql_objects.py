"""What a GraphQL request reads: the shop, its location, inventory items and levels, and the
answer of ``inventorySetQuantities``, as dicts of field values that graphql-core's default
resolver reads (a callable where the field takes arguments, or where resolving it eagerly
would loop: an item's level points back at the item).

Ids are Shopify's GIDs (https://shopify.dev/docs/api/usage/gids): ``gid://shopify/Shop/1``,
``gid://shopify/Location/1``, ``gid://shopify/InventoryItem/1``,
``gid://shopify/InventoryAdjustmentGroup/1``; a level is
``gid://shopify/InventoryLevel/<location>?inventory_item_id=<item>`` and a quantity
``gid://shopify/InventoryQuantity/<location>?inventory_item_id=<item>&name=<name>``, the
forms Shopify answers with. ``DateTime`` values are UTC, ``2025-01-02T11:38:15Z``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.standin.shopify import StandinShop
from connectors.standin.shopify_inventory import Level
from connectors.standin.shopify_inventory_set import (
    AdjustmentGroup,
    Change,
    gid,
    parse_gid,
    set_quantities,
)

# Shopify's other inventory states (https://shopify.dev/docs/apps/build/orders-fulfillment/inventory-management-apps):
# the stand-in never holds a unit in them, so they read 0.
EMPTY_STATES = ("committed", "damaged", "incoming", "quality_control", "reserved", "safety_stock")


def datetime_scalar(timestamp: str) -> str:
    """An ISO timestamp as a GraphQL ``DateTime``: UTC with ``Z``."""
    return datetime.fromisoformat(timestamp).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def root_value(shop: StandinShop) -> dict[str, Any]:
    """The query and mutation roots for one request."""
    objects = _Objects(shop)
    return {
        "shop": objects.shop_object(),
        "location": objects.location_field,
        "inventoryItem": objects.inventory_item_field,
        "inventorySetQuantities": objects.set_quantities_field,
    }


class _Objects:
    def __init__(self, shop: StandinShop) -> None:
        self.shop = shop
        self.catalogue = shop.catalogue

    def shop_object(self) -> dict[str, Any]:
        shop = self.shop
        return {
            "id": gid("Shop", shop.shop_id),
            "name": shop.name,
            "myshopifyDomain": shop.shop_domain,
        }

    def location_field(self, info: Any, id: str | None = None) -> dict[str, Any] | None:
        number = self.catalogue.location_id if id is None else parse_gid(id, "Location")
        return self.location(number)

    def location(self, number: int | None) -> dict[str, Any] | None:
        if number is None or number not in self.catalogue.locations:
            return None

        def level(info: Any, inventoryItemId: str) -> dict[str, Any] | None:
            return self.level(parse_gid(inventoryItemId, "InventoryItem"), number)

        return {
            "id": gid("Location", number),
            "name": self.shop.location_name,
            "isActive": True,
            "inventoryLevel": level,
        }

    def inventory_item_field(self, info: Any, id: str) -> dict[str, Any] | None:
        return self.item(parse_gid(id, "InventoryItem"))

    def item(self, number: int | None) -> dict[str, Any] | None:
        variant = None if number is None else self.catalogue.items.get(number)
        if number is None or variant is None:
            return None

        def level(info: Any, locationId: str) -> dict[str, Any] | None:
            return self.level(number, parse_gid(locationId, "Location"))

        return {
            "id": gid("InventoryItem", number),
            "sku": variant.sku,
            "tracked": True,
            "inventoryLevel": level,
        }

    def level(self, item: int | None, location: int | None) -> dict[str, Any] | None:
        level = None if item is None or location is None else self.catalogue.level(item, location)
        if level is None:
            return None
        return {
            "id": f"gid://shopify/InventoryLevel/{level.location_id}"
            f"?inventory_item_id={level.inventory_item_id}",
            "item": lambda info: self.item(level.inventory_item_id),
            "location": lambda info: self.location(level.location_id),
            "quantities": lambda info, names: [
                q for q in (_quantity(level, name) for name in names) if q is not None
            ],
            "updatedAt": datetime_scalar(level.updated_at),
        }

    def set_quantities_field(self, info: Any, input: Mapping[str, Any]) -> dict[str, Any]:
        group, errors = set_quantities(self.catalogue, input)
        return {
            "inventoryAdjustmentGroup": None if group is None else self.group(group),
            "userErrors": [
                {"code": error.code, "field": error.field, "message": error.message}
                for error in errors
            ],
        }

    def group(self, group: AdjustmentGroup) -> dict[str, Any]:
        def changes(
            info: Any,
            inventoryItemIds: list[str] | None = None,
            locationIds: list[str] | None = None,
            quantityNames: list[str] | None = None,
        ) -> list[dict[str, Any]]:
            items = _numbers(inventoryItemIds, "InventoryItem")
            locations = _numbers(locationIds, "Location")
            return [
                self.change(change)
                for change in group.changes
                if (items is None or change.inventory_item_id in items)
                and (locations is None or change.location_id in locations)
                and (quantityNames is None or change.name in quantityNames)
            ]

        return {
            "id": gid("InventoryAdjustmentGroup", group.id),
            "createdAt": group.created_at,
            "reason": group.reason,
            "referenceDocumentUri": group.reference_document_uri,
            "changes": changes,
        }

    def change(self, change: Change) -> dict[str, Any]:
        return {
            "name": change.name,
            "delta": change.delta,
            "quantityAfterChange": change.quantity_after,
            "ledgerDocumentUri": None,
            "item": lambda info: self.item(change.inventory_item_id),
            "location": lambda info: self.location(change.location_id),
        }


def _numbers(gids: list[str] | None, resource: str) -> set[int | None] | None:
    return None if gids is None else {parse_gid(value, resource) for value in gids}


def _quantity(level: Level, name: str) -> dict[str, Any] | None:
    if name in ("available", "on_hand"):
        quantity, updated_at = level.quantity(name), datetime_scalar(level.updated_at)
    elif name in EMPTY_STATES:
        quantity, updated_at = 0, None
    else:
        return None
    return {
        "id": f"gid://shopify/InventoryQuantity/{level.location_id}"
        f"?inventory_item_id={level.inventory_item_id}&name={name}",
        "name": name,
        "quantity": quantity,
        "updatedAt": updated_at,
    }

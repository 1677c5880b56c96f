"""``inventorySetQuantities`` (GraphQL Admin API 2025-01) applied to the catalogue, checked as
https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/inventorySetQuantities and its
error codes (https://shopify.dev/docs/api/admin-graphql/2025-01/enums/InventorySetQuantitiesUserErrorCode)
document it:

- ``name`` is ``available`` or ``on_hand`` (``INVALID_NAME``); ``reason`` is one of the
  reasons listed in https://shopify.dev/docs/apps/build/orders-fulfillment/inventory-management-apps
  (``INVALID_REASON``);
  ``referenceDocumentUri``, when given, is a URI with a scheme and something after it
  (``INVALID_REFERENCE_DOCUMENT``).
- Each quantity names an inventory item and a location by GID (``gid://shopify/InventoryItem/1``,
  ``gid://shopify/Location/1``): unknown ones are ``INVALID_INVENTORY_ITEM`` and
  ``INVALID_LOCATION``, a known pair with no level ``ITEM_NOT_STOCKED_AT_LOCATION``, the same
  pair twice ``NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR``; the quantity is at least 0
  (``INVALID_QUANTITY_NEGATIVE``) and at most 1,000,000,000 (``INVALID_QUANTITY_TOO_HIGH``).
- Compare-and-set: unless ``ignoreCompareQuantity`` is true, every quantity carries
  ``compareQuantity`` (absent or null: ``COMPARE_QUANTITY_REQUIRED``) equal to the persisted
  quantity of that name (``COMPARE_QUANTITY_STALE``).

Each error names its input field as a path (``["input", "quantities", "0", "inventoryItemId"]``);
the messages are the enum's documented descriptions. Any error and nothing is applied;
otherwise every level is set and the adjustment group lists what changed (``delta`` = new -
old), leaving out levels already at the figure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from connectors.standin.shopify_inventory import QUANTITY_NAMES, Catalogue, Level

REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_created",
        "movement_updated",
        "movement_received",
        "movement_canceled",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)
MAX_QUANTITY = 1_000_000_000
MESSAGES = {
    "COMPARE_QUANTITY_REQUIRED": "The compareQuantity argument must be given to each quantity "
    "or ignored using ignoreCompareQuantity.",
    "COMPARE_QUANTITY_STALE": "The compareQuantity value does not match persisted value.",
    "INVALID_INVENTORY_ITEM": "The specified inventory item could not be found.",
    "INVALID_LOCATION": "The specified location could not be found.",
    "INVALID_NAME": "The quantity name must be either 'available' or 'on_hand'.",
    "INVALID_QUANTITY_NEGATIVE": "The quantity can't be negative.",
    "INVALID_QUANTITY_TOO_HIGH": "The total quantity can't be higher than 1,000,000,000.",
    "INVALID_REASON": "The specified reason is invalid.",
    "INVALID_REFERENCE_DOCUMENT": "The specified reference document is invalid.",
    "ITEM_NOT_STOCKED_AT_LOCATION": "The specified inventory item is not stocked at the location.",
    "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR": "The combination of inventoryItemId and "
    "locationId must be unique.",
}
_GID = re.compile(r"gid://shopify/(?P<type>[A-Za-z]+)/(?P<id>[0-9]+)")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")


def gid(resource: str, number: int) -> str:
    return f"gid://shopify/{resource}/{number}"


def parse_gid(value: Any, resource: str) -> int | None:
    """The number in ``gid://shopify/<resource>/<n>``; ``None`` for anything else."""
    match = _GID.fullmatch(value) if isinstance(value, str) else None
    if match is None or match["type"] != resource:
        return None
    return int(match["id"])


@dataclass(frozen=True)
class UserError:
    code: str
    field: list[str]

    @property
    def message(self) -> str:
        return MESSAGES[self.code]


@dataclass(frozen=True)
class Change:
    name: str
    delta: int
    quantity_after: int
    inventory_item_id: int
    location_id: int


@dataclass(frozen=True)
class AdjustmentGroup:
    id: int
    created_at: str
    reason: str
    reference_document_uri: str | None
    changes: list[Change]


@dataclass(frozen=True)
class _Target:
    level: Level
    quantity: int


def set_quantities(
    catalogue: Catalogue, given: Mapping[str, Any]
) -> tuple[AdjustmentGroup | None, list[UserError]]:
    """Apply ``InventorySetQuantitiesInput`` (as GraphQL coerced it): the adjustment group,
    or ``None`` and every user error with nothing applied."""
    errors = _input_errors(given)
    targets: list[_Target] = []
    seen: set[tuple[int, int]] = set()
    for index, quantity in enumerate(given["quantities"]):
        target, found = _check_quantity(catalogue, given, index, quantity, seen)
        errors.extend(found)
        if target is not None:
            targets.append(target)
    if errors:
        return None, errors
    return _apply(catalogue, given, targets), []


def _input_errors(given: Mapping[str, Any]) -> list[UserError]:
    errors = []
    if given["name"] not in QUANTITY_NAMES:
        errors.append(UserError("INVALID_NAME", ["input", "name"]))
    if given["reason"] not in REASONS:
        errors.append(UserError("INVALID_REASON", ["input", "reason"]))
    uri = given.get("referenceDocumentUri")
    if uri is not None and not _URI.fullmatch(uri):
        errors.append(UserError("INVALID_REFERENCE_DOCUMENT", ["input", "referenceDocumentUri"]))
    return errors


def _check_quantity(
    catalogue: Catalogue,
    given: Mapping[str, Any],
    index: int,
    quantity: Mapping[str, Any],
    seen: set[tuple[int, int]],
) -> tuple[_Target | None, list[UserError]]:
    path = ["input", "quantities", str(index)]
    errors = []
    item = parse_gid(quantity["inventoryItemId"], "InventoryItem")
    location = parse_gid(quantity["locationId"], "Location")
    if item is None or item not in catalogue.items:
        errors.append(UserError("INVALID_INVENTORY_ITEM", [*path, "inventoryItemId"]))
    if location is None or location not in catalogue.locations:
        errors.append(UserError("INVALID_LOCATION", [*path, "locationId"]))
    if quantity["quantity"] < 0:
        errors.append(UserError("INVALID_QUANTITY_NEGATIVE", [*path, "quantity"]))
    elif quantity["quantity"] > MAX_QUANTITY:
        errors.append(UserError("INVALID_QUANTITY_TOO_HIGH", [*path, "quantity"]))
    if item is None or location is None or errors:
        return None, errors
    level = catalogue.level(item, location)
    if level is None:
        return None, [UserError("ITEM_NOT_STOCKED_AT_LOCATION", [*path, "locationId"])]
    if (item, location) in seen:
        return None, [UserError("NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR", path)]
    seen.add((item, location))
    compare_error = _compare_error(given, quantity, level)
    if compare_error is not None:
        return None, [UserError(compare_error, [*path, "compareQuantity"])]
    return _Target(level, quantity["quantity"]), []


def _compare_error(
    given: Mapping[str, Any], quantity: Mapping[str, Any], level: Level
) -> str | None:
    if given.get("ignoreCompareQuantity") or given["name"] not in QUANTITY_NAMES:
        return None
    compare = quantity.get("compareQuantity")
    if compare is None:
        return "COMPARE_QUANTITY_REQUIRED"
    return None if compare == level.quantity(given["name"]) else "COMPARE_QUANTITY_STALE"


def _apply(
    catalogue: Catalogue, given: Mapping[str, Any], targets: list[_Target]
) -> AdjustmentGroup:
    name = given["name"]
    other = "on_hand" if name == "available" else "available"
    updated_at = catalogue.timestamp()
    changes = []
    for target in targets:
        level = target.level
        delta = target.quantity - level.quantity(name)
        level.available += delta
        level.on_hand += delta
        level.sets += 1
        level.updated_at = updated_at
        if delta != 0:
            key = (level.inventory_item_id, level.location_id)
            changes.append(Change(name, delta, level.quantity(name), *key))
            changes.append(Change(other, delta, level.quantity(other), *key))
    created_at = catalogue.wall().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return AdjustmentGroup(
        catalogue.next_id(), created_at, given["reason"], given.get("referenceDocumentUri"), changes
    )

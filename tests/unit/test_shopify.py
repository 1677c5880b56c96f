"""Shopify ``orders/create`` bodies as `OrderPlaced`: fixtures, BOPIS, tiers, money, errors."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.shopify import (
    PayloadError,
    ShopifyOrderError,
    ShopifyShippingLine,
    loyalty_tier,
    service_level,
    shopify_order,
    split_tags,
)
from schemas.codec import Codec
from schemas.enums import Channel, FulfillmentMethod, ServiceLevel

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return body


def errors_of(body: Any) -> dict[str, str]:
    with pytest.raises(ShopifyOrderError) as caught:
        shopify_order(body)
    return {e["field"]: e["message"] for e in caught.value.errors}


def test_ship_order_maps_every_field() -> None:
    order = shopify_order(load("shopify_order_ship.json"))

    assert order.order_id == "WEB-5821539172601"
    assert order.event_id == "shopify-orders-create-5821539172601"
    assert order.channel is Channel.WEB
    assert order.channel_order_ref == "#1042"
    assert order.placed_at == datetime(2024, 5, 1, 12, 15, 42, tzinfo=UTC)
    assert order.customer.customer_id == "shopify-7004567788921"
    assert order.customer.loyalty_tier == "GOLD"
    assert order.customer.email == "ada@example.com"
    assert order.fulfillment_method is FulfillmentMethod.SHIP
    assert order.pickup_location_id is None
    assert order.ship_to is not None
    assert order.ship_to.model_dump() == {
        "name": "Ada Lovelace",
        "line1": "1 Main St",
        "line2": "Apt 4",
        "city": "New York",
        "region": "NY",
        "postal_code": "10001",
        "country": "US",
        "lat": 40.7506,
        "lon": -73.9972,
    }
    assert [(li.line_id, li.sku, li.quantity, li.unit_price) for li in order.lines] == [
        ("14523487592697", "SKU-1", 2, Decimal("39.99")),
        ("14523487625465", "SKU-2", 1, Decimal("29.99")),  # a JSON number, still exact
    ]
    assert order.currency == "USD"
    assert order.order_total == Decimal("124.89")  # Shopify's total: tax and shipping included
    assert order.service_level is ServiceLevel.EXPRESS
    assert order.tags == ("vip", "first-order")


def test_the_same_body_is_the_same_event_and_encodes() -> None:
    body = load("shopify_order_ship.json")
    first, again = shopify_order(body), shopify_order(copy.deepcopy(body))
    assert first == again
    codec = Codec()
    assert codec.decode(codec.encode(first)) == first


def test_bopis_order_is_a_pickup_without_ship_to() -> None:
    order = shopify_order(load("shopify_order_bopis.json"))
    assert order.fulfillment_method is FulfillmentMethod.PICKUP
    assert order.pickup_location_id == "ST-BOS"
    assert order.ship_to is None
    assert order.customer.email == "grace@example.com"  # the order has none: the customer's
    assert order.customer.loyalty_tier is None
    assert order.service_level is ServiceLevel.STANDARD
    assert order.order_total == Decimal("19.50")
    assert order.placed_at == datetime(2024, 5, 2, 15, 2, 11, tzinfo=UTC)


def test_pickup_by_note_attribute_alone() -> None:
    body = load("shopify_order_bopis.json")
    body["shipping_lines"] = []
    assert shopify_order(body).pickup_location_id == "ST-BOS"


def test_pickup_by_shipping_line_code_alone() -> None:
    body = load("shopify_order_bopis.json")
    body["note_attributes"] = []
    body["shipping_lines"] = [{"code": "PICKUP: ST-NYC", "title": "Pick up"}]
    order = shopify_order(body)
    assert order.pickup_location_id == "ST-NYC"
    assert order.fulfillment_method is FulfillmentMethod.PICKUP


def test_pickup_locations_that_disagree_are_an_error() -> None:
    body = load("shopify_order_bopis.json")
    body["shipping_lines"] = [{"code": "pickup:ST-NYC"}]
    assert "ST-BOS, ST-NYC" in errors_of(body)["note_attributes"]


def test_blank_pickup_attribute_means_ship() -> None:
    body = load("shopify_order_ship.json")
    body["note_attributes"] = [{"name": "pickup_location_id", "value": "  "}]
    assert shopify_order(body).fulfillment_method is FulfillmentMethod.SHIP


def test_guest_order_without_customer() -> None:
    body = load("shopify_order_ship.json")
    del body["customer"]
    customer = shopify_order(body).customer
    assert customer.customer_id == "guest-WEB-5821539172601"
    assert customer.loyalty_tier is None
    assert customer.email == "ada@example.com"


def test_ship_order_without_address_is_left_for_routing_to_report() -> None:
    body = load("shopify_order_ship.json")
    body["shipping_address"] = None
    order = shopify_order(body)
    assert order.fulfillment_method is FulfillmentMethod.SHIP and order.ship_to is None


def test_ref_falls_back_to_order_number_then_id() -> None:
    body = load("shopify_order_ship.json")
    del body["name"]
    assert shopify_order(body).channel_order_ref == "1042"
    del body["order_number"]
    assert shopify_order(body).channel_order_ref == "5821539172601"


def test_money_is_rounded_to_cents() -> None:
    body = load("shopify_order_ship.json")
    body["total_price"] = "10.005"
    body["line_items"][0]["price"] = 0.1 + 0.2
    order = shopify_order(body)
    assert order.order_total == Decimal("10.00")  # half-even
    assert order.lines[0].unit_price == Decimal("0.30")


@pytest.mark.parametrize(
    ("tags", "tier"),
    [
        ("tier:GOLD", "GOLD"),
        ("newsletter, tier:platinum", "PLATINUM"),
        ("Tier: Silver ", "SILVER"),
        ("tier:", None),
        ("gold, vip", None),
        ("", None),
    ],
)
def test_loyalty_tier_from_customer_tags(tags: str, tier: str | None) -> None:
    assert loyalty_tier(split_tags(tags)) == tier


@pytest.mark.parametrize(
    ("code", "title", "level"),
    [
        ("Standard", "Standard Shipping", ServiceLevel.STANDARD),
        ("Express Shipping", None, ServiceLevel.EXPRESS),
        ("custom", "Expedited (2 days)", ServiceLevel.EXPRESS),
        ("UPS_2-DAY", None, ServiceLevel.EXPRESS),
        ("next_day_air", None, ServiceLevel.NEXT_DAY),
        (None, "Overnight", ServiceLevel.NEXT_DAY),
        (None, None, ServiceLevel.STANDARD),
    ],
)
def test_service_level_from_shipping_line(
    code: str | None, title: str | None, level: ServiceLevel
) -> None:
    assert service_level([ShopifyShippingLine(code=code, title=title)]) is level


def test_no_shipping_line_is_standard() -> None:
    assert service_level([]) is ServiceLevel.STANDARD


def test_errors_name_every_field_by_path() -> None:
    body = load("shopify_order_ship.json")
    body["currency"] = "usd"
    body["total_price"] = "lots"
    body["created_at"] = "2024-05-01T08:15:42"  # no offset: ambiguous
    body["line_items"][0]["quantity"] = 0
    body["line_items"][1]["sku"] = "  "
    del body["shipping_address"]["address1"]
    body["shipping_address"]["country_code"] = "USA"
    errors = errors_of(body)
    assert set(errors) == {
        "currency",
        "total_price",
        "created_at",
        "line_items.0.quantity",
        "line_items.1.sku",
        "shipping_address.address1",
        "shipping_address.country_code",
    }
    assert errors["line_items.0.quantity"] == "Input should be greater than 0"
    assert errors["currency"].startswith("must be an ISO 4217 code")  # no "Value error, "


def test_missing_sku_and_no_lines() -> None:
    body = load("shopify_order_ship.json")
    body["line_items"][0]["sku"] = None
    assert "line_items.0.sku" in errors_of(body)
    body["line_items"] = []
    assert "line_items" in errors_of(body)


def test_a_body_that_is_not_an_object() -> None:
    assert set(errors_of([1, 2])) == {"body"}


def test_error_is_a_value_error_with_readable_text() -> None:
    body = load("shopify_order_ship.json")
    del body["id"]
    with pytest.raises(ValueError, match=r"^id: Field required$") as caught:
        shopify_order(body)
    assert isinstance(caught.value, PayloadError)
    assert caught.value.errors == [{"field": "id", "message": "Field required"}]

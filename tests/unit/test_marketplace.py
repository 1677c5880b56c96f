"""SP-API-like marketplace documents mapped to `OrderPlaced`: fixture, money, levels, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.marketplace import MarketplaceOrderError, marketplace_order, service_level
from connectors.shopify import PayloadError
from schemas.codec import Codec
from schemas.enums import Channel, FulfillmentMethod, ServiceLevel

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def load() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / "marketplace_order.json").read_text())
    return doc


def errors_of(doc: Any) -> dict[str, str]:
    with pytest.raises(MarketplaceOrderError) as caught:
        marketplace_order(doc)
    return {e["field"]: e["message"] for e in caught.value.errors}


def test_document_maps_every_field() -> None:
    order = marketplace_order(load())

    assert order.order_id == "MKT-113-8734216-5509851"
    assert order.event_id == "marketplace-order-placed-113-8734216-5509851"
    assert order.channel is Channel.MARKETPLACE
    assert order.channel_order_ref == "113-8734216-5509851"
    assert order.placed_at == datetime(2024, 5, 1, 14, 32, 7, tzinfo=UTC)
    assert order.customer.customer_id.startswith("amazon-")
    assert order.customer.email == "x7k2p9qz4m3w8rt@marketplace.amazon.com"
    assert order.customer.loyalty_tier is None
    assert order.fulfillment_method is FulfillmentMethod.SHIP
    assert order.ship_to is not None
    assert order.ship_to.model_dump() == {
        "name": "Grace Hopper",
        "line1": "350 Fifth Ave",
        "line2": "Floor 34",
        "city": "New York",
        "region": "NY",
        "postal_code": "10118-0110",
        "country": "US",
        "lat": None,
        "lon": None,
    }
    # ItemPrice is the whole line's price: 79.98 for two is 39.99 each.
    assert [(li.line_id, li.sku, li.quantity, li.unit_price) for li in order.lines] == [
        ("68828574383266", "SKU-1", 2, Decimal("39.99")),
        ("68828574383267", "SKU-2", 1, Decimal("8.39")),
    ]
    assert order.currency == "USD"
    assert order.order_total == Decimal("95.47")
    assert order.service_level is ServiceLevel.EXPRESS
    assert order.tags == ("marketplace:amazon", "prime")


def test_deterministic_and_encodable() -> None:
    first, again = marketplace_order(load()), marketplace_order(load())
    assert first == again
    codec = Codec()
    assert codec.decode(codec.encode(first)) == first


def test_customer_id_is_stable_and_hides_the_email() -> None:
    doc = load()
    first = marketplace_order(doc).customer.customer_id
    doc["BuyerInfo"]["BuyerEmail"] = " X7K2P9QZ4M3W8RT@marketplace.amazon.com "
    assert marketplace_order(doc).customer.customer_id == first
    assert "@" not in first


def test_buyer_without_email_is_a_guest_of_that_order() -> None:
    doc = load()
    del doc["BuyerInfo"]
    customer = marketplace_order(doc).customer
    assert customer.customer_id == "amazon-guest-113-8734216-5509851"
    assert customer.email is None


def test_unit_price_is_line_price_over_quantity_rounded_to_cents() -> None:
    doc = load()
    doc["OrderItems"][0]["QuantityOrdered"] = 3
    doc["OrderItems"][0]["ItemPrice"]["Amount"] = "10.00"
    assert marketplace_order(doc).lines[0].unit_price == Decimal("3.33")


def test_lines_without_item_ids_are_numbered() -> None:
    doc = load()
    for item in doc["OrderItems"]:
        del item["OrderItemId"]
    assert [line.line_id for line in marketplace_order(doc).lines] == ["1", "2"]


def test_minimal_document() -> None:
    order = marketplace_order(
        {
            "AmazonOrderId": "902-1",
            "PurchaseDate": "2024-05-01T12:00:00+00:00",
            "OrderTotal": {"Amount": 12.5, "CurrencyCode": "EUR"},
            "ShippingAddress": {
                "AddressLine1": "Hauptstr. 1",
                "City": "Berlin",
                "CountryCode": "DE",
            },
            "OrderItems": [
                {"SellerSKU": "SKU-9", "QuantityOrdered": 1, "ItemPrice": {"Amount": "12.50"}}
            ],
        }
    )
    assert order.currency == "EUR" and order.order_total == Decimal("12.50")
    assert order.service_level is ServiceLevel.STANDARD
    assert order.tags == ("marketplace:amazon",)
    assert order.ship_to is not None and order.ship_to.region == ""


@pytest.mark.parametrize(
    ("category", "level"),
    [
        ("Standard", ServiceLevel.STANDARD),
        ("FreeEconomy", ServiceLevel.STANDARD),
        ("Scheduled", ServiceLevel.STANDARD),
        ("Expedited", ServiceLevel.EXPRESS),
        ("SecondDay", ServiceLevel.EXPRESS),
        ("Priority", ServiceLevel.EXPRESS),
        ("NextDay", ServiceLevel.NEXT_DAY),
        ("SameDay", ServiceLevel.NEXT_DAY),
        (None, ServiceLevel.STANDARD),
    ],
)
def test_service_level_category(category: str | None, level: ServiceLevel) -> None:
    assert service_level(category) is level


def test_errors_name_every_field_by_path() -> None:
    doc = load()
    del doc["AmazonOrderId"]
    doc["PurchaseDate"] = "yesterday"
    doc["OrderTotal"]["CurrencyCode"] = "usd"
    doc["ShippingAddress"]["City"] = ""
    doc["OrderItems"][1]["QuantityOrdered"] = 0
    doc["OrderItems"][0]["ItemPrice"]["Amount"] = "-1.00"
    errors = errors_of(doc)
    assert set(errors) == {
        "AmazonOrderId",
        "PurchaseDate",
        "OrderTotal.CurrencyCode",
        "ShippingAddress.City",
        "OrderItems.1.QuantityOrdered",
        "OrderItems.0.ItemPrice.Amount",
    }
    assert errors["OrderItems.1.QuantityOrdered"] == "Input should be greater than 0"


def test_a_line_priced_in_another_currency() -> None:
    doc = load()
    doc["OrderItems"][1]["ItemPrice"]["CurrencyCode"] = "EUR"
    errors = errors_of(doc)
    assert errors == {"OrderItems.1.ItemPrice.CurrencyCode": "is EUR, the order total is in USD"}


def test_no_items_and_not_an_object() -> None:
    doc = load()
    doc["OrderItems"] = []
    assert "OrderItems" in errors_of(doc)
    assert set(errors_of("not a document")) == {"body"}


def test_error_type_for_file_feeds() -> None:
    doc = load()
    del doc["OrderItems"][0]["SellerSKU"]
    with pytest.raises(ValueError, match=r"OrderItems\.0\.SellerSKU: Field required") as caught:
        marketplace_order(doc)
    assert isinstance(caught.value, PayloadError)

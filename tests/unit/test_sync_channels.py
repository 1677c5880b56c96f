"""Each channel's client against its stand-in (loopback HTTP, no broker): the fulfillment a
Shopify shipment makes, one per Shopify location; a repeat that finds the shop has it already;
cancels made once; the shop's refusals and throttling sorted into give up and try again; the
marketplace's shipment confirmation, made once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from connectors.standin.app import running_standin
from connectors.standin.shopify import StandinShop
from connectors.standin.spapi import StandinSpApi
from connectors.sync.amazon import AmazonSync
from connectors.sync.backoff import CallBudget
from connectors.sync.http import CallMetrics, ChannelHttp, GiveUp, TryAgain
from connectors.sync.shopify import ShopifySync
from schemas.channels import ChannelCall
from schemas.enums import ChannelCallKind
from schemas.orders import ShipmentLine
from tests.unit.factories import make_channel_call

TOKEN = "shpat_unit"
AMAZON_TOKEN = "Atza|unit"
T = TypeVar("T")


def order_json(order_id: int, lines: dict[int, int]) -> dict[str, Any]:
    return {
        "id": order_id,
        "name": f"#{order_id}",
        "created_at": "2026-12-01T10:00:00Z",
        "currency": "USD",
        "total_price": "30.00",
        "email": "ada@example.com",
        "line_items": [
            {"id": item, "sku": f"SKU-{item}", "quantity": n, "price": "10.00", "variant_id": item}
            for item, n in lines.items()
        ],
    }


def fulfil(
    order_id: int, shipment: str, lines: dict[str, int], tracking: str | None
) -> ChannelCall:
    return make_channel_call(
        f"WEB-{order_id}",
        call_id=f"shopify:FULFIL:{shipment}",
        shipment_id=shipment,
        lines=tuple(ShipmentLine(line_id=k, sku="S", quantity=n) for k, n in lines.items()),
        tracking_number=tracking,
        carrier="UPS" if tracking else None,
        picked_up=tracking is None,
    )


@asynccontextmanager
async def clients(
    shop: StandinShop, spapi: StandinSpApi, token: str = TOKEN
) -> AsyncIterator[tuple[ShopifySync, AmazonSync]]:
    metrics = CallMetrics(CollectorRegistry())
    async with running_standin(shop, spapi) as url, aiohttp.ClientSession() as session:
        shopify = ChannelHttp(
            session,
            "shopify",
            url,
            {"X-Shopify-Access-Token": token},
            metrics,
            budget=CallBudget(leak_per_s=2.0),
        )
        amazon = ChannelHttp(session, "amazon", url, {"x-amz-access-token": AMAZON_TOKEN}, metrics)
        yield ShopifySync(shopify, "2025-01"), AmazonSync(amazon, "ATVPDKIKX0DER")


def run(shop: StandinShop, body: Callable[[ShopifySync, AmazonSync], Awaitable[T]], **kw: Any) -> T:
    async def main() -> T:
        async with clients(shop, StandinSpApi(access_token=AMAZON_TOKEN), **kw) as (s, a):
            return await body(s, a)

    return asyncio.run(main())


def test_a_split_shipment_fulfils_its_lines_once_per_shopify_location() -> None:
    shop = StandinShop(access_token=TOKEN, leak_rate=100.0)
    shop.create_order(order_json(501, {11: 2, 12: 1, 13: 1}), assignments={13: 999})
    call = fulfil(501, "WEB-501-1-1", {"11": 1, "13": 1}, "1Z501")

    async def twice(shopify: ShopifySync, _: AmazonSync) -> list[str]:
        return [(await shopify.perform(call)).detail, (await shopify.perform(call)).detail]

    first, again = run(shop, twice)

    made = shop.order_view(501)["fulfillments"]
    by_location = {
        f["location_id"]: {str(i["id"]): i["quantity"] for i in f["line_items"]} for f in made
    }
    assert by_location == {24826418: {"11": 1}, 999: {"13": 1}}
    assert {f["tracking_number"] for f in made} == {"1Z501"}
    assert first.startswith("fulfillment ") and first.endswith(" created")
    assert again == "already fulfilled with tracking 1Z501"


def test_a_repeated_shipment_of_whole_lines_is_made_once_in_two_calls() -> None:
    shop = StandinShop(access_token=TOKEN, leak_rate=100.0)
    shop.create_order(order_json(506, {61: 2, 62: 1}))
    call = fulfil(506, "WEB-506-1-1", {"61": 2, "62": 1}, "1Z506")

    async def twice(shopify: ShopifySync, _: AmazonSync) -> list[str]:
        return [(await shopify.perform(call)).detail, (await shopify.perform(call)).detail]

    _, again = run(shop, twice)

    assert len(shop.order_view(506)["fulfillments"]) == 1
    assert again.startswith("nothing left to fulfil: 2 of line 61 already fulfilled")
    paths = [(c["method"], c["path"].rsplit("/", 1)[-1]) for c in shop.recorder.calls_json()]
    assert paths == [
        ("GET", "fulfillment_orders.json"),
        ("POST", "fulfillments.json"),
        ("GET", "fulfillment_orders.json"),
        ("GET", "506.json"),  # nothing left: is the order cancelled in the shop?
    ]


def test_a_pickup_without_tracking_takes_what_is_left_and_then_nothing() -> None:
    shop = StandinShop(access_token=TOKEN, leak_rate=100.0)
    shop.create_order(order_json(502, {21: 1}))
    call = fulfil(502, "WEB-502-1-1", {"21": 1}, None)

    async def twice(shopify: ShopifySync, _: AmazonSync) -> list[str]:
        return [(await shopify.perform(call)).detail, (await shopify.perform(call)).detail]

    first, again = run(shop, twice)

    [made] = shop.order_view(502)["fulfillments"]
    assert made["tracking_number"] is None
    assert again == "nothing left to fulfil: 1 of line 21 already fulfilled or not fulfillable"
    assert first.startswith("fulfillment ")


def test_a_cancel_is_made_once_and_a_line_the_shop_lacks_is_given_up() -> None:
    shop = StandinShop(access_token=TOKEN, leak_rate=100.0)
    shop.create_order(order_json(503, {31: 1}))
    cancel = make_channel_call(
        "WEB-503",
        call_id="shopify:CANCEL:WEB-503",
        kind=ChannelCallKind.CANCEL,
        lines=(),
        shipment_id=None,
        reason="backorder expired",
    )

    async def body(shopify: ShopifySync, _: AmazonSync) -> list[str]:
        details = [(await shopify.perform(cancel)).detail, (await shopify.perform(cancel)).detail]
        late = fulfil(503, "WEB-503-1-1", {"31": 1}, "1Z503")
        with pytest.raises(GiveUp, match=r"order 503 is cancelled, but shipment WEB-503-1-1 left"):
            await shopify.perform(late)  # it shipped before our cancel reached the location
        with pytest.raises(GiveUp, match="line 99 is not a line item of Shopify order 503"):
            await shopify.perform(fulfil(503, "WEB-503-1-1", {"99": 1}, "1Z503"))
        with pytest.raises(GiveUp, match="Shopify has no order 504"):
            await shopify.perform(fulfil(504, "WEB-504-1-1", {"1": 1}, "1Z504"))
        return details

    assert run(shop, body) == ["order cancelled", "already cancelled in Shopify"]
    assert shop.order(503)["cancel_reason"] == "inventory"
    assert len([c for c in shop.recorder.calls_json() if c["path"].endswith("/cancel.json")]) == 1


def test_cancelled_lines_are_a_refund_that_cancels_them_once() -> None:
    shop = StandinShop(access_token=TOKEN, leak_rate=100.0)
    shop.create_order(order_json(507, {71: 3, 72: 1}))
    call = make_channel_call(
        "WEB-507",
        call_id="shopify:CANCEL:WEB-507/A-1",
        kind=ChannelCallKind.CANCEL,
        shipment_id=None,
        lines=(ShipmentLine(line_id="71", sku="S", quantity=2),),
        reason="cancelled 2 of line 71 by shopify",
    )

    async def twice(shopify: ShopifySync, _: AmazonSync) -> list[str]:
        return [(await shopify.perform(call)).detail, (await shopify.perform(call)).detail]

    first, again = run(shop, twice)

    [refund] = shop.order_view(507)["refunds"]
    [item] = refund["refund_line_items"]
    assert (item["line_item_id"], item["quantity"], item["restock_type"]) == (71, 2, "cancel")
    assert "[dom shopify:CANCEL:WEB-507/A-1]" in refund["note"]
    [fo] = shop.order_view(507)["fulfillment_orders"]
    assert {i["line_item_id"]: i["fulfillable_quantity"] for i in fo["line_items"]} == {
        71: 1,
        72: 1,
    }
    assert first.startswith("refund ") and first.endswith(" cancelled 2 of line 71")
    assert again == "lines already cancelled in Shopify"


def test_a_wrong_token_is_given_up_and_throttling_is_tried_again_after_the_wait() -> None:
    shop = StandinShop(access_token=TOKEN, bucket_size=2, leak_rate=0.5)
    shop.create_order(order_json(505, {51: 1}))
    call = fulfil(505, "WEB-505-1-1", {"51": 1}, "1Z505")

    async def refused(shopify: ShopifySync, _: AmazonSync) -> None:
        with pytest.raises(GiveUp, match=r"answered 401: .*Invalid API key or access token"):
            await shopify.perform(call)

    run(shop, refused, token="shpat_wrong")

    async def throttled(shopify: ShopifySync, _: AmazonSync) -> TryAgain:
        shopify.http.budget = None  # no pacing of our own: the shop's bucket says stop
        with pytest.raises(TryAgain) as caught:
            for _ in range(3):
                await shopify.perform(call)
        return caught.value

    error = run(shop, throttled)
    assert error.throttled and error.retry_after is not None and error.retry_after > 0
    assert "answered 429" in error.detail


def test_the_marketplace_confirms_each_package_once_with_its_items_and_tracking() -> None:
    spapi = StandinSpApi(access_token=AMAZON_TOKEN)
    spapi.add_order(
        {
            "AmazonOrderId": "113-0000001-0000001",
            "MarketplaceId": "ATVPDKIKX0DER",
            "OrderItems": [{"OrderItemId": "9001", "SellerSKU": "SKU-1", "QuantityOrdered": 2}],
        }
    )
    call = make_channel_call(
        "MKT-113-0000001-0000001",
        call_id="amazon:FULFIL:MKT-113-0000001-0000001-1-1",
        channel="amazon",
        channel_order_ref="113-0000001-0000001",
        shipment_id="MKT-113-0000001-0000001-1-1",
        lines=(ShipmentLine(line_id="9001", sku="SKU-1", quantity=2),),
        tracking_number="TBA123",
        carrier="DHL Express",
    )

    async def main() -> list[str]:
        async with clients(StandinShop(access_token=TOKEN), spapi) as (_, amazon):
            return [(await amazon.perform(call)).detail, (await amazon.perform(call)).detail]

    first, again = asyncio.run(main())

    view = spapi.order_view("113-0000001-0000001")
    first_sent, again_sent = view["confirmations"]
    package = first_sent["packageDetail"]
    assert (package["carrierCode"], package["trackingNumber"]) == ("DHL", "TBA123")
    assert package["orderItems"][0]["orderItemId"] == "9001"
    # The repeat named the same package: the marketplace took it as an edit, not a second one.
    assert again_sent["packageDetail"]["packageReferenceId"] == package["packageReferenceId"]
    assert again_sent["replaced"] is True
    assert len(view["packages"]) == 1
    assert view["order"]["OrderStatus"] == "Shipped"
    assert first == again == f"shipment confirmed as package {package['packageReferenceId']}"


def market_order(spapi: StandinSpApi, order_id: str, items: dict[str, int]) -> None:
    spapi.add_order(
        {
            "AmazonOrderId": order_id,
            "MarketplaceId": "ATVPDKIKX0DER",
            "OrderItems": [
                {"OrderItemId": code, "SellerSKU": f"SKU-{code}", "QuantityOrdered": n}
                for code, n in items.items()
            ],
        }
    )


def market_cancel(order_id: str, lines: dict[str, int] | None = None) -> ChannelCall:
    subject = f"MKT-{order_id}" + ("/A-1" if lines else "")
    return make_channel_call(
        f"MKT-{order_id}",
        call_id=f"amazon:CANCEL:{subject}",
        channel="amazon",
        channel_order_ref=order_id,
        kind=ChannelCallKind.CANCEL,
        shipment_id=None,
        lines=tuple(
            ShipmentLine(line_id=k, sku=f"SKU-{k}", quantity=n) for k, n in (lines or {}).items()
        ),
        tracking_number=None,
        carrier=None,
        reason="backorder expired: no stock came",
    )


def amazon_run(spapi: StandinSpApi, body: Callable[[AmazonSync], Awaitable[T]]) -> T:
    async def main() -> T:
        async with clients(StandinShop(access_token=TOKEN), spapi) as (_, amazon):
            return await body(amazon)

    return asyncio.run(main())


def test_a_marketplace_cancel_goes_through_the_acknowledgement_feed_once() -> None:
    spapi = StandinSpApi(access_token=AMAZON_TOKEN)
    market_order(spapi, "114-0000001-0000001", {"9001": 2, "9002": 1})
    call = market_cancel("114-0000001-0000001")

    async def twice(amazon: AmazonSync) -> list[str]:
        return [(await amazon.perform(call)).detail, (await amazon.perform(call)).detail]

    first, again = amazon_run(spapi, twice)

    view = spapi.order_view("114-0000001-0000001")
    assert view["order"]["OrderStatus"] == "Canceled"
    [cancellation] = view["cancellations"]
    assert {i["orderItemId"]: i["quantity"] for i in cancellation["items"]} == {
        "9001": 2,
        "9002": 1,
    }
    assert first.startswith("cancel of the order sent in feed ")
    assert again == "already cancelled on the marketplace"  # read first: no second feed


def test_a_marketplace_line_cancel_names_its_items_with_a_reason() -> None:
    spapi = StandinSpApi(access_token=AMAZON_TOKEN)
    market_order(spapi, "114-0000001-0000002", {"9001": 2, "9002": 1})

    async def cancel(amazon: AmazonSync) -> str:
        return (await amazon.perform(market_cancel("114-0000001-0000002", {"9002": 1}))).detail

    said = amazon_run(spapi, cancel)

    [cancellation] = spapi.order_view("114-0000001-0000002")["cancellations"]
    assert cancellation["items"] == [
        {"orderItemId": "9002", "quantity": 1, "reason": "NoInventory"}
    ]
    assert said.startswith("cancel of items 9002 sent in feed ")


def test_a_marketplace_cancel_amazon_cannot_take_is_given_up_saying_why() -> None:
    spapi = StandinSpApi(access_token=AMAZON_TOKEN)
    market_order(spapi, "114-0000001-0000003", {"9001": 2})

    async def part(amazon: AmazonSync) -> None:
        await amazon.perform(market_cancel("114-0000001-0000003", {"9001": 1}))

    with pytest.raises(GiveUp, match="cancels whole items only"):
        amazon_run(spapi, part)
    assert spapi.order_view("114-0000001-0000003")["cancellations"] == []


def market_shipment(order_id: str) -> ChannelCall:
    return make_channel_call(
        f"MKT-{order_id}",
        call_id=f"amazon:FULFIL:MKT-{order_id}-1-1",
        channel="amazon",
        channel_order_ref=order_id,
        shipment_id=f"MKT-{order_id}-1-1",
        lines=(ShipmentLine(line_id="9001", sku="SKU-9001", quantity=2),),
        tracking_number="TBA777",
        carrier="UPS",
    )


def test_a_shipment_of_an_order_cancelled_on_amazon_is_given_up_for_a_person() -> None:
    """The warehouse shipped before the cancel reached it: Amazon refuses the confirmation,
    and the give-up says the parcel left anyway, with its tracking number."""
    spapi = StandinSpApi(access_token=AMAZON_TOKEN)
    market_order(spapi, "114-0000001-0000004", {"9001": 2})

    async def late(amazon: AmazonSync) -> None:
        await amazon.perform(market_cancel("114-0000001-0000004"))
        await amazon.perform(market_shipment("114-0000001-0000004"))

    with pytest.raises(GiveUp) as refused:
        amazon_run(spapi, late)
    assert refused.value.detail == (
        "marketplace order 114-0000001-0000004 is cancelled, but shipment"
        " MKT-114-0000001-0000004-1-1 left anyway (tracking TBA777): refund or reach the customer"
    )
    assert spapi.order_view("114-0000001-0000004")["confirmations"] == []


def test_a_confirmation_amazon_refuses_otherwise_is_given_up_quoting_its_error() -> None:
    spapi = StandinSpApi(access_token=AMAZON_TOKEN)
    market_order(spapi, "114-0000001-0000005", {"9001": 2})
    call = market_shipment("114-0000001-0000005").model_copy(update={"tracking_number": "TBA8"})

    async def confirm(amazon: AmazonSync) -> None:
        amazon.marketplace_id = "A1F83G8C2ARO7P"  # not the order's marketplace
        await amazon.perform(call)

    with pytest.raises(GiveUp, match=r"answered 400: .*not the order's marketplace"):
        amazon_run(spapi, confirm)

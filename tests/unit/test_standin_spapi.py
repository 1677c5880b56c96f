"""The SP-API stand-in as a seller's client meets it: 403 for a wrong token, confirmShipment
accepted with 204 and refused with InvalidInput for each missing required field or wrong
value, a package edited by its packageReferenceId, QuotaExceeded when the usage plan runs
dry, faults, and an order cancelled through the order acknowledgement feed."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.standin.app import create_standin_app
from connectors.standin.spapi import StandinSpApi

TOKEN = "Atza|test-token"
AUTH = {"x-amz-access-token": TOKEN}
CONTROL = "/_standin/spapi"
ORDER_ID = "113-8734216-5509851"
SHOES, SOCKS = "68828574383266", "68828574383267"
US = "ATVPDKIKX0DER"
XML = "text/xml; charset=UTF-8"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def wall() -> datetime:
    return datetime(2024, 5, 2, 9, 0, 0, tzinfo=UTC)


def make_order() -> dict[str, Any]:
    return {
        "AmazonOrderId": ORDER_ID,
        "MarketplaceId": US,
        "OrderItems": [
            {"OrderItemId": SHOES, "SellerSKU": "SKU-1", "QuantityOrdered": 2},
            {"OrderItemId": SOCKS, "SellerSKU": "SKU-2", "QuantityOrdered": 1},
        ],
    }


def confirmation(*items: tuple[str, int], reference: str = "1") -> dict[str, Any]:
    return {
        "marketplaceId": US,
        "packageDetail": {
            "packageReferenceId": reference,
            "carrierCode": "UPS",
            "carrierName": "UPS",
            "shippingMethod": "Ground",
            "trackingNumber": "1Z001985YW99744790",
            "shipDate": "2024-05-02T10:00:00.000Z",
            "orderItems": [{"orderItemId": i, "quantity": q} for i, q in items or ((SHOES, 2),)],
        },
    }


Scenario = Callable[[TestClient[Any, Any], StandinSpApi, Clock], Awaitable[None]]


def run(scenario: Scenario, **options: Any) -> None:
    clock = Clock()
    api = StandinSpApi(**{"access_token": TOKEN, "now": clock, "wall": wall, **options})

    async def main() -> None:
        async with TestClient(TestServer(create_standin_app(spapi=api))) as client:
            response = await client.post(f"{CONTROL}/orders", json=make_order())
            assert response.status == 201, await response.text()
            await scenario(client, api, clock)

    asyncio.run(main())


async def confirm(client: TestClient[Any, Any], body: Any) -> tuple[int, Any, Any]:
    path = f"/orders/v0/orders/{ORDER_ID}/shipmentConfirmation"
    response = await client.post(path, json=body, headers=AUTH)
    payload = await response.json() if response.status != 204 else await response.read()
    return response.status, payload, response.headers


async def items(client: TestClient[Any, Any]) -> dict[str, tuple[int, int]]:
    response = await client.get(f"/orders/v0/orders/{ORDER_ID}/orderItems", headers=AUTH)
    assert response.status == 200
    payload = (await response.json())["payload"]
    assert payload["AmazonOrderId"] == ORDER_ID
    return {
        i["OrderItemId"]: (i["QuantityOrdered"], i["QuantityShipped"])
        for i in payload["OrderItems"]
    }


async def order_status(client: TestClient[Any, Any]) -> str:
    response = await client.get(f"/orders/v0/orders/{ORDER_ID}", headers=AUTH)
    return str((await response.json())["payload"]["OrderStatus"])


def test_a_wrong_token_is_403_unauthorized_with_a_request_id_and_no_rate_limit() -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        response = await client.get(
            f"/orders/v0/orders/{ORDER_ID}", headers={"x-amz-access-token": "x"}
        )
        assert response.status == 403
        assert await response.json() == {
            "errors": [
                {
                    "code": "Unauthorized",
                    "message": "Access to requested resource is denied.",
                    "details": "",
                }
            ]
        }
        assert response.headers["x-amzn-RequestId"]
        assert "x-amzn-RateLimit-Limit" not in response.headers

    run(scenario)


def test_a_confirmed_package_is_204_without_a_body_and_ships_its_items() -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        assert await order_status(client) == "Unshipped"
        status, body, headers = await confirm(client, confirmation((SHOES, 2)))
        assert (status, body) == (204, b"")
        assert headers["x-amzn-RateLimit-Limit"] == "2.0" and headers["x-amzn-RequestId"]
        assert await items(client) == {SHOES: (2, 2), SOCKS: (1, 0)}
        assert await order_status(client) == "PartiallyShipped"
        assert (await confirm(client, confirmation((SOCKS, 1), reference="2")))[0] == 204
        assert await order_status(client) == "Shipped"
        view = await (await client.get(f"{CONTROL}/orders/{ORDER_ID}")).json()
        assert [c["packageDetail"]["packageReferenceId"] for c in view["confirmations"]] == [
            "1",
            "2",
        ]

    run(scenario)


def test_the_same_package_reference_edits_the_package() -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        assert (await confirm(client, confirmation((SHOES, 2))))[0] == 204
        assert (await confirm(client, confirmation((SHOES, 1))))[0] == 204
        assert await items(client) == {SHOES: (2, 1), SOCKS: (1, 0)}
        status, body, _ = await confirm(client, confirmation((SHOES, 2), reference="2"))
        assert status == 400 and body["errors"][0]["code"] == "InvalidInput"

    run(scenario)


REQUIRED = [
    ("marketplaceId",),
    ("packageDetail",),
    ("packageDetail", "packageReferenceId"),
    ("packageDetail", "carrierCode"),
    ("packageDetail", "trackingNumber"),
    ("packageDetail", "shipDate"),
    ("packageDetail", "orderItems"),
    ("packageDetail", "orderItems", 0, "orderItemId"),
    ("packageDetail", "orderItems", 0, "quantity"),
]


@pytest.mark.parametrize("path", REQUIRED, ids=lambda p: ".".join(map(str, p)))
def test_each_missing_required_field_is_400_invalid_input(path: tuple[str | int, ...]) -> None:
    body = confirmation((SHOES, 1))
    parent: Any = body
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]

    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        status, answer, headers = await confirm(client, body)
        assert status == 400
        (error,) = answer["errors"]
        assert error["code"] == "InvalidInput"
        assert error["details"] == ".".join(map(str, path))
        assert headers["x-amzn-RateLimit-Limit"] == "2.0"
        assert await items(client) == {SHOES: (2, 0), SOCKS: (1, 0)}

    run(scenario)


def wrong(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = confirmation((SHOES, 1))
    change(body)
    return body


WRONG_VALUES = {
    "shipDate not ISO 8601": wrong(lambda b: b["packageDetail"].update(shipDate="02/21/2022")),
    "reference not numeric": wrong(lambda b: b["packageDetail"].update(packageReferenceId="A1")),
    "Other without name": wrong(
        lambda b: b["packageDetail"].update(carrierCode="Other", carrierName=None)
    ),
    "quantity 0": wrong(lambda b: b["packageDetail"]["orderItems"][0].update(quantity=0)),
    "quantity a string": wrong(lambda b: b["packageDetail"]["orderItems"][0].update(quantity="1")),
    "item of no order": wrong(
        lambda b: b["packageDetail"]["orderItems"][0].update(orderItemId="9")
    ),
    "more than ordered": wrong(lambda b: b["packageDetail"]["orderItems"][0].update(quantity=3)),
    "other marketplace": wrong(lambda b: b.update(marketplaceId="A1F83G8C2ARO7P")),
    "unknown COD method": wrong(lambda b: b.update(codCollectionMethod="Cash")),
    "not an object": [],
}


@pytest.mark.parametrize("body", list(WRONG_VALUES.values()), ids=list(WRONG_VALUES))
def test_a_wrong_value_is_400_invalid_input(body: Any) -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        status, answer, _ = await confirm(client, body)
        assert status == 400, answer
        assert answer["errors"][0]["code"] == "InvalidInput"
        assert await items(client) == {SHOES: (2, 0), SOCKS: (1, 0)}

    run(scenario)


def test_an_unknown_order_is_404() -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        for path in ("/orders/v0/orders/000-0000000-0000000", "/orders/v0/orders/x/orderItems"):
            response = await client.get(path, headers=AUTH)
            assert response.status == 404
            assert (await response.json())["errors"][0]["code"] == "NotFound"
            assert response.headers["x-amzn-RateLimit-Limit"] == "0.5"

    run(scenario)


def test_quota_exceeded_when_the_usage_plan_runs_dry_until_tokens_come_back() -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        statuses = [(await confirm(client, {}))[0] for _ in range(10)]  # burst 10
        assert statuses == [400] * 10
        status, body, headers = await confirm(client, confirmation((SHOES, 1)))
        assert status == 429
        assert body == {
            "errors": [
                {
                    "code": "QuotaExceeded",
                    "message": "You exceeded your quota for the requested resource.",
                    "details": "",
                }
            ]
        }
        assert "x-amzn-RateLimit-Limit" not in headers and headers["x-amzn-RequestId"]
        clock.advance(0.5)  # 2 tokens a second
        assert (await confirm(client, confirmation((SHOES, 1))))[0] == 204

    run(scenario)


def test_throttle_sets_an_operations_usage_plan() -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        plan = {"operation": "getOrder", "rate": 0.1, "burst": 1}
        assert (await client.post(f"{CONTROL}/throttle", json=plan)).status == 200
        first = await client.get(f"/orders/v0/orders/{ORDER_ID}", headers=AUTH)
        second = await client.get(f"/orders/v0/orders/{ORDER_ID}", headers=AUTH)
        assert (first.status, first.headers["x-amzn-RateLimit-Limit"], second.status) == (
            200,
            "0.1",
            429,
        )
        unknown = {"operation": "listEverything", "rate": 1, "burst": 1}
        assert (await client.post(f"{CONTROL}/throttle", json=unknown)).status == 400

    run(scenario)


def test_armed_faults_answer_instead_and_are_logged() -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        fault = {"status": 503, "path_contains": "shipmentConfirmation", "count": 1}
        assert (await client.post(f"{CONTROL}/faults", json=fault)).status == 201
        status, body, headers = await confirm(client, confirmation((SHOES, 1)))
        assert status == 503 and body["errors"][0]["code"] == "ServiceUnavailable"
        assert "x-amzn-RateLimit-Limit" not in headers
        assert (await confirm(client, confirmation((SHOES, 1))))[0] == 204
        calls = (await (await client.get(f"{CONTROL}/calls")).json())["calls"]
        assert [(c["method"], c["status"]) for c in calls] == [("POST", 503), ("POST", 204)]
        assert calls[1]["body"]["packageDetail"]["trackingNumber"] == "1Z001985YW99744790"

    run(scenario)


def acknowledgement(*messages: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<AmazonEnvelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:noNamespaceSchemaLocation="amzn-envelope.xsd">'
        "<Header><DocumentVersion>1.01</DocumentVersion>"
        "<MerchantIdentifier>M_STANDIN</MerchantIdentifier></Header>"
        "<MessageType>OrderAcknowledgement</MessageType>"
        + "".join(
            f"<Message><MessageID>{n}</MessageID><OperationType>Update</OperationType>"
            f"<OrderAcknowledgement>{m}</OrderAcknowledgement></Message>"
            for n, m in enumerate(messages, 1)
        )
        + "</AmazonEnvelope>"
    ).encode()


def failure(order_id: str = ORDER_ID, *items: tuple[str, str]) -> str:
    lines = "".join(
        f"<Item><AmazonOrderItemCode>{i}</AmazonOrderItemCode><CancelReason>{r}</CancelReason></Item>"
        for i, r in items
    )
    return f"<AmazonOrderID>{order_id}</AmazonOrderID><StatusCode>Failure</StatusCode>{lines}"


def local(client: TestClient[Any, Any], url: str) -> str:
    return url.removeprefix(str(client.make_url("")).rstrip("/"))


async def send_feed(client: TestClient[Any, Any], content: bytes) -> str:
    """createFeedDocument, upload to the presigned URL, createFeed: the feed id."""
    created = await client.post(
        "/feeds/2021-06-30/documents", json={"contentType": XML}, headers=AUTH
    )
    assert created.status == 201
    document = await created.json()
    upload = await client.put(
        local(client, document["url"]), data=content, headers={"Content-Type": XML}
    )
    assert upload.status == 200
    spec = {
        "feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA",
        "marketplaceIds": [US],
        "inputFeedDocumentId": document["feedDocumentId"],
    }
    feed = await client.post("/feeds/2021-06-30/feeds", json=spec, headers=AUTH)
    assert feed.status == 202
    return str((await feed.json())["feedId"])


async def feed_report(client: TestClient[Any, Any], feed_id: str) -> tuple[str, ET.Element]:
    """The feed's processing status and its processing report."""
    feed = await (await client.get(f"/feeds/2021-06-30/feeds/{feed_id}", headers=AUTH)).json()
    path = f"/feeds/2021-06-30/documents/{feed['resultFeedDocumentId']}"
    document = await (await client.get(path, headers=AUTH)).json()
    report = await client.get(local(client, document["url"]))
    return feed["processingStatus"], ET.fromstring(await report.read())


def test_a_failure_acknowledgement_feed_cancels_the_order() -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        feed_id = await send_feed(client, acknowledgement(failure()))
        processing, report = await feed_report(client, feed_id)
        assert processing == "DONE"
        assert report.findtext(".//MessagesSuccessful") == "1"
        assert report.findtext(".//MessagesWithError") == "0"
        assert await order_status(client) == "Canceled"
        assert await items(client) == {SHOES: (0, 0), SOCKS: (0, 0)}
        status, body, _ = await confirm(client, confirmation((SHOES, 1)))
        assert status == 400 and body["errors"][0]["code"] == "InvalidInput"
        view = await (await client.get(f"{CONTROL}/orders/{ORDER_ID}")).json()
        assert [i["quantity"] for i in view["cancellations"][0]["items"]] == [2, 1]

    run(scenario)


def test_an_item_of_the_order_is_cancelled_with_its_reason() -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        await send_feed(client, acknowledgement(failure(ORDER_ID, (SOCKS, "NoInventory"))))
        assert await items(client) == {SHOES: (2, 0), SOCKS: (0, 0)}
        assert await order_status(client) == "Unshipped"
        view = await (await client.get(f"{CONTROL}/orders/{ORDER_ID}")).json()
        assert view["cancellations"][0]["items"] == [
            {"orderItemId": SOCKS, "quantity": 1, "reason": "NoInventory"}
        ]

    run(scenario)


def test_acknowledgements_amazon_would_not_apply_are_errors_in_the_report() -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        assert (await confirm(client, confirmation((SHOES, 1))))[0] == 204
        content = acknowledgement(
            failure("000-0000000-0000000"),
            failure(ORDER_ID, (SOCKS, "ChangedMyMind")),
            failure(ORDER_ID),  # an item was confirmed shipped
        )
        status, report = await feed_report(client, await send_feed(client, content))
        assert status == "DONE"
        assert report.findtext(".//MessagesWithError") == "3"
        assert [r.findtext("MessageID") for r in report.iter("Result")] == ["1", "2", "3"]
        assert await items(client) == {SHOES: (2, 1), SOCKS: (1, 0)}

    run(scenario)


def test_a_document_that_is_not_an_acknowledgement_feed_is_fatal() -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        status, report = await feed_report(client, await send_feed(client, b"order-id\tx\n"))
        assert status == "FATAL"
        assert report.findtext(".//ResultCode") == "Error"
        assert await order_status(client) == "Unshipped"

    run(scenario)


def test_presigned_urls_behave_like_s3() -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        created = await client.post(
            "/feeds/2021-06-30/documents", json={"contentType": XML}, headers=AUTH
        )
        url = local(client, (await created.json())["url"])
        other_type = await client.put(url, data=b"<x/>", headers={"Content-Type": "text/plain"})
        assert other_type.status == 403 and b"SignatureDoesNotMatch" in await other_type.read()
        clock.advance(301)
        expired = await client.put(url, data=b"<x/>", headers={"Content-Type": XML})
        assert expired.status == 403 and b"Request has expired" in await expired.read()
        bad = await client.post("/feeds/2021-06-30/documents", json={}, headers=AUTH)
        assert bad.status == 400

    run(scenario)


def test_a_feed_waits_in_queue_for_its_delay() -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        feed_id = await send_feed(client, acknowledgement(failure()))
        feed = await (await client.get(f"/feeds/2021-06-30/feeds/{feed_id}", headers=AUTH)).json()
        assert feed["processingStatus"] == "IN_QUEUE" and "resultFeedDocumentId" not in feed
        assert await order_status(client) == "Unshipped"
        clock.advance(30)
        feed = await (await client.get(f"/feeds/2021-06-30/feeds/{feed_id}", headers=AUTH)).json()
        assert feed["processingStatus"] == "DONE"
        assert await order_status(client) == "Canceled"

    run(scenario, feed_delay=30.0)


def test_create_feed_refuses_an_unknown_document_or_feed_type() -> None:
    async def scenario(client: TestClient[Any, Any], api: StandinSpApi, clock: Clock) -> None:
        spec = {"feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA", "marketplaceIds": [US]}
        for body in (
            {**spec, "inputFeedDocumentId": "nope"},
            {**spec, "feedType": "POST_PRODUCT_DATA", "inputFeedDocumentId": "nope"},
            {**spec, "marketplaceIds": [], "inputFeedDocumentId": "nope"},
            copy.deepcopy(spec),
        ):
            response = await client.post("/feeds/2021-06-30/feeds", json=body, headers=AUTH)
            assert response.status == 400
            assert (await response.json())["errors"][0]["code"] == "InvalidInput"

    run(scenario)

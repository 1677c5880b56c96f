"""The Shopify stand-in as a REST Admin API client meets it: auth and version refusals, the
call-limit header counting up and leaking with the (injected) clock, 429 with Retry-After,
fulfillments over two fulfillment orders, Shopify's 400/422 refusals, cancel, a line
cancelled by refund, faults, and the signed ``orders/create`` webhook."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from connectors.standin.app import create_standin_app, running_standin
from connectors.standin.cli import standin
from connectors.standin.shopify import StandinShop, WebhookTarget
from connectors.standin.shopify_models import BAD_QUANTITY, MISSING, NOT_OPEN, THROTTLED

TOKEN = "shpat_test_token"
AUTH = {"X-Shopify-Access-Token": TOKEN}
API = "/admin/api/2025-01"
CONTROL = "/_standin/shopify"
ORDER_ID = 450789469
SHOES, SOCKS = 466157049, 518995019
WAREHOUSE, STORE = 24826418, 655441491


class Clock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def wall() -> datetime:
    return datetime(2025, 1, 2, 11, 38, 15, tzinfo=UTC)


def make_order(**overrides: Any) -> dict[str, Any]:
    """An ``orders/create`` webhook body: two shoes and one pair of socks."""
    order = {
        "id": ORDER_ID,
        "name": "#1001",
        "created_at": "2025-01-02T11:00:00-05:00",
        "currency": "USD",
        "total_price": "409.94",
        "financial_status": "paid",
        "email": "bob.norman@mail.example.com",
        "customer": {"id": 207119551, "email": "bob.norman@mail.example.com"},
        "shipping_address": {
            "address1": "Chestnut Street 92",
            "city": "Louisville",
            "zip": "40202",
        },
        "line_items": [
            {
                "id": SHOES,
                "sku": "SHOE-1",
                "quantity": 2,
                "price": "199.00",
                "variant_id": 39072856,
            },
            {"id": SOCKS, "sku": "SOCK-1", "quantity": 1, "price": "5.99", "variant_id": 49148385},
        ],
        "shipping_lines": [{"code": "Standard", "price": "5.95"}],
        "note_attributes": [],
        "tags": "",
    }
    return {**order, **overrides}


Scenario = Callable[[TestClient[Any, Any], StandinShop, Clock], Awaitable[None]]


def run(scenario: Scenario, **shop_options: Any) -> None:
    clock = Clock()
    options: dict[str, Any] = {"access_token": TOKEN, "now": clock, "wall": wall}
    shop = StandinShop(**{**options, **shop_options})

    async def main() -> None:
        async with TestClient(TestServer(create_standin_app(shop=shop))) as client:
            await scenario(client, shop, clock)

    asyncio.run(main())


async def call(
    client: TestClient[Any, Any], method: str, path: str, body: Any = None, **headers: str
) -> tuple[int, Any, Any]:
    response = await client.request(method, path, json=body, headers={**AUTH, **headers})
    return response.status, await response.json(), response.headers


async def place(client: TestClient[Any, Any], order: dict[str, Any], **assignments: int) -> None:
    body = {**order, "assignments": {k.removeprefix("line_"): v for k, v in assignments.items()}}
    response = await client.post(f"{CONTROL}/orders", json=body)
    assert response.status == 201, await response.text()


async def fulfillment_orders(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    status, body, _ = await call(client, "GET", f"{API}/orders/{ORDER_ID}/fulfillment_orders.json")
    assert status == 200, body
    return list(body["fulfillment_orders"])


def fulfil(fo: dict[str, Any], *lines: tuple[int, int], number: str = "1Z999") -> dict[str, Any]:
    group: dict[str, Any] = {"fulfillment_order_id": fo["id"]}
    if lines:
        group["fulfillment_order_line_items"] = [{"id": i, "quantity": q} for i, q in lines]
    return {
        "fulfillment": {
            "line_items_by_fulfillment_order": [group],
            "tracking_info": {"number": number, "company": "UPS"},
            "notify_customer": False,
        }
    }


def test_a_wrong_or_missing_token_gets_shopifys_401_and_no_call_limit() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        for headers in ({}, {"X-Shopify-Access-Token": "shpat_other"}):
            response = await client.get(f"{API}/orders/{ORDER_ID}.json", headers=headers)
            assert response.status == 401
            assert await response.json() == {
                "errors": "[API] Invalid API key or access token "
                "(unrecognized login or wrong password)"
            }
            assert "X-Shopify-Shop-Api-Call-Limit" not in response.headers
        calls = (await (await client.get(f"{CONTROL}/calls")).json())["calls"]
        assert [(c["method"], c["status"]) for c in calls] == [("GET", 401), ("GET", 401)]

    run(scenario)


def test_only_the_shops_api_version_is_spoken() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        await place(client, make_order())
        status, body, _ = await call(client, "GET", f"{API}/orders/{ORDER_ID}.json")
        assert (status, body) == (404, {"errors": "Not Found"})
        status, body, headers = await call(
            client, "GET", f"/admin/api/2024-10/orders/{ORDER_ID}.json"
        )
        assert status == 200 and body["order"]["id"] == ORDER_ID
        assert headers["X-Shopify-API-Version"] == "2024-10"

    run(scenario, api_version="2024-10")


def test_the_call_limit_header_counts_up_and_leaks_with_the_clock() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        await place(client, make_order())
        seen = []
        for _ in range(3):
            _, _, headers = await call(client, "GET", f"{API}/orders/{ORDER_ID}.json")
            seen.append(headers["X-Shopify-Shop-Api-Call-Limit"])
        assert seen == ["1/40", "2/40", "3/40"]
        clock.advance(1.0)  # 2 requests a second leak out
        _, _, headers = await call(client, "GET", f"{API}/orders/{ORDER_ID}.json")
        assert headers["X-Shopify-Shop-Api-Call-Limit"] == "2/40"
        clock.advance(60)
        status, _, headers = await call(client, "GET", f"{API}/orders/999.json")
        assert (status, headers["X-Shopify-Shop-Api-Call-Limit"]) == (404, "1/40")

    run(scenario)


def test_a_full_bucket_answers_429_with_retry_after_until_it_leaks() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        await place(client, make_order())
        response = await client.post(f"{CONTROL}/throttle", json={"bucket_size": 2, "leak_rate": 1})
        assert response.status == 200
        path = f"{API}/orders/{ORDER_ID}.json"
        assert [(await call(client, "GET", path))[0] for _ in range(2)] == [200, 200]
        status, body, headers = await call(client, "GET", path)
        assert (status, body) == (429, {"errors": THROTTLED})
        assert headers["Retry-After"] == "1.0"
        assert headers["X-Shopify-Shop-Api-Call-Limit"] == "2/2"
        clock.advance(1.0)
        assert (await call(client, "GET", path))[0] == 200

    run(scenario)


def test_plus_plan_limits_show_in_the_header() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        _, _, headers = await call(client, "GET", f"{API}/orders/1.json")
        assert headers["X-Shopify-Shop-Api-Call-Limit"] == "1/400"

    run(scenario, bucket_size=400, leak_rate=20.0)


async def post_fulfillment(client: TestClient[Any, Any], body: Any) -> tuple[int, Any]:
    status, answer, _ = await call(client, "POST", f"{API}/fulfillments.json", body)
    return status, answer


async def shown_order(client: TestClient[Any, Any]) -> dict[str, Any]:
    return dict((await call(client, "GET", f"{API}/orders/{ORDER_ID}.json"))[1]["order"])


def test_line_items_assigned_to_two_locations_make_two_fulfillment_orders() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        await place(client, make_order(), **{f"line_{SOCKS}": STORE})
        shoes_fo, socks_fo = await fulfillment_orders(client)
        locations = [fo["assigned_location_id"] for fo in (shoes_fo, socks_fo)]
        assert locations == [WAREHOUSE, STORE]
        assert shoes_fo["status"] == "open" and shoes_fo["supported_actions"]
        shoe_line = shoes_fo["line_items"][0]
        assert (shoe_line["line_item_id"], shoe_line["fulfillable_quantity"]) == (SHOES, 2)
        assert shoe_line["fulfillment_order_id"] == shoes_fo["id"]

        status, body = await post_fulfillment(client, fulfil(shoes_fo, (shoe_line["id"], 1)))
        assert status == 201, body
        first = body["fulfillment"]
        assert (first["name"], first["status"]) == ("#1001.1", "success")
        assert (first["location_id"], first["order_id"]) == (WAREHOUSE, ORDER_ID)
        assert (first["tracking_number"], first["tracking_company"]) == ("1Z999", "UPS")
        assert [(li["id"], li["quantity"]) for li in first["line_items"]] == [(SHOES, 1)]
        assert (await shown_order(client))["fulfillment_status"] == "partial"
        assert (await fulfillment_orders(client))[0]["status"] == "in_progress"

    run(scenario)


def test_fulfilling_what_is_left_of_both_closes_them_and_fulfils_the_order() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        await place(client, make_order(), **{f"line_{SOCKS}": STORE})
        shoes_fo, socks_fo = await fulfillment_orders(client)
        shoe_line = shoes_fo["line_items"][0]["id"]
        assert (await post_fulfillment(client, fulfil(shoes_fo, (shoe_line, 1))))[0] == 201
        status, body = await post_fulfillment(client, fulfil(socks_fo))
        assert (status, body["fulfillment"]["location_id"]) == (201, STORE)
        assert (await post_fulfillment(client, fulfil(shoes_fo, (shoe_line, 1))))[0] == 201

        assert [fo["status"] for fo in await fulfillment_orders(client)] == ["closed", "closed"]
        order = await shown_order(client)
        assert order["fulfillment_status"] == "fulfilled"
        assert [li["fulfillable_quantity"] for li in order["line_items"]] == [0, 0]
        listed = (await call(client, "GET", f"{API}/orders/{ORDER_ID}/fulfillments.json"))[1]
        assert [f["name"] for f in listed["fulfillments"]] == ["#1001.1", "#1001.2", "#1001.3"]

    run(scenario)


def test_fulfillment_orders_of_two_locations_in_one_fulfillment_are_refused() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        await place(client, make_order(), **{f"line_{SOCKS}": STORE})
        shoes_fo, socks_fo = await fulfillment_orders(client)
        body = fulfil(shoes_fo)
        body["fulfillment"]["line_items_by_fulfillment_order"].append(
            {"fulfillment_order_id": socks_fo["id"]}
        )
        status, answer, _ = await call(client, "POST", f"{API}/fulfillments.json", body)
        assert status == 422 and isinstance(answer["errors"], list)

    run(scenario)


def test_more_than_is_left_to_fulfil_gets_shopifys_422_and_changes_nothing() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        await place(client, make_order())
        (fo,) = await fulfillment_orders(client)
        shoe_line = fo["line_items"][0]["id"]
        for quantity in (3, 0):
            status, body, _ = await call(
                client, "POST", f"{API}/fulfillments.json", fulfil(fo, (shoe_line, quantity))
            )
            assert (status, body) == (422, {"errors": [BAD_QUANTITY]})
        (fo,) = await fulfillment_orders(client)
        assert fo["status"] == "open"
        assert [li["fulfillable_quantity"] for li in fo["line_items"]] == [2, 1]

    run(scenario)


def test_unknown_closed_or_foreign_fulfillment_orders_are_refused() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        await place(client, make_order(), **{f"line_{SOCKS}": STORE})
        shoes_fo, socks_fo = await fulfillment_orders(client)
        status, body, _ = await call(client, "POST", f"{API}/fulfillments.json", fulfil({"id": 1}))
        assert (status, body) == (404, {"errors": "Not Found"})
        foreign_line = socks_fo["line_items"][0]["id"]
        status, body, _ = await call(
            client, "POST", f"{API}/fulfillments.json", fulfil(shoes_fo, (foreign_line, 1))
        )
        assert status == 422
        assert (await call(client, "POST", f"{API}/fulfillments.json", fulfil(shoes_fo)))[0] == 201
        status, body, _ = await call(client, "POST", f"{API}/fulfillments.json", fulfil(shoes_fo))
        assert (status, body) == (422, {"errors": [NOT_OPEN]})

    run(scenario)


def test_a_missing_root_is_400_and_a_wrong_value_422() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        path = f"{API}/fulfillments.json"
        assert (await call(client, "POST", path, {}))[:2] == (
            400,
            {"errors": {"fulfillment": MISSING}},
        )
        status, body, _ = await call(
            client, "POST", path, {"fulfillment": {"notify_customer": True}}
        )
        assert (status, body) == (400, {"errors": {"line_items_by_fulfillment_order": MISSING}})
        wrong = {
            "fulfillment": {"line_items_by_fulfillment_order": [{"fulfillment_order_id": "x"}]}
        }
        status, body, _ = await call(client, "POST", path, wrong)
        assert status == 422
        assert list(body["errors"]) == ["line_items_by_fulfillment_order.0.fulfillment_order_id"]

    run(scenario)


def test_cancel_answers_the_cancelled_order_and_refuses_it_twice() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        await place(client, make_order())
        path = f"{API}/orders/{ORDER_ID}/cancel.json"
        status, body, _ = await call(client, "POST", path, {"reason": "nonsense"})
        assert status == 422 and list(body["errors"]) == ["reason"]
        status, body, _ = await call(client, "POST", path, {"reason": "customer", "email": True})
        assert status == 200
        assert (body["order"]["cancel_reason"], body["order"]["cancelled_at"]) == (
            "customer",
            wall().isoformat(timespec="seconds"),
        )
        status, body, _ = await call(client, "POST", path, {})
        assert status == 422 and isinstance(body["errors"], list)
        (fo,) = await fulfillment_orders(client)
        assert fo["status"] == "closed"
        status, body, _ = await call(client, "POST", f"{API}/fulfillments.json", fulfil(fo))
        assert (status, body) == (422, {"errors": [NOT_OPEN]})

    run(scenario)


def test_an_order_with_fulfillments_cannot_be_cancelled() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        await place(client, make_order())
        (fo,) = await fulfillment_orders(client)
        await call(
            client, "POST", f"{API}/fulfillments.json", fulfil(fo, (fo["line_items"][1]["id"], 1))
        )
        status, body, _ = await call(client, "POST", f"{API}/orders/{ORDER_ID}/cancel.json", {})
        assert status == 422 and isinstance(body["errors"], list)

    run(scenario)


def cancel_refund(line: int, quantity: int, **extra: Any) -> dict[str, Any]:
    item = {"line_item_id": line, "quantity": quantity, "restock_type": "cancel", **extra}
    return {"refund": {"refund_line_items": [item], "notify": False, "note": "out of stock"}}


def test_a_refund_with_restock_type_cancel_takes_a_line_out_of_fulfilment() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        await place(client, make_order(), **{f"line_{SOCKS}": STORE})
        path = f"{API}/orders/{ORDER_ID}/refunds.json"
        status, body, _ = await call(
            client, "POST", path, cancel_refund(SOCKS, 1, location_id=STORE)
        )
        assert status == 201, body
        (line,) = body["refund"]["refund_line_items"]
        assert (line["line_item_id"], line["quantity"], line["restock_type"]) == (
            SOCKS,
            1,
            "cancel",
        )
        shoes_fo, socks_fo = await fulfillment_orders(client)
        assert socks_fo["status"] == "closed"
        assert socks_fo["line_items"][0]["fulfillable_quantity"] == 0
        await call(client, "POST", f"{API}/fulfillments.json", fulfil(shoes_fo))
        order = (await call(client, "GET", f"{API}/orders/{ORDER_ID}.json"))[1]["order"]
        assert order["fulfillment_status"] == "fulfilled"
        assert [li["current_quantity"] for li in order["line_items"]] == [2, 0]
        listed = (await call(client, "GET", path))[1]
        assert len(listed["refunds"]) == 1

    run(scenario)


def test_refunds_are_checked_field_by_field() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        await place(client, make_order())
        path = f"{API}/orders/{ORDER_ID}/refunds.json"
        assert (await call(client, "POST", path, {}))[:2] == (400, {"errors": {"refund": MISSING}})
        refused = [
            cancel_refund(SOCKS, 1),  # location_id is required for cancel
            cancel_refund(SOCKS, 2, location_id=WAREHOUSE),  # only 1 ordered
            cancel_refund(SOCKS, 1, location_id=WAREHOUSE, restock_type="legacy_restock"),
            cancel_refund(12345, 1, location_id=WAREHOUSE),
            cancel_refund(SOCKS, 1, location_id=99),
        ]
        for body in refused:
            status, answer, _ = await call(client, "POST", path, body)
            assert status == 422 and isinstance(answer["errors"], dict), (body, answer)
        (fo,) = await fulfillment_orders(client)
        assert [li["fulfillable_quantity"] for li in fo["line_items"]] == [2, 1]

    run(scenario)


def test_armed_faults_answer_the_next_matching_calls_and_are_logged() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        await place(client, make_order())
        faults = [
            {"status": 503, "count": 2, "path_contains": "fulfillments"},
            {"status": 429, "path_contains": "cancel", "retry_after": 3},
        ]
        for fault in faults:
            assert (await client.post(f"{CONTROL}/faults", json=fault)).status == 201
        (fo,) = await fulfillment_orders(client)
        statuses = [
            (await call(client, "POST", f"{API}/fulfillments.json", fulfil(fo)))[0]
            for _ in range(3)
        ]
        assert statuses == [503, 503, 201]
        status, body, headers = await call(
            client, "POST", f"{API}/orders/{ORDER_ID}/cancel.json", {}
        )
        assert (status, body, headers["Retry-After"]) == (429, {"errors": THROTTLED}, "3.0")
        calls = (await (await client.get(f"{CONTROL}/calls")).json())["calls"]
        assert [c["status"] for c in calls] == [200, 503, 503, 201, 429]
        assert calls[1]["body"] == fulfil(fo)
        bad = await client.post(f"{CONTROL}/faults", json={"status": 200})
        assert bad.status == 400

    run(scenario)


def test_placing_an_order_posts_the_signed_orders_create_webhook() -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def receiver(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=200 if len(received) == 1 else 500)

    async def main() -> None:
        hooks = web.Application()
        hooks.router.add_post("/hooks", receiver)
        async with TestServer(hooks) as server:
            target = WebhookTarget(str(server.make_url("/hooks")), "whsec")
            shop = StandinShop(access_token=TOKEN, webhook=target, wall=wall)
            async with TestClient(TestServer(create_standin_app(shop=shop))) as client:
                answer = await (await client.post(f"{CONTROL}/orders", json=make_order())).json()
                assert answer == {
                    "order_id": ORDER_ID,
                    "webhook_status": 200,
                    "webhook_error": None,
                }
                cancel = await client.post(f"{CONTROL}/orders/{ORDER_ID}/cancel", json={})
                statuses = [h["webhook_status"] for h in (await cancel.json())["webhooks"]]
                assert statuses == [500, 500]

    asyncio.run(main())
    headers, body = received[0]
    digest = hmac.new(b"whsec", body, hashlib.sha256).digest()
    assert headers["X-Shopify-Hmac-Sha256"] == base64.b64encode(digest).decode()
    assert headers["X-Shopify-Topic"] == "orders/create"
    assert headers["X-Shopify-Shop-Domain"] == "standin-shop.myshopify.com"
    assert headers["X-Shopify-API-Version"] == "2025-01"
    assert headers["X-Shopify-Webhook-Id"] and headers["X-Shopify-Event-Id"]
    assert json.loads(body)["id"] == ORDER_ID
    assert [h["X-Shopify-Topic"] for h, _ in received[1:]] == ["orders/cancelled", "orders/updated"]


def test_the_control_api_refuses_what_is_not_an_order_and_resets() -> None:
    async def scenario(client: TestClient[Any, Any], shop: StandinShop, clock: Clock) -> None:
        response = await client.post(f"{CONTROL}/orders", json={"id": 1, "line_items": []})
        assert response.status == 400
        await place(client, make_order())
        view = await (await client.get(f"{CONTROL}/orders/{ORDER_ID}")).json()
        assert view["cancellation"] is None and len(view["fulfillment_orders"]) == 1
        assert (await client.post(f"{CONTROL}/reset")).status == 200
        assert (await client.get(f"{CONTROL}/orders/{ORDER_ID}")).status == 404
        assert (await (await client.get(f"{CONTROL}/calls")).json())["calls"] == []

    run(scenario)


def test_running_standin_serves_on_a_free_port() -> None:
    async def main() -> None:
        import aiohttp

        async with running_standin() as base, aiohttp.ClientSession() as session:
            assert base.startswith("http://127.0.0.1:")
            async with session.get(f"{base}{CONTROL}/calls") as response:
                assert response.status == 200

    asyncio.run(main())


def test_the_cli_wants_a_secret_for_the_webhook_url() -> None:
    args = ["--webhook-url", "http://127.0.0.1:9/hooks"]
    result = CliRunner().invoke(standin, args, env={"DOM_WEBHOOK_SECRET": ""})
    assert result.exit_code == 2
    assert "--webhook-url needs --webhook-secret (or DOM_WEBHOOK_SECRET)" in result.output

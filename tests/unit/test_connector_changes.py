"""The HTTP connector's change endpoints without a broker (a fake producer confirms): Shopify's
``orders/cancelled``, ``orders/edited`` and ``orders/updated``, and marketplace cancellations.
Signatures, field errors, repeats, a retry after a 503, two webhooks of one edit at once, and
the order memory across a restart and after its loss."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from aiohttp.test_utils import TestClient, TestServer

from config.settings import Settings
from connectors.producer import ContractProducer
from connectors.web import DOM_HMAC_HEADER, create_app, sign
from schemas.models import OrderAction, OrderCancelled, OrderPlaced
from tests.e2e.test_webhook import SECRET, FakeProducer, fixture_bytes, shopify_headers

ORDER = "WEB-5821539172601"
LINE_1 = "14523487592697"
CUT_ONE = f"shopify-cancel-lines-{ORDER}-{LINE_1}-to-1"


def fixture(name: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(fixture_bytes(name)))


def one_left() -> dict[str, Any]:
    """``orders/updated`` after the fixture edit: one unit of line 1 left."""
    return fixture("shopify_order_updated.json")


class Client:
    """Signed posts to the connector under test."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client

    async def shopify(
        self,
        topic: str,
        body: dict[str, Any] | bytes,
        webhook_id: str,
        secret: str = SECRET,
        *,
        one_address: bool = False,
    ) -> tuple[int, Any]:
        """``body`` as Shopify posts ``topic`` (``orders-edited``: ``orders/edited``), to the
        topic's endpoint or (``one_address``) to the one that takes every topic."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = shopify_headers(raw, webhook_id, secret)
        headers["X-Shopify-Topic"] = topic.replace("-", "/")
        path = "/webhooks/shopify" if one_address else f"/webhooks/shopify/{topic}"
        response = await self.client.post(path, data=raw, headers=headers)
        return response.status, await response.json()

    async def marketplace(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        raw = json.dumps(body).encode()
        headers = {DOM_HMAC_HEADER: sign(SECRET, raw)}
        response = await self.client.post(f"/marketplace/{path}", data=raw, headers=headers)
        return response.status, await response.json()

    async def stats(self) -> Any:
        return await (await self.client.get("/stats")).json()


def run(
    tmp_path: Path, producer: FakeProducer, scenario: Callable[[Client], Awaitable[None]]
) -> None:
    settings = Settings(data_dir=tmp_path / "var", webhook_secret=SECRET)
    app = create_app(settings, producer=cast(ContractProducer, producer), delivery_timeout=5.0)

    async def main() -> None:
        async with TestClient(TestServer(app)) as client:
            await scenario(Client(client))

    asyncio.run(main())


def actions(producer: FakeProducer) -> list[OrderAction]:
    return [r for r in producer.sent if isinstance(r, OrderAction)]


def test_an_edit_then_its_update_cancel_once(tmp_path: Path) -> None:
    producer = FakeProducer()

    async def scenario(client: Client) -> None:
        order = fixture("shopify_order_ship.json")
        assert (await client.shopify("orders-create", order, "wh-create"))[0] == 202
        status, body = await client.shopify(
            "orders-edited", fixture("shopify_order_edited.json"), "wh-e"
        )
        assert (status, body) == (
            202,
            {"accepted": True, "order_id": ORDER, "action_ids": [CUT_ONE]},
        )
        status, body = await client.shopify("orders-updated", one_left(), "wh-u")
        assert (status, body["duplicate"], body["order_id"]) == (200, True, ORDER)
        assert body["detail"] == "nothing the pipeline was not told"
        # Shopify re-sends both, with their webhook ids: duplicates
        again = await client.shopify("orders-edited", fixture("shopify_order_edited.json"), "wh-e")
        assert again == (200, {"duplicate": True, "order_id": ORDER})
        assert (await client.shopify("orders-updated", one_left(), "wh-u"))[0] == 200
        stats = await client.stats()
        assert stats["answers"] == {
            "shopify.accepted": 1,
            "shopify-edited.accepted": 1,
            "shopify-edited.duplicate": 1,
            "shopify-updated.duplicate": 1,
            "shopify-updated.unchanged": 1,
        }
        assert stats["orders_remembered"] == 1

    run(tmp_path, producer, scenario)
    [cut] = actions(producer)
    assert (cut.action_id, [(x.line_id, x.quantity) for x in cut.lines]) == (CUT_ONE, [(LINE_1, 1)])
    assert [type(r) for r in producer.sent] == [OrderPlaced, OrderAction]


def test_the_edit_and_its_update_at_once_ask_once(tmp_path: Path) -> None:
    producer = FakeProducer(held=True)

    async def scenario(client: Client) -> None:
        edit = asyncio.ensure_future(
            client.shopify("orders-edited", fixture("shopify_order_edited.json"), "wh-e")
        )
        update = asyncio.ensure_future(client.shopify("orders-updated", one_left(), "wh-u"))
        await asyncio.sleep(0.3)
        assert not edit.done() and not update.done()  # one delivers, the other waits its turn
        producer.held = False
        answers = sorted([(await edit)[0], (await update)[0]])
        assert answers == [200, 202]

    run(tmp_path, producer, scenario)
    assert [a.action_id for a in actions(producer)] == [CUT_ONE]


def test_a_503_is_retried_with_the_same_action_id(tmp_path: Path) -> None:
    producer = FakeProducer(error="Broker: Not enough in-sync replicas")

    async def scenario(client: Client) -> None:
        status, body = await client.shopify("orders-updated", one_left(), "wh-u")
        assert status == 503 and "in-sync" in body["detail"]
        producer.error = None  # the broker recovered; Shopify retries
        status, body = await client.shopify("orders-updated", one_left(), "wh-u")
        assert (status, body["action_ids"]) == (202, [CUT_ONE])
        edit = fixture("shopify_order_edited.json")
        assert (await client.shopify("orders-edited", edit, "wh-e"))[0] == 200

    run(tmp_path, producer, scenario)
    assert [a.action_id for a in actions(producer)] == [CUT_ONE, CUT_ONE]


def test_the_memory_outlives_the_connector_and_its_loss_resends_the_same_id(
    tmp_path: Path,
) -> None:
    producer = FakeProducer()

    async def edit(client: Client) -> None:
        status, body = await client.shopify(
            "orders-edited", fixture("shopify_order_edited.json"), "e"
        )
        assert (status, body["action_ids"]) == (202, [CUT_ONE])

    def update(expected: int) -> Callable[[Client], Awaitable[None]]:
        async def scenario(client: Client) -> None:
            assert (await client.shopify("orders-updated", one_left(), "wh-u"))[0] == expected

        return scenario

    run(tmp_path, producer, edit)
    run(tmp_path, producer, update(200))  # restarted: nothing new to ask
    for path in (tmp_path / "var" / "connectors").iterdir():
        path.unlink()  # the file is lost
    run(tmp_path, producer, update(202))  # the same id: the pipeline has it
    assert [a.action_id for a in actions(producer)] == [CUT_ONE, CUT_ONE]


def test_an_address_change_after_the_order_was_created(tmp_path: Path) -> None:
    producer = FakeProducer()

    async def scenario(client: Client) -> None:
        order = fixture("shopify_order_ship.json")
        assert (await client.shopify("orders-create", order, "wh-create"))[0] == 202
        same = order | {"updated_at": "2024-05-01T09:00:00-04:00"}
        assert (await client.shopify("orders-updated", same, "wh-u1"))[0] == 200
        address = order["shipping_address"] | {"address1": "200 Park Ave", "zip": "10166"}
        moved = same | {"shipping_address": address, "updated_at": "2024-05-01T09:30:00-04:00"}
        status, body = await client.shopify("orders-updated", moved, "wh-u2")
        assert status == 202 and body["action_ids"][0].startswith(f"shopify-ship-to-{ORDER}-")
        later = moved | {"updated_at": "2024-05-01T09:45:00-04:00"}
        assert (await client.shopify("orders-updated", later, "wh-u3"))[0] == 200

    run(tmp_path, producer, scenario)
    [change] = actions(producer)
    assert change.ship_to is not None and change.ship_to.line1 == "200 Park Ave"


def test_cancellations_of_either_channel(tmp_path: Path) -> None:
    producer = FakeProducer()

    async def scenario(client: Client) -> None:
        cancelled = fixture("shopify_order_cancelled.json")
        status, body = await client.shopify("orders-cancelled", cancelled, "wh-c")
        assert (status, body) == (
            202,
            {
                "accepted": True,
                "order_id": ORDER,
                "event_id": f"shopify-orders-cancelled-{ORDER[4:]}",
            },
        )
        assert (await client.shopify("orders-cancelled", cancelled, "wh-c"))[0] == 200
        doc = fixture("marketplace_cancellation.json")
        status, body = await client.marketplace("cancellations", doc)
        assert (status, body["order_id"]) == (202, "MKT-113-8734216-5509851")
        assert (await client.marketplace("cancellations", doc)) == (
            200,
            {"duplicate": True, "order_id": "MKT-113-8734216-5509851"},
        )

    run(tmp_path, producer, scenario)
    assert [type(r) for r in producer.sent] == [OrderCancelled, OrderCancelled]


def test_bad_signatures_and_bodies_produce_nothing(tmp_path: Path) -> None:
    producer = FakeProducer()

    async def scenario(client: Client) -> None:
        for topic, name in [
            ("orders-cancelled", "shopify_order_cancelled.json"),
            ("orders-edited", "shopify_order_edited.json"),
            ("orders-updated", "shopify_order_updated.json"),
        ]:
            forged = await client.shopify(topic, fixture(name), "wh-x", secret="not-the-secret")
            assert forged == (401, {"error": "invalid signature"})
            status, body = await client.shopify(topic, b"{oops", f"wh-{topic}")
            assert status == 422 and body["errors"][0]["field"] == "body"
        edit = fixture("shopify_order_edited.json")
        edit["order_edit"]["line_items"]["removals"][0]["delta"] = 0
        status, body = await client.shopify("orders-edited", edit, "wh-bad-edit")
        assert (status, [e["field"] for e in body["errors"]]) == (
            422,
            ["order_edit.line_items.removals.0.delta"],
        )
        update = one_left()
        del update["updated_at"]
        status, body = await client.shopify("orders-updated", update, "wh-bad-update")
        assert (status, [e["field"] for e in body["errors"]]) == (422, ["updated_at"])
        doc = fixture("marketplace_cancellation.json") | {"OrderStatus": "Shipped"}
        status, body = await client.marketplace("cancellations", doc)
        assert (status, [e["field"] for e in body["errors"]]) == (422, ["OrderStatus"])

    run(tmp_path, producer, scenario)
    assert producer.sent == []


def test_one_address_for_every_topic(tmp_path: Path) -> None:
    producer = FakeProducer()

    async def scenario(client: Client) -> None:
        order = fixture("shopify_order_ship.json")
        status, body = await client.shopify("orders-create", order, "w1", one_address=True)
        assert (status, body["order_id"]) == (202, ORDER)
        edit = fixture("shopify_order_edited.json")
        status, body = await client.shopify("orders-edited", edit, "w2", one_address=True)
        assert (status, body["action_ids"]) == (202, [CUT_ONE])
        status, body = await client.shopify("orders-updated", one_left(), "w3", one_address=True)
        assert status == 200
        paid = await client.shopify("orders-paid", order, "w4", one_address=True)
        assert paid == (200, {"ignored": True, "topic": "orders/paid"})
        forged = await client.shopify("orders-paid", order, "w5", "bad", one_address=True)
        assert forged[0] == 401
        # An orders/updated sent to the orders/create address is not an order placed again.
        raw = json.dumps(one_left()).encode()
        headers = shopify_headers(raw, "w6") | {"X-Shopify-Topic": "orders/updated"}
        response = await client.client.post(
            "/webhooks/shopify/orders-create", data=raw, headers=headers
        )
        assert response.status == 422
        [error] = (await response.json())["errors"]
        assert error["field"] == "X-Shopify-Topic"
        assert error["message"].startswith("is 'orders/updated': this endpoint takes orders/create")
        del headers["X-Shopify-Topic"]
        response = await client.client.post("/webhooks/shopify", data=raw, headers=headers)
        assert response.status == 422

    run(tmp_path, producer, scenario)
    assert [type(r) for r in producer.sent] == [OrderPlaced, OrderAction]

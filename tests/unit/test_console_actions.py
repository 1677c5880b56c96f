"""The console's order actions and work queues without Kafka: an operator's action is sent as
an ``OrderAction`` signed by who signed in and answered with the pipeline's verdict; a body
that cannot be an action is refused 422 with the field, a viewer 403, and nothing is sent;
the queues are the workers' own, asked with the checked parameters."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from config.settings import Settings
from dom.console.actions_api import SENDER
from dom.console.app import create_app
from dom.console.auth import Role
from dom.console.feed import FeedState
from dom.console.users import UserStore
from schemas.models import ActionResult, OrderAction, OrderStatus, OrderStatusChanged
from tests.unit.test_console_api import CHEAP_HASHER, PASSWORD, FakeStore, post, sign_in

Client = TestClient[Any, Any]


class FakeSender:
    """The actions topic and its answers in memory: every action is applied, or none answered."""

    def __init__(self, answer: bool = True) -> None:
        self.sent: list[OrderAction] = []
        self.answer = answer

    def __call__(self, action: OrderAction, timeout: float) -> OrderStatusChanged | None:
        self.sent.append(action)
        if not self.answer:
            return None
        return OrderStatusChanged(
            event_id=f"{action.order_id}:status:3",
            order_id=action.order_id,
            status=OrderStatus.ALLOCATED,
            reason="hold released; allocated",
            at=datetime.now(UTC),
            action_id=action.action_id,
            action_result=ActionResult.APPLIED,
        )


def queues_worker(asked: list[dict[str, str]]) -> web.Application:
    async def queues(request: web.Request) -> web.Response:
        asked.append(dict(request.query))
        held = [{"order_id": "ORD-1", "status": "ON_HOLD", "since": "2026-01-01T00:00:00Z"}]
        return web.json_response({"queues": {"held": held}, "workers": ["w1"], "unanswered": []})

    app = web.Application()
    app.router.add_get("/orders/", queues)
    return app


def run(
    scenario: Callable[[Client, FakeSender, list[dict[str, str]]], Awaitable[None]],
    user: str,
    sender: FakeSender | None = None,
) -> None:
    async def main(directory: Path) -> None:
        asked: list[dict[str, str]] = []
        worker = TestServer(queues_worker(asked))
        await worker.start_server()
        users = UserStore(directory / "users.sqlite", hasher=CHEAP_HASHER)
        users.add("olga", Role.OPERATOR, PASSWORD)
        users.add("vera", Role.VIEWER, PASSWORD)
        app = create_app(
            Settings(console_cookie_secure=False),
            [str(worker.make_url("")).rstrip("/")],
            store=FakeStore(),
            feed=FeedState(),
            follow_topics=False,
            users=users,
        )
        fake = sender or FakeSender()
        app[SENDER] = fake
        async with TestClient(TestServer(app)) as client:
            await sign_in(client, user)
            await scenario(client, fake, asked)
        await worker.close()
        users.close()

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(main(Path(directory)))


ACTIONS = "/api/orders/ORD-1/actions"


def test_an_operator_releases_a_hold_signed_by_who_signed_in() -> None:
    async def scenario(client: Client, sender: FakeSender, asked: Any) -> None:
        body = {"kind": "RELEASE_HOLD", "reason": "approved", "requested_by": "mallory"}
        status, answer = await post(client, ACTIONS, body)
        assert status == 200, answer
        [sent] = sender.sent
        assert (sent.order_id, sent.kind, sent.reason) == ("ORD-1", "RELEASE_HOLD", "approved")
        assert sent.requested_by == "olga"  # never the name in the body
        assert answer == {
            "action_id": sent.action_id,
            "result": "APPLIED",
            "reason": "hold released; allocated",
            "status": "ALLOCATED",
        }

    run(scenario, "olga")


def test_an_action_nobody_answers_in_time_is_accepted_with_its_id() -> None:
    async def scenario(client: Client, sender: FakeSender, asked: Any) -> None:
        status, answer = await post(client, ACTIONS, {"kind": "PLACE_HOLD", "reason": "fraud?"})
        assert (status, answer) == (202, {"action_id": sender.sent[0].action_id, "result": None})

    run(scenario, "olga", FakeSender(answer=False))


def test_a_body_that_is_no_action_is_refused_422_with_the_field() -> None:
    async def scenario(client: Client, sender: FakeSender, asked: Any) -> None:
        refused = {
            "kind": {"kind": "DELETE_ORDER", "reason": "x"},
            "reason": {"kind": "RELEASE_HOLD", "reason": "   "},
            "shipment_id": {"kind": "MOVE_SHIPMENT", "reason": "DC closed"},
            "lines": {"kind": "CANCEL_LINES", "reason": "asked", "lines": []},
            "quantity": {"kind": "CANCEL_LINES", "reason": "asked",
                         "lines": [{"line_id": "L1", "quantity": 0}]},
            "hold_id": {"kind": "RELEASE_HOLD", "reason": "ok", "hold_id": "../H-1"},
        }  # fmt: skip
        for field, body in refused.items():
            status, answer = await post(client, ACTIONS, body)
            assert (status, answer["errors"][0]["field"]) == (422, field), answer
        _, answer = await post(client, ACTIONS, refused["kind"])
        assert "kind must be one of CANCEL_LINES, MOVE_SHIPMENT" in answer["error"]
        _, answer = await post(client, ACTIONS, refused["shipment_id"])
        assert answer["error"] == "say which shipment to move (shipment_id)"
        assert sender.sent == []

    run(scenario, "olga")


def test_a_viewer_may_not_act_on_orders() -> None:
    async def scenario(client: Client, sender: FakeSender, asked: Any) -> None:
        status, answer = await post(client, ACTIONS, {"kind": "RELEASE_HOLD", "reason": "ok"})
        assert status == 403
        assert answer["error"] == "vera is a viewer and may not act on orders"
        assert sender.sent == []

    run(scenario, "vera")


def test_the_queues_come_from_a_worker_asked_with_checked_parameters() -> None:
    async def scenario(client: Client, sender: FakeSender, asked: Any) -> None:
        response = await client.get("/api/queues?queue=held&limit=20")
        body = await response.json()
        assert response.status == 200, body
        assert body["queues"]["held"][0]["order_id"] == "ORD-1"
        assert asked == [{"queue": "held", "limit": "20"}]
        response = await client.get("/api/queues?queue=lost")
        assert response.status == 400
        assert "queue must be one of held, backordered" in (await response.json())["error"]
        response = await client.get("/api/queues?limit=0")
        assert response.status == 400 and len(asked) == 1

    run(scenario, "vera")

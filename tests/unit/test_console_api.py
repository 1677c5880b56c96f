"""The console's API without Kafka: input checked on the server with clear messages, rules
published only when valid and signed by the signed-in user, roll back as a new version, reads
passed through from the workers' endpoints, and nothing but the rules API accepts a write.

Every scenario runs signed in (``run(..., user=...)``); sign-in itself is tested in
``test_console_auth.py``."""

from __future__ import annotations

import asyncio
import tempfile
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from config.settings import Settings
from dom.console.app import create_app
from dom.console.auth import Role
from dom.console.feed import FeedState
from dom.console.rule_store import RuleVersion
from dom.console.users import UserStore
from schemas.enums import ChannelCallState
from schemas.models import Rule
from tests.unit.factories import (
    make_availability,
    make_channel_call,
    make_fulfillment_command,
    make_location,
    make_order,
    make_status_changed,
)

GOOD = {
    "rule_id": "protect-big",
    "stage": "PACKAGING",
    "priority": 10,
    "condition": "order.total >= 500",
    "actions": [{"type": "set_packaging", "params": {"type": "PROTECTIVE"}}],
    "description": "big orders ship padded",
}
METRICS = """\
# TYPE dom_stage_events_in counter
dom_stage_events_in_total{stage="orders"} 40.0
dom_stage_events_in_total{stage="inventory"} 60.0
# TYPE dom_order_outcomes counter
dom_order_outcomes_total{status="ALLOCATED",channel="WEB"} 7.0
dom_order_outcomes_total{status="ON_HOLD",channel="POS"} 2.0
# TYPE dom_dead_letters counter
dom_dead_letters_total{stage="orders",kind="decode"} 3.0
# TYPE dom_consumer_lag gauge
dom_consumer_lag{topic="dom.orders.v1",partition="0"} 5.0
# TYPE dom_rules_in_force gauge
dom_rules_in_force 4.0
"""


class FakeStore:
    """The rules topic in memory."""

    def __init__(self) -> None:
        self.records: list[RuleVersion] = []
        self.dry_runs: list[tuple[Rule, int]] = []

    def versions(self) -> list[RuleVersion]:
        return list(self.records)

    def publish(self, rule: Rule) -> None:
        self.records.append(RuleVersion(rule.rule_id, rule))

    def dry_run(self, rule: Rule, last: int) -> dict[str, Any]:
        self.dry_runs.append((rule, last))
        return {"orders": last, "changed_orders": 0, "changes": [], "summary": "ok"}


def fake_worker() -> web.Application:
    async def inventory(request: web.Request) -> web.Response:
        if request.match_info["sku"] != "SKU-1":
            return web.json_response({"error": "no"}, status=404)
        record = make_availability("SKU-1")
        return web.json_response(record.model_dump(mode="json"))

    async def order(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "order_id": request.match_info["order_id"],
                "channel": "WEB",
                "status": "ALLOCATED",
                "explanation": "DC-EAST ships all; 2 candidates; excluded ST-1: no stock",
                "rules_fired": [],
                "shipments": [],
                "backordered": [],
                "history": [],
            }
        )

    async def rules(request: web.Request) -> web.Response:
        return web.json_response({"rules": [], "refused": []})

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=METRICS)

    app = web.Application()
    app.router.add_get("/inventory/{sku}/", inventory)
    app.router.add_get("/orders/{order_id}/", order)
    app.router.add_get("/rules/", rules)
    app.router.add_get("/metrics", metrics)
    return app


Scenario = Callable[[TestClient[Any, Any], FakeStore, FeedState], Awaitable[None]]
PASSWORD = "a long enough password"
USERS = {"anna": Role.RULE_EDITOR, "bo": Role.RULE_EDITOR, "vera": Role.VIEWER, "ada": Role.ADMIN}
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)  # still Argon2id
CSRF_TOKENS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def users_in(directory: Path) -> UserStore:
    users = UserStore(directory / "users.sqlite", hasher=CHEAP_HASHER)
    for name, role in USERS.items():
        users.add(name, role, PASSWORD)
    return users


def run(scenario: Scenario, user: str | None = "anna", settings: Settings | None = None) -> None:
    """``scenario`` against a console over a fake worker, signed in as ``user`` (or not)."""

    async def main(directory: Path) -> None:
        worker = TestServer(fake_worker())
        await worker.start_server()
        store, feed = FakeStore(), FeedState()
        app = create_app(
            # Secure cookies are not sent back by aiohttp's client over http: the browser test
            # shows Chromium's behaviour with the default.
            settings or Settings(console_cookie_secure=False),
            [str(worker.make_url("")).rstrip("/"), "http://127.0.0.1:9"],  # one is down
            store=store,
            feed=feed,
            follow_topics=False,
            users=users_in(directory),
        )
        async with TestClient(TestServer(app)) as client:
            if user is not None:
                await sign_in(client, user)
            await scenario(client, store, feed)
        await worker.close()

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(main(Path(directory)))


async def sign_in(client: TestClient[Any, Any], user: str, password: str = PASSWORD) -> Any:
    """Sign in as ``user``; later ``post`` calls carry the session's CSRF token."""
    response = await client.post("/api/login", json={"user": user, "password": password})
    body = await response.json()
    assert response.status == 200, body
    CSRF_TOKENS[client] = body["csrf_token"]
    return body


async def post(client: TestClient[Any, Any], path: str, body: Any) -> tuple[int, Any]:
    headers = {"X-CSRF-Token": CSRF_TOKENS[client]} if client in CSRF_TOKENS else {}
    response = await client.post(path, json=body, headers=headers)
    return response.status, await response.json()


def test_validate_says_what_is_wrong_with_a_condition_as_the_operator_types() -> None:
    async def scenario(client: TestClient[Any, Any], store: FakeStore, feed: FeedState) -> None:
        status, body = await post(client, "/api/rules/validate", GOOD)
        assert (status, body["ok"]) == (200, True)
        status, body = await post(
            client, "/api/rules/validate", {**GOOD, "condition": "order.totl > 5"}
        )
        assert status == 200 and body["ok"] is False
        assert "order.totl" in body["error"] and "did you mean order.total" in body["error"]
        assert body["errors"][0]["field"] == "condition"
        _, body = await post(client, "/api/rules/validate", {**GOOD, "condition": "order.total >"})
        assert "syntax error" in body["error"]
        _, body = await post(
            client, "/api/rules/validate", {**GOOD, "actions": [{"type": "hold", "params": {}}]}
        )
        assert body["errors"][0]["field"] == "actions" and "ROUTING" in body["error"]
        _, body = await post(client, "/api/rules/validate", {**GOOD, "rule_id": "../etc"})
        assert body["errors"][0]["field"] == "rule_id"
        assert store.records == []

    run(scenario)


def test_publish_needs_a_valid_rule_and_records_who_signed_in() -> None:
    async def scenario(client: TestClient[Any, Any], store: FakeStore, feed: FeedState) -> None:
        status, body = await post(
            client, "/api/rules/publish", {**GOOD, "condition": 'order.total > "abc"'}
        )
        assert status == 422 and body["errors"][0]["field"] == "condition", body
        assert store.records == []

        # a name typed in the body is ignored: the signed-in user (anna) is recorded
        status, body = await post(client, "/api/rules/publish", {**GOOD, "updated_by": "mallory"})
        assert (status, body["version"], body["published"], body["updated_by"]) == (
            200, 1, True, "anna"
        )  # fmt: skip
        await sign_in(client, "bo")
        status, body = await post(client, "/api/rules/publish", GOOD)
        assert (status, body["published"]) == (200, False)  # unchanged: no new version
        _, body = await post(
            client, "/api/rules/publish", {**GOOD, "condition": "order.total >= 9"}
        )
        assert body["version"] == 2
        published = [v.rule for v in store.records if v.rule is not None]
        assert [(r.version, r.updated_by) for r in published] == [(1, "anna"), (2, "bo")]

        # roll back: version 1's content as version 3, by whoever rolled it back
        await sign_in(client, "anna")
        status, body = await post(
            client, "/api/rules/protect-big/rollback", {"version": 1, "updated_by": "mallory"}
        )
        assert (status, body["version"]) == (200, 3), body
        restored = store.records[-1].rule
        assert restored is not None and restored.condition == "order.total >= 500"
        assert restored.updated_by == "anna"
        status, _ = await post(client, "/api/rules/protect-big/rollback", {"version": 9})
        assert status == 404

        response = await client.get("/api/rules/protect-big/history")
        history = await response.json()
        assert [v["version"] for v in history["versions"]] == [3, 2, 1]

    run(scenario)


def test_dry_run_takes_a_bounded_number_of_orders() -> None:
    async def scenario(client: TestClient[Any, Any], store: FakeStore, feed: FeedState) -> None:
        status, body = await post(client, "/api/rules/dry-run", {**GOOD, "last": 50})
        assert status == 200 and body["orders"] == 50
        status, body = await post(client, "/api/rules/dry-run", {**GOOD, "last": 10**9})
        assert status == 422 and body["errors"][0]["field"] == "last"
        status, body = await post(client, "/api/rules/dry-run", {**GOOD, "condition": ""})
        assert status == 422 and "condition is empty" in body["error"]
        assert len(store.dry_runs) == 1

    run(scenario)


def test_requests_are_checked_before_anything_is_asked() -> None:
    async def scenario(client: TestClient[Any, Any], store: FakeStore, feed: FeedState) -> None:
        for path in (
            "/api/inventory/..%2F..%2Fmetrics",
            "/api/orders/a%20b",
            "/api/skus?prefix=%3C",
        ):
            response = await client.get(path)
            assert response.status == 400, path
            assert "letters, digits" in (await response.json())["error"]
        response = await client.get("/api/outcomes?channel=TELEPATHY")
        assert response.status == 400 and "WEB" in (await response.json())["error"]
        response = await client.get("/api/low-stock?threshold=abc")
        assert response.status == 400

        csrf = {"X-CSRF-Token": CSRF_TOKENS[client]}
        response = await client.post("/api/rules/publish", data="rule_id=x", headers=csrf)
        assert response.status == 415
        response = await client.post(
            "/api/rules/publish", json=GOOD, headers={"Origin": "http://evil.example", **csrf}
        )
        assert response.status == 403
        response = await client.post(
            "/api/rules/validate", data=b"{" + b" " * 100_000 + b"}",
            headers={"Content-Type": "application/json", **csrf},
        )  # fmt: skip
        assert response.status == 413
        response = await client.post(
            "/api/rules/validate", data=b"not json",
            headers={"Content-Type": "application/json", **csrf},
        )  # fmt: skip
        assert response.status == 400 and "not valid JSON" in (await response.json())["error"]
        # the rules API is the only thing that takes a write
        for path in ("/api/inventory/SKU-1", "/api/orders/O-1", "/api/health", "/api/rules"):
            assert (await post(client, path, {}))[0] == 405, path
        assert store.records == []

    run(scenario)


def test_reads_come_from_the_workers_and_the_feed() -> None:
    async def scenario(client: TestClient[Any, Any], store: FakeStore, feed: FeedState) -> None:
        feed.add(make_location("DC-EAST"))
        feed.add(make_order("O-1"))
        feed.add(make_status_changed("O-1"))
        feed.add(make_fulfillment_command(order_id="O-1"))
        feed.add(make_availability("SKU-LOW", total_available=0, locations=()))
        told = make_channel_call("O-1", state=ChannelCallState.RETRYING, detail="503")
        feed.add(told)
        feed.add(told.model_copy(update={"state": ChannelCallState.DONE, "detail": "made"}))

        response = await client.get("/api/inventory/SKU-1")
        body = await response.json()
        assert response.status == 200 and body["source"] == "worker"
        row = body["locations"][0]
        assert row["location_id"] == "DC-EAST" and row["kind"] == "DC" and "lat" in row
        assert (await client.get("/api/inventory/SKU-NONE")).status == 404

        body = await (await client.get("/api/orders/O-1")).json()
        assert body["explanation_parts"][0] == "DC-EAST ships all"
        assert body["commands"] and body["commands"][0]["kind"] == "fulfillment"
        [call] = body["channel_calls"]  # the latest state of the one call
        assert (call["channel"], call["kind"], call["state"], call["detail"]) == (
            "shopify",
            "FULFIL",
            "DONE",
            "made",
        )
        assert call["tracking_number"] == "1Z999"

        body = await (await client.get("/api/outcomes?channel=web")).json()
        assert [o["order_id"] for o in body["outcomes"]] == ["O-1"]
        body = await (await client.get("/api/outcomes?channel=POS")).json()
        assert body["outcomes"] == []
        body = await (await client.get("/api/low-stock?threshold=0")).json()
        assert [s["sku"] for s in body["skus"]] == ["SKU-LOW"]

        body = await (await client.get("/api/health")).json()
        up, down = body["workers"]
        assert up["up"] and not down["up"]
        assert body["total"]["events_in"] == 100 and body["total"]["dead_letters"] == 3
        assert body["total"]["outcomes"] == {"ALLOCATED": 7, "ON_HOLD": 2}
        assert body["total"]["lag"] == 5 and body["total"]["rules_in_force"] == 4

        index = await client.get("/")
        assert (
            index.status == 200 and "script-src 'self'" in index.headers["Content-Security-Policy"]
        )
        assert "<title>DOM console</title>" in await index.text()

    run(scenario)


def test_json_nested_too_deeply_is_refused_with_a_reason() -> None:
    async def scenario(client: TestClient[Any, Any], store: FakeStore, feed: FeedState) -> None:
        deep = "[" * 30_000 + "]" * 30_000
        for path in ("/api/rules/validate", "/api/rules/publish"):
            response = await client.post(
                path,
                data=deep,
                headers={"Content-Type": "application/json", "X-CSRF-Token": CSRF_TOKENS[client]},
            )
            body = await response.json()
            assert response.status == 400, (path, body)
            assert body["errors"][0]["message"] == "the request body is nested too deeply"
        assert store.records == []

    run(scenario)

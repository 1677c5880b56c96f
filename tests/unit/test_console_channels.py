"""The console's channel policies without Kafka: every channel listed with the policy in force
(or none), a rule editor's form produced as a ``ChannelPolicy`` keyed by its channel and signed
by who signed in, a reset produced as a tombstone; a form that cannot be a policy refused 422
naming the field, an unknown channel 404, a role that may not edit 403, nobody signed in 401,
a write without its CSRF token or from another site 403, and in each refusal nothing sent."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from aiohttp.test_utils import TestClient, TestServer

from config.settings import Settings
from dom.console import channels_api
from dom.console.app import create_app
from dom.console.auth import Role
from dom.console.feed import FeedState
from schemas.enums import Channel, LocationKind
from schemas.sellable import ChannelPolicy
from tests.unit.test_console_api import CSRF_TOKENS, PASSWORD, FakeStore, sign_in, users_in

Client = TestClient[Any, Any]
MARKETPLACE = "/api/channels/MARKETPLACE"
FORM = {
    "location_ids": ["DC-EAST", " ST-9 ", "DC-EAST", ""],
    "location_kinds": ["DC"],
    "buffer_units": 2,
    "buffer_pct": 10,
    "low_stock_threshold": 3,
}


class FakeTopic:
    """``dom.channels.v1`` in memory: what was produced, in order (None: a tombstone), folded
    as ``live_policies`` folds the topic."""

    def __init__(self, *, down: bool = False) -> None:
        self.sent: list[tuple[Channel, ChannelPolicy | None]] = []
        self.down = down

    def read(self) -> dict[str, ChannelPolicy]:
        if self.down:
            raise RuntimeError("topic dom.channels.v1: unknown; run `dom topics create`")
        live: dict[str, ChannelPolicy] = {}
        for channel, policy in self.sent:
            if policy is None:
                live.pop(channel.value, None)
            else:
                live[channel.value] = policy
        return live

    def write(self, channel: Channel, policy: ChannelPolicy | None) -> None:
        if self.down:
            raise click.ClickException("not published: ['Local: Message timed out']")
        self.sent.append((channel, policy))


def run(
    scenario: Callable[[Client, FakeTopic], Awaitable[None]],
    user: str | None,
    topic: FakeTopic | None = None,
) -> None:
    async def main(directory: Path) -> None:
        users = users_in(directory)
        users.add("olga", Role.OPERATOR, PASSWORD)
        app = create_app(
            Settings(console_cookie_secure=False),
            ["http://127.0.0.1:9"],
            store=FakeStore(),
            feed=FeedState(),
            follow_topics=False,
            users=users,
        )
        fake = topic or FakeTopic()
        app[channels_api.READER] = fake.read
        app[channels_api.WRITER] = fake.write
        async with TestClient(TestServer(app)) as client:
            if user is not None:
                await sign_in(client, user)
            await scenario(client, fake)
        users.close()

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(main(Path(directory)))


async def send(
    client: Client, method: str, path: str, body: Any = None, **headers: str
) -> tuple[int, Any]:
    """A write as the page sends it: JSON, with the session's CSRF token."""
    token = {"X-CSRF-Token": CSRF_TOKENS[client]} if client in CSRF_TOKENS else {}
    response = await client.request(
        method, path, json={} if body is None else body, headers={**token, **headers}
    )
    return response.status, await response.json()


async def listed(client: Client) -> dict[str, Any]:
    response = await client.get("/api/channels")
    body = await response.json()
    assert response.status == 200, body
    return {entry["channel"]: entry for entry in body["channels"]}


def test_every_channel_is_listed_with_its_policy_or_none() -> None:
    async def scenario(client: Client, topic: FakeTopic) -> None:
        topic.sent.append(
            (
                Channel.MARKETPLACE,
                ChannelPolicy(
                    channel=Channel.MARKETPLACE,
                    location_kinds=(LocationKind.DC,),
                    buffer_units=2,
                    updated_by="ops",
                    updated_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
                ),
            )
        )
        channels = await listed(client)
        assert list(channels) == [c.value for c in Channel]
        assert channels["WEB"] == {
            "channel": "WEB",
            "policy": None,
            "summary": "every location; no buffer",
        }
        assert channels["MARKETPLACE"]["policy"] == {
            "channel": "MARKETPLACE",
            "location_ids": [],
            "location_kinds": ["DC"],
            "buffer_units": 2,
            "buffer_pct": 0,
            "low_stock_threshold": 0,
            "updated_by": "ops",
            "updated_at": "2026-01-02T03:04:00Z",
        }
        assert channels["MARKETPLACE"]["summary"] == "DC; buffer 2 units"

    run(scenario, "vera")  # reading needs nothing more than being signed in


def test_a_rule_editor_sets_a_policy_signed_by_who_signed_in() -> None:
    async def scenario(client: Client, topic: FakeTopic) -> None:
        before = datetime.now(UTC)
        status, body = await send(client, "PUT", "/api/channels/marketplace", {
            **FORM, "updated_by": "mallory", "channel": "WEB"
        })  # fmt: skip
        assert status == 200, body
        [(channel, policy)] = topic.sent
        assert channel is Channel.MARKETPLACE and policy is not None
        assert policy.channel is Channel.MARKETPLACE  # the path's, never the body's
        assert policy.location_ids == ("DC-EAST", "ST-9")
        assert policy.location_kinds == (LocationKind.DC,)
        assert (policy.buffer_units, policy.buffer_pct, policy.low_stock_threshold) == (2, 10, 3)
        assert policy.updated_by == "anna"  # never the name in the body
        assert before.replace(microsecond=0) <= policy.updated_at <= datetime.now(UTC)
        assert body["policy"] == policy.model_dump(mode="json")
        assert body["summary"] == "DC, DC-EAST, ST-9; buffer 2 units + 10%; 0 below 3"
        assert "set MARKETPLACE by anna" in body["message"]
        assert (await listed(client))["MARKETPLACE"]["policy"]["updated_by"] == "anna"

        # the form is the whole policy: what it leaves out is empty
        status, body = await send(client, "PUT", MARKETPLACE, {"location_kinds": ["store"]})
        assert status == 200, body
        assert body["policy"]["location_ids"] == [] and body["policy"]["buffer_units"] == 0
        assert body["summary"] == "STORE; no buffer"

        status, body = await send(client, "DELETE", MARKETPLACE)
        assert (status, body["policy"], body["summary"]) == (200, None, "every location; no buffer")
        assert topic.sent[-1] == (Channel.MARKETPLACE, None)  # a tombstone, as `dom channels reset`
        assert (await listed(client))["MARKETPLACE"]["policy"] is None

    run(scenario, "anna")


def test_a_form_that_cannot_be_a_policy_is_refused_422_naming_the_field() -> None:
    async def scenario(client: Client, topic: FakeTopic) -> None:
        refused = {
            "location_ids": [{"location_ids": "DC-1,DC-2"}, {"location_ids": ["../x"]},
                             {"location_ids": [7]}, {"location_ids": ["L"] * 1001}],
            "location_kinds": [{"location_kinds": ["WAREHOUSE"]}, {"location_kinds": "DC"}],
            "buffer_units": [{"buffer_units": -1}, {"buffer_units": 2.5}, {"buffer_units": "2"},
                             {"buffer_units": True}, {"buffer_units": 2**31}],
            "buffer_pct": [{"buffer_pct": 101}, {"buffer_pct": -5}],
            "low_stock_threshold": [{"low_stock_threshold": "lots"}],
        }  # fmt: skip
        for field, bodies in refused.items():
            for form in bodies:
                status, body = await send(client, "PUT", MARKETPLACE, {**FORM, **form})
                assert (status, body["errors"][0]["field"]) == (422, field), (form, body)
                assert field in body["error"] or "location id" in body["error"], body
        # every field wrong at once: each is named
        status, body = await send(client, "PUT", MARKETPLACE, {
            "location_kinds": ["X"], "buffer_pct": 200, "low_stock_threshold": -1
        })  # fmt: skip
        assert status == 422
        assert [e["field"] for e in body["errors"]] == [
            "location_kinds", "buffer_pct", "low_stock_threshold"
        ]  # fmt: skip
        assert body["errors"][1]["message"] == "buffer_pct must be between 0 and 100"
        status, body = await send(client, "PUT", MARKETPLACE, ["not", "an", "object"])
        assert (status, body["errors"][0]["field"]) == (400, "body")
        assert topic.sent == []

    run(scenario, "anna")


def test_an_unknown_channel_is_a_404() -> None:
    async def scenario(client: Client, topic: FakeTopic) -> None:
        for method in ("PUT", "DELETE"):
            status, body = await send(client, method, "/api/channels/TELEPATHY", FORM)
            assert status == 404, body
            assert body["error"].startswith("no channel 'TELEPATHY'; the channels are WEB")
        assert (await client.get("/api/channels/WEB")).status == 405
        assert topic.sent == []

    run(scenario, "anna")


def test_only_a_rule_editor_or_above_may_change_a_policy() -> None:
    async def scenario(client: Client, topic: FakeTopic) -> None:
        for method in ("PUT", "DELETE"):
            status, body = await send(client, method, MARKETPLACE, FORM)
            assert status == 403, body
            assert body["error"].endswith("or roll back rules or change channel policies")
        assert len(await listed(client)) == len(Channel)  # but sees them
        assert topic.sent == []

    for user in ("vera", "olga"):  # a viewer, an operator
        run(scenario, user)

    async def admin(client: Client, topic: FakeTopic) -> None:
        assert (await send(client, "PUT", MARKETPLACE, FORM))[0] == 200

    run(admin, "ada")


def test_signed_out_nothing_is_read_or_changed() -> None:
    async def scenario(client: Client, topic: FakeTopic) -> None:
        response = await client.get("/api/channels")
        assert (response.status, (await response.json())["error"]) == (401, "sign in first")
        for method in ("PUT", "DELETE"):
            status, body = await send(client, method, MARKETPLACE, FORM)
            assert (status, body["error"]) == (401, "sign in first")
        assert topic.sent == []

    run(scenario, None)


def test_a_write_needs_its_token_json_and_the_console_origin() -> None:
    async def scenario(client: Client, topic: FakeTopic) -> None:
        response = await client.put(MARKETPLACE, json=FORM)  # no X-CSRF-Token
        assert response.status == 403
        assert "X-CSRF-Token" in (await response.json())["error"]
        status, _ = await send(client, "PUT", MARKETPLACE, FORM, Origin="http://evil.example")
        assert status == 403
        token = {"X-CSRF-Token": CSRF_TOKENS[client]}
        response = await client.delete(MARKETPLACE, headers=token)  # not JSON: as a form could
        assert response.status == 415
        assert topic.sent == []

    run(scenario, "anna")


def test_a_broker_that_does_not_answer_is_a_503_with_the_reason() -> None:
    async def scenario(client: Client, topic: FakeTopic) -> None:
        response = await client.get("/api/channels")
        body = await response.json()
        assert response.status == 503 and "run `dom topics create`" in body["error"]
        status, body = await send(client, "PUT", MARKETPLACE, FORM)
        assert (status, body["error"]) == (503, "not published: ['Local: Message timed out']")

    run(scenario, "anna", FakeTopic(down=True))

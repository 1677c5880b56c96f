"""Signing in to the console: passwords kept as salted Argon2id hashes, sessions that expire and
end when a user is disabled, failed sign-ins limited per user and per address, roles that decide
who may publish, a host allow-list against DNS rebinding, a CSRF token on every write, and a
single sign-on proxy header honoured only when it is configured."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, get_args

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from config.settings import ConsoleRole, Settings
from dom.console.app import create_app
from dom.console.auth import (
    GRANTS,
    LoginLimiter,
    Permission,
    Role,
    Sessions,
    TrustedProxy,
    allowed_hosts,
    csrf_ok,
    host_allowed,
    is_loopback_host,
)
from dom.console.feed import FeedState
from dom.console.login_api import AUTH
from dom.console.users import UserError, UserStore
from tests.unit.test_console_api import GOOD, PASSWORD, FakeStore, fake_worker, users_in

Scenario = Callable[[TestClient[Any, Any], web.Application, FakeStore], Awaitable[None]]


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def serve(scenario: Scenario, settings: Settings | None = None) -> None:
    """A console over a fake worker with users anna and bo (rule editors) and vera (viewer)."""

    async def main(directory: Path) -> None:
        worker = TestServer(fake_worker())
        await worker.start_server()
        store = FakeStore()
        app = create_app(
            settings or Settings(console_cookie_secure=False),
            [str(worker.make_url("")).rstrip("/")],
            store=store,
            feed=FeedState(),
            follow_topics=False,
            users=users_in(directory),
        )
        async with TestClient(TestServer(app)) as client:
            await scenario(client, app, store)
        await worker.close()

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(main(Path(directory)))


async def sign_in(
    client: TestClient[Any, Any], user: str, password: str = PASSWORD, **headers: str
) -> tuple[int, dict[str, Any], Any]:
    response = await client.post(
        "/api/login", json={"user": user, "password": password}, headers=headers
    )
    return response.status, await response.json(), response


async def publish(client: TestClient[Any, Any], csrf: str | None, **headers: str) -> int:
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    response = await client.post("/api/rules/publish", json=GOOD, headers=headers)
    return response.status


# ---- the logic, without HTTP ---------------------------------------------------------------


def test_roles_are_cumulative_and_only_rule_editors_and_admins_publish() -> None:
    assert set(get_args(ConsoleRole)) == {role.value for role in Role}  # settings know them
    assert GRANTS[Role.VIEWER] == {Permission.VIEW}
    operator = {Permission.VIEW, Permission.ACT_ON_ORDERS, Permission.SAVE_REPORTS}
    assert GRANTS[Role.OPERATOR] == operator
    assert Permission.EDIT_RULES not in GRANTS[Role.OPERATOR]
    assert GRANTS[Role.RULE_EDITOR] == GRANTS[Role.OPERATOR] | {Permission.EDIT_RULES}
    assert Permission.MANAGE_USERS not in GRANTS[Role.RULE_EDITOR]
    assert GRANTS[Role.ADMIN] == set(Permission)


def test_passwords_are_kept_as_salted_argon2id_hashes(tmp_path: Path) -> None:
    path = tmp_path / "users.sqlite"
    users = UserStore(path)  # the library's default (slow) parameters
    users.add("anna", Role.RULE_EDITOR, "the same long password")
    users.add("bo", Role.VIEWER, "the same long password")
    hashes = [row[0] for row in sqlite3.connect(path).execute("SELECT password_hash FROM users")]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert hashes[0] != hashes[1]  # salted: one password, two hashes
    assert b"the same long password" not in path.read_bytes()
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only

    assert users.check_password("anna", "the same long password") is not None
    assert users.check_password("anna", "the same long passworD") is None
    assert users.check_password("nobody", "the same long password") is None
    users.set_disabled("anna", True)
    assert users.check_password("anna", "the same long password") is None
    with pytest.raises(UserError, match="at least 12"):
        users.add("cy", Role.VIEWER, "short")
    with pytest.raises(UserError, match="exists already"):
        users.add("BO", Role.VIEWER, "another long password")  # names ignore case
    with pytest.raises(UserError, match="not a user name"):
        users.add("<script>", Role.VIEWER, "another long password")


def test_sessions_expire_after_their_time_to_live() -> None:
    clock = Clock()
    sessions = Sessions(ttl=60.0, clock=clock)
    token, session = sessions.open("anna", generation=1)
    assert sessions.find(token) is session and session.csrf != token
    clock.now += 59.9
    assert sessions.find(token) is session
    clock.now += 0.1
    assert sessions.find(token) is None and len(sessions) == 0
    token, _ = sessions.open("anna", generation=1)
    sessions.close(token)
    assert sessions.find(token) is None
    assert sessions.find("a guessed token") is None and sessions.find(None) is None


def test_failed_sign_ins_are_limited_per_user_and_per_address() -> None:
    clock = Clock()
    limiter = LoginLimiter(per_user=3, per_address=5, window=60.0, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("anna", "10.0.0.1") == 0
        limiter.failed("anna", "10.0.0.1")
    assert limiter.retry_after("anna", "10.0.0.1") == 60
    assert limiter.retry_after("ANNA", "10.9.9.9") == 60  # the user, from anywhere
    assert limiter.retry_after("bo", "10.0.0.1") == 0
    clock.now += 45
    assert limiter.retry_after("anna", "10.0.0.2") == 15
    clock.now += 15
    assert limiter.retry_after("anna", "10.0.0.2") == 0  # the window moved on

    for name in ("u1", "u2", "u3", "u4", "u5"):  # many names from one address
        limiter.failed(name, "10.0.0.7")
    assert limiter.retry_after("u6", "10.0.0.7") == 60
    assert limiter.retry_after("u6", "10.0.0.8") == 0

    limiter.failed("cy", "10.0.0.9")
    limiter.failed("cy", "10.0.0.9")
    limiter.succeeded("cy")
    limiter.failed("cy", "10.0.0.9")
    limiter.failed("cy", "10.0.0.9")
    assert limiter.retry_after("cy", "10.0.0.10") == 0  # a success starts the user's count over


def test_the_host_allow_list_names_the_console_only() -> None:
    default = allowed_hosts(None, "127.0.0.1", 8090)
    assert {"localhost:8090", "127.0.0.1:8090", "[::1]:8090"} <= default
    assert host_allowed("LOCALHOST:8090", default)
    for foreign in ("evil.example:8090", "evil.example", "localhost:8091", "127.0.0.1", "", None):
        assert not host_allowed(foreign, default), foreign
    assert host_allowed("10.1.2.3:8090", allowed_hosts(None, "10.1.2.3", 8090))

    configured = allowed_hosts("console.example.com, ops.example.com:8443", "127.0.0.1", 8090)
    assert host_allowed("console.example.com", configured)
    assert host_allowed("console.example.com:443", configured)  # a bare name: any port
    assert host_allowed("ops.example.com:8443", configured)
    assert not host_allowed("ops.example.com:9000", configured)
    assert not host_allowed("localhost:8090", configured)  # configured replaces the default

    assert is_loopback_host("localhost:8090") and is_loopback_host("[::1]:8090")
    assert is_loopback_host("127.0.0.1") and is_loopback_host("app.localhost")
    assert not is_loopback_host("10.1.2.3:8090") and not is_loopback_host("example.com")


def test_csrf_tokens_must_match_exactly() -> None:
    assert csrf_ok("token-a", "token-a")
    assert not csrf_ok("token-a", "token-b")
    assert not csrf_ok("token-a", "")
    assert not csrf_ok("token-a", None)


def test_the_proxy_header_is_off_by_default() -> None:
    assert TrustedProxy.from_settings(Settings()) is None
    proxy = TrustedProxy.from_settings(Settings(console_trusted_user_header="X-Remote-User"))
    assert proxy is not None and proxy.default_role is None


# ---- over HTTP -----------------------------------------------------------------------------


def test_the_api_answers_only_a_signed_in_user() -> None:
    async def scenario(client: TestClient[Any, Any], app: web.Application, _: Any) -> None:
        page = await client.get("/")
        assert page.status == 200  # the page itself, to show the sign-in form
        for path in ("/api/rules", "/api/config", "/api/health", "/api/session"):
            assert (await client.get(path)).status == 401, path
        assert await publish(client, None) == 401

        status, body, _ = await sign_in(client, "anna", "a wrong password!")
        assert (status, body["error"]) == (401, "wrong user name or password")
        status, body, _ = await sign_in(client, "nobody")
        assert (status, body["error"]) == (401, "wrong user name or password")
        status, body, _ = await sign_in(client, "anna")
        assert status == 200 and body["role"] == "rule-editor"
        assert "edit_rules" in body["permissions"] and "manage_users" not in body["permissions"]
        session = await (await client.get("/api/session")).json()
        assert (session["user"], session["csrf_token"]) == ("anna", body["csrf_token"])
        assert (await client.get("/api/rules")).status == 200

        logout = await client.post("/api/logout", json={})
        assert logout.status == 403  # a write: it needs the token too
        logout = await client.post(
            "/api/logout", json={}, headers={"X-CSRF-Token": body["csrf_token"]}
        )
        assert logout.status == 200
        assert (await client.get("/api/rules")).status == 401

    serve(scenario)


def test_the_session_cookie_is_httponly_samesite_strict_and_expires() -> None:
    async def scenario(client: TestClient[Any, Any], app: web.Application, _: Any) -> None:
        _, _, response = await sign_in(client, "anna")
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("dom_session=")
        for attribute in ("HttpOnly", "SameSite=Strict", "Max-Age=900", "Path=/", "Secure"):
            assert attribute in cookie, (attribute, cookie)
        assert "Domain" not in cookie

        # plain http under another name: a Secure cookie would be dropped, so it is not Secure
        lan = f"console.lan:{client.port}"
        _, _, response = await sign_in(client, "anna", Host=lan)
        assert response.status == 200 and "Secure" not in response.headers["Set-Cookie"]

    serve(
        scenario,
        Settings(
            console_session_ttl_s=900,
            console_allowed_hosts="127.0.0.1,localhost,console.lan",
        ),
    )


def test_a_viewer_may_look_and_dry_run_but_not_publish_or_roll_back() -> None:
    async def scenario(client: TestClient[Any, Any], app: web.Application, store: Any) -> None:
        _, body, _ = await sign_in(client, "vera")
        csrf = {"X-CSRF-Token": body["csrf_token"]}
        assert body["role"] == "viewer" and body["permissions"] == ["view"]
        assert (await client.get("/api/rules")).status == 200
        response = await client.post("/api/rules/validate", json=GOOD, headers=csrf)
        assert response.status == 200
        response = await client.post("/api/rules/dry-run", json=GOOD, headers=csrf)
        assert response.status == 200
        response = await client.post("/api/rules/publish", json=GOOD, headers=csrf)
        assert response.status == 403
        assert "vera is a viewer and may not publish" in (await response.json())["error"]
        response = await client.post(
            "/api/rules/protect-big/rollback", json={"version": 1}, headers=csrf
        )
        assert response.status == 403
        assert store.records == []

        _, body, _ = await sign_in(client, "anna")
        assert await publish(client, body["csrf_token"]) == 200
        assert [v.rule.updated_by for v in store.records] == ["anna"]

    serve(scenario)


def test_every_write_needs_the_sessions_csrf_token() -> None:
    async def scenario(client: TestClient[Any, Any], app: web.Application, store: Any) -> None:
        _, body, _ = await sign_in(client, "anna")
        assert await publish(client, None) == 403
        assert await publish(client, "a token from elsewhere") == 403
        response = await client.post("/api/rules/validate", json=GOOD)
        assert response.status == 403
        assert "X-CSRF-Token" in (await response.json())["error"]
        assert store.records == []
        _, other, _ = await sign_in(client, "bo")  # a new session has its own token
        assert await publish(client, body["csrf_token"]) == 403
        assert await publish(client, other["csrf_token"]) == 200

    serve(scenario)


def test_a_foreign_host_is_refused_before_anything_else() -> None:
    async def scenario(client: TestClient[Any, Any], app: web.Application, store: Any) -> None:
        _, body, _ = await sign_in(client, "anna")
        evil = {"Host": f"rebound.evil.example:{client.port}"}
        page = await client.get("/", headers=evil)
        assert page.status == 421
        response = await client.get("/api/rules", headers=evil)
        assert response.status == 421 and "host name" in (await response.json())["error"]
        assert await publish(client, body["csrf_token"], **evil) == 421
        status, _, _ = await sign_in(client, "anna", **evil)
        assert status == 421
        assert store.records == []
        local = {"Host": f"localhost:{client.port}"}
        assert (await client.get("/api/rules", headers=local)).status == 200

    serve(scenario)


def test_too_many_failed_sign_ins_are_answered_429_with_retry_after() -> None:
    async def scenario(client: TestClient[Any, Any], app: web.Application, _: Any) -> None:
        for _ in range(3):
            status, _, _ = await sign_in(client, "anna", "not the password")
            assert status == 401
        status, body, response = await sign_in(client, "anna")  # right, but too late
        assert status == 429 and "too many failed sign-ins" in body["error"]
        assert 0 < int(response.headers["Retry-After"]) <= 300
        status, _, _ = await sign_in(client, "bo")  # another user from the same address
        assert status == 200
        status, _, _ = await sign_in(client, "vera", "not the password")
        status, _, response = await sign_in(client, "vera")  # the address has had 4 failures
        assert status == 429 and int(response.headers["Retry-After"]) > 0

    serve(
        scenario,
        Settings(
            console_cookie_secure=False,
            console_login_failures_per_user=3,
            console_login_failures_per_address=4,
        ),
    )


def test_a_session_ends_when_it_expires_is_disabled_or_the_password_changes() -> None:
    async def scenario(client: TestClient[Any, Any], app: web.Application, _: Any) -> None:
        auth = app[AUTH]
        clock = Clock()
        auth.sessions.clock = clock
        await sign_in(client, "anna")
        clock.now += 3599
        assert (await client.get("/api/rules")).status == 200
        clock.now += 1
        assert (await client.get("/api/rules")).status == 401

        await sign_in(client, "anna")
        auth.users.set_password("anna", "a brand new password")  # `dom users passwd`
        assert (await client.get("/api/rules")).status == 401
        await sign_in(client, "anna", "a brand new password")
        auth.users.set_role("anna", Role.VIEWER)  # applies at the next request
        session = await (await client.get("/api/session")).json()
        assert session["role"] == "viewer"
        auth.users.set_disabled("anna", True)
        assert (await client.get("/api/rules")).status == 401
        status, _, _ = await sign_in(client, "anna", "a brand new password")
        assert status == 401

    serve(scenario, Settings(console_cookie_secure=False, console_session_ttl_s=3600))


def test_a_proxy_header_counts_only_when_configured() -> None:
    async def off(client: TestClient[Any, Any], app: web.Application, store: Any) -> None:
        headers = {"X-Remote-User": "anna", "X-Remote-Role": "admin"}
        assert (await client.get("/api/rules", headers=headers)).status == 401
        assert (await client.get("/api/session", headers=headers)).status == 401

    serve(off)

    async def on(client: TestClient[Any, Any], app: web.Application, store: Any) -> None:
        kim = {"X-Remote-User": "kim@example.com", "X-Remote-Role": "rule-editor"}
        session = await (await client.get("/api/session", headers=kim)).json()
        assert (session["user"], session["role"], session["via"]) == (
            "kim@example.com", "rule-editor", "proxy"
        )  # fmt: skip
        assert await publish(client, None, **kim) == 403  # the CSRF token still counts
        assert await publish(client, session["csrf_token"], **kim) == 200
        assert store.records[-1].rule.updated_by == "kim@example.com"

        lee = {"X-Remote-User": "lee"}  # no role header: the default role
        session = await (await client.get("/api/session", headers=lee)).json()
        assert session["role"] == "viewer"
        assert await publish(client, session["csrf_token"], **lee) == 403
        bad = {"X-Remote-User": "lee", "X-Remote-Role": "superuser"}
        assert (await client.get("/api/rules", headers=bad)).status == 403
        assert (await client.get("/api/rules")).status == 401  # no header, no session

    serve(
        on,
        Settings(
            console_trusted_user_header="X-Remote-User",
            console_trusted_role_header="X-Remote-Role",
            console_trusted_default_role="viewer",
        ),
    )


def test_a_proxy_without_a_role_or_default_is_refused() -> None:
    async def scenario(client: TestClient[Any, Any], app: web.Application, _: Any) -> None:
        response = await client.get("/api/rules", headers={"X-Remote-User": "lee"})
        assert response.status == 403 and "no role" in (await response.json())["error"]

    serve(scenario, Settings(console_trusted_user_header="X-Remote-User"))


def test_admins_manage_users_and_nobody_else_does() -> None:
    async def scenario(client: TestClient[Any, Any], app: web.Application, _: Any) -> None:
        _, anna, _ = await sign_in(client, "anna")
        assert (await client.get("/api/users")).status == 403  # a rule editor
        response = await client.post(
            "/api/users",
            json={"user": "cy", "role": "admin", "password": PASSWORD},
            headers={"X-CSRF-Token": anna["csrf_token"]},
        )
        assert response.status == 403

        _, ada, _ = await sign_in(client, "ada")
        csrf = {"X-CSRF-Token": ada["csrf_token"]}

        async def change(path: str, body: dict[str, Any]) -> tuple[int, Any]:
            response = await client.post(path, json=body, headers=csrf)
            return response.status, await response.json()

        listed = await (await client.get("/api/users")).json()
        assert {u["user"]: u["role"] for u in listed["users"]}["vera"] == "viewer"
        status, body = await change("/api/users", {"user": "cy", "role": "operator",
                                                   "password": PASSWORD})  # fmt: skip
        assert (status, body["role"]) == (200, "operator")
        assert (await change("/api/users", {"user": "cy", "role": "viewer",
                                            "password": PASSWORD}))[0] == 409  # fmt: skip
        assert (await change("/api/users/cy", {"role": "boss"}))[0] == 400
        status, body = await change("/api/users/cy", {"role": "viewer", "password": "short"})
        assert status == 400 and "at least 12" in body["error"]
        assert app[AUTH].users.get("cy").role is Role.OPERATOR  # nothing half-done
        assert (await change("/api/users/nobody", {"role": "viewer"}))[0] == 404
        assert (await change("/api/users/ada", {"disabled": True}))[0] == 409
        assert (await change("/api/users/ada", {"role": "viewer"}))[0] == 409

        status, cy, _ = await sign_in(client, "cy")
        assert "act_on_orders" in cy["permissions"] and "edit_rules" not in cy["permissions"]
        _, ada, _ = await sign_in(client, "ada")
        csrf["X-CSRF-Token"] = ada["csrf_token"]
        status, body = await change("/api/users/cy", {"disabled": True})
        assert (status, body["disabled"]) == (200, True)
        status, _, _ = await sign_in(client, "cy")
        assert status == 401

    serve(scenario)

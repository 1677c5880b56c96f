"""The operator console in a real browser (Debian's headless Chromium, driven by Playwright)
against a real worker on the real broker: signing in (the session cookie Secure, HttpOnly and
SameSite=Strict even on plain http://127.0.0.1), an order's routing explanation, a SKU's
numbers changing live after a stock event, a channel's policy set in its form (a refused
value shown beside its field) and found on ``dom.channels.v1`` signed by the editor, a rule
created in the form, dry-run, published by the signed-in editor and seen on the next order
(then rolled back by another editor), an invalid condition refused with its error while
nothing is published, and a viewer who can look but not publish or change a policy. A page
reached under a foreign host name (DNS rebinding) and a write without the session's CSRF token
are refused. Screenshots go to ``var/artifacts/console/``."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from config.settings import Settings
from dom.admin import create_topics
from dom.channels_cli import live_policies
from dom.console.app import create_app
from dom.console.auth import Role
from dom.console.rules_api import KafkaRuleStore
from dom.console.users import UserStore
from schemas.enums import ROUTING_OUTCOMES as OUTCOMES
from schemas.enums import LocationKind, StockEventKind
from schemas.models import OrderStatusChanged
from tests.conftest import REPO_ROOT, free_port
from tests.e2e.harness import Pipeline
from tests.unit.factories import (
    make_address,
    make_channel_call,
    make_location,
    make_order,
    make_product,
    make_stock_event,
)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "var" / "artifacts" / "console"
REBOUND = "rebound.attacker.test"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1",  # a name that rebinds to the console
]
PASSWORD = "a long enough password"
USERS = {"anna": Role.RULE_EDITOR, "bo": Role.RULE_EDITOR, "vera": Role.VIEWER}
WAIT_MS = 30_000


class ConsoleServer:
    """The console's aiohttp app on a free port, in a thread with its own event loop."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> ConsoleServer:
        self._thread.start()
        assert self._ready.wait(30), "the console did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Debian Chromium; missing pieces fail the test with what to install."""
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.fail(
            "Debian's Chromium is not installed: run "
            "`apt-get install -y --no-install-recommends chromium chromium-driver`"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is not installed: run `pip install playwright`")
    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh, empty profile (its own --user-data-dir).
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            yield chromium
        finally:
            chromium.close()


def add_users(settings: Settings) -> None:
    """The console's users, in the users file it opens itself (under the test's data dir)."""
    users = UserStore(settings.console_users_path)
    for name, role in USERS.items():
        users.add(name, role, PASSWORD)
    users.close()


def sign_in(page: Any, expect: Any, url: str, user: str) -> None:
    page.goto(url)
    expect(page.locator("#view-login")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#tabs")).to_be_hidden()
    page.fill("#login-user", user)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#whoami-name")).to_have_text(user, timeout=WAIT_MS)
    expect(page.locator("#view-login")).to_be_hidden()


def sign_out(page: Any, expect: Any) -> None:
    page.click("#btn-logout")
    expect(page.locator("#view-login")).to_be_visible(timeout=WAIT_MS)


def located(location_id: str, city: str, region: str, lat: float, lon: float) -> Any:
    address = make_address(name=location_id, city=city, region=region, lat=lat, lon=lon)
    return make_location(location_id, address=address)


def wait_for_outcome(pipeline: Pipeline, order_id: str) -> OrderStatusChanged:
    def routed(records: list[Any]) -> bool:
        return any(
            isinstance(r, OrderStatusChanged) and r.order_id == order_id and r.status in OUTCOMES
            for r in records
        )

    records = pipeline.read("dom.order-status.v1", routed)
    return next(
        r
        for r in records
        if isinstance(r, OrderStatusChanged) and r.order_id == order_id and r.status in OUTCOMES
    )


def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_console_in_a_browser(settings: Settings, tmp_path: Path, browser: Any) -> None:
    from playwright.sync_api import expect

    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    try:
        pipeline.produce(
            [
                located("DC-EAST", "Edison", "NJ", 40.5187, -74.4121),
                located("DC-WEST", "Ontario", "CA", 34.0633, -117.6509),
                make_product("SKU-1"),
                make_stock_event(sku="SKU-1", location_id="DC-EAST", quantity=20),
                make_stock_event(sku="SKU-1", location_id="DC-WEST", quantity=5),
                make_product("SKU-2"),
                make_stock_event(sku="SKU-2", location_id="DC-WEST", quantity=2),
            ]
        )
        # stock and orders are different topics: the order is placed once the stock is in,
        # or it would be backordered first and filled a moment later
        pipeline.availability_where("SKU-1", lambda now: {"DC-EAST", "DC-WEST"} <= now.keys())
        pipeline.produce([make_order("ORD-1", lines=[("SKU-1", 1)])])
        first = wait_for_outcome(pipeline, "ORD-1")
        # What `dom sync` records once it told the channel: the timeline shows it.
        pipeline.produce([make_channel_call("ORD-1", tracking_number="1ZCONSOLE")])
        add_users(settings)
        app = create_app(
            settings, [pipeline.url("w1", "")], grafana_url="http://127.0.0.1:3000/d/dom-pipeline"
        )
        with ConsoleServer(app) as console:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(console.url)
            page.fill("#login-user", "anna")
            page.fill("#login-password", "not the password")
            page.click("#login-submit")
            expect(page.locator("#login-error")).to_have_text("wrong user name or password")
            shoot(page, "sign-in")
            sign_in(page, expect, console.url, "anna")
            shoot(page, "signed-in")
            session_cookie_is_locked_down(page)

            look_up_a_routed_order(page, expect, first)
            see_stock_change_live(page, expect, pipeline)
            set_a_channel_policy(page, expect, settings)
            create_dry_run_publish_and_roll_back(page, expect, pipeline, settings)
            refuse_an_invalid_condition(page, expect, settings)
            a_viewer_cannot_publish(browser, expect, console.url, settings)

            page.goto(console.url + "#health")
            expect(page.locator("#health-cards")).to_contain_text("1 / 1", timeout=WAIT_MS)
            expect(page.locator("#health-outcomes")).to_contain_text("ALLOCATED", timeout=WAIT_MS)
            events = page.locator('[data-card="Events / s"] .value')
            expect(events).not_to_have_text("\u2013", timeout=WAIT_MS)  # a rate needs two scrapes
            expect(page.locator("#health-lag")).to_contain_text("dom.orders.v1")
            expect(page.locator("#health-lag")).not_to_contain_text(settings.topic_prefix)
            assert page.get_attribute("#grafana-link", "href") == (
                "http://127.0.0.1:3000/d/dom-pipeline"
            )
            shoot(page, "health")
            assert errors == [], errors
    finally:
        pipeline.stop_all()


def look_up_a_routed_order(page: Any, expect: Any, outcome: OrderStatusChanged) -> None:
    page.click("#tab-orders")
    expect(page.locator("#feed-table")).to_contain_text("ORD-1", timeout=WAIT_MS)
    page.fill("#order-input", "ORD-1")
    page.click("#order-search")
    expect(page.locator("#order-status")).to_have_text(outcome.status.value, timeout=WAIT_MS)
    chosen = outcome.shipments[0].location_id
    explanation = page.locator("#order-explanation")
    expect(explanation).to_contain_text(chosen)
    assert explanation.locator("li").count() >= 1
    expect(page.locator("#order-timeline")).to_contain_text(outcome.status.value)
    told = page.locator("#order-timeline .channel-call")
    expect(told).to_contain_text("told shopify: shipped", timeout=WAIT_MS)
    expect(told).to_contain_text("tracking 1ZCONSOLE")
    expect(told).to_contain_text("DONE after 1 call(s): fulfillment 1 created")
    expect(page.locator("#order-shipments")).to_contain_text(chosen)
    expect(page.locator("#order-commands")).to_contain_text("fulfillment", timeout=WAIT_MS)
    shoot(page, "order")


def see_stock_change_live(page: Any, expect: Any, pipeline: Pipeline) -> None:
    page.click("#tab-inventory")
    low = page.locator("#low-stock-table")
    expect(low).to_contain_text("SKU-2", timeout=WAIT_MS)  # 2 left, under the default 5
    expect(low).not_to_contain_text("SKU-1")
    page.fill("#sku-input", "SKU-1")
    page.click("#sku-search")
    west = page.locator('#sku-table tr[data-location="DC-WEST"]')
    expect(west.locator('[data-col="on_hand"]')).to_have_text("5", timeout=WAIT_MS)
    expect(page.locator('#sku-map circle[data-location="DC-EAST"]')).to_have_count(1)
    pipeline.produce(
        [
            make_stock_event(
                sku="SKU-1", location_id="DC-WEST", kind=StockEventKind.ADJUSTMENT, quantity=12
            ),
            make_stock_event(
                sku="SKU-1", location_id="DC-WEST", kind=StockEventKind.SAFETY_STOCK, quantity=2
            ),
        ]
    )
    # no reload, no click: the page follows the stock as it changes
    expect(west.locator('[data-col="on_hand"]')).to_have_text("17", timeout=WAIT_MS)
    expect(west.locator('[data-col="safety_stock"]')).to_have_text("2", timeout=WAIT_MS)
    expect(west.locator('[data-col="available"]')).to_have_text("15", timeout=WAIT_MS)
    page.click('#sku-table th[data-key="available"]')
    page.click('#sku-table th[data-key="available"]')  # descending: the most available first
    expect(page.locator("#sku-table tbody tr").first).to_have_attribute("data-location", "DC-EAST")
    shoot(page, "inventory")


def set_a_channel_policy(page: Any, expect: Any, settings: Settings) -> None:
    page.click("#tab-channels")
    form = page.locator('form[data-channel="MARKETPLACE"]')
    expect(form.locator(".summary")).to_have_text("every location; no buffer", timeout=WAIT_MS)
    form.get_by_label("DC", exact=True).check()
    form.get_by_label("Buffer units").fill("2")
    form.get_by_label("Buffer percent").fill("150")
    form.get_by_role("button", name="Save").click()
    expect(form.locator('[data-error-for="buffer_pct"]')).to_have_text(
        "buffer_pct must be between 0 and 100", timeout=WAIT_MS
    )
    expect(form.locator(".message")).to_contain_text("Not saved")
    form.get_by_label("Buffer percent").fill("0")
    form.get_by_role("button", name="Save").click()
    # the view is read again from the topic: the policy in force, by the signed-in user
    expect(form.locator(".summary")).to_have_text("DC; buffer 2 units", timeout=WAIT_MS)
    expect(form.locator(".message")).to_contain_text("set MARKETPLACE by anna")
    expect(form).to_contain_text("by anna")
    expect(form.get_by_label("STORE", exact=True)).not_to_be_checked()
    shoot(page, "channels")
    policy = live_policies(settings)["MARKETPLACE"]
    assert (policy.location_kinds, policy.location_ids, policy.buffer_units, policy.buffer_pct) == (
        (LocationKind.DC,), (), 2, 0
    )  # fmt: skip
    assert policy.updated_by == "anna"


def fill_rule(page: Any, rule_id: str, condition: str) -> None:
    page.click("#tab-rules")
    page.click("#btn-new")
    page.fill("#rule-id", rule_id)
    page.select_option("#rule-stage", "PACKAGING")
    page.fill("#rule-priority", "10")
    page.fill("#rule-condition", condition)
    page.select_option("#rule-actions .action-type", "set_packaging")
    page.fill("#rule-actions .action-param", "PROTECTIVE")
    page.fill("#rule-description", "Everything ships padded while the new boxes are tested")


def create_dry_run_publish_and_roll_back(
    page: Any, expect: Any, pipeline: Pipeline, settings: Settings
) -> None:
    fill_rule(page, "protect-everything", "order.total > 0")
    page.click("#btn-validate")
    expect(page.locator("#condition-status")).to_contain_text("valid", timeout=WAIT_MS)

    page.click("#btn-dry-run")
    summary = page.locator("#dry-run-summary")
    expect(summary).to_contain_text("1 would change", timeout=60_000)
    expect(page.locator("#dry-run-table")).to_contain_text("PROTECTIVE")
    expect(page.locator("#dry-run-table")).to_contain_text("ORD-1")
    shoot(page, "rules-dry-run")

    page.click("#btn-publish")
    expect(page.locator("#rule-message")).to_contain_text(
        "published protect-everything version 1 by anna", timeout=WAIT_MS
    )  # the signed-in user: there is no name to type
    row = page.locator('#rules-table tr[data-rule="protect-everything"]')
    expect(row).to_contain_text("anna", timeout=WAIT_MS)  # the worker applies it
    shoot(page, "rules")

    pipeline.produce([make_order("ORD-2", lines=[("SKU-1", 1)])])
    wait_for_outcome(pipeline, "ORD-2")
    page.click("#tab-orders")
    page.fill("#order-input", "ORD-2")
    page.click("#order-search")
    expect(page.locator("#order-rules")).to_contain_text("protect-everything", timeout=WAIT_MS)
    expect(page.locator("#order-commands")).to_contain_text("PROTECTIVE", timeout=WAIT_MS)
    shoot(page, "order-with-rule")

    # another editor: an edit (switched off) is version 2; rolling back republishes version 1
    # as version 3
    sign_out(page, expect)
    sign_in(page, expect, page.url.split("#")[0] + "#rules", "bo")
    row.get_by_role("button", name="Edit").click()
    page.uncheck("#rule-enabled")
    page.click("#btn-publish")
    expect(page.locator("#rule-message")).to_contain_text("version 2 by bo", timeout=WAIT_MS)
    page.get_by_role("button", name="Roll back to v1").click()
    expect(page.locator("#rule-message")).to_contain_text("version 3 by bo", timeout=WAIT_MS)
    expect(page.locator("#history-table tbody tr").first).to_contain_text("bo")
    expect(row).to_contain_text("yes", timeout=WAIT_MS)  # enabled again, as in version 1
    shoot(page, "rules-history")
    versions = [v for v in KafkaRuleStore(settings).versions() if v.rule_id == "protect-everything"]
    assert [(v.rule.version, v.rule.enabled) for v in versions if v.rule] == [
        (1, True),
        (2, False),
        (3, True),
    ]


def refuse_an_invalid_condition(page: Any, expect: Any, settings: Settings) -> None:
    fill_rule(page, "broken-rule", "order.totl > 0")  # typed: validated as you type
    status = page.locator("#condition-status")
    expect(status).to_contain_text("unknown field order.totl", timeout=WAIT_MS)
    expect(status).to_contain_text("did you mean order.total")
    page.click("#btn-publish")
    expect(page.locator("#rule-message")).to_contain_text("Nothing was published", timeout=WAIT_MS)
    page.click("#btn-dry-run")
    expect(page.locator("#rule-message")).to_contain_text("Not dry-run", timeout=WAIT_MS)
    shoot(page, "rules-invalid")
    assert not [v for v in KafkaRuleStore(settings).versions() if v.rule_id == "broken-rule"]


def session_cookie_is_locked_down(page: Any) -> None:
    """Chromium kept the Secure cookie of a plain-http 127.0.0.1 console (it treats loopback as
    a secure context), and the page's script cannot read it."""
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "dom_session"]
    assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (True, True, "Strict")
    assert cookie["expires"] > 0  # a persistent cookie that expires, not a browser-session one
    assert "dom_session" not in page.evaluate("document.cookie")


PUBLISH_FROM_THE_PAGE = """async (rule) => {
  const session = await (await fetch("/api/session")).json();
  const response = await fetch("/api/rules/publish", { method: "POST", body: JSON.stringify(rule),
    headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf_token } });
  return [session.role, response.status, (await response.json()).error];
}"""


def a_viewer_cannot_publish(browser: Any, expect: Any, url: str, settings: Settings) -> None:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    sign_in(page, expect, url + "#rules", "vera")
    row = page.locator('#rules-table tr[data-rule="protect-everything"]')
    expect(row).to_contain_text("bo", timeout=WAIT_MS)  # a viewer sees everything
    expect(page.locator("#btn-publish")).to_be_hidden()
    expect(page.locator("#rules-read-only")).to_contain_text("publishing needs a rule editor")
    row.get_by_role("button", name="History").click()
    expect(page.locator("#history-table tbody tr")).to_have_count(3, timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Roll back to v2")).to_have_count(0)
    shoot(page, "rules-viewer")
    page.click("#tab-channels")
    marketplace = page.locator('form[data-channel="MARKETPLACE"]')
    expect(marketplace.locator(".summary")).to_have_text("DC; buffer 2 units", timeout=WAIT_MS)
    expect(page.locator("#channels-list button")).to_have_count(0)
    expect(marketplace.get_by_label("Buffer units")).to_be_disabled()
    # and the API says no even to a hand-made request with the right token
    rule = {"rule_id": "viewer-rule", "stage": "PACKAGING", "priority": 1,
            "condition": "order.total > 0",
            "actions": [{"type": "set_packaging", "params": {"type": "GIFT"}}]}  # fmt: skip
    role, status, error = page.evaluate(PUBLISH_FROM_THE_PAGE, rule)
    assert (role, status) == ("viewer", 403), error
    assert "may not publish" in error
    page.context.close()
    assert not [v for v in KafkaRuleStore(settings).versions() if v.rule_id == "viewer-rule"]


def http(url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """A plain HTTP request (no browser): status, JSON body, headers."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        with error:
            raw = error.read()
            return error.code, json.loads(raw) if raw.startswith(b"{") else raw, error.headers


def test_a_foreign_host_and_a_write_without_its_token_are_refused(
    settings: Settings, browser: Any
) -> None:
    from playwright.sync_api import expect

    create_topics(settings)  # the rules topic, to show that nothing reached it
    add_users(settings)
    app = create_app(settings, ["http://127.0.0.1:9"], follow_topics=False)
    with ConsoleServer(app) as console:
        # the browser, sent to the console under a name that resolves to it (DNS rebinding)
        page = browser.new_page()
        response = page.goto(f"http://{REBOUND}:{console.port}/")
        assert response is not None and response.status == 421
        expect(page.locator("body")).to_contain_text("does not answer to that host name")

        status, body, headers = http(
            console.url + "api/login", {"user": "anna", "password": PASSWORD}
        )
        assert status == 200, body
        cookie = headers["Set-Cookie"].split(";")[0]
        rule = {"rule_id": "csrf-rule", "stage": "PACKAGING", "priority": 1,
                "condition": "order.total > 0",
                "actions": [{"type": "set_packaging", "params": {"type": "GIFT"}}]}  # fmt: skip
        publish = console.url + "api/rules/publish"
        status, body, _ = http(publish, rule, {"Cookie": cookie})
        assert status == 403 and "X-CSRF-Token" in body["error"]
        status, body, _ = http(publish, rule, {"Cookie": cookie, "X-CSRF-Token": "guessed"})
        assert status == 403
        _, session, _ = http(console.url + "api/session", headers={"Cookie": cookie})
        token = {"Cookie": cookie, "X-CSRF-Token": session["csrf_token"]}
        rebound = {**token, "Host": f"{REBOUND}:{console.port}"}
        status, _, _ = http(publish, rule, rebound)
        assert status == 421  # the right cookie and token, but a foreign Host
        status, body, _ = http(publish, {**rule, "rule_id": ""}, token)
        assert status == 422  # the same request, own host: it reaches the rules API
    assert not [v for v in KafkaRuleStore(settings).versions() if v.rule_id == "csrf-rule"]

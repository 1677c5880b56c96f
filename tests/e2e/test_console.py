"""The operator console in a real browser (Debian's headless Chromium, driven by Playwright)
against a real worker on the real broker: an order's routing explanation, a SKU's numbers
changing live after a stock event, a rule created in the form, dry-run, published and seen on
the next order (then rolled back), and an invalid condition refused with its error while
nothing is published. Screenshots of the views go to ``var/artifacts/console/``."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from dom.console.app import create_app
from dom.console.rules_api import KafkaRuleStore
from dom.settings import Settings
from schemas.enums import StockEventKind
from schemas.models import OrderStatusChanged
from tests.conftest import REPO_ROOT, free_port
from tests.e2e.harness import Pipeline
from tests.unit.factories import (
    make_address,
    make_location,
    make_order,
    make_product,
    make_stock_event,
)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "var" / "artifacts" / "console"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTCOMES = {"ALLOCATED", "PARTIALLY_ALLOCATED", "BACKORDERED", "ON_HOLD", "REJECTED"}
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
        pipeline.produce([make_order("ORD-1", lines=[("SKU-1", 1)])])
        first = wait_for_outcome(pipeline, "ORD-1")
        app = create_app(
            settings, [pipeline.url("w1", "")], grafana_url="http://127.0.0.1:3000/d/dom-pipeline"
        )
        with ConsoleServer(app) as console:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(console.url)

            look_up_a_routed_order(page, expect, first)
            see_stock_change_live(page, expect, pipeline)
            create_dry_run_publish_and_roll_back(page, expect, pipeline, settings)
            refuse_an_invalid_condition(page, expect, settings)

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
    page.fill("#rule-author", "ops-anna")


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
        "published protect-everything version 1 by ops-anna", timeout=WAIT_MS
    )
    row = page.locator('#rules-table tr[data-rule="protect-everything"]')
    expect(row).to_contain_text("ops-anna", timeout=WAIT_MS)  # the worker applies it
    shoot(page, "rules")

    pipeline.produce([make_order("ORD-2", lines=[("SKU-1", 1)])])
    wait_for_outcome(pipeline, "ORD-2")
    page.click("#tab-orders")
    page.fill("#order-input", "ORD-2")
    page.click("#order-search")
    expect(page.locator("#order-rules")).to_contain_text("protect-everything", timeout=WAIT_MS)
    expect(page.locator("#order-commands")).to_contain_text("PROTECTIVE", timeout=WAIT_MS)
    shoot(page, "order-with-rule")

    # an edit (switched off) is version 2; rolling back republishes version 1 as version 3
    page.click("#tab-rules")
    row.get_by_role("button", name="Edit").click()
    page.uncheck("#rule-enabled")
    page.fill("#rule-author", "ops-bo")
    page.click("#btn-publish")
    expect(page.locator("#rule-message")).to_contain_text("version 2 by ops-bo", timeout=WAIT_MS)
    page.get_by_role("button", name="Roll back to v1").click()
    expect(page.locator("#rule-message")).to_contain_text("version 3 by ops-bo", timeout=WAIT_MS)
    expect(page.locator("#history-table tbody tr").first).to_contain_text("ops-bo")
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

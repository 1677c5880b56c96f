"""An operator works the console's queues in a real browser, against a real worker on the real
broker: a large order held by a rule shows in the "held" queue, the operator opens it, releases
the hold with a reason, sees the pipeline's APPLIED, and the order's timeline shows it allocated
with the action, who did it and its result. Screenshots go to ``var/artifacts/console/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from config.settings import Settings
from dom.console.app import create_app
from dom.console.auth import Role
from dom.console.users import UserStore
from tests.e2e.harness import Pipeline
from tests.e2e.test_console import (
    PASSWORD,
    WAIT_MS,
    ConsoleServer,
    browser,  # noqa: F401  (the fixture)
    shoot,
    sign_in,
)
from tests.e2e.test_order_actions import place_large, start


def test_an_operator_releases_a_held_order_from_the_work_queue(
    pipeline: Pipeline,
    settings: Settings,
    tmp_path: Path,
    browser: Any,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    start(pipeline)
    place_large(pipeline)  # ORD-1, 6000.00: held by hold-very-large-orders
    users = UserStore(settings.console_users_path)
    users.add("olga", Role.OPERATOR, PASSWORD)
    users.close()
    app = create_app(settings, [pipeline.url("w1", "")])
    with ConsoleServer(app) as console:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(page, expect, console.url, "olga")
        page.click("#tab-orders")
        held = page.locator('#queues-table tr[data-queue="held"][data-order="ORD-1"]')
        expect(held).to_contain_text("needs a manual review", timeout=WAIT_MS)
        expect(held).to_contain_text("ON_HOLD")
        shoot(page, "work-queues")

        held.click()
        expect(page.locator("#order-status")).to_have_text("ON_HOLD", timeout=WAIT_MS)
        expect(page.get_by_role("button", name="Retry backorder")).to_have_count(0)
        page.get_by_role("button", name="Release hold").click()
        expect(page.locator("#action-form")).to_be_visible()
        page.fill("#action-reason", "approved by finance")
        page.click("#action-confirm")

        answer = page.locator("#action-answer")
        expect(answer).to_contain_text("RELEASE_HOLD APPLIED", timeout=WAIT_MS)
        expect(page.locator("#order-status")).to_have_text("ALLOCATED", timeout=WAIT_MS)
        timeline = page.locator("#order-timeline")
        expect(timeline).to_contain_text("RELEASE_HOLD by olga: APPLIED", timeout=WAIT_MS)
        expect(timeline.locator("li").last).to_contain_text("ALLOCATED")
        expect(page.locator("#action-form")).to_be_hidden()
        expect(held).to_have_count(0, timeout=WAIT_MS)  # the queue no longer holds it
        shoot(page, "order-released")
        assert errors == [], errors

"""The console judges rules off its event loop (issue 17): a condition that took 17 s to check
blocked every other request meanwhile. Now the console answers other requests while a rule is
checked or dry-run, answers 422 with the reason when that takes too long, and refuses a costly
condition as the workers would.

The slow paths are made slow on purpose, under the test's control: a check or a dry-run that
waits for the test to let it go."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dom.console import rules_api, validate
from schemas.models import Rule
from tests.unit.test_console_api import GOOD, FakeStore, post, run
from tests.unit.test_rules_cost import FIVE_OVER_LINES


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """What a slow check or dry-run waits for; opened at the end whatever happened, so no
    thread is left waiting."""
    event = threading.Event()
    yield event
    event.set()


STARTED = threading.Event()


def slow_check(gate: threading.Event, released: list[bool] | None = None) -> Any:
    """A check of a rule that runs until the test opens ``gate`` (10 s at most), noting in
    ``released`` whether the test did: on the event loop, the test could not."""
    checked = validate.check_rule

    def check(rule: Rule) -> None:
        STARTED.set()
        opened = gate.wait(timeout=10)
        if released is not None:
            released.append(opened)
        checked(rule)

    return check


def test_the_console_answers_other_requests_while_a_rule_is_checked(
    monkeypatch: pytest.MonkeyPatch, gate: threading.Event
) -> None:
    released: list[bool] = []
    monkeypatch.setattr(validate, "check_rule", slow_check(gate, released))

    async def scenario(client: Any, store: FakeStore, feed: Any) -> None:
        STARTED.clear()
        checking = asyncio.ensure_future(post(client, "/api/rules/validate", GOOD))
        await asyncio.to_thread(STARTED.wait, 10)  # the check is running
        response = await client.get("/api/config")
        assert response.status == 200
        gate.set()  # the other request was answered: now the check may end
        assert await checking == (200, {"ok": True, "error": None, "errors": []})

    run(scenario)
    assert released == [True]  # the check was still running when the other request was answered


def test_a_check_that_takes_too_long_is_answered_422_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, gate: threading.Event
) -> None:
    monkeypatch.setattr(validate, "check_rule", slow_check(gate))
    monkeypatch.setattr(rules_api, "JUDGE_TIMEOUT", 0.2)
    reason = (
        "checking the rule took longer than 0.2 s; the console stopped waiting "
        "(simplify the condition, or dry-run fewer orders)"
    )

    async def scenario(client: Any, store: FakeStore, feed: Any) -> None:
        for path in ("/api/rules/validate", "/api/rules/publish", "/api/rules/dry-run"):
            status, body = await post(client, path, GOOD)
            assert (status, body["error"]) == (422, reason), path
            assert body["errors"] == [{"field": "condition", "message": reason}]
        assert store.records == [] and store.dry_runs == []

    run(scenario)


class SlowStore(FakeStore):
    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def dry_run(self, rule: Rule, last: int) -> dict[str, Any]:
        self.gate.wait(timeout=10)
        return super().dry_run(rule, last)


def test_a_dry_run_that_takes_too_long_is_answered_422_and_blocks_nothing(
    monkeypatch: pytest.MonkeyPatch, gate: threading.Event
) -> None:
    monkeypatch.setattr(rules_api, "DRY_RUN_TIMEOUT", 0.5)
    slow = SlowStore(gate)

    async def scenario(client: Any, store: FakeStore, feed: Any) -> None:
        client.app[rules_api.CONSOLE].store = slow
        running = asyncio.ensure_future(post(client, "/api/rules/dry-run", GOOD))
        response = await client.get("/api/config")
        assert response.status == 200
        status, body = await running
        assert (status, body["error"]) == (
            422,
            "the dry-run took longer than 0.5 s; the console stopped waiting "
            "(simplify the condition, or dry-run fewer orders)",
        )

    run(scenario)


def test_the_console_refuses_a_costly_condition_as_the_workers_do() -> None:
    costly = {**GOOD, "condition": FIVE_OVER_LINES}

    async def scenario(client: Any, store: FakeStore, feed: Any) -> None:
        status, body = await post(client, "/api/rules/validate", costly)
        assert status == 200 and body["ok"] is False
        assert body["error"].startswith("condition is too costly to run on every order: up to ")
        assert "its comprehensions nest 5 deep: lines.all (up to 100 items)" in body["error"]
        status, body = await post(client, "/api/rules/publish", costly)
        assert status == 422 and body["errors"][0]["field"] == "condition"
        assert store.records == []

    run(scenario)

"""A stage that crashes at every start makes its worker unhealthy, loudly, everywhere an operator
looks: ``GET /health/`` (503 with the reason), ``/metrics``, the live summary's red line and what
the console's Health view shows, while Faust keeps restarting the stage and the other stages run on.

The crash is made certain here: the orders table's changelog exists with the wrong number of
partitions, which is what the stage's first table write once found on a busy machine (the
changelog "had 0 partitions" to a consumer that did not know it yet) and crashed on for
minutes, unseen.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from config.settings import Settings
from dom.admin import create_topics
from dom.console.health import HealthSampler
from dom.console.workers import WorkerClient
from dom.worker_health import WorkerAnswer, fetch, health_lines
from schemas.topics import ORDERS_CHANGELOG
from tests.e2e.harness import Pipeline

pytestmark = pytest.mark.broker

CRASHES_WITHIN = 120.0


def test_a_stage_crashing_at_every_start_is_reported_everywhere(
    settings: Settings, tmp_path: Path
) -> None:
    wrong = settings.model_copy(update={"topic_partitions": 1})
    create_topics(wrong, [ORDERS_CHANGELOG])  # the rest gets the settings' 3 partitions
    changelog = f"{settings.app_id}-orders-changelog"
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    try:
        report = crashed_twice(pipeline, "orders")
        orders = report["stages"]["orders"]
        assert orders["failing"] and orders["crashes"] >= 2  # Faust restarted it, and again
        assert f"{changelog} (1 partitions, 3 expected)" in orders["last_error"]
        assert report["stages"]["inventory"] == {**report["stages"]["inventory"], "crashes": 0}
        assert report["stages"]["inventory"]["state"] == "running"  # the others run on
        problem = report["problems"][0]
        assert problem.startswith("ROUTING STOPPED: orders stage crashed ")
        assert "last: TopicsUnusable: topics the worker uses have the wrong number" in problem

        metrics = scrape(pipeline.url("w1", "/metrics"))
        assert metrics[("dom_stage_crashes_total", (("stage", "orders"),))] >= 2
        assert metrics[("dom_worker_healthy", ())] == 0.0

        status, problems = fetch(pipeline.url("w1", "/health/"))  # what `make run` shows
        assert status == "unhealthy"
        seen = WorkerAnswer(pipeline.url("w1", "/health/"), status, problems, since=time.time())
        style, line = health_lines([seen], time.time())[0]
        assert style == "bold red" and line.startswith("ROUTING STOPPED: orders stage crashed")

        sample = asyncio.run(console_sample(pipeline.url("w1", "")))  # the console's Health view
        [worker] = sample["workers"]
        assert worker["up"] and worker["health"]["status"] == "unhealthy"
        assert sample["problems"][0]["status"] == "unhealthy"
        assert sample["problems"][0]["message"].startswith("ROUTING STOPPED: orders stage crashed")
    finally:
        pipeline.stop_all()


async def console_sample(url: str) -> dict[str, Any]:
    client = WorkerClient([url])
    await client.start()
    try:
        return await HealthSampler(client).sample()
    finally:
        await client.close()


def crashed_twice(pipeline: Pipeline, stage: str, running: str = "inventory") -> dict[str, Any]:
    """The first report with ``stage`` crashed twice and ``running`` past its start: on a busy
    machine (two tests at once) the crashing stage got there first, and a report of that moment
    still said ``starting`` for the stage that runs on."""
    deadline = time.monotonic() + CRASHES_WITHIN
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, report = get_health(pipeline.url("w1", "/health/"))
        stages = report["stages"]
        if (
            status == 503
            and stages.get(stage, {}).get("crashes", 0) >= 2
            and stages.get(running, {}).get("state") == "running"
        ):
            return report
        time.sleep(0.5)
    raise AssertionError(f"no crash loop reported: {report}\n{pipeline.workers['w1'].log_tail()}")


def get_health(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

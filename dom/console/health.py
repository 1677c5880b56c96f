"""Health at a glance, from the same ``/metrics`` the SREs scrape: throughput, outcomes, dead
letters, lag and rules, per worker and in total. Rates are the change between two scrapes
of the console, so the first look shows totals and the next ones rates too.

Beside the numbers, each worker's own verdict from ``/health/`` (streams/health.py): whether
it is ok, starting or unhealthy, why, and each stage's crashes. Every problem of every worker
is listed at the top of the answer, for the page to show in red."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from dom.console.workers import WorkerClient

SAME_ON_EVERY_WORKER = frozenset({"rules_in_force", "rules_refused"})
"""Every worker follows every rule: these are not added up across workers."""
Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Samples:
    """sample name -> [(labels, value)] of a Prometheus text exposition."""
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), float(sample.value)))
    return samples


def total(samples: Samples, name: str) -> float:
    return sum(value for _, value in samples.get(name, []))


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for labels, value in samples.get(name, []):
        out[labels.get(label, "")] += value
    return dict(out)


def summarize(samples: Samples) -> dict[str, Any]:
    """The numbers an operator looks at, from one worker's metrics."""
    # prometheus_client exposes counters as <name>_total samples.
    return {
        "events_in": total(samples, "dom_stage_events_in_total"),
        "events_by_stage": by_label(samples, "dom_stage_events_in_total", "stage"),
        "failed": total(samples, "dom_stage_events_failed_total"),
        "outcomes": by_label(samples, "dom_order_outcomes_total", "status"),
        "outcomes_by_channel": by_label(samples, "dom_order_outcomes_total", "channel"),
        "dead_letters": total(samples, "dom_dead_letters_total"),
        "dead_letters_by_stage": by_label(samples, "dom_dead_letters_total", "stage"),
        "lag": total(samples, "dom_consumer_lag"),
        "lag_by_topic": by_label(samples, "dom_consumer_lag", "topic"),
        "rules_in_force": total(samples, "dom_rules_in_force"),
        "rules_refused": total(samples, "dom_rules_refused"),
        "latency_sum": total(samples, "dom_decision_latency_seconds_sum"),
        "latency_count": total(samples, "dom_decision_latency_seconds_count"),
    }


@dataclass
class _Previous:
    at: float
    events_in: float
    orders: float


@dataclass
class HealthSampler:
    """Scrapes every worker and remembers the last scrape to turn totals into rates."""

    client: WorkerClient
    topic_prefix: str = ""
    previous: dict[str, _Previous] = field(default_factory=dict)

    async def sample(self) -> dict[str, Any]:
        workers = await asyncio.gather(*(self._one(url) for url in self.client.urls))
        return {
            "workers": workers,
            "total": _add_up(w for w in workers if w["up"]),
            "problems": problems(workers),
        }

    async def _one(self, url: str) -> dict[str, Any]:
        try:
            text = await self.client.get_text(url, "/metrics")
            health = await self._health(url)
        except (TimeoutError, aiohttp.ClientError) as error:
            return {"url": url, "up": False, "error": f"{type(error).__name__} {error}".strip()}
        now = time.monotonic()
        summary = summarize(parse(text))
        summary["lag_by_topic"] = {
            topic.removeprefix(self.topic_prefix): lag
            for topic, lag in summary["lag_by_topic"].items()
        }
        orders = sum(summary["outcomes"].values())
        before = self.previous.get(url)
        self.previous[url] = _Previous(now, summary["events_in"], orders)
        rates: dict[str, float | None] = {"events_per_s": None, "orders_per_s": None}
        if before is not None and now - before.at > 0.2:
            span = now - before.at
            rates = {
                "events_per_s": max(0.0, summary["events_in"] - before.events_in) / span,
                "orders_per_s": max(0.0, orders - before.orders) / span,
            }
        return {"url": url, "up": True, **summary, **rates, "health": health}

    async def _health(self, url: str) -> dict[str, Any]:
        status, body = await self.client.get_report(url, "/health/")
        if status not in (200, 503) or not isinstance(body, dict) or "status" not in body:
            return {"status": "unknown", "problems": [f"/health/ answered HTTP {status}"]}
        return body


def problems(workers: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """Every problem of every worker, the failing ones first: (worker, status, message)."""
    found = []
    for worker in workers:
        if not worker["up"]:
            found.append({"worker": worker["url"], "status": "down", "message": worker["error"]})
            continue
        health = worker["health"]
        found += [
            {"worker": worker["url"], "status": health["status"], "message": str(message)}
            for message in health.get("problems", [])
        ]
    order = {"unhealthy": 0, "down": 1}
    return sorted(found, key=lambda p: order.get(p["status"], 2))


def _add_up(workers: Iterable[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for worker in workers:
        for name, value in worker.items():
            if name in ("url", "up", "health"):
                continue
            if isinstance(value, dict):
                merged = result.setdefault(name, {})
                for k, v in value.items():
                    merged[k] = merged.get(k, 0.0) + v
            elif isinstance(value, float | int) and name in SAME_ON_EVERY_WORKER:
                result[name] = max(result.get(name, 0.0), value)
            elif isinstance(value, float | int):
                result[name] = result.get(name, 0.0) + value
    count = result.get("latency_count", 0.0)
    result["latency_mean_ms"] = 1000 * result.get("latency_sum", 0.0) / count if count else None
    return result

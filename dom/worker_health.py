"""The workers' health as the live summary of ``make run`` shows it: one line per problem.

Every worker answers ``GET /health/`` (streams/runtime/web.py): 200 when it is healthy, 503 with the
reasons when it is starting or a stage is failing. :class:`HealthPoller` asks every worker
every few seconds in a thread of its own; :func:`health_lines` turns the last answers into
the lines the summary prints, red for what stops the pipeline.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

POLL_EVERY = 2.0
TIMEOUT = 2.0
PATIENCE = 60.0
"""Seconds a worker may take to answer at all, or to get ready, before that is an alarm."""


@dataclass(frozen=True)
class WorkerAnswer:
    """One worker's last answer: ``status`` is the report's (ok, starting, unhealthy), or
    ``down`` when it did not answer; ``since`` is when it first answered so (epoch seconds)."""

    url: str
    status: str
    problems: tuple[str, ...] = ()
    since: float = 0.0


def fetch(url: str, timeout: float = TIMEOUT) -> tuple[str, tuple[str, ...]]:
    """(status, problems) from one worker's ``/health/`` URL."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return _parse(response.read())
    except urllib.error.HTTPError as error:  # 503 carries the report too
        with error:
            return _parse(error.read(), f"HTTP {error.code}")
    except (OSError, TimeoutError) as error:
        reason = getattr(error, "reason", None) or error
        return "down", (f"{type(reason).__name__} {reason}".strip(),)


def _parse(body: bytes, fallback: str = "no report") -> tuple[str, tuple[str, ...]]:
    try:
        report: dict[str, Any] = json.loads(body)
        return str(report["status"]), tuple(str(p) for p in report.get("problems", []))
    except (ValueError, KeyError, TypeError):
        return "down", (f"{fallback}: not a health report",)


def health_lines(answers: Sequence[WorkerAnswer], now: float) -> list[tuple[str, str]]:
    """(style, text) lines for the summary: red for a failing or silent worker, yellow while
    one starts, green when all are fine."""
    lines: list[tuple[str, str]] = []
    for answer in answers:
        waited = now - answer.since
        if answer.status == "unhealthy":
            lines += [("bold red", problem) for problem in answer.problems]
        elif answer.status == "down":
            why = "; ".join(answer.problems)
            if waited >= PATIENCE:
                lines.append(("bold red", f"WORKER NOT ANSWERING for {waited:.0f}s: {answer.url}"))
            else:
                lines.append(("yellow", f"waiting for the worker at {answer.url} ({why})"))
        elif answer.status == "starting":
            style = "bold red" if waited >= PATIENCE else "yellow"
            late = f" for {waited:.0f}s" if waited >= PATIENCE else ""
            lines += [(style, f"worker {problem}{late}") for problem in answer.problems]
    if answers and not lines:
        lines.append(("green", f"{_workers(len(answers))} healthy"))
    return lines


def _workers(n: int) -> str:
    return "the worker is" if n == 1 else f"all {n} workers are"


@dataclass
class HealthPoller:
    """Asks every worker's ``/health/`` every :data:`POLL_EVERY` seconds in a daemon thread."""

    urls: Sequence[str]
    every: float = POLL_EVERY
    _answers: dict[str, WorkerAnswer] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> HealthPoller:
        started = time.time()
        for url in self.urls:  # "down since the start" until the first answer
            self._answers[url] = WorkerAnswer(url, "down", ("no answer yet",), started)
        if self.urls:
            threading.Thread(target=self._run, name="health-poller", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def answers(self) -> list[WorkerAnswer]:
        with self._lock:
            return list(self._answers.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            for url in self.urls:
                status, problems = fetch(url)
                with self._lock:
                    before = self._answers[url]
                    since = before.since if before.status == status else time.time()
                    self._answers[url] = WorkerAnswer(url, status, problems, since)
            self._stop.wait(self.every)

"""Is this worker doing its job? Stage crashes, background tasks and readiness, as one answer.

Faust restarts a crashed agent a few seconds later, forever. A stage that crashes at every
start (a table whose changelog its clients do not know yet, a bug hit by its first input)
processes nothing, and without this nothing would say so: inputs pile up, outcomes never come.
Every stage's batch loop (``Outbox.process``) and every background task of the worker report
here. ``GET /health/`` (streams/runtime/web.py), the ``dom_worker_healthy`` gauge, the live
summary of ``make run`` and the console's Health view all read the same report.

A worker is healthy when its network view is loaded, no stage is still waiting for its
topics, no background task crashed (those are not restarted), and no stage is failing: a stage
fails when it crashed within the last :data:`RECENT_CRASH` seconds and has not completed a
batch since, or crashed :data:`REPEATED` times within that window (a poison input may let a
batch or two through between crashes).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)

RECENT_CRASH = 120.0
"""Seconds a stage's crash keeps the worker unhealthy. Faust restarts a crashed agent about
every 5 s, so a stage that crashes at every start never gets out of this window."""
REPEATED = 3
ROUTING_STAGES = frozenset({"orders", "inventory"})
"""Without these, no order gets a routing outcome."""
ERROR_CHARS = 300


class Status(StrEnum):
    OK = "ok"
    STARTING = "starting"  # not ready yet: the view is loading, a stage waits for its topics
    UNHEALTHY = "unhealthy"  # a stage crashed recently, or a background task died


class StageState(StrEnum):
    STARTING = "starting"  # its batch loop waits for the worker's clients to know its topics
    RUNNING = "running"
    STOPPED = "stopped"  # cancelled (a rebalance or shutdown); Faust starts it again


@dataclass
class Stage:
    """What one stage did since the worker started."""

    state: StageState = StageState.STARTING
    crashes: int = 0
    last_error: str = ""
    last_crash_at: float | None = None  # epoch seconds, as every time here
    last_batch_at: float | None = None
    crash_times: deque[float] = field(default_factory=lambda: deque(maxlen=REPEATED))

    def failing(self, now: float, recent: float) -> bool:
        """Crashed lately and not working since, or crashing again and again."""
        if self.last_crash_at is None or now - self.last_crash_at >= recent:
            return False
        recovered = self.last_batch_at is not None and self.last_batch_at > self.last_crash_at
        repeated = len(self.crash_times) == REPEATED and now - self.crash_times[0] < recent
        return repeated or not recovered


def describe(error: BaseException) -> str:
    """One line, bounded: the exception's type and message (Faust's are several lines)."""
    text = " ".join(str(error).split())
    line = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 3] + "..."


class WorkerHealth:
    """Crash accounting per stage and task, and the report built from it.

    ``on_crash`` is called with the stage's name at every crash (the Prometheus counter);
    ``view_ready`` says whether the network view has loaded; ``clock`` gives epoch seconds.
    """

    def __init__(
        self,
        on_crash: Callable[[str], None] = lambda stage: None,
        *,
        clock: Callable[[], float] = time.time,
        recent: float = RECENT_CRASH,
    ) -> None:
        self.stages: dict[str, Stage] = {}
        self.task_errors: dict[str, str] = {}
        self.view_ready: Callable[[], bool] = lambda: True
        self._on_crash = on_crash
        self._clock = clock
        self._recent = recent

    # ---- what stages and tasks report -----------------------------------------------------

    @contextmanager
    def stage(self, name: str) -> Iterator[Stage]:
        """Around a stage's batch loop: it starts (``running`` once its topics are known), and
        a crash is counted and raised on, unchanged, for Faust to restart the agent."""
        stage = self.stages.setdefault(name, Stage())
        stage.state = StageState.STARTING
        try:
            yield stage
        except Exception as error:
            self.crashed(name, error)
            raise
        except BaseException:  # cancelled: a rebalance restarts it, or the worker stops
            stage.state = StageState.STOPPED
            raise

    def running(self, name: str) -> None:
        self.stages.setdefault(name, Stage()).state = StageState.RUNNING

    def batch_done(self, stage: Stage) -> None:
        stage.last_batch_at = self._clock()

    def crashed(self, name: str, error: BaseException) -> None:
        stage = self.stages.setdefault(name, Stage())
        stage.state = StageState.STOPPED
        stage.crashes += 1
        stage.last_error = describe(error)
        stage.last_crash_at = self._clock()
        stage.crash_times.append(stage.last_crash_at)
        self._on_crash(name)
        log.error("%s stage crashed (%d so far): %s", name, stage.crashes, stage.last_error)

    @contextmanager
    def task(self, name: str) -> Iterator[None]:
        """Around a background task of the worker: Faust does not restart one that dies."""
        try:
            yield
        except Exception as error:
            self.task_errors[name] = describe(error)
            raise

    # ---- the report -------------------------------------------------------------------------

    def problems(self) -> tuple[Status, list[str]]:
        """The worst status, and one sentence per problem (crashes first)."""
        now = self._clock()
        crashes = [
            _crash_sentence(name, stage)
            for name, stage in sorted(self.stages.items(), key=_routing_first)
            if stage.failing(now, self._recent)
        ]
        crashes += [
            f"WORKER UNHEALTHY: background task {name} crashed: {error}"
            for name, error in sorted(self.task_errors.items())
        ]
        if crashes:
            return Status.UNHEALTHY, crashes
        waiting = [] if self.view_ready() else ["starting: the network view is still loading"]
        waiting += [
            f"starting: {name} stage waits for its topics"
            for name, stage in sorted(self.stages.items())
            if stage.state is StageState.STARTING
        ]
        return (Status.STARTING if waiting else Status.OK), waiting

    def healthy(self) -> bool:
        return self.problems()[0] is Status.OK

    def report(self) -> dict[str, Any]:
        """The body of ``GET /health/``."""
        status, problems = self.problems()
        now = self._clock()
        return {
            "status": status.value,
            "healthy": status is Status.OK,
            "problems": problems,
            "view_ready": self.view_ready(),
            "stages": {
                name: {
                    "state": stage.state.value,
                    "failing": stage.failing(now, self._recent),
                    "crashes": stage.crashes,
                    "last_error": stage.last_error or None,
                    "last_crash_seconds_ago": (
                        None if stage.last_crash_at is None else round(now - stage.last_crash_at, 1)
                    ),
                }
                for name, stage in sorted(self.stages.items())
            },
            "tasks_crashed": dict(sorted(self.task_errors.items())),
        }


def _routing_first(item: tuple[str, Stage]) -> tuple[bool, str]:
    return item[0] not in ROUTING_STAGES, item[0]


def _crash_sentence(name: str, stage: Stage) -> str:
    what = "ROUTING STOPPED" if name in ROUTING_STAGES else "STAGE FAILING"
    times = "once" if stage.crashes == 1 else f"{stage.crashes} times"
    return f"{what}: {name} stage crashed {times}, last: {stage.last_error}"

"""Ctrl-C on `make run` stops every process it started, even one that ignores SIGTERM, within a
bounded time: all are asked at once, what is left after the grace period is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dom.run import Child, _shutdown

# Ignores SIGTERM, and starts a grandchild in its process group that ignores it too; writes the
# grandchild's pid once both are deaf.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import signal, time; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('deaf', flush=True); time.sleep(600)"],
    stdout=subprocess.PIPE)
grandchild.stdout.readline()
print(grandchild.pid, flush=True)
time.sleep(600)
"""
# Exits on SIGTERM at once, leaving a grandchild behind that ignores it.
LEAVES_ONE_BEHIND = STUBBORN.replace("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n", "", 1)
POLITE = "import time; print('ready', flush=True); time.sleep(600)"


def spawn(name: str, code: str, tmp_path: Path) -> Child:
    log = tmp_path / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=out,
            start_new_session=True,  # as dom.run does
        )
    return Child(name, proc, log)


def first_line(child: Child) -> str:
    for _ in range(600):
        lines = child.log.read_text().splitlines()
        if lines:
            return lines[0]
        time.sleep(0.05)
    raise AssertionError(f"{child.name} never started")


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whoever reaps orphans here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture(autouse=True)
def signals_as_they_were() -> Iterator[None]:
    """`_shutdown` ignores SIGINT and SIGTERM from then on (a second Ctrl-C must not stop it),
    and children inherit an ignored signal: put the handlers back for the next test."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


class FakeBroker:
    def __init__(self) -> None:
        self.stopped_within: float | None = None

    def stop(self, timeout: float = 30.0) -> bool:
        self.stopped_within = timeout
        return True


def test_every_child_and_what_it_started_is_gone_within_the_grace_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    children = [
        spawn("worker", STUBBORN, tmp_path),
        spawn("connector", POLITE, tmp_path),
        spawn("demo", LEAVES_ONE_BEHIND, tmp_path),
    ]
    grandchildren = [int(first_line(children[0])), int(first_line(children[2]))]
    first_line(children[1])
    broker = FakeBroker()
    started = time.monotonic()

    _shutdown(children, broker, grace=2.0, broker_grace=7.0)  # type: ignore[arg-type]

    pids = [c.proc.pid for c in children] + grandchildren
    while any(running(pid) for pid in pids) and time.monotonic() - started < 2.0 + 10.0:
        time.sleep(0.05)  # a SIGKILL takes effect at once, but not in no time
    assert [pid for pid in pids if running(pid)] == []  # within the grace period and a bit
    assert broker.stopped_within == 7.0
    out = capsys.readouterr().out
    assert "worker killed: still running 2s after it was asked" in out
    assert "connector stopped" in out
    assert "demo killed" in out  # its leader left, but its group did not
    assert "local Kafka stopped" in out


def test_children_that_stop_when_asked_are_not_waited_for_in_turn(tmp_path: Path) -> None:
    children = [spawn(f"polite-{n}", POLITE, tmp_path) for n in range(4)]
    for child in children:
        first_line(child)
    started = time.monotonic()

    _shutdown(children, None, grace=30.0)

    assert time.monotonic() - started < 30.0  # nobody waited out the grace period
    assert all(child.proc.poll() is not None for child in children)
    assert not any(running(c.proc.pid) for c in children)
    assert os.getpgrp() != children[0].proc.pid  # each had a group of its own

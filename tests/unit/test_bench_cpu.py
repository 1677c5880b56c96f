"""The bench's CPU reading: a process's user and system time, its children's included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from dom.bench_world import process_cpu_seconds

BURN = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\n"


def test_a_process_tree_counts_the_cpu_its_children_burn() -> None:
    # A parent that only sleeps, with a child that burns half a second of CPU, then sleeps.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', {BURN + 'time.sleep(30)'!r}])\n"
            "time.sleep(30)\n",
        ],
        start_new_session=True,  # its own process group, to stop the child with it
    )
    try:
        deadline = time.monotonic() + 20
        while process_cpu_seconds(parent.pid) < 0.5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 0.5 <= process_cpu_seconds(parent.pid) < 5
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()


def test_a_process_that_is_gone_reads_as_no_cpu() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert process_cpu_seconds(gone.pid) == 0

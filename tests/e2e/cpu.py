"""A busy machine for the tests whose bugs only showed under load: processes that spin the CPU
while the test runs, and are killed at its end."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cpu_burners(count: int | None = None) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` spinning processes for the block's duration: by default one per core, less
    one per other pytest-xdist worker (its test keeps a core about as busy, and burners for all
    of them would starve that test as well)."""
    others = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) - 1
    count = count or max(1, (os.cpu_count() or 2) - others)
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(count)
    ]
    try:
        yield burners
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()

"""Faust workers as real subprocesses for integration tests: start, wait ready, stop or SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO_ROOT


class WorkerProcess:
    """One ``faust worker`` (or ``dom worker``) subprocess with its own log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_file: Path) -> None:
        self.args = args
        self.env = env
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 90.0) -> WorkerProcess:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                self.args,
                cwd=REPO_ROOT,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_for("Worker ready", ready_timeout)
        return self

    def wait_for_log(self, text: str, timeout: float) -> None:
        """Wait until the worker's log holds ``text`` (raise if it exits or time runs out)."""
        self._wait_for(text, timeout)

    def _wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        start_size = 0
        while time.monotonic() < deadline:
            assert self.proc is not None
            content = self.log_file.read_text(errors="replace")
            if text in content[start_size:]:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{content[-3000:]}")
            time.sleep(0.3)
        raise TimeoutError(f"no {text!r} within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 30.0) -> None:
        """A clean shutdown (SIGTERM), escalating to SIGKILL if it hangs."""
        self._signal(signal.SIGTERM)
        if not self._wait_exit(timeout):
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group: the crash that at-least-once must survive."""
        self._signal(signal.SIGKILL)
        self._wait_exit(30)

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def _wait_exit(self, timeout: float) -> bool:
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True


def faust_worker(app: str, env: dict[str, str], log_file: Path, web_port: int) -> WorkerProcess:
    """A plain ``faust -A app worker`` (for tests of Faust itself, outside the DOM app)."""
    args = [
        sys.executable,
        "-m",
        "faust",
        "-A",
        app,
        "worker",
        "-l",
        "info",
        "--web-port",
        str(web_port),
        "--web-host",
        "127.0.0.1",
    ]
    return WorkerProcess(args, env, log_file)

"""Detached background processes tracked by a pid file: the local broker and schema registry.

They run in a session of their own, so a Ctrl-C in the terminal that started them does not kill
them half-way; stopping is always explicit (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

_MAVEN_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


class LaunchError(RuntimeError):
    """A local service could not be fetched, started or stopped."""


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java:
        raise LaunchError("Java 17+ is needed to run the local services; install it")
    return java


def pom_property(pom: Path, name: str) -> str:
    """A ``<properties>`` value of ``pom`` (a pinned release); LaunchError when it has none."""
    node = ET.parse(pom).getroot().find(f"m:properties/m:{name}", _MAVEN_NS)
    if node is None or not (node.text or "").strip():
        raise LaunchError(f"{pom} has no <{name}> property")
    return (node.text or "").strip()


def maven(pom: Path, *goals: str) -> None:
    """Run Maven quietly on ``pom``; its failure output becomes the error."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LaunchError("Maven (mvn) is needed to fetch the local services' jars; install it")
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), *goals], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LaunchError(f"mvn failed on {pom}:\n{result.stdout}{result.stderr}")


class DetachedProcess:
    """One background process, found again across commands through its pid file."""

    def __init__(self, pid_file: Path, log_file: Path) -> None:
        self.pid_file = pid_file
        self.log_file = log_file

    def live_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if alive(pid) else None

    def launch(self, cmd: list[str], cwd: Path | None = None) -> int:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout``; True if it was running."""
        pid = self.live_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.2)
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
            while alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return "(no log written)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap our own child if it has exited
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""A real Confluent-compatible schema registry on this machine: Apicurio Registry from Maven.

Used by the tests (and by anyone who wants to try ``DOM_SCHEMA_REGISTRY_URL`` locally) to prove
the Confluent wire-format path against a registry nobody here wrote. Storage is in memory, so
every start is empty.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

from config.settings import Settings
from dom.processes import DetachedProcess, LaunchError, java_executable, maven, pom_property

REPO_ROOT = Path(__file__).resolve().parent.parent
POM = REPO_ROOT / "deploy" / "schema-registry" / "pom.xml"
CCOMPAT_PATH = "/apis/ccompat/v7"


def apicurio_version(pom: Path = POM) -> str:
    return pom_property(pom, "apicurio.version")


def fetch_registry(settings: Settings, pom: Path = POM) -> Path:
    """Unpack the registry's runnable assembly into the cache (once per release)."""
    version = apicurio_version(pom)
    home = settings.kafka_home / f"apicurio-{version}"
    runner = home / f"apicurio-registry-app-{version}-runner.jar"
    if not runner.exists():
        maven(pom, "generate-resources", f"-Dregistry.dir={home}")
    if not runner.exists():
        raise LaunchError(f"the Apicurio assembly has no {runner.name}")
    return runner


class LocalSchemaRegistry:
    """One Apicurio Registry process on 127.0.0.1:``port``, in-memory storage."""

    def __init__(self, settings: Settings, port: int, directory: Path) -> None:
        self.settings = settings
        self.port = port
        self.process = DetachedProcess(directory / "registry.pid", directory / "registry.log")

    @property
    def url(self) -> str:
        """The Confluent-compatible base URL, as ``DOM_SCHEMA_REGISTRY_URL`` wants it."""
        return f"http://127.0.0.1:{self.port}{CCOMPAT_PATH}"

    def start(self, timeout: float = 120.0) -> str:
        if self.process.live_pid() is None:
            runner = fetch_registry(self.settings)
            self.process.launch(
                [
                    java_executable(),
                    "-Xmx384m",
                    "-Dquarkus.http.host=127.0.0.1",
                    f"-Dquarkus.http.port={self.port}",
                    "-jar",
                    str(runner),
                ],
                cwd=runner.parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.live_pid() is None:
                raise LaunchError(f"the registry exited:\n{self.process.log_tail()}")
            if _answers(self.url + "/subjects"):
                return self.url
            time.sleep(0.5)
        raise LaunchError(
            f"the registry did not answer in {timeout:.0f}s:\n{self.process.log_tail()}"
        )

    def stop(self) -> bool:
        return self.process.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False

"""A real single-node Apache Kafka (KRaft, broker+controller) run from Maven Central jars.

`deploy/kafka/pom.xml` pins the release. Its jars are fetched once with Maven into a cache
outside git; the broker is formatted with ``kafka.tools.StorageTool`` and started with ``java``
(main class ``kafka.Kafka``) on 127.0.0.1, logging to a file, with a pid file and a readiness
check through the admin API. Stopping it keeps its data, so the next start finds its topics.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from config.settings import Settings
from dom.processes import DetachedProcess, LaunchError, java_executable, maven, pom_property

REPO_ROOT = Path(__file__).resolve().parent.parent
POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"


KafkaLauncherError = LaunchError


def kafka_version(pom: Path = POM) -> str:
    """The Apache Kafka release the pom pins."""
    return pom_property(pom, "kafka.version")


def libs_dir(settings: Settings, pom: Path = POM) -> Path:
    """Where the jars of the pinned release live once fetched."""
    return settings.kafka_home / f"kafka-{kafka_version(pom)}" / "libs"


def fetch_jars(settings: Settings, pom: Path = POM) -> Path:
    """Copy the broker's runtime jars from Maven Central into the cache (once per release)."""
    libs = libs_dir(settings, pom)
    marker = libs / ".complete"
    if marker.exists():
        return libs
    libs.mkdir(parents=True, exist_ok=True)
    maven(
        pom, "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={libs}"
    )
    marker.write_text(kafka_version(pom) + "\n")
    return libs


@dataclass(frozen=True)
class BrokerStatus:
    """What `dom kafka status` reports."""

    pid: int | None
    reachable: bool
    bootstrap: str
    directory: Path

    @property
    def running(self) -> bool:
        return self.pid is not None


class LocalKafka:
    """One local broker, described entirely by its settings (port, directory, heap)."""

    def __init__(self, settings: Settings, pom: Path = POM) -> None:
        self.settings = settings
        self.pom = pom
        self.dir = settings.local_kafka_dir.resolve()
        self.data = self.dir / "data"
        self.log_file = self.dir / "server.log"
        self.process = DetachedProcess(self.dir / "kafka.pid", self.dir / "stdout.log")
        self.bootstrap = f"127.0.0.1:{settings.kafka_port}"

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> BrokerStatus:
        """Start the broker unless it runs already; return once the admin API answers."""
        if self.process.live_pid() is not None:
            self._wait_ready(timeout)
            return self.status()
        libs = fetch_jars(self.settings, self.pom)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_configs()
        if not (self.data / "meta.properties").exists():
            self._format(libs)
        self._launch(libs)
        self._wait_ready(timeout)
        return self.status()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after ``timeout``); True if it ran."""
        return self.process.stop(timeout)

    def status(self) -> BrokerStatus:
        pid = self.process.live_pid()
        reachable = pid is not None and _admin_answers(self.bootstrap, timeout=2.0)
        return BrokerStatus(
            pid=pid, reachable=reachable, bootstrap=self.bootstrap, directory=self.dir
        )

    # ---- internals ---------------------------------------------------------------------------

    def _write_configs(self) -> None:
        s = self.settings
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{s.kafka_controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port},"
            f"CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data),
            "num.partitions": str(s.topic_partitions),
            # Topics come from the registry (`dom topics create`); a typo must not invent one.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
        }
        text = "".join(f"{k}={v}\n" for k, v in props.items())
        (self.dir / "server.properties").write_text(text)
        (self.dir / "log4j2.properties").write_text(_LOG4J2.format(log=self.log_file))

    def _classpath_args(self, libs: Path) -> list[str]:
        return ["-cp", f"{libs}/*", f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}"]

    def _format(self, libs: Path) -> None:
        cmd = [
            java_executable(),
            *self._classpath_args(libs),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            new_cluster_id(),
            "-c",
            str(self.dir / "server.properties"),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise KafkaLauncherError(f"formatting storage failed:\n{result.stdout}{result.stderr}")

    def _launch(self, libs: Path) -> None:
        heap = self.settings.kafka_heap
        cmd = [
            java_executable(),
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            *self._classpath_args(libs),
            "kafka.Kafka",
            str(self.dir / "server.properties"),
        ]
        self.process.launch(cmd)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.live_pid() is None:
                raise KafkaLauncherError(f"the broker exited during start-up:\n{self._log_tail()}")
            if _admin_answers(self.bootstrap, timeout=1.0):
                return
            time.sleep(0.3)
        raise KafkaLauncherError(
            f"the broker did not answer within {timeout:.0f}s:\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        """The end of the broker's log4j file, where start-up failures are explained."""
        return DetachedProcess(self.process.pid_file, self.log_file).log_tail()


def new_cluster_id() -> str:
    """A random cluster id as Kafka writes them (22 url-safe base64 characters), never one
    starting with "-": StorageTool's argument parser would read that as an option and refuse
    to format (one id in 64 did). Kafka's own ``Uuid.randomUuid`` skips those ids too."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _admin_answers(bootstrap: str, timeout: float) -> bool:
    """True when the broker serves metadata: the admin API, not a sleep, says it is ready."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": _QUIET})  # type: ignore[dict-item]
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:
        return False
    return bool(metadata.brokers)


# librdkafka logs connection refusals loudly while the broker boots; they are expected there.
_QUIET = logging.getLogger("dom.kafka_local.probe")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""

"""``make run``: bring up what the pipeline needs on this machine and run it until Ctrl-C.

It starts the local broker (unless ``DOM_KAFKA_BOOTSTRAP`` names a cluster), creates the
registry's topics, starts the stages, and stops everything it started when interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from dom.admin import create_topics
from dom.kafka_local import LocalKafka
from dom.settings import Settings


def _start_worker(settings: Settings, log_dir: Path) -> subprocess.Popen[bytes]:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / "worker-1.log", "ab")  # noqa: SIM115 - the child owns it until exit
    env = {**os.environ, "DOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap}
    return subprocess.Popen(
        [sys.executable, "-m", "dom.cli", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _worker_available() -> bool:
    from dom.cli import main

    return "worker" in main.commands


def run() -> None:
    settings = Settings()
    broker: LocalKafka | None = None
    if "DOM_KAFKA_BOOTSTRAP" not in os.environ:
        broker = LocalKafka(settings)
        status = broker.start()
        settings = settings.model_copy(update={"kafka_bootstrap": status.bootstrap})
        click.echo(f"local Kafka ready at {status.bootstrap} (data in {status.directory})")
    else:
        click.echo(f"using the cluster at {settings.kafka_bootstrap}")
    for result in create_topics(settings):
        click.echo(f"  {result.outcome:8} {result.name}")
    children: list[subprocess.Popen[bytes]] = []
    if _worker_available():
        children.append(_start_worker(settings, settings.data_dir / "logs"))
        base = f"http://{settings.web_host}:{settings.web_port}"
        click.echo(
            f"worker started (log in {settings.data_dir / 'logs'}); HTTP: "
            f"{base}/inventory/<sku>/ and {base}/orders/<order_id>/"
        )
    click.echo("running; press Ctrl-C to stop everything started here")
    try:
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(child.poll() is None for child in children):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        _shutdown(children, broker)


def _shutdown(children: list[subprocess.Popen[bytes]], broker: LocalKafka | None) -> None:
    click.echo("stopping ...")
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    for child in children:
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
    if broker is not None:
        broker.stop()
        click.echo("local Kafka stopped (data kept)")


if __name__ == "__main__":
    run()

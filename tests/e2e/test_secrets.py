"""Secrets stay secret: a connector (``dom connect``) and a worker (``dom worker``) run with
distinctive secrets, some from environment variables and some from ``*_FILE`` files, both at
debug level; they are driven with good orders, bad signatures, bad bodies and unknown paths.
Then every log line, every response body and every ``/metrics`` page of the run is searched
for the secrets: none may show up.

The broker is PLAINTEXT, so the SASL password and the registry's basic auth are held but not
used here; `tests/unit/test_secrets.py` covers the paths that use them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from connectors.web import DOM_HMAC_HEADER, sign
from tests.conftest import REPO_ROOT, free_port
from tests.e2e.harness import Pipeline
from tests.e2e.test_webhook import (
    MARKETPLACE_PATH,
    SHOPIFY_PATH,
    fixture_bytes,
    outcome_of,
    shopify_headers,
)
from tests.integration.workers import WorkerProcess
from tests.unit.factories import make_location, make_product, make_stock_event

RUN = uuid.uuid4().hex[:12]
WEBHOOK_SECRET = f"whsec-{RUN}-from-a-file"
SASL_PASSWORD = f"saslpw-{RUN}-from-the-env"
REGISTRY_PASSWORD = f"regpw-{RUN}-from-a-file"
SECRETS = (WEBHOOK_SECRET, SASL_PASSWORD, REGISTRY_PASSWORD)


def secret_env(tmp_path: Path) -> dict[str, str]:
    """The run's secrets as a deployment would pass them: two files (one with the newline an
    editor leaves), one environment variable."""
    webhook = tmp_path / "secrets" / "webhook"
    registry = tmp_path / "secrets" / "registry"
    webhook.parent.mkdir(parents=True)
    webhook.write_text(WEBHOOK_SECRET + "\n")
    registry.write_text(f"dom-registry:{REGISTRY_PASSWORD}")
    return {
        "DOM_WEBHOOK_SECRET_FILE": str(webhook),
        "DOM_KAFKA_SASL_USERNAME": "dom",
        "DOM_KAFKA_SASL_PASSWORD": SASL_PASSWORD,
        "DOM_SCHEMA_REGISTRY_BASIC_AUTH_FILE": str(registry),
    }


class SecretPipeline(Pipeline):
    """Workers that get the run's secrets too, and log at debug level."""

    def __init__(self, settings: Settings, tmp_path: Path, secrets: dict[str, str]) -> None:
        super().__init__(settings, tmp_path)
        self.secrets = secrets

    def env(self, name: str) -> dict[str, str]:
        return {**super().env(name), **self.secrets}

    def start_worker(self, name: str, ready_timeout: float = 120.0) -> WorkerProcess:
        self.ports.setdefault(name, free_port())
        args = [sys.executable, "-m", "dom.cli", "worker", "--loglevel", "debug"]
        worker = WorkerProcess(args, self.env(name), self.tmp_path / f"{name}.log")
        self.workers[name] = worker.start(ready_timeout)
        return worker


CONNECT = (sys.executable, "-m", "dom.cli", "connect", "--loglevel", "debug")
WORKER_PAGES = ("/metrics", "/orders/WEB-5821539172601/", "/inventory/SKU-1/", "/rules/")
WORKER_PAGES_MISSING = ("/orders/nope/", "/nope")


class Connector:
    """``dom connect`` as a subprocess, its output in a log file; every answer kept."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.answers: list[bytes] = []
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [*CONNECT, "--port", str(self.port)],
                cwd=REPO_ROOT,
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                assert self.proc.poll() is None, log.read_text(errors="replace")
                time.sleep(0.2)
        raise AssertionError(f"the connector did not answer: {log.read_text(errors='replace')}")

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.port}{path}"
        request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, answer = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, answer = err.code, err.read()
        self.answers.append(answer)
        return status, answer

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        return self.log.read_text(errors="replace")


@pytest.fixture
def pipeline(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[SecretPipeline]:
    pipeline = SecretPipeline(make_settings(), tmp_path, secret_env(tmp_path))
    try:
        yield pipeline
    finally:
        pipeline.stop_all()


def test_no_secret_in_any_log_answer_or_metrics(pipeline: SecretPipeline, tmp_path: Path) -> None:
    settings = pipeline.settings
    pipeline.produce(
        [
            make_location("DC-EAST"),
            make_product("SKU-1"),
            make_product("SKU-2"),
            make_stock_event(sku="SKU-1", location_id="DC-EAST", quantity=10),
            make_stock_event(sku="SKU-2", location_id="DC-EAST", quantity=10),
        ]
    )
    worker = pipeline.start_worker("w1")
    env = {
        "DOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "DOM_TOPIC_PREFIX": settings.topic_prefix,
        "DOM_DATA_DIR": str(settings.data_dir),
        **pipeline.secrets,
    }
    connector = Connector(env, tmp_path / "connector.log")
    try:
        drive(connector)
        pipeline.read("dom.order-status.v1", outcome_of("WEB-5821539172601"))
        worker_pages = [
            read(pipeline.url("w1", path)) for path in (*WORKER_PAGES, *WORKER_PAGES_MISSING)
        ]
    finally:
        connector_log = connector.stop()
    pipeline.stop_all()

    seen = {
        "connector log": connector_log,
        "worker log": worker.log_file.read_text(errors="replace"),
        **{
            f"connector answer {n}": a.decode(errors="replace")
            for n, a in enumerate(connector.answers)
        },
        **{f"worker page {n}": page for n, page in enumerate(worker_pages)},
    }
    assert "produced" in connector_log and "Worker ready" in seen["worker log"]  # they did log
    for where, text in seen.items():
        for secret in SECRETS:
            assert secret not in text, f"a secret shows in the {where}"


def drive(connector: Connector) -> None:
    """Every kind of answer: accepted, duplicate, bad signature, bad body, too large, unknown."""
    order = fixture_bytes("shopify_order_ship.json")
    # Signed with the secret from the file (its newline dropped): accepted, then a duplicate.
    assert connector.call("POST", SHOPIFY_PATH, order, signed(order, "wh-1"))[0] == 202
    assert connector.call("POST", SHOPIFY_PATH, order, signed(order, "wh-1"))[0] == 200
    doc = fixture_bytes("marketplace_order.json")
    assert (
        connector.call("POST", MARKETPLACE_PATH, doc, {DOM_HMAC_HEADER: sign(WEBHOOK_SECRET, doc)})[
            0
        ]
        == 202
    )
    # Refused: each answer is checked for the secrets afterwards.
    for headers in (
        shopify_headers(order, "wh-2", secret=WEBHOOK_SECRET + "\n"),  # the file's raw content
        shopify_headers(order, "wh-3", secret="not-the-secret"),
        {"X-Shopify-Hmac-Sha256": WEBHOOK_SECRET},  # the secret itself as the signature
        {},
    ):
        assert connector.call("POST", SHOPIFY_PATH, order, headers)[0] == 401
    bad = json.dumps({**json.loads(order), "currency": 5}).encode()
    assert connector.call("POST", SHOPIFY_PATH, bad, signed(bad, "wh-4"))[0] == 422
    assert connector.call("POST", SHOPIFY_PATH, b"{", signed(b"{", "wh-5"))[0] == 422
    huge = b" " * (1024**2 + 1)
    assert connector.call("POST", MARKETPLACE_PATH, huge, {})[0] == 413
    assert connector.call("GET", "/nope")[0] == 404
    assert connector.call("GET", SHOPIFY_PATH)[0] == 405
    for path in ("/stats", "/metrics", "/healthz"):
        assert connector.call("GET", path)[0] == 200


def signed(body: bytes, webhook_id: str) -> dict[str, str]:
    return shopify_headers(body, webhook_id, secret=WEBHOOK_SECRET)


def read(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return str(response.read().decode(errors="replace"))
    except urllib.error.HTTPError as err:
        return str(err.read().decode(errors="replace"))

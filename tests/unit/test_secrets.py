"""Secrets (the webhook secret, the Kafka SASL password, the schema registry's basic auth) come
from the environment or from files, and nothing prints them: not the settings, not a client
configuration, not a refused setting's error, not what a worker logs while it is built, not
the console's answers. `tests/e2e/test_secrets.py` runs a connector and a worker for real."""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError

from config.settings import Settings
from dom.console.app import create_app as create_console
from dom.console.auth import Role
from dom.console.feed import FeedState
from dom.console.users import UserStore
from streams.runtime.faust_app import faust_credentials
from tests.unit.http_fuzz import LoopbackApp, to_body
from tests.unit.test_console_api import FakeStore, fake_worker

WEBHOOK = "whsec-7f3a9c1e-webhook"
SASL = "saslpw-5b2d8e4f-kafka"
REGISTRY = "regpw-9c4e1a7b-registry"
SECRETS = (WEBHOOK, SASL, REGISTRY)


def with_secrets(**overrides: object) -> Settings:
    """Settings that use every secret: SASL to Kafka, basic auth to a registry."""
    values: dict[str, object] = {
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "dom",
        "kafka_sasl_password": SASL,
        "schema_registry_url": "http://127.0.0.1:9",
        "schema_registry_basic_auth": f"dom:{REGISTRY}",
        "webhook_secret": WEBHOOK,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret shows in {where}"


def test_each_secret_can_come_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {
        "DOM_WEBHOOK_SECRET_FILE": (tmp_path / "webhook", WEBHOOK + "\n"),  # an editor's newline
        "DOM_KAFKA_SASL_PASSWORD_FILE": (tmp_path / "sasl", SASL + "\r\n"),
        "DOM_SCHEMA_REGISTRY_BASIC_AUTH_FILE": (tmp_path / "registry", f"dom:{REGISTRY}"),
    }
    for variable, (path, content) in files.items():
        path.write_text(content, newline="")
        monkeypatch.setenv(variable, str(path))
    monkeypatch.setenv("DOM_SCHEMA_REGISTRY_URL", "http://registry.example:8081")
    settings = Settings()
    assert settings.webhook_secret is not None and settings.kafka_sasl_password is not None
    assert settings.webhook_secret.get_secret_value() == WEBHOOK
    assert settings.kafka_sasl_password.get_secret_value() == SASL
    assert (settings.schema_registry_config() or {})["basic.auth.user.info"] == f"dom:{REGISTRY}"


def test_a_secret_given_twice_or_an_unreadable_file_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "webhook").write_text(WEBHOOK)
    monkeypatch.setenv("DOM_WEBHOOK_SECRET", WEBHOOK)
    monkeypatch.setenv("DOM_WEBHOOK_SECRET_FILE", str(tmp_path / "webhook"))
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "DOM_WEBHOOK_SECRET and DOM_WEBHOOK_SECRET_FILE are both set" in str(refused.value)
    assert_no_secret(str(refused.value), "the error")
    assert "input_value" not in str(refused.value)  # pydantic's echo of every value given

    monkeypatch.delenv("DOM_WEBHOOK_SECRET")
    for path, why in ((tmp_path / "missing", "No such file or directory"), (tmp_path, "Is a")):
        monkeypatch.setenv("DOM_WEBHOOK_SECRET_FILE", str(path))
        expected = re.escape(f"DOM_WEBHOOK_SECRET_FILE: cannot read {path}: {why}")
        with pytest.raises(ValidationError, match=expected):
            Settings()
    (tmp_path / "empty").write_text("\n")
    monkeypatch.setenv("DOM_WEBHOOK_SECRET_FILE", str(tmp_path / "empty"))
    with pytest.raises(ValidationError, match="is empty"):
        Settings()


def test_a_refused_setting_is_named_but_nothing_given_is_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOM_WEBHOOK_SECRET", WEBHOOK)
    monkeypatch.setenv("DOM_KAFKA_PORT", SASL)  # a password pasted into the wrong variable
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "kafka_port" in str(refused.value)
    assert_no_secret(str(refused.value), "the error")


def test_printed_settings_and_client_configs_mask_every_secret() -> None:
    settings = with_secrets()
    printed = {
        "repr(settings)": repr(settings),
        "str(settings)": str(settings),
        "settings as JSON": settings.model_dump_json(),
        "librdkafka_config": repr(settings.librdkafka_config()),
        "producer_config": str(settings.producer_config()),
        "aiokafka_config": f"{settings.aiokafka_config()}",
        "schema_registry_config": repr(settings.schema_registry_config()),
        "faust credentials": repr(faust_credentials(settings)),
    }
    for where, text in printed.items():
        assert_no_secret(text, where)
    # ... while the clients themselves get the real values.
    assert settings.librdkafka_config()["sasl.password"] == SASL
    assert settings.aiokafka_config()["sasl_plain_password"] == SASL
    assert faust_credentials(settings).password == SASL


def test_building_a_worker_logs_no_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A worker with SASL cannot reach the tests' PLAINTEXT broker, so what it logs while the
    app and its clients are built is checked here; Faust's CLI banner (which prints the broker
    URL) is never shown, as `dom worker` runs `faust.Worker` itself."""
    from streams.app import create_app as create_worker

    caplog.set_level(logging.DEBUG)
    pipeline = create_worker(with_secrets(data_dir=tmp_path))
    conf = pipeline.app.conf
    assert_no_secret(caplog.text, "the log")
    assert_no_secret(f"{conf.broker} {conf.broker_credentials!r}", "Faust's settings")


def test_the_console_answers_and_logs_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    users = UserStore(tmp_path / "users.sqlite")
    users.add("anna", Role.ADMIN, "a long enough password")
    settings = with_secrets(data_dir=tmp_path)

    async def build(stack: contextlib.AsyncExitStack) -> web.Application:
        worker = TestServer(fake_worker())
        await worker.start_server()
        stack.push_async_callback(worker.close)
        workers = [str(worker.make_url("")).rstrip("/"), "http://127.0.0.1:9"]
        return create_console(
            settings, workers, store=FakeStore(), feed=FeedState(), follow_topics=False, users=users
        )

    json = {"Content-Type": "application/json"}
    answers = []
    with LoopbackApp(build) as app:
        wrong = to_body({"user": "anna", "password": SASL})  # a secret as a wrong password
        answers.append(app.request("POST", "/api/login", body=wrong, headers=json))
        login = to_body({"user": "anna", "password": "a long enough password"})
        signed_in = app.request("POST", "/api/login", body=login, headers=json)
        session = {"Cookie": signed_in.cookies, "X-CSRF-Token": signed_in.json()["csrf_token"]}
        for method, path, body in (
            ("GET", "/api/config", None),
            ("GET", "/api/health", None),
            ("GET", "/api/orders/nope", None),
            ("GET", "/api/nope", None),
            ("POST", "/api/rules/validate", b"{"),
            ("POST", "/api/rules/publish", b" " * 70_000),
        ):
            answers.append(app.request(method, path, body=body, headers={**json, **session}))
    users.close()
    assert [a.status for a in answers] == [401, 200, 200, 200, 404, 400, 413]
    for answer in answers:
        assert_no_secret(answer.body.decode(errors="replace"), f"the answer {answer}")
    assert_no_secret(caplog.text, "the console's log")

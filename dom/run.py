"""``make run``: bring up what the pipeline needs on this machine and run it until Ctrl-C.

It starts the local broker (unless ``DOM_KAFKA_BOOTSTRAP`` names a cluster), creates the
registry's topics, publishes the default channel policies (``deploy/channels/``) for channels
that have none, starts the stages, the HTTP connector, the stand-in shop and marketplace
(``dom standin``) with the channel sync reporting back to them (``dom sync``), loads the demo
world and the default rules and drives demo traffic (``dom demo``: its web customers order in
the stand-in shop), and shows the live summary in the foreground. Ctrl-C stops everything
it started within a bounded time: every child is asked to stop at once (SIGTERM to its process
group, newest first: the traffic, the connectors, the workers), whatever is left after
:data:`STOP_GRACE` seconds is killed, then the broker gets the same treatment.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import click

from config.settings import Settings
from dom.admin import create_topics
from dom.kafka_local import LocalKafka

STOP_GRACE = 10.0
"""Seconds the children get, all together, to stop after SIGTERM before they are killed."""
BROKER_GRACE = 15.0
"""Seconds the local broker gets to stop cleanly (a kill only costs a log recovery at start)."""


@dataclass
class Child:
    """A process started here: its role, the process, and where its output goes."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path


def _spawn(
    name: str,
    args: list[str],
    settings: Settings,
    log_dir: Path,
    extra_env: dict[str, str] | None = None,
) -> Child:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    env = {**os.environ, "DOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, **(extra_env or {})}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
        )
    return Child(name, proc, log)


def _channel_defaults(settings: Settings) -> list[str]:
    """The default channel policies of ``deploy/channels/`` for channels that have none yet
    (a policy an operator set is left alone)."""
    from dom.channels_cli import publish_defaults

    try:
        return publish_defaults(settings, updated_by="dom run", only_missing=True)
    except Exception as exc:  # the run goes on with every channel's default; say why
        return [f"channel defaults not published ({exc}); `dom channels publish-defaults`"]


def _registered(verb: str) -> bool:
    from dom.cli import main

    return verb in main.commands


def _start_workers(settings: Settings, log_dir: Path) -> tuple[list[Child], list[str]]:
    if not _registered("worker"):
        return [], []
    child = _spawn(settings.worker_name, ["dom.cli", "worker"], settings, log_dir)
    base = _worker_url(settings)
    return [child], [
        f"{base}/orders/<order_id>/",
        f"{base}/inventory/<sku>/",
        f"{base}/rules/",
        f"{base}/health/",
    ]


def _worker_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.web_host == "0.0.0.0" else settings.web_host
    return f"http://{host}:{settings.web_port}"


DEMO_WEBHOOK_SECRET = "demo-secret"  # only when the user set none


def _start_connectors(settings: Settings, log_dir: Path) -> tuple[list[Child], list[str]]:
    """The HTTP connector (``dom connect``): web store webhooks and marketplace orders. Without
    a configured secret it gets the demo's, which the demo traffic signs its webhooks with."""
    child = _spawn("connector", ["dom.cli", "connect"], settings, log_dir, _webhook_env())
    base = f"http://{settings.connector_host}:{settings.connector_port}"
    return [child], [f"{base}/webhooks/shopify/orders-create", f"{base}/metrics"]


STANDIN_PORT = 8790
DEMO_SHOP_PLAN = ["--bucket-size", "400", "--leak-rate", "20"]
"""Shopify Plus's REST limits: the demo's web store sends about 9 orders a second."""
DEMO_MARKETPLACE_PLAN = ["--confirm-rate", "10", "--confirm-burst", "50"]
"""A raised confirmShipment usage plan (Amazon's default is 2 a second)."""


def _standin_port() -> str:
    return os.environ.get("DOM_STANDIN_PORT", str(STANDIN_PORT))


def _standin_url() -> str:
    return f"http://127.0.0.1:{_standin_port()}"


def _start_channels(settings: Settings, log_dir: Path) -> tuple[list[Child], list[str]]:
    """The stand-in shop and marketplace the demo's customers order from (the shop sends its
    webhooks to the connector), and `dom sync` reporting shipments and cancels back to them."""
    hook = f"http://127.0.0.1:{settings.connector_port}/webhooks/shopify"  # every topic
    args = ["dom.cli", "standin", "--port", _standin_port(), "--webhook-url", hook]
    standin = _spawn(
        "standin",
        [*args, *DEMO_SHOP_PLAN, *DEMO_MARKETPLACE_PLAN],
        settings,
        log_dir,
        _webhook_env(),
    )
    shop = {
        "DOM_SHOPIFY_SHOP_URL": _standin_url(),
        "DOM_SHOPIFY_ACCESS_TOKEN": "shpat_standin",
        "DOM_SHOPIFY_LEAK_RATE": "20",
        "DOM_SPAPI_ENDPOINT": _standin_url(),
        # Login with Amazon, as production does: the stand-in issues the hourly tokens.
        "DOM_SPAPI_LWA_ENDPOINT": f"{_standin_url()}/auth/o2/token",
        "DOM_SPAPI_LWA_CLIENT_ID": "amzn1.application-oa2-client.standin",
        "DOM_SPAPI_LWA_CLIENT_SECRET": "standin-client-secret",
        "DOM_SPAPI_REFRESH_TOKEN": "Atzr|standin-refresh-token",
        "DOM_SPAPI_SELLER_ID": "A1STANDINSELLER",
    }
    sync = _spawn("sync", ["dom.cli", "sync"], settings, log_dir, shop)
    urls = [
        f"shop: {_standin_url()}/_standin/shopify/calls",
        f"sync: http://127.0.0.1:{settings.sync_port}/metrics",
    ]
    return [standin, sync], urls


CONSOLE_PORT = 8090


def _start_console(settings: Settings, log_dir: Path) -> tuple[list[Child], list[str]]:
    """The operator console (``dom console``), reading the worker's HTTP endpoints."""
    click.echo(demo_user(settings))
    worker = f"http://{settings.web_host}:{settings.web_port}"
    port = os.environ.get("DOM_CONSOLE_PORT", str(CONSOLE_PORT))
    args = ["dom.cli", "console", "--workers", worker, "--port", port]
    url = f"http://127.0.0.1:{port}/"
    shown = f"console: {url} (reports: {url}#reports)"
    return [_spawn("console", args, settings, log_dir)], [shown]


DEMO_USER = "demo"


def demo_user(settings: Settings) -> str:
    """Someone must be able to sign in to the console: on a users file with nobody in it, make
    an admin ``demo`` with a random password, kept (owner-only) beside the users file so each
    run can say it again. Returns the line to print."""
    from dom.console.auth import Role
    from dom.console.users import UserStore

    saved = settings.console_users_path.parent / "demo-password"
    users = UserStore(settings.console_users_path)
    try:
        if not users.users():
            saved.unlink(missing_ok=True)
            saved.touch(mode=0o600)
            saved.write_text(secrets.token_urlsafe(15) + "\n")
            users.add(DEMO_USER, Role.ADMIN, saved.read_text().strip())
        password = saved.read_text().strip() if saved.exists() else ""
        valid = bool(password) and users.check_password(DEMO_USER, password) is not None
    finally:
        users.close()
    if not valid:  # changed, or other users were set up: nothing to tell
        return f"console: sign in as a user of `dom users list` (file {users.path})"
    return (
        f"console sign-in: user {DEMO_USER}, password {password} (an admin; kept in {saved};"
        f" `dom users passwd {DEMO_USER}` changes it)"
    )


def _start_demo(settings: Settings, log_dir: Path, options: list[str]) -> list[Child]:
    """The demo sends web and marketplace orders through the connector, signed with its secret;
    the other channels' events it produces directly."""
    host = "127.0.0.1" if settings.connector_host == "0.0.0.0" else settings.connector_host
    connector = [
        "--connector",
        f"http://{host}:{settings.connector_port}",
        "--shop",
        _standin_url(),
    ]
    args = ["dom.cli", "demo", *options, *connector]
    return [_spawn("demo", args, settings, log_dir, _webhook_env())]


def _webhook_env() -> dict[str, str]:
    if "DOM_WEBHOOK_SECRET" in os.environ or "DOM_WEBHOOK_SECRET_FILE" in os.environ:
        return {}  # the user's own secret: the children inherit it with the environment
    return {"DOM_WEBHOOK_SECRET": DEMO_WEBHOOK_SECRET}


def _watch(children: list[Child], stop: threading.Event, exited: list[Child]) -> None:
    """Stop the summary when a child dies (the demo may finish on its own, cleanly)."""
    while not stop.wait(1.0):
        for child in children:
            code = child.proc.poll()
            if code is None or child in exited:
                continue
            exited.append(child)
            if code != 0 or child.name != "demo":
                stop.set()


@click.command()
@click.option("--rate", default=20.0, show_default=True, help="Demo orders per second.")
@click.option("--skus", default=2500, show_default=True, help="Demo catalogue size.")
@click.option("--stores", default=36, show_default=True, help="Demo stores.")
@click.option("--no-demo", is_flag=True, help="Run the pipeline without demo traffic.")
def run(rate: float, skus: int, stores: int, no_demo: bool) -> None:
    """Broker, topics, worker, demo traffic and the live summary, until Ctrl-C."""
    # The demo shows the KPI reports (`dom report`): their stages run unless the user said no.
    os.environ.setdefault("DOM_KPIS", "true")
    settings = Settings()
    broker: LocalKafka | None = None
    children: list[Child] = []
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if "DOM_KAFKA_BOOTSTRAP" not in os.environ:
            broker = LocalKafka(settings)
            status = broker.start()
            settings = settings.model_copy(update={"kafka_bootstrap": status.bootstrap})
            click.echo(f"local Kafka ready at {status.bootstrap} (data in {status.directory})")
        else:
            click.echo(f"using the cluster at {settings.kafka_bootstrap}")
        for result in create_topics(settings):
            click.echo(f"  {result.outcome:8} {result.name}")
        for line in _channel_defaults(settings):
            click.echo(f"  {line}")
        since_ms = int(time.time() * 1000)  # the summary shows this run, from its start
        log_dir = settings.data_dir / "logs"
        workers, urls = _start_workers(settings, log_dir)
        connectors, connector_urls = _start_connectors(settings, log_dir)
        channels, channel_urls = _start_channels(settings, log_dir)
        consoles, console_urls = _start_console(settings, log_dir)
        children += workers + connectors + channels + consoles
        if not no_demo:
            options = ["--rate", str(rate), "--skus", str(skus), "--stores", str(stores)]
            children += _start_demo(settings, log_dir, options)
        click.echo(f"started {', '.join(c.name for c in children) or 'nothing'}; logs in {log_dir}")
        all_urls = console_urls + urls + connector_urls + channel_urls
        health = [f"{_worker_url(settings)}/health/"] if workers else []
        _summary_until_stopped(settings, children, all_urls, since_ms, health)
    except KeyboardInterrupt:
        pass
    finally:
        _shutdown(children, broker)


def _summary_until_stopped(
    settings: Settings,
    children: list[Child],
    urls: list[str],
    since_ms: int,
    health_urls: list[str],
) -> None:
    from dom.summary import run_summary

    stop = threading.Event()
    exited: list[Child] = []
    watcher = threading.Thread(target=_watch, args=(children, stop, exited), daemon=True)
    watcher.start()
    try:
        run_summary(
            settings,
            urls,
            stop,
            since_ms=since_ms,
            health_urls=health_urls,
            sync_stats_url=f"http://127.0.0.1:{settings.sync_port}/stats",
        )
    finally:
        stop.set()
    for child in exited:
        click.echo(f"{child.name} exited with {child.proc.returncode}; last lines of {child.log}:")
        click.echo(_tail(child.log))


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _shutdown(
    children: list[Child],
    broker: LocalKafka | None,
    grace: float = STOP_GRACE,
    broker_grace: float = BROKER_GRACE,
) -> None:
    """Stop every child within ``grace`` seconds in all, then the broker within its own.

    Each child runs in a process group of its own (with whatever it started): the whole group
    is asked (SIGTERM), newest first so traffic stops before the workers it feeds, and the
    groups still alive when ``grace`` runs out are killed. One child slow to stop no longer
    holds up the others, and none is left behind.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not strand Kafka
        signal.signal(sig, signal.SIG_IGN)
    click.echo("stopping ...")
    for child in reversed(children):
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_group_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    for child in reversed(children):
        if _group_alive(child):
            _signal_group(child, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):  # stuck in the kernel: move on
                child.proc.wait(5)
            click.echo(f"  {child.name} killed: still running {grace:.0f}s after it was asked")
        else:
            click.echo(f"  {child.name} stopped")
    if broker is not None:
        broker.stop(broker_grace)
        click.echo("local Kafka stopped (data kept)")


def _group_alive(child: Child) -> bool:
    """Whether the child, or anything left in its process group, still runs."""
    if child.proc.poll() is None:
        return True
    try:
        os.killpg(child.proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(child: Child, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # gone already
        os.killpg(child.proc.pid, sig)


if __name__ == "__main__":
    run()

"""``dom demo``: load a synthetic retailer and the default rules, then drive traffic.

The world (locations, products, opening stock) goes to the inbound topics; the rule file is
published the way ``dom rules publish`` does it; then orders flow at ``--rate`` while the demo
plays the warehouses and stores, answering the pipeline's fulfillment commands. Ctrl-C (or
SIGTERM, or ``--duration``) stops it after flushing what it produced.

With ``--connector URL`` the web store and the marketplace place their orders the way they
would in production: signed Shopify webhooks and SP-API documents posted to the HTTP connector
(``dom connect``), whose answers the periodic line counts; the other channels still produce
contract events directly.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from confluent_kafka import Consumer

from config.settings import Settings
from connectors.demo_native import NATIVE_CHANNELS, ConnectorClient
from connectors.demo_traffic import CHANNEL_MIX, ChannelPost, TrafficConfig, TrafficGenerator
from connectors.demo_world import CITIES, DemoWorld, build_world
from connectors.producer import ContractProducer
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.models import FulfillmentCommand, ReturnLabelCommand

DEFAULT_RULES = Path(__file__).resolve().parent.parent / "deploy" / "rules" / "default.yaml"
DEMO_USER = "dom-demo"


@click.command("demo")
@click.option("--world-only", is_flag=True, help="Load the world and rules, send no traffic.")
@click.option(
    "--rate", default=20.0, show_default=True, type=click.FloatRange(min=0.1), help="Orders/s."
)
@click.option("--duration", type=click.FloatRange(min=0), help="Seconds of traffic [Ctrl-C].")
@click.option("--skus", default=2500, show_default=True, type=click.IntRange(min=1))
@click.option("--stores", default=36, show_default=True, type=click.IntRange(1, len(CITIES)))
@click.option("--seed", default=42, show_default=True, help="Same seed, same world.")
@click.option(
    "--rules",
    "rules_file",
    default=DEFAULT_RULES,
    show_default=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Rule file published before the traffic starts.",
)
@click.option(
    "--wait",
    default=120.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait for the pipeline to show the opening stock before traffic (0: none).",
)
@click.option("--report-every", default=5.0, show_default=True, help="Seconds between lines.")
@click.option(
    "--connector",
    metavar="URL",
    help="Post WEB and MARKETPLACE orders, signed with DOM_WEBHOOK_SECRET, to the HTTP "
    "connector at URL (`dom connect`, e.g. http://127.0.0.1:8088) instead of producing them.",
)
@click.option(
    "--shop",
    metavar="URL",
    help="With --connector: customers order in the stand-in shop at URL (`dom standin`), which "
    "sends its signed webhooks to the connector, and marketplace orders are listed at its "
    "stand-in marketplace first, so that `dom sync` can report back to both.",
)
@click.pass_context
def demo(
    ctx: click.Context,
    world_only: bool,
    rate: float,
    duration: float | None,
    skus: int,
    stores: int,
    seed: int,
    rules_file: Path,
    wait: float,
    report_every: float,
    connector: str | None,
    shop: str | None,
) -> None:
    """A synthetic retailer and a stream of orders from every channel, until Ctrl-C."""
    settings = ctx.find_object(Settings) or Settings()
    ctx.obj = settings  # `dom rules publish` below reads its settings from the context
    if shop and not connector:
        raise click.UsageError("--shop needs --connector: the shop's webhooks go there")
    client = connector_client(settings, connector, shop) if connector else None
    started = datetime.now(UTC)
    world = build_world(now=started, skus=skus, stores=stores, seed=seed)
    if client is not None and shop:  # before the stock, whose web figures the sync pushes
        click.echo("demo shop: " + client.stock_shop([p.sku for p in world.products]))
    publish_world(settings, world)
    publish_rules(ctx, rules_file)
    if world_only:
        return
    config = TrafficConfig(rate=rate)
    with _stop_on_signals() as stop:
        if wait:
            wait_for_stock(settings, world, int(started.timestamp() * 1000), wait, stop)
        if client is not None and not client.wait_until_up(30.0, stop) and not stop.is_set():
            raise click.ClickException(f"no connector answering at {client.base_url}/healthz")
        click.echo(
            f"demo traffic: {rate:g} orders/s"
            + (f" for {duration:g}s" if duration else "")
            + (f", web store and marketplace through {client.base_url}" if client else "")
        )
        counts = drive(
            settings,
            world,
            config,
            stop,
            duration=duration,
            report_every=report_every,
            client=client,
        )
    click.echo("demo stopped: " + _describe(counts))


def connector_client(settings: Settings, url: str, shop: str | None = None) -> ConnectorClient:
    """The client posting to ``url`` (through the stand-in ``shop``, when given), signing
    with the connector's secret from the settings."""
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    if not secret:
        raise click.ClickException("--connector needs DOM_WEBHOOK_SECRET, the connector's secret")
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"not an http(s) URL: {url}", param_hint="--connector")
    if shop is not None and not shop.startswith(("http://", "https://")):
        raise click.BadParameter(f"not an http(s) URL: {shop}", param_hint="--shop")
    return ConnectorClient(url, secret, shop_url=shop)


def publish_world(settings: Settings, world: DemoWorld) -> None:
    """Locations, products and opening stock, flushed before anything else is sent."""
    with ContractProducer(settings) as producer:
        producer.send_bulk(world.records())
    if producer.report.failed:
        raise click.ClickException(f"world not published: {producer.report.errors}")
    click.echo(
        f"world: {len(world.dcs)} DCs, {len(world.stores)} stores, {len(world.products)} SKUs, "
        f"{len(world.stock)} stock events, {len(world.customers)} customers "
        f"({producer.report.delivered} records delivered)"
    )


def publish_rules(ctx: click.Context, rules_file: Path) -> None:
    """The rule file, through ``dom rules publish`` itself (only changed rules get versions)."""
    from dom.rules_cli import publish

    ctx.invoke(publish, files=(rules_file,), updated_by=DEMO_USER)


def wait_for_stock(
    settings: Settings, world: DemoWorld, since_ms: int, timeout: float, stop: threading.Event
) -> bool:
    """Wait until the pipeline has published availability for every SKU of the opening stock,
    so the first orders meet a stocked network (a worker still starting would backorder them)."""
    from dom.summary import tail_consumer

    expected = {event.sku for event in world.stock}
    seen: set[str] = set()
    began = time.monotonic()
    consumer = tail_consumer(settings, [registry.AVAILABILITY.name], since_ms=since_ms)
    try:
        while len(seen) < len(expected) and time.monotonic() - began < timeout:
            if stop.is_set():
                return False
            for message in consumer.consume(5000, 0.5):
                key = message.key()
                if message.error() is None and key is not None and key.decode() in expected:
                    seen.add(key.decode())
    finally:
        consumer.close()
    ready = len(seen) == len(expected)
    click.echo(
        f"opening stock {'visible' if ready else 'NOT yet visible'} in the pipeline for "
        f"{len(seen)}/{len(expected)} SKUs after {time.monotonic() - began:.1f}s"
        + ("" if ready else "; starting traffic anyway (is a worker running?)")
    )
    return ready


def drive(
    settings: Settings,
    world: DemoWorld,
    config: TrafficConfig,
    stop: threading.Event,
    *,
    duration: float | None = None,
    report_every: float = 5.0,
    client: ConnectorClient | None = None,
) -> Counter[str]:
    """Produce the generator's events as they fall due, answering commands, until ``stop``.

    With a ``client``, the web store's and the marketplace's orders are posted through it.
    """
    from dom.summary import tail_consumer

    start = datetime.now(UTC)
    run_id = _run_id(start)
    native = NATIVE_CHANNELS if client is not None else frozenset()
    generator = TrafficGenerator(world, config, run_id=run_id, start=start, native=native)
    deadline = start + timedelta(seconds=duration) if duration is not None else None
    topics = [registry.FULFILLMENT_COMMANDS.name, registry.RETURN_LABEL_COMMANDS.name]
    consumer = tail_consumer(settings, topics, since_ms=None)
    producer = ContractProducer(settings)
    next_report = time.monotonic() + report_every
    try:
        while not stop.is_set():
            now = datetime.now(UTC)
            if deadline is not None and now >= deadline:
                break
            for record in generator.tick(now):
                if isinstance(record, ChannelPost):
                    assert client is not None  # only native channels make posts
                    client.send(record)
                else:
                    producer.send(record)
            answer_commands(consumer, producer.codec, generator, now)
            if time.monotonic() >= next_report:
                next_report = time.monotonic() + report_every
                elapsed = (now - start).total_seconds()
                _count_answers(generator.counts, client)
                click.echo(f"[{elapsed:6.0f}s] {_describe(generator.counts)}")
    finally:
        report = producer.close()
        consumer.close()
        if client is not None:
            client.close()
    _count_answers(generator.counts, client)
    if report.failed:
        click.echo(f"delivery failures: {report.errors}", err=True)
    if client is not None and client.last_refusal:
        click.echo(f"connector refused or missed orders, last: {client.last_refusal}", err=True)
    generator.counts["delivered"] = report.delivered
    generator.counts["failed"] = report.failed
    return generator.counts


def answer_commands(
    consumer: Consumer, codec: Codec, generator: TrafficGenerator, now: datetime
) -> None:
    """Hand the commands the pipeline sent to the demo's warehouses and stores."""
    for message in consumer.consume(500, 0.05):
        value = message.value()
        if message.error() is not None or value is None:
            continue
        try:
            record = codec.decode(value)
        except DecodeError:
            continue
        if isinstance(record, FulfillmentCommand):
            generator.on_fulfillment_command(record, now)
        elif isinstance(record, ReturnLabelCommand):
            generator.on_return_label(record)


def _count_answers(counts: Counter[str], client: ConnectorClient | None) -> None:
    if client is not None:
        for kind, n in client.answers().items():
            counts[f"connector.{kind}"] = n


def _describe(counts: Counter[str]) -> str:
    orders = sum(counts[f"orders.{c.value}"] for c in CHANNEL_MIX)
    by_channel = " ".join(f"{c.value} {counts[f'orders.{c.value}']}" for c in CHANNEL_MIX)
    line = (
        f"orders {orders} ({by_channel}), cancels {counts['OrderCancelled']}, "
        f"fulfilment updates {counts['FulfillmentUpdate']}, returns "
        f"{counts['ReturnRequested']}/{counts['ReturnReceived']}, stock {counts['StockEvent']}"
    )
    if any(key.startswith("connector.") for key in counts):
        c = {key.removeprefix("connector."): n for key, n in counts.items()}
        line += (
            f"; connector: 202 {c.get('accepted', 0)}, 200 duplicate {c.get('duplicate', 0)}, "
            f"4xx {c.get('4xx', 0)}, 5xx {c.get('5xx', 0)}, "
            f"unreachable {c.get('unreachable', 0) + c.get('other', 0)}, "
            f"in flight {c.get('in_flight', 0)}"
        )
        if c.get("unsent"):
            line += f", unsent {c['unsent']}"
    return line


def _run_id(start: datetime) -> str:
    """Short and new for every run, so a rerun's order ids never collide with the last's."""
    n, digits, alphabet = int(start.timestamp() * 10), "", "0123456789abcdefghijklmnopqrstuvwxyz"
    while n:
        n, r = divmod(n, 36)
        digits = alphabet[r] + digits
    return digits[-7:]


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or Ctrl-C, so the loop can stop and flush instead of dying."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    demo()

"""The composition root: ``create_app(settings)`` builds the Faust app with every stage.

Nothing connects at import time; a worker is ``dom worker`` (or ``create_app`` in a test).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
from faust.sensors.prometheus import setup_prometheus_sensors

from config.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec
from streams import faust_fixes
from streams.inventory_stage import build_inventory_stage
from streams.log_limits import limit_client_logs
from streams.masters_stage import build_masters_stage
from streams.metrics import PipelineMetrics, watch_lag_and_tables
from streams.order_stage import build_order_stage
from streams.outbox import Outbox
from streams.rules_stage import build_rules_stage
from streams.views import NetworkView, follow_topics
from streams.web import register_pages


@dataclass
class Pipeline:
    """The app and the pieces tests and pages reach for."""

    app: faust.App
    view: NetworkView
    orders: Any
    inventory: Any
    metrics: PipelineMetrics


def create_app(settings: Settings) -> Pipeline:
    app = faust_app(settings)
    codec = Codec.from_url(
        settings.schema_registry_url, **(settings.schema_registry_config() or {})
    )
    metrics = PipelineMetrics()
    health = metrics.health
    # One /metrics page: Faust's own sensor (its prefix "faust_") and the pipeline's ("dom_").
    setup_prometheus_sensors(app, registry=metrics.registry, name_prefix="faust")
    outbox = Outbox(app, settings, codec, metrics)
    view = NetworkView()
    health.view_ready = view.ready.is_set
    inventory = build_inventory_stage(app, settings, codec, outbox, view)
    orders = build_order_stage(app, settings, codec, outbox, view)
    build_rules_stage(app, settings, codec, outbox, view)
    build_masters_stage(app, settings, codec, outbox)
    watched = [
        settings.topic(t.name)
        for t in (
            registry.LOCATIONS,
            registry.PRODUCTS,
            registry.AVAILABILITY,
            registry.FULFILLMENT_COMMANDS,
            registry.RULES,
        )
    ]

    @app.task  # type: ignore[untyped-decorator]
    async def follow_network() -> None:
        with health.task("follow_network"):
            await follow_topics(
                view,
                codec,
                settings.aiokafka_config(),
                watched,
                locations_topic=settings.topic(registry.LOCATIONS.name),
                rules_topic=settings.topic(registry.RULES.name),
                availability_topic=settings.topic(registry.AVAILABILITY.name),
                # only today's load counts: never decode every command ever sent
                today_topics=[settings.topic(registry.FULFILLMENT_COMMANDS.name)],
            )

    @app.task  # type: ignore[untyped-decorator]
    async def settle_heap() -> None:
        with health.task("settle_heap"):
            await view.ready.wait()
            freeze_heap()

    @app.task  # type: ignore[untyped-decorator]
    async def measure() -> None:
        with health.task("measure"):
            metrics.watch_gc()
            metrics.rules_in_force.set_function(lambda: len(view.rules))
            metrics.rules_refused.set_function(lambda: len(view.rule_errors))
            await watch_lag_and_tables(app, metrics, {"orders": orders, "inventory": inventory})

    register_pages(app, view, orders, health)
    return Pipeline(app=app, view=view, orders=orders, inventory=inventory, metrics=metrics)


def freeze_heap() -> None:
    """Leave what exists now (modules, the app, its clients, the network view) out of the
    cyclic garbage collector's full passes, which stop the event loop while they run.

    Without it, a worker's full collections took 110 to 150 ms each, every 10 to 20 s, and
    found nothing to free: each one a stall every order in flight waited out. With it: 50 to
    80 ms. Objects freed later by reference counting are still freed; only cycles among the
    frozen ones would stay, and these live as long as the worker anyway.
    """
    gc.collect()
    gc.freeze()


def faust_credentials(settings: Settings) -> Any:
    """Faust's credentials object for SSL/SASL clusters, or None for PLAINTEXT."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = settings.ssl_context() if protocol.endswith("SSL") else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    secret = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=secret.get_secret_value() if secret else "",
        ssl_context=context,
        mechanism=settings.kafka_sasl_mechanism or "PLAIN",
    )


def faust_app(settings: Settings, app_id: str | None = None) -> faust.App:
    """A Faust app configured as every stage runs (``app_id`` defaults to the pipeline's);
    ``dom bench`` builds its runtime floor on the same configuration."""
    faust_fixes.apply(fetch_max_wait_ms=settings.fetch_max_wait_ms)
    limit_client_logs()  # a broker outage must not fill the disk with one client error
    app = faust.App(
        app_id or settings.app_id,
        broker=settings.faust_broker_url(),
        broker_credentials=faust_credentials(settings),
        store="rocksdb://",
        datadir=str(settings.worker_dir),
        web_host=settings.web_host,
        web_port=settings.web_port,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=min(3.0, settings.broker_session_timeout / 5),
        broker_commit_every=500,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=16384,
        producer_acks=-1,
        producer_linger=settings.producer_linger_ms / 1000,
        # A dead letter is its input plus headers: see registry.MAX_DEAD_LETTER_BYTES.
        producer_max_request_size=registry.MAX_DEAD_LETTER_BYTES,
        table_standby_replicas=settings.table_standby_replicas,
        autodiscover=False,
    )
    # Table writes and sends queue in the producer buffer; its class default (100) makes every
    # incoming event wait on the broker (faust #173).
    app.producer.buffer.max_messages = 10_000
    return app


def run_worker(settings: Settings, build: Callable[[Settings], faust.App], loglevel: str) -> None:
    """Run the app ``build`` makes as a Faust worker until it is stopped."""
    settings.worker_dir.mkdir(parents=True, exist_ok=True)
    if settings.event_loop == "uvloop":
        import uvloop

        # Before the app exists: Faust and its threads take their loops from the policy.
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    faust_worker(build(settings), loglevel).execute_from_commandline()


def faust_worker(app: faust.App, loglevel: str) -> faust.Worker:
    """Faust's worker for ``app``, logging at ``loglevel`` and nothing below it.

    At warn and above Faust shows a terminal spinner that turns once per log record, and
    for it sets the root logger to DEBUG: every debug call of aiokafka and Faust (several
    per record sent) then builds a record only to be dropped. Measured on a pass-through
    agent with a table at warn: 420 µs of CPU per event with the spinner, 300 µs without.
    A worker runs under a supervisor, so the spinner goes.
    """
    worker = faust.Worker(app, loglevel=loglevel)
    worker.spinner = None
    return worker

"""The Faust app every stage runs in, configured once, and the worker that runs it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import faust

from config.settings import Settings
from schemas import topics as registry
from streams.runtime import faust_fixes
from streams.runtime.log_limits import limit_client_logs


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
        consumer_group_instance_id=group_instance_id(settings, app_id),
        broker_commit_every=500,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=16384,
        producer_acks=-1,
        producer_linger=settings.producer_linger_ms / 1000,
        producer_max_batch_size=settings.producer_batch_bytes,
        producer_compression_type=(
            None if settings.producer_compression == "none" else settings.producer_compression
        ),
        # A dead letter is its input plus headers: see registry.MAX_DEAD_LETTER_BYTES.
        producer_max_request_size=registry.MAX_DEAD_LETTER_BYTES,
        table_standby_replicas=settings.table_standby_replicas,
        autodiscover=False,
    )
    # Table writes and sends queue in the producer buffer; its class default (100) makes every
    # incoming event wait on the broker (faust #173).
    app.producer.buffer.max_messages = 10_000
    return app


def group_instance_id(settings: Settings, app_id: str | None = None) -> str | None:
    """The worker's static member name in its consumer group (None: a dynamic member).

    It names the worker's web address too: Faust's assignment carries each worker's URL, and
    a worker that took its old assignment back under another URL failed Faust's check of it
    and never got ready. Back under another address, it is a new member instead (its old
    one leaves after the session timeout)."""
    if not settings.static_membership:
        return None
    address = f"{settings.web_host}-{settings.web_port}"
    name = f"{app_id or settings.app_id}-{settings.worker_name}-{address}"
    return re.sub(r"[^a-zA-Z0-9._-]", "-", name)  # what Kafka allows in an instance id


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

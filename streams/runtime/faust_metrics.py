"""Faust's own figures (``faust_*``), for a counter's cost per message.

Faust's Prometheus sensor (``faust.sensors.prometheus``) updates about a dozen figures for
every message and event: counters and gauges per topic, partition and stream (each a label
lookup), a latency histogram per event, per send and per table read and write, and under
them the in-memory statistics of Faust's ``Monitor`` (deques, offsets and counters by topic).
The dashboard reads five of them (the alerts none); :class:`FaustFigures` keeps those five, under
the names and with the buckets Faust gives them, and does nothing else per message:

- ``faust_messages_received_total``: messages handed to the streams;
- ``faust_total_sent_messages_total`` and ``faust_total_error_messages_sent_total``: sends
  the broker took, and sends it refused;
- ``faust_total_rebalances``: 1 while a rebalance is under way, else 0;
- ``faust_consumer_commit_latency``: how long each offset commit took, in ms.

Per event it also notes when each partition last handed one to a stream, which Faust's own
liveness check reads (it logs a partition whose stream took nothing for 5 minutes).
Everything else of ``Monitor`` (the rebalance and commit bookkeeping, which happens a few
times a minute) stays Faust's own.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from faust import web
from faust.sensors import Monitor
from faust.sensors.prometheus import MS_LATENCY_BUCKETS
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class FaustFigures(Monitor):
    """Faust's sensor, cut to the five figures read (see the module). Its own attributes start
    with ``fig_``: ``Monitor`` has figures of its own by the shorter names."""

    def __init__(self, registry: CollectorRegistry, prefix: str = "faust", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fig_received = Counter(
            f"{prefix}_messages_received", "Total messages received", registry=registry
        )
        self.fig_sent = Counter(
            f"{prefix}_total_sent_messages", "Total messages sent", registry=registry
        )
        self.fig_send_errors = Counter(
            f"{prefix}_total_error_messages_sent", "Total error messages sent", registry=registry
        )
        self.fig_rebalancing = Gauge(
            f"{prefix}_total_rebalances", "Total rebalances", registry=registry
        )
        self.fig_commit_ms = Histogram(
            f"{prefix}_consumer_commit_latency",
            "Consumer commit latency in ms",
            registry=registry,
            buckets=MS_LATENCY_BUCKETS,
        )

    # ---- every message: one counter, or nothing ----------------------------------------------

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        self.fig_received.inc()

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        # Faust's liveness check reads this: without it, every partition with records waiting
        # is logged as "Stream has not started processing" every few seconds, from 5 minutes
        # (stream_processing_timeout) after the worker started, however busy its streams are.
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> None:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        self.fig_sent.inc()

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        self.fig_send_errors.inc()

    # ---- a few times a minute: Faust's own bookkeeping, and the figure ------------------------

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        super().on_commit_completed(consumer, state)
        self.fig_commit_ms.observe(self.ms_since(float(state)))

    def on_rebalance_start(self, app: Any) -> dict[Any, Any]:
        state: dict[Any, Any] = super().on_rebalance_start(app)
        self.fig_rebalancing.inc()
        return state

    def on_rebalance_return(self, app: Any, state: dict[Any, Any]) -> None:
        super().on_rebalance_return(app, state)
        self.fig_rebalancing.dec()


def serve_metrics(app: Any, registry: CollectorRegistry, prefix: str = "faust") -> None:
    """Count Faust's figures into ``registry`` and serve all of it at ``/metrics``."""
    app.monitor = FaustFigures(registry, prefix)

    @app.page("/metrics")  # type: ignore[untyped-decorator]
    async def metrics(view: web.View, request: web.Request) -> web.Response:
        # The exposition type carries a charset, which aiohttp takes only as a header.
        headers = {"Content-Type": CONTENT_TYPE_LATEST}
        return view.bytes(generate_latest(registry), headers=headers)

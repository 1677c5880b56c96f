"""`dom sync` as a process: the configured channels, the Kafka loop, and its HTTP side
(``/healthz``, ``/stats``, ``/metrics``), until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from typing import Any

import aiohttp
from aiohttp import web
from confluent_kafka import Consumer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import SecretStr

from config.settings import Settings
from connectors.producer import ContractProducer
from connectors.sync.amazon import AmazonSync
from connectors.sync.backoff import CallBudget
from connectors.sync.calls import AMAZON, SHOPIFY
from connectors.sync.http import CallMetrics, ChannelHttp
from connectors.sync.lwa import LwaCredentials
from connectors.sync.service import ChannelApi, SyncService, consumer_config, run
from connectors.sync.shopify import ShopifySync
from connectors.sync.stock import ShopifyStock

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 30.0


def _secret(value: SecretStr | None, setting: str) -> str:
    if value is None or not value.get_secret_value():
        raise ValueError(f"{setting} is not set (nor {setting}_FILE)")
    return value.get_secret_value()


def _shopify_http(
    settings: Settings, session: aiohttp.ClientSession, metrics: CallMetrics, *, rest: bool
) -> ChannelHttp:
    """The shop's API with its token; REST calls are paced by the call-limit bucket, GraphQL
    ones by their cost (`connectors.sync.stock`)."""
    token = _secret(settings.shopify_access_token, "DOM_SHOPIFY_ACCESS_TOKEN")
    return ChannelHttp(
        session,
        SHOPIFY,
        settings.shopify_shop_url or "",
        {"X-Shopify-Access-Token": token, "Accept": "application/json"},
        metrics,
        budget=CallBudget(settings.shopify_leak_rate) if rest else None,
    )


def _spapi_http(
    settings: Settings, session: aiohttp.ClientSession, metrics: CallMetrics
) -> ChannelHttp:
    """SP-API with Login with Amazon's renewed tokens when its client is set, else with the
    access token given (an hour's worth: fine for a trial, not for production)."""
    headers = {"Accept": "application/json"}
    credentials = None
    if settings.spapi_lwa_client_id:
        credentials = LwaCredentials(
            session,
            settings.spapi_lwa_endpoint,
            settings.spapi_lwa_client_id,
            _secret(settings.spapi_lwa_client_secret, "DOM_SPAPI_LWA_CLIENT_SECRET"),
            _secret(settings.spapi_refresh_token, "DOM_SPAPI_REFRESH_TOKEN"),
        )
    else:
        token = _secret(settings.spapi_access_token, "DOM_SPAPI_ACCESS_TOKEN")
        headers["x-amz-access-token"] = token
    url = settings.spapi_endpoint or ""
    return ChannelHttp(session, AMAZON, url, headers, metrics, credentials=credentials)


def build_channels(
    settings: Settings, session: aiohttp.ClientSession, metrics: CallMetrics
) -> dict[str, ChannelApi]:
    """The channels whose URL is set, ready to call; a URL without its token is an error."""
    channels: dict[str, ChannelApi] = {}
    if settings.shopify_shop_url:
        http = _shopify_http(settings, session, metrics, rest=True)
        channels[SHOPIFY] = ShopifySync(http, settings.shopify_api_version)
    if settings.spapi_endpoint:
        http = _spapi_http(settings, session, metrics)
        channels[AMAZON] = AmazonSync(http, settings.spapi_marketplace_id, settings.spapi_seller_id)
    return channels


def build_stock(
    settings: Settings,
    session: aiohttp.ClientSession,
    metrics: CallMetrics,
    channels: dict[str, ChannelApi],
) -> ShopifyStock | None:
    """The web channel's stock push, when a shop is configured and the push is not off; it
    shares the REST call bucket with the shop's fulfillments."""
    shop = channels.get(SHOPIFY)
    if not settings.shopify_push_stock or not isinstance(shop, ShopifySync):
        return None
    return ShopifyStock(
        shop.http,
        _shopify_http(settings, session, metrics, rest=False),
        settings.shopify_api_version,
        location_id=settings.shopify_location_id,
        refresh_s=settings.shopify_catalogue_refresh_s,
    )


class SyncCollector(Collector):
    """The calls' outcomes, from the service's own counts, on every scrape."""

    def __init__(self, service: SyncService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "dom_channel_sync_calls",
            "Channel sync calls by channel and the state they reached (DONE, RETRYING, FAILED)"
            " or unconfigured (the order's channel has no URL set).",
            labels=["channel", "state"],
        )
        for name, count in sorted(self._service.counts.items()):
            channel, _, state = name.partition(".")
            if state:
                family.add_metric([channel, state], count)
        yield family
        stock = CounterMetricFamily(
            "dom_channel_stock_figures",
            "The web channel's sellable figures set in the shop (pushed), refused by it, or"
            " not pushed after retries (failed); each failed or refused one is dead-lettered.",
            labels=["channel", "result"],
        )
        for result in ("pushed", "refused", "failed"):
            stock.add_metric([SHOPIFY, result], self._service.stock_counts[result])
        yield stock
        yield CounterMetricFamily(
            "dom_channel_sync_dead_letters",
            "Statuses sent to the dead-letter topic by the sync.",
            value=self._service.counts["dead_letters"],
        )


def http_app(service: SyncService, registry: CollectorRegistry) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "channels": sorted(service.channels)})

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(_stats(service))

    async def metrics(_request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/stats", stats)
    app.router.add_get("/metrics", metrics)
    return app


def _stats(service: SyncService) -> dict[str, Any]:
    return {
        "channels": sorted(service.channels),
        "counts": dict(sorted(service.counts.items())),
        "stock": dict(sorted(service.stock_counts.items())) if service.stock else None,
    }


async def serve_sync(settings: Settings, stop: asyncio.Event) -> None:
    """Run the sync until ``stop`` is set; flush and close on the way out."""
    registry = CollectorRegistry()
    metrics = CallMetrics(registry)
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        channels = build_channels(settings, session, metrics)
        if not channels:
            log.warning("no channel configured (DOM_SHOPIFY_SHOP_URL, DOM_SPAPI_ENDPOINT)")
        producer = ContractProducer(settings)
        stock = build_stock(settings, session, metrics, channels)
        service = SyncService(settings, channels, producer, stock=stock)
        registry.register(SyncCollector(service))
        consumer = Consumer(consumer_config(settings))
        runner = web.AppRunner(http_app(service, registry))
        await runner.setup()
        await web.TCPSite(runner, settings.sync_host, settings.sync_port).start()
        log.info(
            "sync for %s; /metrics on %s:%d",
            sorted(channels),
            settings.sync_host,
            settings.sync_port,
        )
        worker = asyncio.create_task(run(service, consumer, stop))
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([worker, stopped], return_when=asyncio.FIRST_COMPLETED)
            if not worker.done():  # asked to stop: a batch waiting on a channel is read again
                worker.cancel()  # by the next run, its offsets uncommitted
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            else:
                stopped.cancel()
                worker.result()  # re-raises what stopped it
        finally:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, consumer.close)
            await loop.run_in_executor(None, producer.close)
            await runner.cleanup()


def run_sync(settings: Settings) -> None:
    """Run the sync in this process until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await serve_sync(settings, stop)

    asyncio.run(main())

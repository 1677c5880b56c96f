"""The channel connector's HTTP side: web store webhooks and marketplace documents in, contract
events and order actions out, answered only once the broker confirmed them.

Endpoints (each signed: base64 HMAC-SHA256 of the raw body with ``DOM_WEBHOOK_SECRET``):

- ``POST /webhooks/shopify/orders-create``: a Shopify ``orders/create`` webhook, signed in
  ``X-Shopify-Hmac-Sha256``: an `OrderPlaced` on ``dom.orders.v1``.
- ``POST /webhooks/shopify/orders-cancelled``: ``orders/cancelled``: an `OrderCancelled` on
  ``dom.orders.v1``.
- ``POST /webhooks/shopify/orders-edited`` and ``POST /webhooks/shopify/orders-updated``:
  ``orders/edited`` and ``orders/updated``: `OrderAction`s on ``dom.order-actions.v1``,
  ``CANCEL_LINES`` for units removed from a line, ``CHANGE_SHIP_TO`` for a new shipping
  address. Shopify sends both for one edit, in either order: the connector remembers what it
  asked per order and line, so no unit is asked to be cancelled twice
  (`connectors.order_memory`).
- ``POST /webhooks/shopify``: any of those four topics at one address, by ``X-Shopify-Topic``;
  another topic is acknowledged (``200 {"ignored": true}``) and ignored. A topic endpoint
  refuses (422) a webhook whose ``X-Shopify-Topic`` names another topic.
- Shopify's webhooks are deduplicated by ``X-Shopify-Webhook-Id`` (without the header: by the
  order, the order edit, or the order and its ``updated_at``).
- ``POST /marketplace/orders``: an SP-API-like order document (`connectors.marketplace`),
  signed the same way in ``X-Dom-Hmac-Sha256`` with the same secret: one scheme to operate,
  and unlike a bearer token the signature also covers the body. Deduplicated by
  ``AmazonOrderId``: a marketplace order is placed once.
- ``POST /marketplace/cancellations``: a cancelled order's SP-API-like document (``OrderStatus``
  ``Canceled``), signed in ``X-Dom-Hmac-Sha256``: an `OrderCancelled`, deduplicated by
  ``AmazonOrderId``.
- ``GET /healthz``; ``GET /stats``: the producer's delivery report and counts of answers;
  ``GET /metrics``: the same for Prometheus.

The handlers are `connectors.endpoints`; producing and awaiting the broker's word,
`connectors.delivery`; this module composes the application and runs it.

Answers: ``202`` the records are on the broker (``event_id``, or the ``action_ids``);
``200 {"duplicate": true}`` they already were, or the webhook changes nothing the pipeline was
not told (then with a ``detail``), nothing produced; ``401`` bad or missing signature (or no
secret configured), nothing produced; ``422 {"errors": [{field, message}]}`` the body is not
JSON (or nested too deeply, or carries a lone surrogate) or not a valid order or change;
``413 {"error"}`` the body is over 1 MiB, or a record over Kafka's message size;
``404``/``405 {"error"}`` no such endpoint; ``503`` the broker did not confirm in time (the
sender should retry; ids are deterministic, so a retry after a late delivery is harmless
downstream). Bad input is a 4xx with a reason, never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from config.settings import Settings
from connectors.dedup import OrderNotes, SeenIds
from connectors.delivery import DEFAULT_DELIVERY_TIMEOUT, Connector
from connectors.endpoints import (
    CONNECTOR,
    DOM_HMAC_HEADER,
    ROUTES,
    SHOPIFY_HMAC_HEADER,
    SHOPIFY_WEBHOOK_ID_HEADER,
    sign,
    signature_ok,
)
from connectors.metrics import exposition
from connectors.producer import ContractProducer

log = logging.getLogger(__name__)

MAX_BODY = 1024**2  # aiohttp's default, named so that a 413 can say it
# aiohttp's parser refuses a longer request line with a plain-text 400 before any handler
# runs; 16 KiB lets an absurd path (a 10 KB id, say) reach the router and its JSON 404.
MAX_REQUEST_LINE = 16 * 1024

__all__ = [
    "DEFAULT_DELIVERY_TIMEOUT",
    "DOM_HMAC_HEADER",
    "MAX_BODY",
    "SHOPIFY_HMAC_HEADER",
    "SHOPIFY_WEBHOOK_ID_HEADER",
    "create_app",
    "run_connector",
    "serve",
    "sign",
    "signature_ok",
]


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """aiohttp's own refusals (no such path, wrong method, body too large) answered as JSON
    with a reason, like every other answer; a bug of ours as a JSON 500, logged."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        reason = f"the request body is larger than {MAX_BODY // 1024} KiB"
        return web.json_response({"error": reason}, status=413)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return web.json_response({"error": error.reason}, status=error.status, headers=allow)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        failed = {"error": "the connector failed to answer; see its log"}
        return web.json_response(failed, status=500)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONNECTOR].stats())


async def metrics(request: web.Request) -> web.Response:
    body = exposition(request.app[CONNECTOR])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


# ---- Composition and lifecycle -------------------------------------------------------------------


def create_app(
    settings: Settings,
    *,
    producer: ContractProducer | None = None,
    delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT,
) -> web.Application:
    """The connector application; the producer and the dedup file open when it starts."""
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[json_errors],
        handler_args={"max_line_size": MAX_REQUEST_LINE},
    )
    for path, handler in ROUTES:
        app.router.add_post(path, handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/stats", stats)
    app.router.add_get("/metrics", metrics)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        path = settings.data_dir / "connectors" / "webhook-ids.sqlite3"
        seen, notes = SeenIds(path), OrderNotes(path)
        connector = Connector(
            settings, producer or ContractProducer(settings), seen, notes, delivery_timeout
        )
        app[CONNECTOR] = connector
        poller = asyncio.create_task(connector.poll_forever())
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            report = await asyncio.get_running_loop().run_in_executor(
                None, connector.producer.close
            )
            seen.close()
            notes.close()
            log.info("connector stopped: %d delivered, %d failed", report.delivered, report.failed)

    app.cleanup_ctx.append(lifecycle)
    return app


async def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    stop: asyncio.Event | None = None,
    delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT,
) -> None:
    """Serve until ``stop`` is set (or the task is cancelled), then flush and close."""
    runner = web.AppRunner(create_app(settings, delivery_timeout=delivery_timeout))
    await runner.setup()
    try:
        host = host or settings.connector_host
        port = port or settings.connector_port
        await web.TCPSite(runner, host, port).start()
        log.info("connector listening on http://%s:%d", host, port)
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()


def run_connector(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Run the connector in this process until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
                loop.add_signal_handler(signum, stop.set)
        await serve(settings, host=host, port=port, stop=stop)

    asyncio.run(main())

"""The channel connector's HTTP side: web store webhooks and marketplace documents in, contract
`OrderPlaced` events out, answered only once the broker confirmed them.

Endpoints:

- ``POST /webhooks/shopify/orders-create``: a Shopify ``orders/create`` webhook, signed in
  ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body with ``DOM_WEBHOOK_SECRET``).
  Deduplicated by ``X-Shopify-Webhook-Id`` (by the order id when the header is absent).
- ``POST /marketplace/orders``: an SP-API-like order document (`connectors.marketplace`),
  signed the same way in ``X-Dom-Hmac-Sha256`` with the same secret: one scheme to operate,
  and unlike a bearer token the signature also covers the body. Deduplicated by
  ``AmazonOrderId``: a marketplace order is placed once.
- ``GET /healthz``; ``GET /stats``: the producer's delivery report and counts of answers;
  ``GET /metrics``: the same for Prometheus.

Answers: ``202`` the event is on the broker; ``200 {"duplicate": true}`` it already was, nothing
produced; ``401`` bad or missing signature (or no secret configured), nothing produced;
``422 {"errors": [{field, message}]}`` the body is not JSON (or nested too deeply, or carries a
lone surrogate) or not a valid order; ``413 {"error"}`` the body is over 1 MiB, or the order's
record over Kafka's message size; ``404``/``405 {"error"}`` no such endpoint; ``503`` the broker
did not confirm in time (the sender should retry; the event id is deterministic, so a retry
after a late delivery is harmless downstream). Bad input is a 4xx with a reason, never a 500.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import signal
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import SecretStr

from config.settings import Settings
from connectors.dedup import SeenIds
from connectors.json_input import JsonInputError, load_json
from connectors.marketplace import marketplace_order
from connectors.metrics import exposition
from connectors.producer import ContractProducer
from connectors.shopify import FieldError, PayloadError, shopify_order
from schemas.orders import OrderPlaced

log = logging.getLogger(__name__)

SHOPIFY_HMAC_HEADER = "X-Shopify-Hmac-Sha256"
SHOPIFY_WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
DOM_HMAC_HEADER = "X-Dom-Hmac-Sha256"
DEFAULT_DELIVERY_TIMEOUT = 10.0
POLL_INTERVAL = 0.2
MAX_BODY = 1024**2  # aiohttp's default, named so that a 413 can say it
# aiohttp's parser refuses a longer request line with a plain-text 400 before any handler
# runs; 16 KiB lets an absurd path (a 10 KB id, say) reach the router and its JSON 404.
MAX_REQUEST_LINE = 16 * 1024


def sign(secret: str, body: bytes) -> str:
    """The signature a sender puts in the HMAC header: base64 of HMAC-SHA256(secret, body)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signature_ok(secret: SecretStr | None, body: bytes, given: str | None) -> bool:
    """Whether ``given`` signs ``body``; never true without a secret (constant-time compare)."""
    if secret is None or not secret.get_secret_value() or not given:
        return False
    expected = sign(secret.get_secret_value(), body)
    return hmac.compare_digest(expected.encode(), given.strip().encode())


def parse_json(body: bytes) -> Any:
    """The body as JSON, or a `PayloadError` about the whole body (`connectors.json_input`)."""
    try:
        return load_json(body)
    except JsonInputError as exc:
        raise PayloadError([FieldError(field="body", message=str(exc))]) from exc


@dataclass(frozen=True)
class Outcome:
    """What became of one order: delivered now, delivered before, not confirmed, or refused
    before it left (its record does not encode, or is larger than a topic takes)."""

    status: str  # "accepted" | "duplicate" | "unavailable" | "too_large" | "unencodable"
    detail: str = ""


class Connector:
    """The state behind the endpoints: producer, seen delivery ids, counts, in-flight ids."""

    def __init__(
        self,
        settings: Settings,
        producer: ContractProducer,
        seen: SeenIds,
        delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.seen = seen
        self.delivery_timeout = delivery_timeout
        self.answers: Counter[str] = Counter()
        # A repeat arriving while the first delivery is still unconfirmed (the sender timed out
        # and retried) waits for that first outcome instead of producing a second time.
        self._in_flight: dict[str, asyncio.Future[Outcome]] = {}

    async def publish(self, key: str, order: OrderPlaced) -> Outcome:
        """Produce ``order`` unless ``key`` was delivered before; wait for the broker's word."""
        if key in self.seen:
            return Outcome("duplicate")
        if (first := self._in_flight.get(key)) is not None:
            earlier = await asyncio.shield(first)
            return Outcome("duplicate") if earlier.status == "accepted" else earlier
        first = asyncio.get_running_loop().create_future()
        self._in_flight[key] = first
        try:
            outcome = await self._deliver(order)
            if outcome.status == "accepted":
                self.seen.remember(key, order.order_id)
            first.set_result(outcome)
            return outcome
        finally:
            del self._in_flight[key]
            if not first.done():
                first.set_result(Outcome("unavailable", "retry"))

    async def _deliver(self, order: OrderPlaced) -> Outcome:
        loop = asyncio.get_running_loop()
        report: asyncio.Future[KafkaError | None] = loop.create_future()

        def told(err: KafkaError | None) -> None:  # from a poll, in whatever thread ran it
            loop.call_soon_threadsafe(_settle, report, err)

        try:  # in the executor: encoding may ask a schema registry over HTTP
            await loop.run_in_executor(None, partial(self.producer.send, order, on_delivery=told))
        except KafkaException as exc:
            return _not_produced(order, exc.args[0] if exc.args else None, str(exc))
        except ValueError as exc:  # the codec refused the record: the order's fault, not Kafka's
            return Outcome("unencodable", f"the order cannot be encoded: {exc}")
        except Exception as exc:  # the schema registry's client (its errors share no public type)
            log.exception("could not produce %s", order.order_id)
            detail = f"could not produce the record ({type(exc).__name__}); see the connector's log"
            return Outcome("unavailable", detail)
        try:
            err = await asyncio.wait_for(report, self.delivery_timeout)
        except TimeoutError:
            return Outcome("unavailable", f"no delivery report in {self.delivery_timeout:g}s")
        return Outcome("unavailable", str(err)) if err is not None else Outcome("accepted")

    async def poll_forever(self) -> None:
        """Serve delivery reports (off the event loop) for as long as the app runs."""
        loop = asyncio.get_running_loop()
        while True:
            await loop.run_in_executor(None, self.producer.poll, POLL_INTERVAL)

    def stats(self) -> dict[str, Any]:
        report = self.producer.report
        return {
            "delivery": {
                "delivered": report.delivered,
                "failed": report.failed,
                "errors": list(report.errors),
            },
            "answers": dict(sorted(self.answers.items())),
            "seen_ids": len(self.seen),
            "in_flight": len(self._in_flight),
        }


def _not_produced(order: OrderPlaced, err: Any, detail: str) -> Outcome:
    """Why ``produce`` refused a record: too large for any topic (the sender must change it),
    or the client is in trouble (the sender should retry)."""
    if isinstance(err, KafkaError) and err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
        return Outcome("too_large", "the order's record is larger than a Kafka message may be")
    log.error("could not produce %s: %s", order.order_id, detail)
    return Outcome("unavailable", detail)


def _settle(future: asyncio.Future[KafkaError | None], err: KafkaError | None) -> None:
    if not future.done():  # a timed-out wait has cancelled it already
        future.set_result(err)


CONNECTOR = web.AppKey("connector", Connector)


# ---- Handlers ------------------------------------------------------------------------------------


async def shopify_orders_create(request: web.Request) -> web.Response:
    """A Shopify ``orders/create`` webhook."""
    return await _receive(request, "shopify", SHOPIFY_HMAC_HEADER, _shopify_key)


async def marketplace_orders(request: web.Request) -> web.Response:
    """A marketplace order document."""
    return await _receive(
        request, "marketplace", DOM_HMAC_HEADER, lambda _req, order: f"marketplace:{order.order_id}"
    )


def _shopify_key(request: web.Request, order: OrderPlaced) -> str:
    webhook_id = request.headers.get(SHOPIFY_WEBHOOK_ID_HEADER, "").strip()
    return f"shopify:{webhook_id}" if webhook_id else f"shopify-order:{order.order_id}"


_MAPPINGS: dict[str, Callable[[Any], OrderPlaced]] = {
    "shopify": shopify_order,
    "marketplace": marketplace_order,
}


async def _receive(
    request: web.Request,
    source: str,
    signature_header: str,
    dedup_key: Callable[[web.Request, OrderPlaced], str],
) -> web.Response:
    connector = request.app[CONNECTOR]
    body = await request.read()
    if not signature_ok(
        connector.settings.webhook_secret, body, request.headers.get(signature_header)
    ):
        log.warning("%s: refused a request with a bad or missing %s", source, signature_header)
        return _answer(connector, source, "unauthorized", 401, {"error": "invalid signature"})
    try:
        order = _MAPPINGS[source](parse_json(body))
    except PayloadError as exc:
        log.warning("%s: invalid order: %s", source, exc)
        return _answer(connector, source, "invalid", 422, {"errors": exc.errors})
    outcome = await connector.publish(dedup_key(request, order), order)
    return _answer_outcome(connector, source, order, outcome)


def _answer_outcome(
    connector: Connector, source: str, order: OrderPlaced, outcome: Outcome
) -> web.Response:
    """The answer to an order that mapped: what became of its record."""
    if outcome.status == "accepted":
        log.info("%s: %s produced (%s)", source, order.order_id, order.event_id)
        accepted = {"accepted": True, "order_id": order.order_id, "event_id": order.event_id}
        return _answer(connector, source, "accepted", 202, accepted)
    if outcome.status == "duplicate":
        duplicate = {"duplicate": True, "order_id": order.order_id}
        return _answer(connector, source, "duplicate", 200, duplicate)
    if outcome.status == "too_large":
        return _answer(connector, source, "too_large", 413, {"error": outcome.detail})
    if outcome.status == "unencodable":
        errors = [FieldError(field="body", message=outcome.detail)]
        return _answer(connector, source, "invalid", 422, {"errors": errors})
    log.error("%s: %s not confirmed by the broker: %s", source, order.order_id, outcome.detail)
    unavailable = {"error": "the broker did not confirm the order", "detail": outcome.detail}
    return _answer(connector, source, "unavailable", 503, unavailable, headers={"Retry-After": "5"})


def _answer(
    connector: Connector,
    source: str,
    kind: str,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> web.Response:
    connector.answers[f"{source}.{kind}"] += 1
    return web.json_response(body, status=status, headers=headers)


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
    app.router.add_post("/webhooks/shopify/orders-create", shopify_orders_create)
    app.router.add_post("/marketplace/orders", marketplace_orders)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/stats", stats)
    app.router.add_get("/metrics", metrics)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        seen = SeenIds(settings.data_dir / "connectors" / "webhook-ids.sqlite3")
        connector = Connector(
            settings, producer or ContractProducer(settings), seen, delivery_timeout
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

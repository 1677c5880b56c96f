"""The channel connector over HTTP: signed web store webhooks and marketplace documents become
`OrderPlaced` events on the real broker and get routed; bad signatures, bad bodies and repeated
webhooks produce nothing. The last tests drive the app with a fake producer (no broker) for
what a broker will not do on demand: refuse or stall a delivery."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from aiohttp.test_utils import TestClient, TestServer

from config.settings import Settings
from connectors.dedup import SeenIds
from connectors.producer import ContractProducer, DeliveryCallback, DeliveryReport
from connectors.web import (
    DOM_HMAC_HEADER,
    SHOPIFY_HMAC_HEADER,
    SHOPIFY_WEBHOOK_ID_HEADER,
    create_app,
    serve,
    sign,
)
from schemas.enums import ROUTING_OUTCOMES
from schemas.models import Message, OrderPlaced, OrderStatusChanged
from tests.conftest import free_port
from tests.e2e.harness import Pipeline
from tests.unit.factories import make_location, make_product, make_stock_event

SECRET = "shpss_0123456789abcdef"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SHOPIFY_PATH = "/webhooks/shopify/orders-create"
MARKETPLACE_PATH = "/marketplace/orders"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def shopify_headers(body: bytes, webhook_id: str, secret: str = SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        SHOPIFY_HMAC_HEADER: sign(secret, body),
        SHOPIFY_WEBHOOK_ID_HEADER: webhook_id,
        "X-Shopify-Topic": "orders/create",
    }


class RunningConnector:
    """`serve` in a thread of its own with its own event loop, as `dom connect` runs it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        await serve(self.settings, host="127.0.0.1", port=self.port, stop=self._stop)

    def __enter__(self) -> RunningConnector:
        self._thread.start()
        self._ready.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.get("/healthz")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the connector did not answer /healthz")

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the connector did not stop"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, Any]:
        with urllib.request.urlopen(self.url(path), timeout=10) as response:
            return response.status, json.loads(response.read())

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        request = urllib.request.Request(self.url(path), data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())


def outcome_of(order_id: str) -> Callable[[list[Message]], bool]:
    def done(records: list[Message]) -> bool:
        return any(
            isinstance(r, OrderStatusChanged)
            and r.order_id == order_id
            and r.status in ROUTING_OUTCOMES
            for r in records
        )

    return done


def test_webhooks_on_the_real_broker(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(webhook_secret=SECRET)
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    try:
        pipeline.produce(
            [
                make_location("DC-EAST"),
                make_product("SKU-1"),
                make_product("SKU-2"),
                make_stock_event(sku="SKU-1", location_id="DC-EAST", quantity=10),
                make_stock_event(sku="SKU-2", location_id="DC-EAST", quantity=10),
            ]
        )
        # as a shop goes live: its stock is on sale before the first order comes in
        for sku in ("SKU-1", "SKU-2"):
            pipeline.availability_where(sku, lambda x: x["DC-EAST"].available == 10)
        order_body = fixture_bytes("shopify_order_ship.json")
        web_order_id = "WEB-5821539172601"

        with RunningConnector(settings) as connector:
            # A correctly signed order: 202 once the broker has it.
            status, body = connector.post(
                SHOPIFY_PATH, order_body, shopify_headers(order_body, "wh-1")
            )
            assert (status, body["order_id"]) == (202, web_order_id), body
            # Shopify retries the same webhook: acknowledged, not produced again.
            status, body = connector.post(
                SHOPIFY_PATH, order_body, shopify_headers(order_body, "wh-1")
            )
            assert (status, body) == (200, {"duplicate": True, "order_id": web_order_id})

            # Signed with the wrong secret, or not at all: 401.
            other = json.loads(order_body)
            other["id"] = 999
            forged = json.dumps(other).encode()
            wrong = shopify_headers(forged, "wh-2", secret="not-the-secret")
            assert connector.post(SHOPIFY_PATH, forged, wrong)[0] == 401
            unsigned = {SHOPIFY_WEBHOOK_ID_HEADER: "wh-3"}
            assert connector.post(SHOPIFY_PATH, forged, unsigned)[0] == 401
            # A signature of another body does not sign this one.
            tampered = shopify_headers(order_body, "wh-4")
            assert connector.post(SHOPIFY_PATH, forged, tampered)[0] == 401

            # Signed, but not a valid order: 422 with the fields at fault.
            other["line_items"][0]["quantity"] = 0
            del other["currency"]
            bad = json.dumps(other).encode()
            status, body = connector.post(SHOPIFY_PATH, bad, shopify_headers(bad, "wh-5"))
            assert status == 422
            assert {e["field"] for e in body["errors"]} == {"line_items.0.quantity", "currency"}
            status, body = connector.post(SHOPIFY_PATH, b"{oops", shopify_headers(b"{oops", "wh-6"))
            assert status == 422 and body["errors"][0]["field"] == "body"

            # A marketplace document, signed in the connector's own header.
            doc = fixture_bytes("marketplace_order.json")
            mkt_headers = {DOM_HMAC_HEADER: sign(SECRET, doc)}
            status, body = connector.post(MARKETPLACE_PATH, doc, mkt_headers)
            assert (status, body["order_id"]) == (202, "MKT-113-8734216-5509851"), body
            assert connector.post(MARKETPLACE_PATH, doc, mkt_headers)[1]["duplicate"] is True
            assert connector.post(MARKETPLACE_PATH, doc, {SHOPIFY_HMAC_HEADER: "x"})[0] == 401

            _, stats = connector.get("/stats")
            assert stats["delivery"] == {"delivered": 2, "failed": 0, "errors": []}
            assert stats["answers"] == {
                "marketplace.accepted": 1,
                "marketplace.duplicate": 1,
                "marketplace.unauthorized": 1,
                "shopify.accepted": 1,
                "shopify.duplicate": 1,
                "shopify.invalid": 2,
                "shopify.unauthorized": 3,
            }
            with urllib.request.urlopen(connector.url("/metrics"), timeout=10) as response:
                metrics = response.read().decode()
            assert 'dom_connector_requests_total{answer="accepted",source="shopify"} 1.0' in metrics
            assert "dom_connector_produce_failures_total 0.0" in metrics
            assert "dom_connector_delivered_total 2.0" in metrics

        # Seen webhook ids outlive the connector.
        with RunningConnector(settings) as connector:
            status, body = connector.post(
                SHOPIFY_PATH, order_body, shopify_headers(order_body, "wh-1")
            )
            assert (status, body["duplicate"]) == (200, True)
            assert connector.get("/stats")[1]["delivery"]["delivered"] == 0

        statuses = pipeline.read("dom.order-status.v1", outcome_of(web_order_id))
        routed = {s.order_id: s.status for s in statuses if s.status in ROUTING_OUTCOMES}
        assert routed.get(web_order_id) == "ALLOCATED", pipeline.workers["w1"].log_tail()
        # SP-API addresses carry no coordinates: without a rate table covering them, routing
        # rejects the order ("no coordinates and no rate covers it"). Still one outcome.
        statuses = pipeline.read("dom.order-status.v1", outcome_of("MKT-113-8734216-5509851"))
        assert any(
            s.order_id == "MKT-113-8734216-5509851" and s.status in ROUTING_OUTCOMES
            for s in statuses
        )

        placed = [
            pipeline.codec.decode(m.value())
            for m in pipeline.read_changelog_messages("dom.orders.v1")
        ]
        assert sorted(p.order_id for p in placed if isinstance(p, OrderPlaced)) == [
            "MKT-113-8734216-5509851",
            web_order_id,
        ]
    finally:
        pipeline.stop_all()


# ---- Without a broker: what a broker will not do on demand ------------------------------------


class FakeProducer:
    """Stands in for `ContractProducer`: reports ``error`` for each message once released."""

    def __init__(self, error: str | None = None, held: bool = False) -> None:
        self.report = DeliveryReport()
        self.sent: list[Message] = []
        self.error = error
        self.held = held
        self.flushed = False
        self._pending: list[DeliveryCallback] = []

    def send(self, record: Message, *, on_delivery: DeliveryCallback | None = None) -> None:
        self.sent.append(record)
        if on_delivery is not None:
            self._pending.append(on_delivery)

    def poll(self, timeout: float = 0.0) -> int:
        if self.held or not self._pending:
            time.sleep(timeout)
            return 0
        pending, self._pending = self._pending, []
        for told in pending:
            if self.error is None:
                self.report.delivered += 1
            else:
                self.report.failed += 1
                self.report.errors.append(self.error)
            told(cast(Any, self.error))
        return len(pending)

    def flush(self, timeout: float = 30.0) -> DeliveryReport:
        self.held = False
        self.poll(0)
        self.flushed = True
        return self.report

    def close(self, timeout: float = 30.0) -> DeliveryReport:
        return self.flush(timeout)


def run_app(
    tmp_path: Path,
    producer: FakeProducer,
    scenario: Callable[[TestClient[Any, Any]], Any],
    *,
    secret: str | None = SECRET,
    delivery_timeout: float = 5.0,
) -> None:
    settings = Settings(data_dir=tmp_path / "var", webhook_secret=secret)
    app = create_app(
        settings, producer=cast(ContractProducer, producer), delivery_timeout=delivery_timeout
    )

    async def main() -> None:
        async with TestClient(TestServer(app)) as client:
            await scenario(client)

    asyncio.run(main())


async def post_order(client: TestClient[Any, Any], webhook_id: str) -> tuple[int, Any]:
    body = fixture_bytes("shopify_order_ship.json")
    response = await client.post(SHOPIFY_PATH, data=body, headers=shopify_headers(body, webhook_id))
    return response.status, await response.json()


def test_failed_delivery_is_503_and_a_retry_produces_again(tmp_path: Path) -> None:
    producer = FakeProducer(error="Broker: Not enough in-sync replicas")

    async def scenario(client: TestClient[Any, Any]) -> None:
        status, body = await post_order(client, "wh-1")
        assert status == 503 and "in-sync" in body["detail"]
        producer.error = None  # the broker recovered; Shopify retries the same webhook
        assert (await post_order(client, "wh-1"))[0] == 202
        stats = await (await client.get("/stats")).json()
        assert stats["delivery"]["failed"] == 1 and stats["delivery"]["delivered"] == 1
        assert stats["answers"] == {"shopify.accepted": 1, "shopify.unavailable": 1}

    run_app(tmp_path, producer, scenario)
    assert len(producer.sent) == 2 and producer.flushed


def test_no_delivery_report_in_time_is_503(tmp_path: Path) -> None:
    producer = FakeProducer(held=True)

    async def scenario(client: TestClient[Any, Any]) -> None:
        status, body = await post_order(client, "wh-1")
        assert status == 503 and "no delivery report" in body["detail"]

    run_app(tmp_path, producer, scenario, delivery_timeout=0.3)


def test_a_repeat_during_delivery_waits_for_the_first(tmp_path: Path) -> None:
    producer = FakeProducer(held=True)

    async def scenario(client: TestClient[Any, Any]) -> None:
        first = asyncio.ensure_future(post_order(client, "wh-1"))
        await asyncio.sleep(0.3)
        second = asyncio.ensure_future(post_order(client, "wh-1"))
        await asyncio.sleep(0.3)
        assert not first.done() and not second.done()
        producer.held = False
        assert (await first)[0] == 202
        assert (await second) == (200, {"duplicate": True, "order_id": "WEB-5821539172601"})

    run_app(tmp_path, producer, scenario)
    assert len(producer.sent) == 1


def test_without_a_secret_every_order_is_refused(tmp_path: Path) -> None:
    producer = FakeProducer()

    async def scenario(client: TestClient[Any, Any]) -> None:
        assert (await post_order(client, "wh-1"))[0] == 401
        assert (await client.get("/healthz")).status == 200

    run_app(tmp_path, producer, scenario, secret=None)
    assert producer.sent == []


def test_seen_ids_are_bounded_and_persistent(tmp_path: Path) -> None:
    path = tmp_path / "seen.sqlite3"
    with SeenIds(path, max_entries=10) as seen:
        for n in range(25):
            seen.remember(f"shopify:{n}", f"WEB-{n}")
        seen.remember("shopify:24", "again")  # a repeat changes nothing
        assert len(seen) <= 10
        assert "shopify:0" not in seen and "shopify:24" in seen
    with SeenIds(path, max_entries=10) as reopened:
        assert "shopify:24" in reopened and reopened.note("shopify:24") == "WEB-24"
        assert len(reopened) <= 10


def test_json_nested_too_deeply_is_a_422_not_a_500(tmp_path: Path) -> None:
    producer = FakeProducer()
    body = b"[" * 30_000 + b"]" * 30_000

    async def scenario(client: TestClient[Any, Any]) -> None:
        response = await client.post(
            SHOPIFY_PATH, data=body, headers=shopify_headers(body, "wh-deep")
        )
        assert response.status == 422
        assert (await response.json())["errors"] == [
            {"field": "body", "message": "JSON nested too deeply"}
        ]

    run_app(tmp_path, producer, scenario)
    assert producer.sent == []

"""Channels hear back, on the real broker and over HTTP: a Shopify order placed in the stand-in
shop reaches the pipeline through its signed webhook, is routed, shipped by the warehouse, and
the shop gets one fulfillment per shipment with exactly its line items and tracking; a cancel
cancels it in the shop; a sync that reads everything again makes nothing twice; a throttled
shop gets its call after the wait; a shop that keeps failing leaves the call FAILED and its
status on the dead-letter topic, and `dom sync retry` makes it; the marketplace gets its
shipment confirmation."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from config.settings import Settings
from connectors.web import DOM_HMAC_HEADER, sign
from dom.admin import admin_client
from dom.sync_cli import sync, unread_statuses
from schemas.dlq import HEADER_ERROR, HEADER_STAGE
from schemas.enums import Channel, FulfillmentStatus, OrderActionKind, OrderStatus
from schemas.models import ActionLine, ChannelCall, FulfillmentUpdate, Message, OrderStatusChanged
from tests.conftest import free_port
from tests.e2e.channels import SHOP_TOKEN, SPAPI_TOKEN, RunningSync, Standins, wait_for
from tests.e2e.harness import Pipeline
from tests.e2e.test_webhook import RunningConnector
from tests.unit.factories import (
    at,
    make_cancel,
    make_location,
    make_order_action,
    make_product,
    make_stock_event,
)

SECRET = "shpss_sync_0123456789abcdef"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WEBHOOK = "/webhooks/shopify/orders-create"


def sync_settings(make_settings: Callable[..., Settings], **extra: Any) -> Settings:
    return make_settings(
        webhook_secret=SECRET,
        shopify_access_token=SHOP_TOKEN,
        spapi_access_token=SPAPI_TOKEN,
        sync_port=free_port(),
        sync_backoff_base_s=0.05,
        sync_backoff_cap_s=0.2,
        **extra,
    )


def with_urls(settings: Settings, standins: Standins) -> Settings:
    return settings.model_copy(
        update={"shopify_shop_url": standins.url, "spapi_endpoint": standins.url}
    )


def start_pipeline(settings: Settings, tmp_path: Path) -> Pipeline:
    """One worker; SKU-1 only at DC-EAST, SKU-2 only at DC-WEST: an order of both is split."""
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    pipeline.produce(
        [
            make_location("DC-EAST"),
            make_location("DC-WEST"),
            make_product("SKU-1"),
            make_product("SKU-2"),
            make_stock_event(sku="SKU-1", location_id="DC-EAST", quantity=50),
            make_stock_event(sku="SKU-2", location_id="DC-WEST", quantity=50),
        ]
    )
    pipeline.availability_where("SKU-2", lambda x: x["DC-WEST"].available == 50)
    pipeline.availability_where("SKU-1", lambda x: x["DC-EAST"].available == 50)
    return pipeline


def shopify_order(order_id: int, lines: dict[int, tuple[str, int]]) -> dict[str, Any]:
    """The fixture's order, as the shop would send it, with ``lines`` {line item id: (sku, n)}."""
    order = json.loads((FIXTURES / "shopify_order_ship.json").read_text())
    template = order["line_items"][0]
    order["id"] = order_id
    order["name"] = f"#{order_id}"
    order["line_items"] = [
        {**copy.deepcopy(template), "id": item, "sku": sku, "quantity": n, "price": "10.00"}
        for item, (sku, n) in lines.items()
    ]
    order["total_price"] = f"{sum(10 * n for _, n in lines.values())}.00"
    return order


def place_in_shop(standins: Standins, order: dict[str, Any]) -> None:
    answer = standins.control("POST", "shopify/orders", order)
    assert answer["webhook_status"] == 202, answer


def routed(pipeline: Pipeline, order_id: str) -> OrderStatusChanged:
    def done(records: list[Message]) -> bool:
        return any(_allocated(r, order_id) for r in records)

    records = pipeline.read("dom.order-status.v1", done)
    return next(r for r in records if _allocated(r, order_id))  # type: ignore[misc]


def _allocated(record: Message, order_id: str) -> bool:
    return (
        isinstance(record, OrderStatusChanged)
        and record.order_id == order_id
        and record.status == OrderStatus.ALLOCATED
    )


def ship_all(pipeline: Pipeline, status: OrderStatusChanged, carrier: str = "UPS") -> dict:
    """The warehouse ships every shipment; returns {shipment_id: tracking number}."""
    tracking = {
        s.shipment_id: f"1ZTRACK{n:04d}{status.order_id[-4:]}"
        for n, s in enumerate(status.shipments)
    }
    pipeline.produce(
        FulfillmentUpdate(
            event_id=f"{s.shipment_id}-shipped",
            order_id=status.order_id,
            shipment_id=s.shipment_id,
            location_id=s.location_id,
            status=FulfillmentStatus.SHIPPED,
            tracking_number=tracking[s.shipment_id],
            carrier=carrier,
            occurred_at=at(7200),
        )
        for s in status.shipments
    )
    return tracking


def fulfillments(standins: Standins, order_id: int, count: int) -> list[dict[str, Any]]:
    def made() -> list[dict[str, Any]]:
        found = standins.shop_order(order_id)["fulfillments"]
        return found if len(found) >= count else []

    return list(wait_for(f"{count} fulfillments of {order_id}", made))


def units(fulfillment: dict[str, Any]) -> dict[str, int]:
    return {str(item["id"]): item["quantity"] for item in fulfillment["line_items"]}


def calls_on_record(pipeline: Pipeline, done: Callable[[list[ChannelCall]], bool]) -> list:
    records = pipeline.read(
        "dom.channel-sync.v1", lambda r: done([c for c in r if isinstance(c, ChannelCall)])
    )
    return [c for c in records if isinstance(c, ChannelCall)]


def test_shopify_hears_of_each_shipment_once_and_of_a_cancel(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = sync_settings(make_settings)
    pipeline = start_pipeline(settings, tmp_path)
    try:
        with (
            RunningConnector(settings) as connector,
            Standins(connector.url(WEBHOOK), SECRET) as standins,
        ):
            settings = with_urls(settings, standins)
            place_in_shop(standins, shopify_order(7001, {71: ("SKU-1", 1), 72: ("SKU-2", 2)}))
            place_in_shop(standins, shopify_order(7002, {73: ("SKU-1", 1)}))
            place_in_shop(standins, shopify_order(7003, {74: ("SKU-1", 3), 75: ("SKU-2", 1)}))
            split = routed(pipeline, "WEB-7001")
            assert len(split.shipments) == 2  # one from each DC
            routed(pipeline, "WEB-7002")
            routed(pipeline, "WEB-7003")
            tracking = ship_all(pipeline, split)
            pipeline.produce([make_cancel("WEB-7002", event_id="cancel-7002")])
            cut = make_order_action(
                "WEB-7003",
                OrderActionKind.CANCEL_LINES,
                action_id="cut-7003",
                lines=[ActionLine(line_id="74", quantity=2)],
                reason="the customer called",
            )
            pipeline.produce([cut])

            with RunningSync(settings) as running:
                made = fulfillments(standins, 7001, 2)
                wait_for(
                    "7002 cancelled", lambda: standins.shop_order(7002)["order"]["cancelled_at"]
                )
                [refund] = wait_for("7003's refund", lambda: standins.shop_order(7003)["refunds"])
                wait_for("4 calls done", lambda: running.counts().get("shopify.DONE", 0) >= 4)

            # The cancelled units are cancelled in the shop, no more.
            assert [
                (i["line_item_id"], i["quantity"], i["restock_type"])
                for i in refund["refund_line_items"]
            ] == [(74, 2, "cancel")]

            # One fulfillment per shipment, with exactly its lines and its tracking.
            expected = {
                tracking[s.shipment_id]: {x.line_id: x.quantity for x in s.lines}
                for s in split.shipments
            }
            assert {f["tracking_number"]: units(f) for f in made} == expected
            assert {f["tracking_company"] for f in made} == {"UPS"}

            # A sync that reads every status again (its offsets lost) makes nothing twice.
            group = f"{settings.topic_prefix}dom-sync"
            admin = admin_client(settings)  # kept: its futures die with it
            for done in admin.delete_consumer_groups([group]).values():
                done.result(30)
            with RunningSync(settings):
                wait_for("the statuses read again", lambda: unread_statuses(settings) == 0)
            assert len(standins.shop_order(7001)["fulfillments"]) == 2
            assert len(standins.shop_calls("POST", "fulfillments.json")) == 2
            assert len(standins.shop_calls("POST", "/cancel.json")) == 1
            assert len(standins.shop_calls("POST", "/refunds.json")) == 1
            # Each call is DONE; a repeat that was made at all (the sync saw the status before
            # its own record of the call) found the shop had it already, or nothing left.
            record = calls_on_record(pipeline, lambda c: len(c) >= 4)
            assert {(c.call_id, c.state.value) for c in record} == {
                *((f"shopify:FULFIL:{s.shipment_id}", "DONE") for s in split.shipments),
                ("shopify:CANCEL:WEB-7002", "DONE"),
                ("shopify:CANCEL:WEB-7003/cut-7003", "DONE"),
            }
            first: dict[str, str] = {}
            for call in record:
                if call.call_id in first:
                    assert call.detail.startswith(("already", "nothing left", "lines already")), (
                        call
                    )
                first.setdefault(call.call_id, call.detail)
            assert first["shopify:CANCEL:WEB-7002"] == "order cancelled"
    finally:
        pipeline.stop_all()


def test_a_throttled_or_failing_shop_loses_nothing(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = sync_settings(make_settings, sync_max_attempts=3)
    pipeline = start_pipeline(settings, tmp_path)
    try:
        with (
            RunningConnector(settings) as connector,
            Standins(connector.url(WEBHOOK), SECRET) as standins,
        ):
            settings = with_urls(settings, standins)
            place_in_shop(standins, shopify_order(8001, {81: ("SKU-1", 1)}))
            place_in_shop(standins, shopify_order(8002, {82: ("SKU-2", 1)}))
            throttled = routed(pipeline, "WEB-8001")
            failing = routed(pipeline, "WEB-8002")
            standins.control(
                "POST",
                "shopify/faults",
                {
                    "status": 429,
                    "count": 3,
                    "path_contains": "8001/fulfillment_orders",
                    "retry_after": 1.0,
                },
            )
            standins.control(
                "POST",
                "shopify/faults",
                {"status": 500, "count": 3, "path_contains": "8002/fulfillment_orders"},
            )
            ship_all(pipeline, throttled)
            ship_all(pipeline, failing)

            with RunningSync(settings) as running:
                [made] = fulfillments(standins, 8001, 1)
                wait_for("8002 failed", lambda: running.counts().get("shopify.FAILED"))
                # Asked again by an operator, once the shop is well.
                result = CliRunner().invoke(sync, ["status", "--json"], obj=settings)
                assert result.exit_code == 0, result.output
                status = json.loads(result.output)
                call_id = f"shopify:FULFIL:{failing.shipments[0].shipment_id}"
                assert [row["call_id"] for row in status["failed"]] == [call_id]
                assert "retries exhausted" in status["failed"][0]["detail"]
                retried = CliRunner().invoke(
                    sync, ["retry", "--failed", "--by", "ana"], obj=settings
                )
                assert retried.exit_code == 0, retried.output
                assert f"retry asked: {call_id} (FAILED before)" in retried.output
                fulfillments(standins, 8002, 1)

            # The throttled call waited as told: three 429s, then the call went through.
            tries = standins.shop_calls("GET", "8001/fulfillment_orders.json")
            assert [c["status"] for c in tries] == [429, 429, 429, 200]
            assert units(made) == {"81": 1}
            # The failed one left its status on the dead-letter topic, with the reason.
            [letter] = pipeline.read_raw("dom.dlq.v1", 1)
            headers = {k: v.decode() for k, v in letter.headers()}
            assert headers[HEADER_STAGE] == "sync"
            assert headers[HEADER_ERROR].startswith(f"{call_id}: retries exhausted:")
            assert "answered 500" in headers[HEADER_ERROR]
            assert pipeline.codec.decode(letter.value()).order_id == "WEB-8002"
            record = calls_on_record(
                pipeline, lambda c: any(x.state == "DONE" and "8002" in x.order_id for x in c)
            )
            mine = [(c.state.value, c.requested_by) for c in record if c.call_id == call_id]
            assert mine == [
                ("RETRYING", None),
                ("FAILED", None),
                ("RETRY_REQUESTED", "ana"),
                ("DONE", None),
            ]
    finally:
        pipeline.stop_all()


def list_on_marketplace(
    standins: Standins, connector: RunningConnector, document: dict[str, Any]
) -> None:
    """The order exists at the marketplace, and its document reaches the connector."""
    standins.control(
        "POST",
        "spapi/orders",
        {
            "AmazonOrderId": document["AmazonOrderId"],
            "MarketplaceId": document["MarketplaceId"],
            "OrderItems": [
                {k: item[k] for k in ("OrderItemId", "SellerSKU", "QuantityOrdered")}
                for item in document["OrderItems"]
            ],
        },
    )
    body = json.dumps(document).encode()
    status, answer = connector.post(
        "/marketplace/orders", body, {DOM_HMAC_HEADER: sign(SECRET, body)}
    )
    assert status == 202, answer


def test_a_shipped_marketplace_order_is_confirmed_and_a_cancelled_one_cancelled_there(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = sync_settings(make_settings, spapi_seller_id="A1STANDINSELLER")
    pipeline = start_pipeline(settings, tmp_path)
    document = json.loads((FIXTURES / "marketplace_order.json").read_text())
    amazon_id = document["AmazonOrderId"]
    other = {**copy.deepcopy(document), "AmazonOrderId": "113-0000000-0000077"}
    try:
        with RunningConnector(settings) as connector, Standins() as standins:
            settings = with_urls(settings, standins)
            list_on_marketplace(standins, connector, document)
            list_on_marketplace(standins, connector, other)
            order = routed(pipeline, f"MKT-{amazon_id}")
            routed(pipeline, "MKT-113-0000000-0000077")
            tracking = ship_all(pipeline, order, carrier="FedEx")
            pipeline.produce(
                [make_cancel("MKT-113-0000000-0000077", event_id="cancel-77", reason="fraud")]
            )

            def every_shipment_confirmed() -> list[dict[str, Any]]:
                # One confirmation per shipment, each sent when its shipment is: wait for all.
                seen = standins.control("GET", f"spapi/orders/{amazon_id}")["confirmations"]
                numbers = {c["packageDetail"]["trackingNumber"] for c in seen}
                return seen if numbers >= set(tracking.values()) else []

            with RunningSync(settings):
                seen = wait_for("a confirmation of every shipment", every_shipment_confirmed)
                cancelled = wait_for(
                    "the cancel",
                    lambda: standins.control("GET", "spapi/orders/113-0000000-0000077")[
                        "cancellations"
                    ],
                )

            confirmed = {c["packageDetail"]["trackingNumber"]: c["packageDetail"] for c in seen}
            assert set(confirmed) == set(tracking.values())
            for shipment in order.shipments:
                package = confirmed[tracking[shipment.shipment_id]]
                assert package["carrierCode"] == "FedEx"
                assert {i["orderItemId"]: i["quantity"] for i in package["orderItems"]} == {
                    x.line_id: x.quantity for x in shipment.lines
                }
            shown = standins.control("GET", f"spapi/orders/{amazon_id}")["order"]
            assert shown["OrderStatus"] == "Shipped"
            # The cancel went through the acknowledgement feed: the whole order, once.
            [cancellation] = cancelled
            assert {i["orderItemId"]: i["quantity"] for i in cancellation["items"]} == {
                item["OrderItemId"]: item["QuantityOrdered"] for item in other["OrderItems"]
            }
            [feed] = standins.control("GET", "spapi/feeds")["feeds"]
            assert feed["feedType"] == "POST_ORDER_ACKNOWLEDGEMENT_DATA"
    finally:
        pipeline.stop_all()


def last_web_figures(pipeline: Pipeline) -> dict[str, int]:
    """The web store's last figure of each sku, from the skus' availability records."""
    records = [
        pipeline.codec.decode(m.value())
        for m in pipeline.read_changelog_messages("dom.inventory.availability.v1")
    ]
    return {
        r.sku: figure.available
        for r in records
        for figure in r.channels
        if figure.channel == Channel.WEB
    }


def shop_available(standins: Standins, skus: dict[str, int]) -> dict[str, int | None]:
    """What the shop shows available of each of ``skus`` (None: it does not sell it)."""
    levels = standins.control("GET", "shopify/inventory")["levels"]
    shown = {level["sku"]: level["available"] for level in levels}
    return {sku: shown.get(sku) for sku in skus}


def test_the_demo_shop_hears_of_every_web_shipment_once(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """`make run`'s arrangement: the demo stocks the stand-in shop's catalogue, its customers
    order there, and the shop's webhooks reach the connector; the sync reports back. Every web
    shipment that left is one fulfillment in the shop, with its tracking; every marketplace one
    is confirmed; the shop shows the web store's sellable figure of every sku."""
    from connectors.demo_cli import demo

    # The sync reads the shop before the demo stocks it: read it again after 1 s, not 15.
    settings = sync_settings(make_settings, shopify_catalogue_refresh_s=1.0)
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    env = {
        "DOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "DOM_TOPIC_PREFIX": settings.topic_prefix,
        "DOM_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "DOM_DATA_DIR": str(settings.data_dir),
        "DOM_WEBHOOK_SECRET": SECRET,
    }
    try:
        with (
            RunningConnector(settings) as connector,
            Standins(connector.url(WEBHOOK), SECRET) as standins,
        ):
            settings = with_urls(settings, standins)
            with RunningSync(settings):
                args = ["--skus", "150", "--stores", "4", "--rate", "15", "--duration", "10"]
                args += ["--seed", "7", "--connector", connector.url(""), "--shop", standins.url]
                result = CliRunner().invoke(demo, args, env=env, catch_exceptions=False)
                assert result.exit_code == 0, result.output
                pipeline.wait_until_idle()
                wait_for("the sync to catch up", lambda: unread_statuses(settings) == 0)
                # The shop sells every demo sku; each shows the web store's last figure.
                web = last_web_figures(pipeline)
                assert len(web) > 100, "the demo's stock did not reach the web channel"
                wait_for("the shop's stock", lambda: shop_available(standins, web) == web)
            statuses = [
                pipeline.codec.decode(m.value())
                for m in pipeline.read_changelog_messages("dom.order-status.v1")
            ]
            left = {
                (s.order_id, x.shipment_id): x
                for s in statuses
                for x in s.shipments
                if s.order_id.startswith(("WEB-", "MKT-"))
                and x.fulfillment_status is not None
                and not (x.kind == "TRANSFER" and x.fulfillment_status == "SHIPPED")
            }
            web = {k: x for k, x in left.items() if k[0].startswith("WEB-")}
            assert len(web) > 5, "the demo shipped too few web orders to say anything"
            shop_orders = {order_id for order_id, _ in web}
            made = [
                f
                for order_id in shop_orders
                for f in standins.shop_order(int(order_id.removeprefix("WEB-")))["fulfillments"]
            ]
            # A shipment that left after its order was cancelled (in the shop too, by then)
            # is a FAILED call saying so, for a person; every other one is in the shop.
            messages = pipeline.read_changelog_messages("dom.channel-sync.v1")
            record = {c.call_id: c for m in messages for c in [pipeline.codec.decode(m.value())]}
            failed = {
                shipment_id: x
                for (_, shipment_id), x in web.items()
                if record[f"shopify:FULFIL:{shipment_id}"].state == "FAILED"
            }
            too_late = {x.tracking_number for x in failed.values()}
            # One fulfillment per other shipment (one over two shop locations makes two).
            assert len(made) >= len(web) - len(failed)
            for number in too_late:
                assert any(
                    c.state == "FAILED" and f"left anyway (tracking {number})" in c.detail
                    for c in record.values()
                )
            # A collected pickup is fulfilled without tracking (the transfer's is ours).
            shipped = [x for x in web.values() if x.kind not in ("PICKUP", "TRANSFER")]
            tracked = {x.tracking_number for x in shipped if x.tracking_number} - too_late
            missing = tracked - {f["tracking_number"] for f in made}
            assert not missing, [c for c in record.values() if c.tracking_number in missing]
            numbers = [f["tracking_number"] for f in made if f["tracking_number"]]
            per_number = {n: numbers.count(n) for n in numbers}
            assert per_number == dict.fromkeys(tracked, 1), "a shipment fulfilled twice"
            # Every marketplace shipment is confirmed, but one that left after its order was
            # cancelled: Amazon refuses that, and the call says so, for a person.
            market = [k for k in left if k[0].startswith("MKT-")]
            calls = [record[f"amazon:FULFIL:{shipment_id}"] for _, shipment_id in market]
            late = [c for c in calls if c.state == "FAILED"]
            assert all("is cancelled, but shipment" in c.detail for c in late), late
            confirmed = [
                c
                for order_id in {o for o, _ in market}
                for c in standins.control("GET", f"spapi/orders/{order_id[4:]}")["confirmations"]
            ]
            assert len(confirmed) == len(market) - len(late)
    finally:
        pipeline.stop_all()

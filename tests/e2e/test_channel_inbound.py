"""Order changes made in the channels reach the pipeline through the HTTP connector, on the real
broker: a Shopify cancellation cancels the order at the warehouse (and a marketplace one its
order); a line removed in a Shopify edit, announced by both ``orders/edited`` and
``orders/updated`` in either order and re-sent, is cancelled once; a new shipping address moves
the shipment to the location nearest to it, and is refused once the order has shipped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config.settings import Settings
from connectors.web import DOM_HMAC_HEADER, sign
from schemas.models import (
    FulfillmentCommand,
    FulfillmentStatus,
    Message,
    OrderCancelled,
    OrderStatusChanged,
)
from tests.e2e.harness import Pipeline
from tests.e2e.test_webhook import SECRET, RunningConnector, fixture_bytes, shopify_headers
from tests.unit.factories import (
    make_address,
    make_fulfillment_update,
    make_location,
    make_product,
    make_stock_event,
)

ORDER = "WEB-5821539172601"
LINE_1, LINE_2 = "14523487592697", "14523487625465"  # SKU-1 x 2, SKU-2 x 1
MKT_ORDER = "MKT-113-8734216-5509851"
LOS_ANGELES = {"address1": "500 W Temple St", "address2": None, "city": "Los Angeles",
               "province_code": "CA", "zip": "90012", "latitude": 34.0537,
               "longitude": -118.2428}  # fmt: skip


def fixture(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(fixture_bytes(name))
    return body


def shopify(connector: RunningConnector, topic: str, body: dict[str, Any], webhook_id: str) -> Any:
    """Post ``body`` as Shopify posts ``topic`` (``orders-edited``: ``orders/edited``)."""
    raw = json.dumps(body).encode()
    headers = shopify_headers(raw, webhook_id) | {"X-Shopify-Topic": topic.replace("-", "/")}
    return connector.post(f"/webhooks/shopify/{topic}", raw, headers)


def marketplace(connector: RunningConnector, path: str, body: dict[str, Any]) -> Any:
    raw = json.dumps(body).encode()
    return connector.post(f"/marketplace/{path}", raw, {DOM_HMAC_HEADER: sign(SECRET, raw)})


def start(make_settings: Callable[..., Settings], tmp_path: Path, *dcs: str) -> Pipeline:
    """A worker, DC-EAST in New York (and DC-WEST in Los Angeles) with 10 of SKU-1 and SKU-2."""
    pipeline = Pipeline(make_settings(webhook_secret=SECRET), tmp_path)
    pipeline.start_worker("w1")
    west = make_address(name="DC-WEST", line1="1 Alameda St", city="Los Angeles", region="CA",
                        postal_code="90012", lat=34.05, lon=-118.24)  # fmt: skip
    locations = {
        "DC-EAST": make_location("DC-EAST"),
        "DC-WEST": make_location("DC-WEST", address=west),
    }
    pipeline.produce(
        [
            *(locations[dc] for dc in ("DC-EAST", *dcs)),
            make_product("SKU-1"),
            make_product("SKU-2"),
            *(
                make_stock_event(sku, dc, 10, event_id=f"s-{sku}-{dc}")
                for sku in ("SKU-1", "SKU-2")
                for dc in ("DC-EAST", *dcs)
            ),
        ]
    )
    for sku in ("SKU-1", "SKU-2"):
        pipeline.availability_where(sku, lambda f: all(dc in f for dc in ("DC-EAST", *dcs)))
    return pipeline


def statuses(
    pipeline: Pipeline, done: Callable[[list[OrderStatusChanged]], bool]
) -> list[OrderStatusChanged]:
    def only(records: list[Message]) -> list[OrderStatusChanged]:
        return [r for r in records if isinstance(r, OrderStatusChanged)]

    return only(pipeline.read("dom.order-status.v1", lambda r: done(only(r))))


def routed(order_id: str, count: int = 1) -> Callable[[list[OrderStatusChanged]], bool]:
    """Done once ``order_id`` has ``count`` statuses naming new shipments."""

    def done(records: list[OrderStatusChanged]) -> bool:
        found = [r for r in records if r.order_id == order_id and r.shipments and not r.action_id]
        return len(found) >= count

    return done


def answered(action_id: str) -> Callable[[list[OrderStatusChanged]], bool]:
    return lambda records: any(r.action_id == action_id for r in records)


def commands(
    pipeline: Pipeline, count: int, order_id: str = ORDER
) -> list[tuple[str, str, str, list[tuple[str, int]]]]:
    """The first ``count`` fulfilment commands of an order: (action, location, shipment, lines)."""

    def only(records: list[Message]) -> list[FulfillmentCommand]:
        return [r for r in records if isinstance(r, FulfillmentCommand) and r.order_id == order_id]

    found = only(pipeline.read("dom.fulfillment.commands.v1", lambda r: len(only(r)) >= count))
    return [
        (c.action.value, c.location_id, c.shipment_id, [(x.line_id, x.quantity) for x in c.lines])
        for c in found
    ]


def place(pipeline: Pipeline, connector: RunningConnector) -> OrderStatusChanged:
    """The Shopify fixture order, placed through the connector and routed."""
    status, body = shopify(connector, "orders-create", fixture("shopify_order_ship.json"), "wh-c")
    assert (status, body["order_id"]) == (202, ORDER), body
    allocated = [r for r in statuses(pipeline, routed(ORDER)) if r.order_id == ORDER][-1]
    assert allocated.status == "ALLOCATED", pipeline.workers["w1"].log_tail()
    return allocated


def test_channel_cancellations_cancel_their_orders(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    pipeline = start(make_settings, tmp_path)
    try:
        with RunningConnector(pipeline.settings) as connector:
            [shipment] = place(pipeline, connector).shipments
            cancelled = fixture("shopify_order_cancelled.json")
            status, body = shopify(connector, "orders-cancelled", cancelled, "wh-x")
            assert (status, body["event_id"]) == (202, "shopify-orders-cancelled-5821539172601")
            assert shopify(connector, "orders-cancelled", cancelled, "wh-x")[0] == 200

            doc = fixture("marketplace_order.json")
            assert marketplace(connector, "orders", doc)[0] == 202
            statuses(pipeline, lambda r: any(x.order_id == MKT_ORDER for x in r))
            cancel_doc = fixture("marketplace_cancellation.json")
            assert marketplace(connector, "cancellations", cancel_doc)[0] == 202
            assert marketplace(connector, "cancellations", cancel_doc)[1]["duplicate"] is True

        def both_cancelled(records: list[OrderStatusChanged]) -> bool:
            return {r.order_id for r in records if r.status == "CANCELLED"} >= {ORDER, MKT_ORDER}

        final = {r.order_id: r for r in statuses(pipeline, both_cancelled)}
        assert final[ORDER].status == "CANCELLED" and "customer" in final[ORDER].reason
        assert final[MKT_ORDER].status == "CANCELLED"
        assert "Found a better price" in final[MKT_ORDER].reason
        # the warehouse is told to stop, and the units (not yet accepted) come back at once
        lines = [(LINE_1, 2), (LINE_2, 1)]
        assert commands(pipeline, 2) == [
            ("FULFIL", "DC-EAST", shipment.shipment_id, lines),
            ("CANCEL", "DC-EAST", shipment.shipment_id, lines),
        ]
        assert [c[0] for c in commands(pipeline, 2, MKT_ORDER)] == ["FULFIL", "CANCEL"]
        for sku in ("SKU-1", "SKU-2"):
            back = pipeline.availability_where(sku, lambda f: f["DC-EAST"].reserved == 0)
            assert back["DC-EAST"].available == 10
        cancels = [
            pipeline.codec.decode(m.value())
            for m in pipeline.read_changelog_messages("dom.orders.v1")
        ]
        assert sorted(c.event_id for c in cancels if isinstance(c, OrderCancelled)) == [
            "marketplace-order-cancelled-113-8734216-5509851",
            "shopify-orders-cancelled-5821539172601",
        ]
    finally:
        pipeline.stop_all()


def test_lines_removed_in_shopify_are_cancelled_once(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    pipeline = start(make_settings, tmp_path)
    cut_1 = f"shopify-cancel-lines-{ORDER}-{LINE_1}-to-1"
    cut_2 = f"shopify-cancel-lines-{ORDER}-{LINE_2}-to-1"
    try:
        with RunningConnector(pipeline.settings) as connector:
            [shipment] = place(pipeline, connector).shipments
            # Edit 1 removes one unit of line 1: orders/edited first, then orders/updated.
            edit_1 = fixture("shopify_order_edited.json")
            assert shopify(connector, "orders-edited", edit_1, "wh-e1")[1]["action_ids"] == [cut_1]
            after_1 = fixture("shopify_order_updated.json")
            assert shopify(connector, "orders-updated", after_1, "wh-u1")[0] == 200
            # The pipeline applies it and routes what is left again (an edit arriving while
            # that routing is in flight would wait for it: streams/core/saga/actions.py).
            statuses(pipeline, lambda r: answered(cut_1)(r) and routed(ORDER, 2)(r))
            # Edit 2 removes line 2: orders/updated first this time.
            after_2 = fixture("shopify_order_updated.json")
            after_2["line_items"][1]["current_quantity"] = 0
            after_2["updated_at"] = "2024-05-01T10:20:00-04:00"
            assert shopify(connector, "orders-updated", after_2, "wh-u2")[1]["action_ids"] == [
                cut_2
            ]
            edit_2 = fixture("shopify_order_edited.json")
            edit_2["order_edit"]["id"] = 78912329
            edit_2["order_edit"]["line_items"]["removals"] = [{"id": int(LINE_2), "delta": 1}]
            assert shopify(connector, "orders-edited", edit_2, "wh-e2")[0] == 200
            # Shopify re-sends everything, some under new webhook ids.
            assert shopify(connector, "orders-edited", edit_1, "wh-e1")[0] == 200
            assert shopify(connector, "orders-edited", edit_2, "wh-e2-again")[0] == 200
            assert shopify(connector, "orders-updated", after_1, "wh-u1-again")[0] == 200
            assert shopify(connector, "orders-updated", after_2, "wh-u2-again")[0] == 200

        records = statuses(pipeline, lambda r: answered(cut_1)(r) and answered(cut_2)(r))
        pipeline.wait_until_idle()
        records = statuses(pipeline, lambda r: len(r) >= len(records))
        answers = [r for r in records if r.action_id is not None]
        assert [(r.action_id, r.action_result) for r in answers] == [
            (cut_1, "APPLIED"),
            (cut_2, "APPLIED"),
        ], [r.reason for r in answers]
        assert "cancelled 1 of line 14523487592697 by shopify" in answers[0].reason
        assert "cancelled 1 of line 14523487625465 by shopify" in answers[1].reason
        # What is left of the order: one unit of SKU-1, in a shipment of its own.
        sent = commands(pipeline, 5)
        assert [c[0] for c in sent] == ["FULFIL", "CANCEL", "FULFIL", "CANCEL", "FULFIL"]
        assert sent[:2] == [
            ("FULFIL", "DC-EAST", shipment.shipment_id, [(LINE_1, 2), (LINE_2, 1)]),
            ("CANCEL", "DC-EAST", shipment.shipment_id, [(LINE_1, 2), (LINE_2, 1)]),
        ]
        assert sent[2][3] == [(LINE_1, 1), (LINE_2, 1)] and sent[3][:3] == ("CANCEL", *sent[2][1:3])
        assert sent[4][3] == [(LINE_1, 1)]
        routed_again = [r for r in records if r.order_id == ORDER and r.shipments]
        assert [(x.line_id, x.quantity) for x in routed_again[-1].shipments[0].lines] == [
            (LINE_1, 1)
        ]
        one = pipeline.availability_where("SKU-1", lambda f: f["DC-EAST"].reserved == 1)
        assert one["DC-EAST"].available == 9
        none = pipeline.availability_where("SKU-2", lambda f: f["DC-EAST"].reserved == 0)
        assert none["DC-EAST"].available == 10
    finally:
        pipeline.stop_all()


def test_a_new_address_moves_the_shipment_and_is_refused_after_shipping(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    pipeline = start(make_settings, tmp_path, "DC-WEST")
    try:
        with RunningConnector(pipeline.settings) as connector:
            [first] = place(pipeline, connector).shipments
            assert first.location_id == "DC-EAST"  # the order ships to New York
            same = fixture("shopify_order_updated.json")
            same["line_items"][0]["current_quantity"] = 2  # no edit: a payment, say
            assert shopify(connector, "orders-updated", same, "wh-u0")[0] == 200
            west = dict(same, updated_at="2024-05-01T10:30:00-04:00")
            west["shipping_address"] = same["shipping_address"] | LOS_ANGELES
            status, body = shopify(connector, "orders-updated", west, "wh-u1")
            assert status == 202, body
            [move] = body["action_ids"]

            [moved] = [r for r in statuses(pipeline, answered(move)) if r.action_id == move]
            assert moved.action_result == "APPLIED", moved.reason
            assert "ship-to changed by shopify" in moved.reason
            assert f"{first.shipment_id} re-routed from DC-EAST" in moved.reason
            rerouted = [r for r in statuses(pipeline, routed(ORDER, 2)) if r.shipments]
            [second] = rerouted[-1].shipments
            assert second.location_id == "DC-WEST"
            sent = commands(pipeline, 3)
            assert [(c[0], c[1], c[2]) for c in sent] == [
                ("FULFIL", "DC-EAST", first.shipment_id),
                ("CANCEL", "DC-EAST", first.shipment_id),
                ("FULFIL", "DC-WEST", second.shipment_id),
            ]

            # DC-WEST ships it; the customer then asks for New York again: too late.
            pipeline.produce(
                [
                    make_fulfillment_update(
                        ORDER, second.shipment_id, "DC-WEST", FulfillmentStatus.SHIPPED
                    )
                ]
            )
            statuses(pipeline, lambda r: any(x.status in ("SHIPPED", "COMPLETED") for x in r))
            back = dict(same, updated_at="2024-05-01T12:00:00-04:00")
            status, body = shopify(connector, "orders-updated", back, "wh-u2")
            assert status == 202, body
            [late] = body["action_ids"]
            [refused] = [r for r in statuses(pipeline, answered(late)) if r.action_id == late]
            assert refused.action_result == "REFUSED"
            assert refused.reason == f"order {ORDER} has already shipped ({second.shipment_id})"
    finally:
        pipeline.stop_all()

"""Which channel calls a status asks for, and the pure helpers behind each channel's calls:
the fulfillment plan over Shopify's fulfillment orders, the tracking check, backoff and the
call budget, SP-API's package detail."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.sync.amazon import package_detail, package_reference
from connectors.sync.backoff import Backoff, CallBudget, retry_after_seconds
from connectors.sync.calls import calls_for, channel_of
from connectors.sync.http import GiveUp
from connectors.sync.shopify import cancel_reason, plan_fulfillment, still_to_fulfil
from schemas.enums import ChannelCallKind, ChannelCallState, OrderStatus
from schemas.orders import Shipment, ShipmentLine
from tests.unit.factories import make_status_changed


def shipped(
    shipment_id: str, kind: str = "SHIP", news: str | None = "SHIPPED", **kw: Any
) -> Shipment:
    return Shipment(
        shipment_id=shipment_id,
        location_id="DC-EAST",
        lines=(ShipmentLine(line_id="111", sku="SKU-1", quantity=2),),
        kind=kind,  # type: ignore[arg-type]
        fulfillment_status=news,  # type: ignore[arg-type]
        **kw,
    )


def test_an_order_belongs_to_the_channel_its_connector_named_it_after() -> None:
    assert channel_of("WEB-5512") == ("shopify", "5512")
    assert channel_of("MKT-113-7766") == ("amazon", "113-7766")
    assert channel_of("POS-1") is None
    assert channel_of("WEB-") is None
    assert channel_of("D1-000001") is None  # the demo's own orders


def test_a_shipment_that_left_is_one_fulfil_call_with_its_lines_and_tracking() -> None:
    status = make_status_changed(
        "WEB-9",
        OrderStatus.SHIPPED,
        shipments=(shipped("WEB-9-1-2", tracking_number="1Z1", carrier="UPS"),),
    )

    [call] = calls_for(status)

    assert call.call_id == "shopify:FULFIL:WEB-9-1-2"
    assert (call.channel, call.channel_order_ref, call.kind) == ("shopify", "9", "FULFIL")
    assert call.state == ChannelCallState.RETRYING and call.attempts == 0
    assert call.lines == status.shipments[0].lines
    assert (call.tracking_number, call.carrier, call.picked_up) == ("1Z1", "UPS", False)
    assert (call.status_event_id, call.reported_at) == (status.event_id, status.at)


def test_routed_shipments_and_orders_of_no_channel_ask_for_nothing() -> None:
    allocated = make_status_changed("WEB-9", shipments=(shipped("WEB-9-1-1", news=None),))
    assert calls_for(allocated) == []
    pos = make_status_changed("POS-9", OrderStatus.SHIPPED, shipments=(shipped("POS-9-1-1"),))
    assert calls_for(pos) == []


def test_a_transfer_is_told_when_the_customer_collects_it_not_when_it_leaves_the_dc() -> None:
    leaving = shipped("WEB-9-1-1", kind="TRANSFER", tracking_number="1ZDC")
    assert calls_for(make_status_changed("WEB-9", OrderStatus.SHIPPED, shipments=(leaving,))) == []

    collected = shipped("WEB-9-1-1", kind="TRANSFER", news="PICKED_UP", tracking_number="1ZDC")
    [call] = calls_for(make_status_changed("WEB-9", OrderStatus.COMPLETED, shipments=(collected,)))
    assert call.picked_up and call.tracking_number is None and call.carrier is None


def test_a_cancelled_order_is_one_cancel_call_to_its_channel() -> None:
    cancelled = make_status_changed(
        "WEB-9", OrderStatus.CANCELLED, reason="backorder expired", shipments=()
    )
    [call] = calls_for(cancelled)
    assert (call.call_id, call.kind, call.reason) == (
        "shopify:CANCEL:WEB-9",
        ChannelCallKind.CANCEL,
        "backorder expired",
    )
    # A later CANCELLED status (a location confirming its cancel) asks for the same call.
    again = cancelled.model_copy(update={"event_id": "other", "reason": "DC confirmed"})
    assert [c.call_id for c in calls_for(again)] == ["shopify:CANCEL:WEB-9"]
    [market] = calls_for(cancelled.model_copy(update={"order_id": "MKT-1"}))
    assert (market.call_id, market.channel_order_ref) == ("amazon:CANCEL:MKT-1", "1")
    assert calls_for(cancelled.model_copy(update={"order_id": "POS-1"})) == []


FULFILLMENT_ORDERS = [
    {
        "id": 1,
        "assigned_location_id": 71,
        "status": "closed",
        "line_items": [{"id": 10, "line_item_id": 111, "fulfillable_quantity": 0}],
    },
    {
        "id": 2,
        "assigned_location_id": 71,
        "status": "open",
        "line_items": [
            {"id": 20, "line_item_id": 111, "fulfillable_quantity": 1},
            {"id": 21, "line_item_id": 222, "fulfillable_quantity": 3},
        ],
    },
    {
        "id": 3,
        "assigned_location_id": 72,
        "status": "in_progress",
        "line_items": [{"id": 30, "line_item_id": 111, "fulfillable_quantity": 4}],
    },
]


def test_a_fulfillment_per_shopify_location_takes_the_units_that_can_still_ship() -> None:
    plan = plan_fulfillment(FULFILLMENT_ORDERS, {"111": 3, "222": 2}, "9")

    assert plan.bodies() == [
        [
            {
                "fulfillment_order_id": 2,
                "fulfillment_order_line_items": [
                    {"id": 20, "quantity": 1},
                    {"id": 21, "quantity": 2},
                ],
            }
        ],
        [{"fulfillment_order_id": 3, "fulfillment_order_line_items": [{"id": 30, "quantity": 2}]}],
    ]
    assert plan.skipped == []


def test_units_nothing_can_fulfil_any_more_are_skipped_and_said() -> None:
    plan = plan_fulfillment(FULFILLMENT_ORDERS, {"222": 5}, "9")
    assert plan.bodies() == [
        [{"fulfillment_order_id": 2, "fulfillment_order_line_items": [{"id": 21, "quantity": 3}]}]
    ]
    assert plan.skipped == ["2 of line 222 already fulfilled or not fulfillable"]


def test_a_line_the_shop_does_not_have_is_given_up() -> None:
    with pytest.raises(GiveUp, match="line 999 is not a line item of Shopify order 9"):
        plan_fulfillment(FULFILLMENT_ORDERS, {"999": 1}, "9")


def test_what_fulfillments_with_our_tracking_carry_is_not_fulfilled_again() -> None:
    made = [
        {
            "status": "cancelled",
            "tracking_numbers": ["1Z1"],
            "line_items": [{"id": 111, "quantity": 2}],
        },
        {"status": "success", "tracking_number": "1Z1", "line_items": [{"id": 111, "quantity": 1}]},
        {
            "status": "success",
            "tracking_numbers": ["1Z2"],
            "line_items": [{"id": 222, "quantity": 3}],
        },
    ]
    assert still_to_fulfil({"111": 2, "222": 3}, made, "1Z1") == {"111": 1, "222": 3}
    assert still_to_fulfil({"222": 3}, made, "1Z2") == {}


def test_cancel_reasons_are_shopifys_own() -> None:
    assert cancel_reason("backorder expired after 30 days") == "inventory"
    assert cancel_reason("customer called") == "other"
    assert cancel_reason(None) == "other"


def test_backoff_grows_to_its_cap_and_a_retry_after_wins() -> None:
    backoff = Backoff(base_s=0.5, cap_s=4.0, max_attempts=3, draw=lambda: 0.999)
    assert [round(backoff.delay(n), 2) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff.delay(1, retry_after=2.0) == 2.0
    assert not backoff.exhausted(2) and backoff.exhausted(3)
    assert retry_after_seconds("2.0") == 2.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert retry_after_seconds(None) is None


def test_the_call_budget_waits_before_the_bucket_is_full_and_leaks_with_time() -> None:
    budget = CallBudget(leak_per_s=2.0, headroom=4)
    assert budget.wait(0.0) == 0.0  # nothing heard yet
    budget.observe("36/40", now=10.0)
    assert budget.wait(10.0) == pytest.approx(0.5)  # a 37th would eat into the headroom
    assert budget.wait(10.5) == 0.0  # one call leaked away
    budget.spend(10.5)
    assert budget.wait(10.5) == pytest.approx(0.5)
    budget.observe("not a limit", now=11.0)  # ignored
    assert budget.size == 40


def test_a_package_names_its_items_and_a_carrier_amazon_knows_or_other() -> None:
    [call] = calls_for(
        make_status_changed(
            "MKT-113-1",
            OrderStatus.SHIPPED,
            shipments=(shipped("MKT-113-1-1-1", tracking_number="TBA1", carrier="Speedy Co"),),
        )
    )
    detail = package_detail(call)
    assert detail["orderItems"] == [{"orderItemId": "111", "quantity": 2}]
    assert (detail["carrierCode"], detail["carrierName"]) == ("Other", "Speedy Co")
    assert detail["trackingNumber"] == "TBA1"
    assert detail["packageReferenceId"] == package_reference("MKT-113-1-1-1")
    assert int(detail["packageReferenceId"]) > 0
    ups = package_detail(call.model_copy(update={"carrier": "ups"}))
    assert ups["carrierCode"] == "UPS" and "carrierName" not in ups
    with pytest.raises(GiveUp, match="no tracking number"):
        package_detail(call.model_copy(update={"tracking_number": None}))


def test_lines_cancelled_by_an_action_are_one_cancel_of_those_lines() -> None:
    answer = make_status_changed(
        "WEB-9",
        OrderStatus.ALLOCATED,
        shipments=(),
        action_id="A-1",
        action_result="APPLIED",
        cancelled=(ShipmentLine(line_id="111", sku="SKU-1", quantity=1),),
    )
    [call] = calls_for(answer)
    assert call.call_id == "shopify:CANCEL:WEB-9/A-1"
    assert [(x.line_id, x.quantity) for x in call.lines] == [("111", 1)]
    assert calls_for(answer.model_copy(update={"cancelled": ()})) == []  # refused: none
    [market] = calls_for(answer.model_copy(update={"order_id": "MKT-9"}))
    assert market.call_id == "amazon:CANCEL:MKT-9/A-1" and market.lines == call.lines
    # Units Shopify removed itself (an edit in its admin, through the connector) are not
    # told back to it.
    edit = answer.model_copy(update={"action_id": "shopify-cancel-lines-WEB-9-111-to-1"})
    assert calls_for(edit) == []

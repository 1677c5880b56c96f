"""The live summary's aggregation, fed decoded records, and its rendering."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from dom.summary import SummaryState, render
from schemas.models import (
    Availability,
    Channel,
    FulfillmentKind,
    LocationAvailability,
    OrderStatus,
    OrderStatusChanged,
    Shipment,
    ShipmentLine,
)
from tests.unit.factories import (
    T0,
    make_cancel,
    make_fulfillment_command,
    make_order,
    make_packaging_command,
)

START = 1_000.0


def status(
    order_id: str, value: str, shipments: int = 0, rules: tuple[str, ...] = ()
) -> OrderStatusChanged:
    return OrderStatusChanged(
        event_id=f"{order_id}:{value}",
        order_id=order_id,
        status=OrderStatus(value),
        reason="because",
        shipments=tuple(
            Shipment(
                shipment_id=f"{order_id}-{n}",
                location_id=f"DC-{n}",
                lines=(ShipmentLine(line_id="1", sku="SKU-1", quantity=1),),
            )
            for n in range(shipments)
        ),
        rules_fired=rules,
        at=T0,
    )


def availability(sku: str, total: int, locations: int = 2) -> Availability:
    per = [
        LocationAvailability(
            location_id=f"L{n}", on_hand=total, reserved=0, safety_stock=0, available=total
        )
        for n in range(locations)
    ]
    return Availability(sku=sku, locations=tuple(per), total_available=total, updated_at=T0)


def test_orders_per_second_by_channel_over_the_recent_window() -> None:
    state = SummaryState(window=10)
    for n in range(40):  # 4/s of WEB over ten seconds
        state.add(make_order(f"W{n}", channel=Channel.WEB), START + n * 0.25)
    for n in range(5):  # POS only in the last second
        state.add(make_order(f"P{n}", channel=Channel.POS), START + 9.5)
    rates = state.channel_rates(now=START + 10)
    assert rates["WEB"] == pytest.approx(4.0, abs=0.11)
    assert rates["POS"] == pytest.approx(0.5)
    assert rates["WHOLESALE"] == 0
    later = state.channel_rates(now=START + 25)  # nothing recent: the window has emptied
    assert sum(later.values()) == 0
    assert state.orders["WEB"] == 40 and state.orders["POS"] == 5  # totals stay


def test_rate_at_start_divides_by_the_time_seen_so_far() -> None:
    state = SummaryState(window=10)
    for n in range(6):
        state.add(make_order(f"W{n}"), START + n * 0.5)
    assert state.channel_rates(now=START + 3)["WEB"] == pytest.approx(2.0)


def test_outcomes_count_each_order_once_and_later_statuses_as_events() -> None:
    state = SummaryState()
    for value in ("RECEIVED", "ALLOCATED", "SHIPPED", "COMPLETED"):
        state.add(status("A", value, shipments=1), START)
    state.add(status("B", "RECEIVED"), START)
    state.add(status("B", "PARTIALLY_ALLOCATED", shipments=2), START)
    state.add(status("B", "ALLOCATED", shipments=1), START)  # re-routed after a rejection
    state.add(status("C", "ON_HOLD"), START)
    state.add(status("D", "BACKORDERED"), START)
    state.add(make_cancel("D"), START)
    assert state.outcomes == {
        "ALLOCATED": 1,
        "PARTIALLY_ALLOCATED": 1,
        "ON_HOLD": 1,
        "BACKORDERED": 1,
    }
    assert state.statuses["ALLOCATED"] == 2 and state.statuses["SHIPPED"] == 1
    assert state.statuses["RECEIVED"] == 2 and state.cancels == 1


def test_split_rate_is_the_share_of_routed_orders_with_more_than_one_shipment() -> None:
    state = SummaryState()
    assert state.split_rate is None
    state.add(status("A", "ALLOCATED", shipments=1), START)
    state.add(status("B", "ALLOCATED", shipments=2), START)
    state.add(status("C", "PARTIALLY_ALLOCATED", shipments=3), START)
    state.add(status("D", "ALLOCATED", shipments=1), START)
    state.add(status("E", "BACKORDERED"), START)  # nothing shipped: not in the denominator
    state.add(status("A", "ALLOCATED", shipments=2), START)  # a re-route does not recount
    assert state.split_rate == pytest.approx(0.5)


def test_rules_fired_counted_once_per_order() -> None:
    state = SummaryState()
    state.add(status("A", "ALLOCATED", 1, ("gift-wrap", "gold-discount")), START)
    state.add(status("A", "SHIPPED", 1, ("gift-wrap", "gold-discount")), START)  # not an outcome
    state.add(status("B", "ON_HOLD", 0, ("hold-very-large-orders",)), START)
    state.add(status("C", "ALLOCATED", 1, ("gift-wrap",)), START)
    state.add(status("C", "ALLOCATED", 1, ("gift-wrap", "hazmat-not-from-stores")), START)
    assert state.top_rules() == [
        ("gift-wrap", 2),
        ("gold-discount", 1),
        ("hazmat-not-from-stores", 1),
        ("hold-very-large-orders", 1),
    ]
    assert state.top_rules(1) == [("gift-wrap", 2)]


def test_low_stock_lists_the_lowest_of_recently_updated_skus() -> None:
    state = SummaryState(low_stock_recent=3)
    state.add(availability("OLD", 0), START)  # pushed out of the recent set below
    state.add(availability("A", 7), START)
    state.add(availability("B", 2), START)
    state.add(availability("C", 40), START)
    state.add(availability("A", 1), START)  # updated again: its latest figure counts
    assert [(a.sku, a.total_available) for a in state.low_stock(2)] == [("A", 1), ("B", 2)]
    assert "OLD" not in {a.sku for a in state.low_stock()}


def test_dead_letters_count_and_keep_the_last_reasons() -> None:
    state = SummaryState()
    for n in range(7):
        state.add_dead_letter(
            stage="orders", source_topic="dom.orders.v1", error=f"bad {n}", at=START + n
        )
    assert state.dead_letters == 7 and state.dead_letter_stages["orders"] == 7
    assert [note.error for note in state.last_dead_letters] == [f"bad {n}" for n in range(2, 7)]


def test_commands_and_latency() -> None:
    state = SummaryState()
    state.add(make_order("A"), START)
    state.add(status("A", "ALLOCATED", shipments=1), START + 0.040)
    state.add(make_fulfillment_command(kind=FulfillmentKind.SHIP), START)
    state.add(make_packaging_command(packaging="GIFT"), START)
    assert state.fulfillment_kinds == {"SHIP": 1} and state.packaging == {"GIFT": 1}
    latency = state.latency_percentiles()
    assert latency is not None and latency[0] == pytest.approx(40, abs=1)


def test_render_shows_every_panel() -> None:
    state = SummaryState()
    state.add(make_order("A", channel=Channel.MARKETPLACE), START)
    state.add(status("A", "ALLOCATED", 2, ("gift-wrap",)), START + 0.1)
    state.add(availability("SKU-LOW", 0), START)
    state.add_dead_letter(stage="orders", source_topic="t", error="unknown wire format", at=START)
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(
        render(state, ["http://127.0.0.1:6066/orders/<order_id>/"], now=START + 1)
    )
    text = out.getvalue()
    for expected in (
        "MARKETPLACE",
        "ALLOCATED",
        "100.0%",
        "gift-wrap",
        "SKU-LOW",
        "unknown wire format",
        "http://127.0.0.1:6066/orders/<order_id>/",
    ):
        assert expected in text, text


def test_an_actions_answer_is_no_routing_outcome() -> None:
    state = SummaryState()
    state.add(status("E", "RECEIVED"), START)
    answer = status("E", "ON_HOLD").model_copy(update={"action_id": "act-1"})
    state.add(answer, START)  # answers PLACE_HOLD, sent before the order's routing outcome
    state.add(status("E", "ALLOCATED", shipments=1), START)
    assert state.outcomes == {"ALLOCATED": 1}


def test_what_the_channels_were_told_is_counted_once_per_call_and_state() -> None:
    from schemas.enums import ChannelCallKind, ChannelCallState
    from tests.unit.factories import make_channel_call

    state = SummaryState()
    shipped = make_channel_call("WEB-1")
    state.add(shipped, START)
    state.add(shipped, START + 1)  # the same call recorded again after a restart
    state.add(make_channel_call("WEB-2", tracking_number=None, picked_up=True), START)
    state.add(
        make_channel_call(
            "WEB-3", call_id="shopify:CANCEL:WEB-3", kind=ChannelCallKind.CANCEL, lines=()
        ),
        START,
    )
    failing = make_channel_call("MKT-4", call_id="amazon:FULFIL:MKT-4-1-1", channel="amazon")
    for step in (ChannelCallState.RETRYING, ChannelCallState.FAILED, ChannelCallState.DONE):
        state.add(failing.model_copy(update={"state": step}), START)

    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(render(state, [], now=START + 1))
    text = out.getvalue()

    assert state.channel_calls == {
        "shopify FULFIL": 2,
        "shopify tracking": 1,
        "shopify CANCEL": 1,
        "amazon retried": 1,
        "amazon failed": 1,
        "amazon FULFIL": 1,
        "amazon tracking": 1,
    }
    for line in (
        "Shopify: fulfillments reported",
        "Shopify: tracking numbers sent",
        "Marketplace: shipments confirmed",
        "calls failed (dom sync retry)",
    ):
        assert line in text

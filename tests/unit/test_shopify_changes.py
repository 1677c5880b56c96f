"""Shopify order changes as contract records: ``orders/cancelled``, ``orders/edited`` and
``orders/updated``, the SP-API cancellation document, and the memory that keeps a unit from
being asked to be cancelled twice, walked through every order of arrival and every repeat."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.marketplace import MarketplaceOrderError, marketplace_cancellation
from connectors.order_memory import (
    NO_ADDRESS,
    OrderMemory,
    Plan,
    address_digest,
    on_order_edited,
    on_order_placed,
    on_order_updated,
)
from connectors.shopify import PayloadError, shopify_order
from connectors.shopify_changes import order_cancelled, parse_order_edited, parse_order_updated
from schemas.codec import Codec
from schemas.enums import OrderActionKind
from schemas.orders import OrderAction

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ORDER = "WEB-5821539172601"
LINE_1, LINE_2 = "14523487592697", "14523487625465"
NOW = datetime(2024, 5, 1, 16, 0, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return body


def edited(edit_id: int, *removals: tuple[str, int], additions: int = 0) -> dict[str, Any]:
    """An ``orders/edited`` body removing ``(line, units)`` pairs."""
    body = load("shopify_order_edited.json")
    body["order_edit"]["id"] = edit_id
    body["order_edit"]["line_items"] = {
        "additions": [{"id": 99, "delta": additions}] if additions else [],
        "removals": [{"id": int(line), "delta": units} for line, units in removals],
    }
    return body


def updated(
    left_1: int = 2, left_2: int = 1, at: str = "10:00:06", **changes: Any
) -> dict[str, Any]:
    """An ``orders/updated`` body of the ship order, ``left_n`` units of line n still ordered."""
    body = load("shopify_order_updated.json")
    body["line_items"][0]["current_quantity"] = left_1
    body["line_items"][1]["current_quantity"] = left_2
    body["updated_at"] = f"2024-05-01T{at}-04:00"
    body.update(changes)
    return body


def placed_memory() -> OrderMemory:
    """What the connector remembers once ``orders/create`` of the ship order went through."""
    return on_order_placed(
        OrderMemory(order_id=ORDER), shopify_order(load("shopify_order_ship.json"))
    )


class Connector:
    """The planners as the connector runs them: memory kept only after a plan was produced."""

    def __init__(self, memory: OrderMemory | None = None) -> None:
        self.memory = memory or placed_memory()
        self.sent: list[OrderAction] = []

    def take(self, body: dict[str, Any]) -> Plan:
        if "order_edit" in body:
            plan = on_order_edited(self.memory, parse_order_edited(body), now=NOW)
        else:
            plan = on_order_updated(self.memory, parse_order_updated(body), now=NOW)
        self.memory = plan.memory
        self.sent.extend(plan.actions)
        return plan

    def take_all(self, bodies: Iterable[dict[str, Any]]) -> list[OrderAction]:
        for body in bodies:
            self.take(body)
        return self.sent


def applied_once(actions: Iterable[OrderAction]) -> dict[str, int]:
    """Units cancelled per line by a pipeline that applies each action id once."""
    seen: set[str] = set()
    units: dict[str, int] = {}
    for action in actions:
        if action.action_id in seen:
            continue
        seen.add(action.action_id)
        for line in action.lines:
            units[line.line_id] = units.get(line.line_id, 0) + line.quantity
    return units


def cancels(actions: Iterable[OrderAction]) -> list[tuple[str, str, int]]:
    return [
        (a.action_id, line.line_id, line.quantity)
        for a in actions
        if a.kind is OrderActionKind.CANCEL_LINES
        for line in a.lines
    ]


# ---- orders/cancelled and marketplace cancellations ----------------------------------------------


def test_orders_cancelled_is_an_order_cancelled() -> None:
    event = order_cancelled(load("shopify_order_cancelled.json"))
    assert event.order_id == ORDER
    assert event.event_id == "shopify-orders-cancelled-5821539172601"
    assert event.reason == "cancelled in Shopify (customer)"
    assert event.cancelled_at == datetime(2024, 5, 1, 15, 30, tzinfo=UTC)
    codec = Codec()
    assert codec.decode(codec.encode(event)) == event


def test_orders_cancelled_without_a_reason_or_a_time() -> None:
    body = load("shopify_order_cancelled.json")
    body["cancel_reason"] = None
    assert order_cancelled(body).reason == "cancelled in Shopify"
    body["cancelled_at"] = None
    with pytest.raises(PayloadError) as caught:
        order_cancelled(body)
    assert [e["field"] for e in caught.value.errors] == ["cancelled_at"]


def test_a_cancelled_marketplace_order_is_an_order_cancelled() -> None:
    event = marketplace_cancellation(load("marketplace_cancellation.json"))
    assert event.order_id == "MKT-113-8734216-5509851"
    assert event.event_id == "marketplace-order-cancelled-113-8734216-5509851"
    assert (
        event.reason == "cancelled on the marketplace at the buyer's request (Found a better price)"
    )
    assert event.cancelled_at == datetime(2024, 5, 1, 16, 20, 45, tzinfo=UTC)


def test_a_marketplace_cancel_the_buyer_did_not_ask_for() -> None:
    doc = load("marketplace_cancellation.json")
    for item in doc["OrderItems"]:
        item["BuyerRequestedCancel"] = {"IsBuyerRequestedCancel": "false"}
    assert marketplace_cancellation(doc).reason == "cancelled on the marketplace"
    del doc["OrderItems"]
    assert marketplace_cancellation(doc).reason == "cancelled on the marketplace"


def test_only_a_canceled_marketplace_order_cancels() -> None:
    doc = load("marketplace_cancellation.json")
    doc["OrderStatus"] = "Unshipped"  # the buyer asked; the seller has not granted it
    del doc["LastUpdateDate"]
    with pytest.raises(MarketplaceOrderError) as caught:
        marketplace_cancellation(doc)
    errors = {e["field"]: e["message"] for e in caught.value.errors}
    assert set(errors) == {"OrderStatus", "LastUpdateDate"}
    assert errors["OrderStatus"].startswith(
        "is 'Unshipped': only an order whose status is Canceled"
    )


# ---- Parsing edits and updates -------------------------------------------------------------------


def test_an_edit_sums_its_removals_per_line() -> None:
    edit = parse_order_edited(edited(7, (LINE_1, 1), (LINE_2, 1), (LINE_1, 1), additions=3))
    assert (edit.order_id, edit.edit_id) == (ORDER, "7")
    assert edit.removals == {LINE_1: 2, LINE_2: 1}  # additions are not carried
    assert edit.at == datetime(2024, 5, 1, 14, 0, 5, tzinfo=UTC)  # committed_at
    assert edit.staff_note == "customer changed their mind"


def test_an_update_reads_removals_less_returns() -> None:
    body = updated(left_1=0, left_2=1)
    body["refunds"] = [
        {
            "refund_line_items": [
                {"line_item_id": int(LINE_1), "quantity": 1, "restock_type": "return"}
            ]
        }
    ]
    update = parse_order_updated(body)
    assert update.lines[LINE_1].removed == 1  # 2 ordered, none left, 1 came back after shipping
    assert update.lines[LINE_2].removed == 0
    del body["line_items"][1]["current_quantity"]  # an API version before 2024-01
    assert set(parse_order_updated(body).lines) == {LINE_1}


def test_an_updated_pickup_order_follows_no_address() -> None:
    body = load("shopify_order_bopis.json")
    body["updated_at"] = "2024-05-02T12:00:00-04:00"
    body["shipping_address"] = load("shopify_order_ship.json")["shipping_address"]
    update = parse_order_updated(body)
    assert update.pickup and update.ship_to is None


# ---- Never cancelling twice ----------------------------------------------------------------------


def test_edited_then_updated_cancels_once() -> None:
    connector = Connector()
    first = connector.take(edited(1, (LINE_1, 1)))
    assert cancels(first.actions) == [(f"shopify-cancel-lines-{ORDER}-{LINE_1}-to-1", LINE_1, 1)]
    [action] = first.actions
    assert action.requested_by == "shopify" and action.order_id == ORDER
    assert action.reason == (
        "Shopify order edit 1 (customer changed their mind): removed in Shopify "
        f"1 unit(s) of line {LINE_1} in all, 1 not cancelled before"
    )
    assert connector.take(updated(left_1=1)).actions == ()


def test_updated_then_edited_cancels_once_with_the_same_action_id() -> None:
    connector = Connector()
    first = connector.take(updated(left_1=1))
    assert cancels(first.actions) == [(f"shopify-cancel-lines-{ORDER}-{LINE_1}-to-1", LINE_1, 1)]
    assert "Shopify orders/updated at 2024-05-01T10:00:06-04:00" in first.actions[0].reason
    assert connector.take(edited(1, (LINE_1, 1))).actions == ()


def test_repeats_of_either_ask_for_nothing() -> None:
    connector = Connector()
    bodies = [edited(1, (LINE_1, 1)), updated(left_1=1)]
    connector.take_all([*bodies, *bodies, *bodies])
    assert cancels(connector.sent) == [(f"shopify-cancel-lines-{ORDER}-{LINE_1}-to-1", LINE_1, 1)]


def test_two_edits_in_any_order_of_arrival_cancel_each_unit_once() -> None:
    """Edit 1 removes one unit of line 1, edit 2 one more and line 2's only unit; Shopify sends
    the four webhooks in any order, some twice."""
    bodies = [
        edited(1, (LINE_1, 1)),
        updated(left_1=1, at="10:00:06"),
        edited(2, (LINE_1, 1), (LINE_2, 1)),
        updated(left_1=0, left_2=0, at="11:00:06"),
    ]
    for arrival in itertools.permutations(bodies):
        for repeated in (list(arrival), [*arrival, *arrival[::-1]]):
            connector = Connector()
            sent = connector.take_all(copy.deepcopy(repeated))
            assert applied_once(sent) == {LINE_1: 2, LINE_2: 1}, repeated
            # even a pipeline that ignored action ids would cancel nothing twice
            assert sum(q for _, _, q in cancels(sent)) == 3
            assert connector.memory.lines[LINE_1].asked == 2


def test_a_connector_that_crashed_before_saving_asks_the_same() -> None:
    connector = Connector()
    connector.take(edited(1, (LINE_1, 1)))
    before = connector.memory
    delivered = connector.take(updated(left_1=0, at="11:00:06")).actions
    connector.memory = before  # the broker confirmed, the connector died before it saved
    again = connector.take(updated(left_1=0, at="11:00:06")).actions
    assert [a.action_id for a in again] == [a.action_id for a in delivered]
    assert applied_once([*delivered, *again]) == {LINE_1: 1}


def test_a_connector_that_lost_its_store_resends_ids_the_pipeline_has() -> None:
    history = [
        edited(1, (LINE_1, 1)),
        updated(left_1=1, at="10:00:06"),
        edited(2, (LINE_1, 1)),
        updated(left_1=0, at="11:00:06"),
    ]
    connector = Connector()
    before = connector.take_all(history)
    assert [q for _, _, q in cancels(before)] == [1, 1]
    for resent in ([history[-1]], [history[2]], history, history[::-1]):
        lost = Connector(OrderMemory(order_id=ORDER))  # a fresh file
        after = lost.take_all(copy.deepcopy(resent))
        assert {a.action_id for a in after} <= {a.action_id for a in before}, resent
        assert applied_once([*before, *after]) == {LINE_1: 2}


def test_units_returned_after_shipping_are_not_cancelled() -> None:
    body = updated(left_1=1)
    body["refunds"] = [
        {
            "refund_line_items": [
                {"line_item_id": int(LINE_1), "quantity": 1, "restock_type": "return"}
            ]
        }
    ]
    assert Connector().take(body).actions == ()


def test_an_update_of_a_cancelled_order_asks_for_nothing() -> None:
    connector = Connector()
    plan = connector.take(
        load("shopify_order_cancelled.json") | {"updated_at": "2024-05-01T12:00:00Z"}
    )
    assert plan.actions == () and "orders/cancelled" in plan.said


def test_an_edit_that_only_adds_asks_for_nothing_but_is_counted() -> None:
    connector = Connector()
    assert connector.take(edited(5, additions=2)).actions == ()
    assert connector.memory.edits == ("5",)


# ---- The address ---------------------------------------------------------------------------------


def moved(**fields: Any) -> dict[str, Any]:
    """The ship order's shipping address with ``fields`` changed."""
    address = dict(load("shopify_order_ship.json")["shipping_address"])
    address.update(fields)
    return address


def test_an_unchanged_address_asks_for_nothing() -> None:
    connector = Connector()
    assert connector.take(updated()).actions == ()
    geocoded = moved(latitude=40.75061, longitude=-73.99722)  # Shopify geocoded it again
    assert connector.take(updated(at="10:05:00", shipping_address=geocoded)).actions == ()


def test_a_new_address_is_a_change_of_ship_to_mapped_as_orders_create_maps_it() -> None:
    connector = Connector()
    address = moved(
        address1="200 Park Ave", address2=None, zip="10166", latitude=None, longitude=None
    )
    [action] = connector.take(updated(at="10:30:00", shipping_address=address)).actions
    expected = shopify_order(
        load("shopify_order_ship.json") | {"shipping_address": address}
    ).ship_to
    assert action.kind is OrderActionKind.CHANGE_SHIP_TO
    assert action.ship_to == expected and expected is not None
    digest = address_digest(expected)
    assert action.action_id == f"shopify-ship-to-{ORDER}-{digest}-1714573800000"
    assert action.requested_at == datetime(2024, 5, 1, 14, 30, tzinfo=UTC)
    assert "the shipping address changed (now New York, US)" in action.reason
    # the same update again, or a later one at the same address: nothing
    assert connector.take(updated(at="10:30:00", shipping_address=address)).actions == ()
    assert connector.take(updated(at="10:40:00", shipping_address=address)).actions == ()


def test_a_resent_orders_create_does_not_take_the_address_back() -> None:
    connector = Connector()
    connector.take(updated(at="10:30:00", shipping_address=moved(address1="200 Park Ave")))
    again = on_order_placed(connector.memory, shopify_order(load("shopify_order_ship.json")))
    assert again == connector.memory


def test_an_address_changed_back_and_forth_is_a_new_action_each_time() -> None:
    connector = Connector()
    there, home = moved(address1="200 Park Ave"), moved()
    for minute, address in enumerate([there, home, there], start=10):
        connector.take(updated(at=f"10:{minute}:00", shipping_address=address))
    ids = [a.action_id for a in connector.sent]
    assert len(ids) == 3 == len(set(ids))


def test_without_an_address_on_record_the_update_sets_it() -> None:
    connector = Connector(OrderMemory(order_id=ORDER))  # placed before the connector kept them
    assert connector.take(updated(shipping_address=moved(address1="200 Park Ave"))).actions == ()
    [action] = connector.take(updated(at="10:30:00")).actions  # and the next change is sent
    assert action.ship_to is not None and action.ship_to.line1 == "1 Main St"


def test_a_pickup_order_follows_no_address() -> None:
    body = load("shopify_order_bopis.json")
    memory = on_order_placed(OrderMemory(order_id="WEB-5821539199001"), shopify_order(body))
    assert memory.ship_to_digest == NO_ADDRESS
    body["updated_at"] = "2024-05-02T12:00:00-04:00"
    body["shipping_address"] = moved()
    plan = on_order_updated(memory, parse_order_updated(body), now=NOW)
    assert plan.actions == ()


def test_a_ship_order_placed_without_an_address_gets_one() -> None:
    body = load("shopify_order_ship.json") | {"shipping_address": None}
    memory = on_order_placed(OrderMemory(order_id=ORDER), shopify_order(body))
    plan = on_order_updated(memory, parse_order_updated(updated()), now=NOW)
    assert [a.kind for a in plan.actions] == [OrderActionKind.CHANGE_SHIP_TO]


def test_cancels_and_an_address_change_from_one_update() -> None:
    plan = Connector().take(updated(left_1=1, left_2=0, shipping_address=moved(city="Brooklyn")))
    kinds = [(a.kind, [(x.line_id, x.quantity) for x in a.lines]) for a in plan.actions]
    assert kinds == [
        (OrderActionKind.CANCEL_LINES, [(LINE_1, 1), (LINE_2, 1)]),  # one action per webhook
        (OrderActionKind.CHANGE_SHIP_TO, []),
    ]
    assert plan.actions[0].action_id == (
        f"shopify-cancel-lines-{ORDER}-{LINE_1}-to-1+{LINE_2}-to-1"
    )
    codec = Codec()
    assert all(codec.decode(codec.encode(a)) == a for a in plan.actions)


def test_only_lines_the_order_was_placed_with_and_no_more_than_ordered() -> None:
    connector = Connector()
    [action] = connector.take(edited(1, (LINE_1, 5), ("777", 1))).actions  # 777: added by an edit
    assert [(x.line_id, x.quantity) for x in action.lines] == [(LINE_1, 2)]
    assert action.action_id == f"shopify-cancel-lines-{ORDER}-{LINE_1}-to-2"
    unplaced = Connector(OrderMemory(order_id=ORDER))  # created before the connector kept lines
    [action] = unplaced.take(edited(1, (LINE_1, 5), ("777", 1))).actions
    assert [(x.line_id, x.quantity) for x in action.lines] == [(LINE_1, 5), ("777", 1)]


def test_a_long_action_id_is_a_digest() -> None:
    many = [(str(10**15 + n), 1) for n in range(20)]
    [action] = Connector(OrderMemory(order_id=ORDER)).take(edited(1, *many)).actions
    assert len(action.lines) == 20
    assert action.action_id.startswith(f"shopify-cancel-lines-{ORDER}-")
    assert len(action.action_id) == len(f"shopify-cancel-lines-{ORDER}-") + 16


# ---- Bad bodies ----------------------------------------------------------------------------------


def errors_of(call: Any, body: Any) -> dict[str, str]:
    with pytest.raises(PayloadError) as caught:
        call(body)
    return {e["field"]: e["message"] for e in caught.value.errors}


def test_bad_edits_name_their_fields() -> None:
    assert errors_of(parse_order_edited, {"id": 1}) == {"order_edit": "Field required"}
    body = edited(1, (LINE_1, 0))
    del body["order_edit"]["order_id"]
    body["order_edit"]["line_items"]["removals"].append({"delta": 1})
    assert errors_of(parse_order_edited, body) == {
        "order_edit.order_id": "Field required",
        "order_edit.line_items.removals.0.delta": "Input should be greater than 0",
        "order_edit.line_items.removals.1.id": "Field required",
    }
    assert set(errors_of(parse_order_edited, [])) == {"body"}


def test_bad_updates_name_their_fields() -> None:
    body = updated()
    del body["updated_at"]
    body["line_items"][0]["current_quantity"] = -1
    body["shipping_address"]["country_code"] = "usa"
    assert set(errors_of(parse_order_updated, body)) == {
        "updated_at",
        "line_items.0.current_quantity",
        "shipping_address.country_code",
    }


def test_what_only_the_contract_refuses_is_a_payload_error_too() -> None:
    huge = 2**31 - 1
    with pytest.raises(PayloadError) as caught:  # 2**32 - 2 at once: no Avro int holds it
        Connector(OrderMemory(order_id=ORDER)).take(edited(1, (LINE_1, huge), (LINE_1, huge)))
    assert [e["field"] for e in caught.value.errors] == ["order_action.lines.0.quantity"]
    late = updated(left_1=1)
    late["updated_at"] = "9999-12-31T23:59:59-23:59"
    with pytest.raises(PayloadError) as caught:
        Connector().take(late)
    assert [e["field"] for e in caught.value.errors] == ["order_action.requested_at"]


def test_a_lone_surrogate_is_refused_before_anything_is_produced() -> None:
    body = edited(1, (LINE_1, 1))
    body["order_edit"]["staff_note"] = "oops \ud800"
    with pytest.raises(PayloadError) as caught:
        Connector().take(body)
    assert caught.value.errors[0]["field"] == "order_action"

"""Rolling upgrades: workers of two releases read each other's stored values (the order state,
the inventory value) without dead-lettering anything.

A newer worker reads a value the previous release wrote (no version, none of the newer fields);
an older worker reads a newer one (a higher version, fields it does not know, at any depth).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.internal import SkuCommand
from streams.core.inventory import stock as inventory
from streams.core.inventory.sku_owner import apply_command
from streams.core.saga.apply import apply_input
from streams.core.saga.state import STATE_VERSION, OrderState
from tests.unit.factories import T0, make_order
from tests.unit.test_saga_replay import _ctx, _owner_with

# An order state as the release before versions wrote it: no state_version, no holds, history
# entries without the action fields, a kept OrderStatusChanged without holds or backordered.
PREVIOUS_RELEASE_STATE = """
{"order": {"event_id": "evt-ORD-1", "order_id": "ORD-1", "channel": "WEB",
   "channel_order_ref": "WEB-ORD-1", "placed_at": "2024-05-01T12:00:00Z",
   "customer": {"customer_id": "CUST-1", "loyalty_tier": "GOLD", "email": "ada@example.com"},
   "fulfillment_method": "SHIP", "pickup_location_id": null,
   "ship_to": {"name": "Ada Lovelace", "line1": "1 Main St", "line2": null, "city": "New York",
     "region": "NY", "postal_code": "10001", "country": "US", "lat": 40.7506, "lon": -73.9972},
   "lines": [{"line_id": "1", "sku": "SKU-1", "quantity": 2, "unit_price": "10.00"}],
   "currency": "USD", "order_total": "20.00", "service_level": "STANDARD", "tags": []},
 "status": "RECEIVED", "attempt": 1,
 "attempt_lines": [{"line_id": "1", "sku": "SKU-1", "quantity": 2}],
 "attempt_reason": "", "pending": {"SKU-1": null}, "fresh_stock": {}, "excluded_locations": [],
 "shipments": {"ORD-1-1-1": {"shipment_id": "ORD-1-1-1", "location_id": "DC-EAST",
   "kind": "SHIP", "lines": [{"line_id": "1", "sku": "SKU-1", "quantity": 2}],
   "destination_location_id": null, "attempt": 1, "state": "RESERVING"}},
 "backordered": [], "explanation": "ALLOCATED: DC-EAST ships the 1 line", "service_level": null,
 "rules_fired": [],
 "history": [{"status": "RECEIVED", "reason": "order received", "at": "2024-05-01T12:00:00Z"}],
 "applied": ["evt-ORD-1"],
 "replies": {"event:evt-ORD-1": [
   {"record": "dom.v1.OrderStatusChanged", "binary": [],
    "data": {"event_id": "ORD-1:status:1", "order_id": "ORD-1", "status": "RECEIVED",
      "reason": "order received", "shipments": [], "rules_fired": [],
      "at": "2024-05-01T12:00:00Z"}},
   {"record": "dom.v1.SkuCommand", "binary": [],
    "data": {"command_id": "RESERVE:SKU-1:ORD-1-1-1", "order_id": "ORD-1", "sku": "SKU-1",
      "action": "RESERVE", "attempt": 1,
      "holds": [{"hold_id": "ORD-1-1-1", "location_id": "DC-EAST", "quantity": 2}],
      "issued_at": "2024-05-01T12:00:00Z"}}]},
 "routed": false, "cancelled": false, "returns": {}}
"""

# An inventory value as the release before versions wrote it: no "version" key.
PREVIOUS_RELEASE_INVENTORY = """
{"sku": "SKU-1",
 "locations": {"DC-1": {"on_hand": 9, "reserved": 3, "safety_stock": 2}},
 "holds": [{"order_id": "o1", "shipment_id": "s1", "units": {"DC-1": 3}}],
 "applied_events": ["snap-0", "safe-0"],
 "closed_holds": [["o2", "s1"]]}
"""


def _placed_order() -> tuple[OrderState, list[Any]]:
    state, outputs = apply_input(None, make_order(lines=[("SKU-1", 2)]), _ctx(_owner_with(5)))
    assert state is not None
    return state, outputs


def _from_a_newer_release(state: OrderState) -> dict[str, Any]:
    """``state`` as a newer release would store it: a higher version and fields this release
    does not know, in the state, the order, its lines and address, a shipment, the history and
    a record kept for redelivery."""
    data = json.loads(state.model_dump_json())
    data["state_version"] = STATE_VERSION + 1
    data["retention_until"] = "2027-01-01T00:00:00Z"
    data["order"]["gift_message"] = "happy birthday"
    data["order"]["lines"][0]["engraving"] = "A.L."
    data["order"]["ship_to"]["what3words"] = "index.home.raft"
    next(iter(data["shipments"].values()))["carrier_hint"] = "UPS"
    data["history"][0]["source"] = "web"
    for reply in data["replies"]["event:evt-ORD-1"]:
        reply["data"]["trace_id"] = "t-1"
    return data


# ---- the order state ------------------------------------------------------------------------


def test_a_newer_worker_reads_the_state_the_previous_release_wrote() -> None:
    state = OrderState.from_stored(PREVIOUS_RELEASE_STATE)

    assert state.state_version == 1
    assert (state.order.order_id, state.status, list(state.shipments)) == (
        "ORD-1",
        "RECEIVED",
        ["ORD-1-1-1"],
    )
    assert state.holds == [] and state.history[0].action_id is None
    # the records kept for a redelivery still come out
    replayed = state.replay("event:evt-ORD-1")
    assert replayed is not None
    assert [type(r).__name__ for r in replayed] == ["OrderStatusChanged", "SkuCommand"]
    # and what it writes back carries this release's version
    assert json.loads(state.model_dump_json())["state_version"] == STATE_VERSION


def test_an_order_read_from_the_previous_release_goes_on() -> None:
    owner = _owner_with(5)
    state = OrderState.from_stored(PREVIOUS_RELEASE_STATE)
    replayed = state.replay("event:evt-ORD-1")
    assert replayed is not None
    command = replayed[1]
    assert isinstance(command, SkuCommand)
    owner, result = apply_command(owner, command, T0)

    state_after, outputs = apply_input(state, result, _ctx(owner))

    assert state_after is not None and state_after.status == "ALLOCATED"
    assert [getattr(o, "status", None) for o in outputs][:1] == ["ALLOCATED"]


def test_an_older_worker_reads_a_newer_state_and_keeps_what_it_knows() -> None:
    state, outputs = _placed_order()
    newer = json.dumps(_from_a_newer_release(state))

    read = OrderState.from_stored(newer)
    read_bytes = OrderState.from_stored(newer.encode())

    assert read.state_version == STATE_VERSION + 1  # who wrote it
    assert read_bytes == read
    # what it writes back is its own format: its version, without the fields it dropped (the
    # records kept for redelivery stay as they were written, read when replayed)
    assert read.model_dump(mode="json", exclude={"replies"}) == state.model_dump(
        mode="json", exclude={"replies"}
    )
    assert read.replay("event:evt-ORD-1") == outputs


def test_an_older_worker_carries_on_with_a_newer_state() -> None:
    owner = _owner_with(5)
    state, outputs = _placed_order()
    command = outputs[1]
    assert isinstance(command, SkuCommand)
    owner, result = apply_command(owner, command, T0)
    read = OrderState.from_stored(json.dumps(_from_a_newer_release(state)))

    state_after, after = apply_input(read, result, _ctx(owner))

    assert state_after is not None and state_after.status == "ALLOCATED"
    assert [getattr(o, "status", None) for o in after][:1] == ["ALLOCATED"]


def test_a_state_wrong_in_another_way_is_still_refused() -> None:
    state, _ = _placed_order()
    data = _from_a_newer_release(state)
    data["order"]["lines"][0]["quantity"] = "many"

    with pytest.raises(ValidationError) as refused:
        OrderState.from_stored(json.dumps(data))

    assert [e["loc"] for e in refused.value.errors()] == [("order", "lines", 0, "quantity")]


# ---- the inventory value --------------------------------------------------------------------


def test_a_newer_worker_reads_the_inventory_the_previous_release_wrote() -> None:
    value = inventory.from_dict(json.loads(PREVIOUS_RELEASE_INVENTORY))

    assert value.at("DC-1") == inventory.LocationStock(on_hand=9, reserved=3, safety_stock=2)
    assert list(value.holds) == [("o1", "s1")]
    assert inventory.to_dict(value)["version"] == inventory.SCHEMA_VERSION


def test_an_older_worker_reads_a_newer_inventory_value() -> None:
    known = inventory.from_dict(json.loads(PREVIOUS_RELEASE_INVENTORY))
    newer = inventory.to_dict(known)
    newer["version"] = inventory.SCHEMA_VERSION + 1
    newer["lots"] = {"DC-1": ["LOT-7"]}
    newer["locations"]["DC-1"]["in_transit"] = 4
    newer["holds"][0]["expires_at"] = "2027-01-01T00:00:00Z"

    assert inventory.from_dict(json.loads(json.dumps(newer))) == known


@pytest.mark.parametrize("version", [0, "2", None])
def test_an_inventory_value_without_a_valid_version_is_refused(version: object) -> None:
    data = json.loads(PREVIOUS_RELEASE_INVENTORY)
    data["version"] = version

    with pytest.raises(ValueError, match="not an inventory state version"):
        inventory.from_dict(data)

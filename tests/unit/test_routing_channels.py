"""An order from a sales channel is routed only to the locations its channel's policy allows:
routing itself, and the saga that builds the request from the order's channel."""

from __future__ import annotations

from dataclasses import replace

from schemas.enums import Channel, LocationKind
from schemas.internal import SkuAction
from schemas.models import ActionResult, FulfillmentCommand, OrderActionKind, OrderStatusChanged
from streams.core.channels.plan import ChannelPlan, Site
from streams.core.channels.policy import SellPolicy
from streams.core.routing.model import RoutingPolicy, ShipmentKind
from streams.core.routing.route import decide_route
from streams.core.saga.apply import apply_input
from tests.unit.factories import make_order, make_order_action, make_pickup_order
from tests.unit.test_routing import (
    ALLOCATED,
    BACKORDERED,
    NEWARK,
    PARTIAL,
    PHILLY,
    dc,
    pickup,
    ship,
    stock,
    store,
)
from tests.unit.test_saga import EAST, STORE, WITH_STORE, World, placed

MANHATTAN = (40.7580, -73.9855)
DCS_ONLY = frozenset({"DC-1", "DC-2"})
NETWORK = [dc("DC-1", PHILLY), dc("DC-2", NEWARK), store("ST-1", MANHATTAN)]


def marketplace(**kw: object) -> dict[str, object]:
    return {"channel": "MARKETPLACE", "channel_locations": DCS_ONLY, **kw}


def test_without_a_channel_limit_the_nearest_store_ships() -> None:
    decision = decide_route(ship(("A", 1)), NETWORK, stock(ST_1={"A": 5}), RoutingPolicy())
    assert decision.outcome == ALLOCATED
    assert [s.location_id for s in decision.shipments] == ["ST-1"]


def test_a_channel_limited_to_the_dcs_ships_from_a_dc_though_a_store_is_nearer() -> None:
    held = stock(ST_1={"A": 5}, DC_1={"A": 5})
    decision = decide_route(ship(("A", 1), **marketplace()), NETWORK, held, RoutingPolicy())
    assert decision.outcome == ALLOCATED
    assert [s.location_id for s in decision.shipments] == ["DC-1"]
    assert "excluded: outside the MARKETPLACE channel policy: ST-1" in decision.explanation
    assert "limited by" not in decision.explanation  # nothing was kept from the order


def test_stock_only_outside_the_channel_backorders_and_says_the_policy_limited_it() -> None:
    decision = decide_route(
        ship(("A", 1), **marketplace()), NETWORK, stock(ST_1={"A": 5}), RoutingPolicy()
    )
    assert decision.outcome == BACKORDERED and not decision.shipments
    assert decision.explanation.startswith(
        "limited by the MARKETPLACE channel policy: ST-1 holds A but does not serve MARKETPLACE; "
        "BACKORDERED: no eligible location holds any ordered unit"
    ), decision.explanation


def test_what_the_channel_may_use_ships_and_the_rest_waits_with_the_reason() -> None:
    held = stock(DC_2={"A": 1}, ST_1={"A": 5, "B": 5})
    decision = decide_route(
        ship(("A", 1), ("B", 1), **marketplace()), NETWORK, held, RoutingPolicy()
    )
    assert decision.outcome == PARTIAL
    assert [s.location_id for s in decision.shipments] == ["DC-2"]
    assert [(x.sku, x.quantity) for x in decision.backordered] == [("B", 1)]
    assert "ST-1 holds B but does not serve MARKETPLACE" in decision.explanation


def test_a_pickup_store_outside_the_channel_gets_a_transfer_not_its_own_units() -> None:
    held = stock(ST_1={"A": 5}, DC_2={"A": 5})
    request = pickup("ST-1", ("A", 1), **marketplace())
    decision = decide_route(request, NETWORK, held, RoutingPolicy())
    assert decision.outcome == ALLOCATED
    [shipment] = decision.shipments
    assert (shipment.location_id, shipment.kind) == ("DC-2", ShipmentKind.TRANSFER)
    assert shipment.destination_location_id == "ST-1"
    assert "ST-1 not used as a source: outside the MARKETPLACE channel policy" in (
        decision.explanation
    )


def test_the_nearest_transfer_source_outside_the_channel_is_passed_over() -> None:
    network = [*NETWORK, store("ST-2", NEWARK)]
    held = stock(ST_2={"A": 5}, DC_1={"A": 5})
    request = pickup("ST-1", ("A", 1), channel="MARKETPLACE", channel_locations=DCS_ONLY | {"ST-1"})
    decision = decide_route(request, network, held, RoutingPolicy())
    assert [(s.location_id, s.kind) for s in decision.shipments] == [
        ("DC-1", ShipmentKind.TRANSFER)
    ]
    unlimited = replace(request, channel_locations=None)
    nearest = decide_route(unlimited, network, held, RoutingPolicy())
    assert [s.location_id for s in nearest.shipments] == ["ST-2"]


# ---- the saga: the order's channel picks the locations ----------------------------------------

DC_ONLY_MARKETPLACE = ChannelPlan(
    {
        Channel.MARKETPLACE: SellPolicy(
            Channel.MARKETPLACE, location_kinds=frozenset({LocationKind.DC})
        )
    },
    [Site(x.location_id, x.kind, x.active) for x in WITH_STORE],
)


def world(on_hand: dict[str, dict[str, int]]) -> World:
    w = World(on_hand, locations=WITH_STORE)
    w.ctx = replace(w.ctx, channels=DC_ONLY_MARKETPLACE)
    return w


def shipped_from(w: World, order_id: str) -> list[str]:
    return [c.location_id for c in w.fulfillment(order_id)]


def test_a_marketplace_order_is_reserved_and_shipped_only_at_its_channels_locations() -> None:
    on_hand = {"SKU-1": {STORE.location_id: 5, EAST.location_id: 5}}
    w = placed(world(on_hand), make_order("WEB-1", channel=Channel.WEB))
    placed(w, make_order("MKT-1", channel=Channel.MARKETPLACE))
    assert shipped_from(w, "WEB-1") == ["STORE-1"]  # the nearest
    assert shipped_from(w, "MKT-1") == ["DC-EAST"]
    reserved_at = {
        h.location_id for c in w.sku_commands() if c.order_id == "MKT-1" for h in c.holds
    }
    assert reserved_at == {"DC-EAST"}


def test_a_marketplace_order_only_the_store_could_serve_is_backordered_with_the_reason() -> None:
    w = placed(
        world({"SKU-1": {STORE.location_id: 5}}), make_order("MKT-1", channel=Channel.MARKETPLACE)
    )
    assert w.statuses("MKT-1") == ["RECEIVED", "BACKORDERED"]
    assert "limited by the MARKETPLACE channel policy: STORE-1 holds SKU-1" in (
        w.last_status("MKT-1").reason
    )
    assert not w.sku_commands(SkuAction.RESERVE)  # nothing reserved anywhere
    assert w.reserved_total() == 0


def test_a_marketplace_pickup_at_a_store_transfers_from_a_dc() -> None:
    on_hand = {"SKU-1": {STORE.location_id: 5, EAST.location_id: 5}}
    order = make_pickup_order("MKT-1", store_id=STORE.location_id, channel=Channel.MARKETPLACE)
    w = placed(world(on_hand), order)
    [command] = w.fulfillment("MKT-1")
    assert (command.location_id, command.kind.value) == ("DC-EAST", "TRANSFER")
    assert command.destination_location_id == "STORE-1"


def test_a_marketplace_shipment_cannot_be_moved_outside_its_channel() -> None:
    on_hand = {"SKU-1": {STORE.location_id: 5, EAST.location_id: 5}}
    w = placed(world(on_hand), make_order("MKT-1", channel=Channel.MARKETPLACE))
    [shipment_id] = w.orders["MKT-1"].shipments
    move = make_order_action(
        "MKT-1",
        OrderActionKind.MOVE_SHIPMENT,
        action_id="A-1",
        shipment_id=shipment_id,
        to_location_id="STORE-1",
    )
    state, outputs = apply_input(w.orders["MKT-1"], move, w.ctx)
    [answer] = [r for r in outputs if isinstance(r, OrderStatusChanged)]
    assert answer.action_result is ActionResult.REFUSED
    assert "outside the MARKETPLACE channel policy" in answer.reason, answer.reason
    assert not [r for r in outputs if isinstance(r, FulfillmentCommand)]  # no CANCEL went out
    assert state is not None and state.shipments[shipment_id].location_id == "DC-EAST"

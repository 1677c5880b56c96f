"""At-least-once: a crash can lose what a stage sent while its state write survived. Replayed
inputs must then produce their first outputs again (same ids), and change nothing twice."""

from __future__ import annotations

from schemas.internal import SkuCommand
from streams.core.inventory import stock as inventory
from streams.core.inventory.sku_owner import apply_command, apply_stock
from streams.core.routing.model import Capability, LocationInfo, LocationKind
from streams.core.saga.apply import apply_input
from streams.core.saga.context import SagaContext
from streams.core.saga.state import OrderState
from tests.unit.factories import T0, make_cancel, make_order, make_stock_event

EAST = LocationInfo("DC-EAST", LocationKind.DC, frozenset({Capability.SHIP}), lat=40.7, lon=-74.0)


def _owner_with(units: int) -> inventory.SkuInventory:
    state, _ = apply_stock(
        inventory.empty("SKU-1"),
        make_stock_event(sku="SKU-1", location_id="DC-EAST", quantity=units),
    )
    return state


def _ctx(owner: inventory.SkuInventory) -> SagaContext:
    return SagaContext(locations=(EAST,), stock=lambda sku: owner.availability(), now=T0)


def test_replayed_inputs_get_their_first_outputs_again_and_change_nothing() -> None:
    owner = _owner_with(5)
    order = make_order(lines=[("SKU-1", 2)])
    state, placed = apply_input(None, order, _ctx(owner))
    assert state is not None
    assert [type(o).__name__ for o in placed] == ["OrderStatusChanged", "SkuCommand"]

    snapshot = state.model_dump_json()
    _, again = apply_input(OrderState.model_validate_json(snapshot), order, _ctx(owner))
    assert again == placed  # the sends a crash may have lost go out again, same ids

    command = placed[1]
    assert isinstance(command, SkuCommand)
    owner, result = apply_command(owner, command, T0)
    owner, repeated = apply_command(owner, command, T0)  # the owner sees it twice
    assert owner.at("DC-EAST").reserved == 2 and repeated.ok

    state, outcome = apply_input(state, result, _ctx(owner))
    assert state is not None
    assert [getattr(o, "status", None) for o in outcome][:1] == ["ALLOCATED"]
    _, outcome_again = apply_input(state, result, _ctx(owner))
    assert outcome_again == outcome
    assert state.status == "ALLOCATED" and owner.at("DC-EAST").reserved == 2


def test_a_second_order_with_the_same_id_is_ignored_and_unknown_orders_are_reported() -> None:
    owner = _owner_with(5)
    state, _ = apply_input(None, make_order(lines=[("SKU-1", 2)]), _ctx(owner))
    duplicate = make_order(lines=[("SKU-1", 9)], event_id="another-event")
    _, outputs = apply_input(state, duplicate, _ctx(owner))
    assert outputs == []
    assert apply_input(None, make_cancel("ORD-404"), _ctx(owner)) == (None, [])

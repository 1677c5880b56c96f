"""At-least-once: a crash can lose what a stage sent while its state write survived. Replayed
inputs must then produce their first outputs again (same ids), and change nothing twice."""

from __future__ import annotations

from dataclasses import replace

import pytest

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


FAR = LocationInfo("DC-FAR", LocationKind.DC, frozenset({Capability.SHIP}), lat=41.88, lon=-87.63)
MID = LocationInfo("DC-MID", LocationKind.DC, frozenset({Capability.SHIP}), lat=39.74, lon=-104.99)


@pytest.mark.parametrize("late_first", [False, True], ids=["new-owner-first", "old-owner-first"])
def test_a_retry_decided_twice_across_a_rebalance_holds_only_what_the_outcome_shows(
    late_first: bool,
) -> None:
    """A rebalance does not wait for a batch while an input is held (streams/runtime/acks.py):
    the old owner's batch may retry a lost race after the new owner has read the same answer
    from the placed state. Each routes the retry on its own view (here the old owner counted
    DC-FAR's daily capacity full, from commands the new one has not seen), so attempt 2 is
    planned twice, under one shipment id. Whatever order the sku owner meets the two
    reservations in, what it holds must be what the new owner's outcome ships."""
    owner = _owner_with(0)  # DC-EAST sold out behind the view's back
    for location in ("DC-FAR", "DC-MID"):
        stocked = make_stock_event(sku="SKU-1", location_id=location, quantity=5, event_id=location)
        owner, _ = apply_stock(owner, stocked)
    full = replace(FAR, daily_order_capacity=10, orders_today=10)
    stale_view = {"DC-EAST": 5, "DC-FAR": 5, "DC-MID": 5}
    old = SagaContext(
        locations=(EAST, full, MID), stock=lambda sku: stale_view, now=T0, plan_hold_ids=True
    )
    new = SagaContext(
        locations=(EAST, FAR, MID), stock=lambda sku: stale_view, now=T0, plan_hold_ids=True
    )
    placed, outputs = apply_input(None, make_order(lines=[("SKU-1", 1)]), new)
    assert placed is not None
    [first] = [o for o in outputs if isinstance(o, SkuCommand)]
    owner, refused = apply_command(owner, first, T0)
    assert not refused.ok
    stored = placed.model_dump_json()  # what the changelog holds when the partition moves

    _, late = apply_input(OrderState.model_validate_json(stored), refused, old)
    state, retried = apply_input(OrderState.model_validate_json(stored), refused, new)
    [late_reserve] = [o for o in late if isinstance(o, SkuCommand) and o.action == "RESERVE"]
    [new_reserve] = [o for o in retried if isinstance(o, SkuCommand) and o.action == "RESERVE"]
    assert [h.location_id for h in late_reserve.holds] == ["DC-MID"]
    assert [h.location_id for h in new_reserve.holds] == ["DC-FAR"]

    answers = []
    for command in (late_reserve, new_reserve) if late_first else (new_reserve, late_reserve):
        owner, answer = apply_command(owner, command, T0)
        answers.append(answer)
    assert state is not None
    for result in answers:
        state, out = apply_input(state, result, new)
        assert state is not None
        for command in [o for o in out if isinstance(o, SkuCommand)]:
            owner, _ = apply_command(owner, command, T0)

    live = [s for s in state.shipments.values() if s.state == "OPEN"]
    shipped = {s.location_id: s.lines[0].quantity for s in live}
    assert shipped == {"DC-FAR": 1}
    held = {loc: owner.at(loc).reserved for loc in ("DC-EAST", "DC-FAR", "DC-MID")}
    assert held == {"DC-EAST": 0, "DC-FAR": 1, "DC-MID": 0}

"""The sku owner: the saga's commands and stock events applied to one sku, and its answers."""

import pytest

from schemas.internal import Hold, SkuAction, SkuCommand, SkuResult
from schemas.models import LocationAvailability, StockEventKind
from streams.core.inventory import stock as inventory
from streams.core.inventory.sku_owner import (
    apply_command,
    apply_stock,
    availability_record,
    refusal,
    refuse_command,
)
from streams.core.inventory.stock import LocationStock, SkuInventory, StockRefused
from tests.unit.factories import T0, at, make_stock_event

SKU = "SKU-1"


def stocked(**on_hand: int) -> SkuInventory:
    """SKU-1 with the given on-hand per location: stocked(DC_EAST=5) -> DC-EAST has 5."""
    state = inventory.empty(SKU)
    for location, quantity in on_hand.items():
        event = make_stock_event(SKU, location.replace("_", "-"), quantity)
        state, _ = apply_stock(state, event)
    return state


def command(
    action: SkuAction,
    *holds: tuple[str, str, int],
    order_id: str = "ORD-1",
    attempt: int = 1,
) -> SkuCommand:
    """A command over (hold_id, location_id, quantity) holds, its id as the saga makes it."""
    hold_ids = "+".join(sorted(h[0] for h in holds))
    return SkuCommand(
        command_id=f"{action.value}:{SKU}:{hold_ids}",
        order_id=order_id,
        sku=SKU,
        action=action,
        attempt=attempt,
        holds=tuple(Hold(hold_id=h, location_id=loc, quantity=q) for h, loc, q in holds),
        issued_at=T0,
    )


def reserve(*holds: tuple[str, str, int], **kw: object) -> SkuCommand:
    return command(SkuAction.RESERVE, *holds, **kw)  # type: ignore[arg-type]


def release(*holds: tuple[str, str, int], **kw: object) -> SkuCommand:
    return command(SkuAction.RELEASE, *holds, **kw)  # type: ignore[arg-type]


def consume(*holds: tuple[str, str, int], **kw: object) -> SkuCommand:
    return command(SkuAction.CONSUME, *holds, **kw)  # type: ignore[arg-type]


def figures(result: SkuResult) -> dict[str, tuple[int, int, int, int]]:
    """location -> (on_hand, reserved, safety_stock, available) as the result reports them."""
    return {
        x.location_id: (x.on_hand, x.reserved, x.safety_stock, x.available)
        for x in result.locations
    }


# ---- reserve ------------------------------------------------------------------------------------


def test_reserve_holds_every_hold_and_reports_fresh_figures() -> None:
    state = stocked(DC_EAST=5, DC_WEST=3)
    cmd = reserve(("ORD-1-1-1", "DC-EAST", 2), ("ORD-1-1-2", "DC-WEST", 3), attempt=2)

    state, result = apply_command(state, cmd, at(5))

    assert result.ok
    assert result.reason is None
    assert (result.command_id, result.order_id, result.sku) == (cmd.command_id, "ORD-1", SKU)
    assert (result.action, result.attempt, result.holds, result.at) == (
        SkuAction.RESERVE,
        2,
        cmd.holds,
        at(5),
    )
    assert figures(result) == {"DC-EAST": (5, 2, 0, 3), "DC-WEST": (3, 3, 0, 0)}
    assert state.at("DC-EAST") == LocationStock(on_hand=5, reserved=2)
    assert state.holds_for_order("ORD-1") == (("ORD-1", "ORD-1-1-1"), ("ORD-1", "ORD-1-1-2"))


def test_a_confirmed_reserve_reports_only_where_it_holds() -> None:
    # The saga routes again on a result only after a lost race; its view has the rest.
    state = stocked(DC_EAST=5, DC_WEST=3, STORE_1=2)
    _, result = apply_command(state, reserve(("ORD-1-1-1", "DC-WEST", 1)), T0)

    assert result.ok
    assert figures(result) == {"DC-WEST": (3, 1, 0, 2)}


def test_releases_and_consumptions_report_only_where_they_held() -> None:
    state = stocked(DC_EAST=5, DC_WEST=3)
    state, _ = apply_command(state, reserve(("ORD-1-1-1", "DC-EAST", 2)), T0)

    state, released = apply_command(state, release(("ORD-1-1-1", "DC-EAST", 2)), T0)

    assert figures(released) == {"DC-EAST": (5, 0, 0, 5)}


def test_reserve_is_all_or_nothing_across_its_holds() -> None:
    state = stocked(DC_EAST=5, DC_WEST=1)
    cmd = reserve(("ORD-1-1-1", "DC-EAST", 2), ("ORD-1-1-2", "DC-WEST", 3))

    after, result = apply_command(state, cmd, T0)

    assert not result.ok
    assert result.reason == "insufficient SKU-1: DC-WEST short by 2"
    assert after.locations == state.locations  # DC-EAST's hold was not kept either
    assert after.at("DC-EAST").reserved == 0
    assert not after.holds
    # The answer carries the real figures of every location, for the saga to re-route on.
    assert figures(result) == {"DC-EAST": (5, 0, 0, 5), "DC-WEST": (1, 0, 0, 1)}
    state = stocked(DC_EAST=5, DC_WEST=1, STORE_1=2)
    _, refused = apply_command(state, cmd, T0)
    assert set(figures(refused)) == {"DC-EAST", "DC-WEST", "STORE-1"}


def test_reserve_at_a_location_the_sku_never_had_is_refused() -> None:
    state = stocked(DC_EAST=5)

    after, result = apply_command(state, reserve(("ORD-1-1-1", "DC-WEST", 1)), T0)

    assert not result.ok
    assert result.reason == "insufficient SKU-1: DC-WEST short by 1"
    assert after.locations == state.locations and not after.holds


def test_reserve_keeps_safety_stock_back() -> None:
    state = stocked(DC_EAST=5)
    state, _ = apply_stock(state, make_stock_event(SKU, "DC-EAST", 2, StockEventKind.SAFETY_STOCK))

    _, too_many = apply_command(state, reserve(("ORD-1-1-1", "DC-EAST", 4)), T0)
    state, enough = apply_command(state, reserve(("ORD-1-1-1", "DC-EAST", 3)), T0)

    assert not too_many.ok
    assert too_many.reason == "insufficient SKU-1: DC-EAST short by 1"
    assert enough.ok
    assert figures(enough) == {"DC-EAST": (5, 3, 2, 0)}


def test_the_last_unit_goes_to_the_first_order_only() -> None:
    state = stocked(DC_EAST=1)

    state, first = apply_command(state, reserve(("ORD-1-1-1", "DC-EAST", 1)), T0)
    state, second = apply_command(state, reserve(("ORD-2-1-1", "DC-EAST", 1), order_id="ORD-2"), T0)

    assert first.ok
    assert not second.ok
    assert state.at("DC-EAST") == LocationStock(on_hand=1, reserved=1)


def test_a_redelivered_reserve_answers_ok_without_reserving_twice() -> None:
    state = stocked(DC_EAST=5)
    cmd = reserve(("ORD-1-1-1", "DC-EAST", 2))
    state, first = apply_command(state, cmd, T0)

    again, second = apply_command(state, cmd, T0)

    assert second.ok
    assert again is state
    assert again.at("DC-EAST").reserved == 2
    assert second.locations == first.locations


def test_a_redelivered_reserve_holds_even_when_the_stock_is_gone_since() -> None:
    # The units are already held for this hold: a repeat must not fail for lack of them.
    state = stocked(DC_EAST=2)
    cmd = reserve(("ORD-1-1-1", "DC-EAST", 2))
    state, _ = apply_command(state, cmd, T0)

    state, result = apply_command(state, cmd, T0)

    assert result.ok
    assert state.at("DC-EAST") == LocationStock(on_hand=2, reserved=2)


def test_a_redelivered_refused_reserve_stays_refused_when_stock_arrives_since() -> None:
    # The saga already heard "no" and moved on: granting the repeat would hold units that
    # nobody will ever release (seen in the SIGKILL burst as a leaked hold).
    state = stocked(DC_EAST=1)
    cmd = reserve(("ORD-1-1-1", "DC-EAST", 2))
    state, first = apply_command(state, cmd, T0)
    state, _ = apply_stock(state, make_stock_event(SKU, "DC-EAST", 5, event_id="recount"))

    state, again = apply_command(state, cmd, T0)

    assert not first.ok and not again.ok
    assert state.at("DC-EAST") == LocationStock(on_hand=5, reserved=0)


def test_reserve_after_release_of_the_same_hold_is_refused() -> None:
    state = stocked(DC_EAST=5)
    state, _ = apply_command(state, reserve(("ORD-1-1-1", "DC-EAST", 2)), T0)
    state, _ = apply_command(state, release(("ORD-1-1-1", "DC-EAST", 2)), T0)

    after, result = apply_command(state, reserve(("ORD-1-1-1", "DC-EAST", 2)), T0)

    assert not result.ok
    assert result.reason == "hold ORD-1-1-1 of SKU-1 was already released or refused"
    assert after.at("DC-EAST") == LocationStock(on_hand=5, reserved=0)
    assert not after.holds


def test_reserve_after_consume_of_the_same_hold_is_refused() -> None:
    state = stocked(DC_EAST=5)
    state, _ = apply_command(state, reserve(("ORD-1-1-1", "DC-EAST", 1)), T0)
    state, _ = apply_command(state, consume(("ORD-1-1-1", "DC-EAST", 1)), T0)

    after, result = apply_command(state, reserve(("ORD-1-1-1", "DC-EAST", 1)), T0)

    assert not result.ok
    assert after.at("DC-EAST") == LocationStock(on_hand=4, reserved=0)


def test_a_closed_hold_refuses_the_whole_command() -> None:
    state = stocked(DC_EAST=5, DC_WEST=5)
    state, _ = apply_command(state, reserve(("ORD-1-1-2", "DC-WEST", 1)), T0)
    state, _ = apply_command(state, release(("ORD-1-1-2", "DC-WEST", 1)), T0)

    after, result = apply_command(
        state, reserve(("ORD-1-1-1", "DC-EAST", 1), ("ORD-1-1-2", "DC-WEST", 1)), T0
    )

    assert not result.ok
    assert after.locations == state.locations and not after.holds
    assert after.at("DC-EAST").reserved == 0


def test_a_refused_reservation_gives_back_what_it_held_already() -> None:
    """A placement read again after its worker died asks for a hold its first plan got and for
    one more it cannot have: the order hears "no" and will never release the first, so the
    owner does."""
    state = stocked(DC_EAST=5, DC_WEST=1)
    state, first = apply_command(state, reserve(("ORD-1-1-1.aa", "DC-EAST", 1)), T0)
    assert first.ok

    after, result = apply_command(
        state, reserve(("ORD-1-1-1.aa", "DC-EAST", 1), ("ORD-1-1-2.bb", "DC-WEST", 2)), T0
    )

    assert not result.ok and "insufficient" in (result.reason or "")
    assert not after.holds and after.at("DC-EAST").reserved == 0
    _, again = apply_command(after, reserve(("ORD-1-1-1.aa", "DC-EAST", 1)), T0)
    assert not again.ok  # closed: a late copy of the first plan's command holds nothing


def test_the_same_shipment_id_of_two_orders_are_two_holds() -> None:
    state = stocked(DC_EAST=5)
    state, _ = apply_command(state, reserve(("S-1", "DC-EAST", 1), order_id="ORD-1"), T0)
    state, _ = apply_command(state, reserve(("S-1", "DC-EAST", 2), order_id="ORD-2"), T0)
    assert state.at("DC-EAST").reserved == 3

    state, _ = apply_command(state, release(("S-1", "DC-EAST", 1), order_id="ORD-1"), T0)

    assert state.at("DC-EAST").reserved == 2
    assert state.holds_for_order("ORD-2") == (("ORD-2", "S-1"),)


# ---- release and consume ------------------------------------------------------------------------


def test_release_gives_the_units_back_once() -> None:
    state = stocked(DC_EAST=5)
    state, _ = apply_command(state, reserve(("ORD-1-1-1", "DC-EAST", 2)), T0)
    cmd = release(("ORD-1-1-1", "DC-EAST", 2))

    state, first = apply_command(state, cmd, T0)
    again, second = apply_command(state, cmd, T0)

    assert first.ok
    assert second.ok
    assert again is state
    assert again.at("DC-EAST") == LocationStock(on_hand=5, reserved=0)
    assert figures(second) == {"DC-EAST": (5, 0, 0, 5)}


def test_release_of_a_hold_never_made_is_ok_and_changes_nothing() -> None:
    state = stocked(DC_EAST=5)

    after, result = apply_command(state, release(("ORD-1-1-1", "DC-EAST", 2)), T0)

    assert result.ok
    assert after is state


def test_release_frees_only_the_named_holds() -> None:
    state = stocked(DC_EAST=5, DC_WEST=5)
    state, _ = apply_command(
        state, reserve(("ORD-1-1-1", "DC-EAST", 1), ("ORD-1-1-2", "DC-WEST", 2)), T0
    )

    state, _ = apply_command(state, release(("ORD-1-1-1", "DC-EAST", 1)), T0)

    assert state.at("DC-EAST").reserved == 0
    assert state.at("DC-WEST").reserved == 2


def test_release_of_several_holds_in_one_command() -> None:
    state = stocked(DC_EAST=5, DC_WEST=5)
    holds = (("ORD-1-1-1", "DC-EAST", 1), ("ORD-1-1-2", "DC-WEST", 2))
    state, _ = apply_command(state, reserve(*holds), T0)

    state, result = apply_command(state, release(*holds), T0)

    assert result.ok
    assert figures(result) == {"DC-EAST": (5, 0, 0, 5), "DC-WEST": (5, 0, 0, 5)}


def test_consume_takes_the_held_units_off_hand_once() -> None:
    state = stocked(DC_EAST=5)
    state, _ = apply_command(state, reserve(("ORD-1-1-1", "DC-EAST", 2)), T0)
    cmd = consume(("ORD-1-1-1", "DC-EAST", 2))

    state, first = apply_command(state, cmd, T0)
    again, second = apply_command(state, cmd, T0)

    assert first.ok
    assert second.ok
    assert again is state
    assert again.at("DC-EAST") == LocationStock(on_hand=3, reserved=0)
    assert figures(first) == {"DC-EAST": (3, 0, 0, 3)}


def test_consume_after_release_takes_nothing() -> None:
    state = stocked(DC_EAST=5)
    state, _ = apply_command(state, reserve(("ORD-1-1-1", "DC-EAST", 2)), T0)
    state, _ = apply_command(state, release(("ORD-1-1-1", "DC-EAST", 2)), T0)

    state, result = apply_command(state, consume(("ORD-1-1-1", "DC-EAST", 2)), T0)

    assert result.ok
    assert state.at("DC-EAST") == LocationStock(on_hand=5, reserved=0)


def test_consume_uses_what_was_held_not_what_the_command_says() -> None:
    # The owner trusts its own record of the hold: a garbled quantity cannot take more.
    state = stocked(DC_EAST=5)
    state, _ = apply_command(state, reserve(("ORD-1-1-1", "DC-EAST", 2)), T0)

    state, _ = apply_command(state, consume(("ORD-1-1-1", "DC-EAST", 4)), T0)

    assert state.at("DC-EAST") == LocationStock(on_hand=3, reserved=0)


# ---- stock events and availability --------------------------------------------------------------


def test_stock_events_apply_once() -> None:
    state = inventory.empty(SKU)
    snapshot = make_stock_event(SKU, "DC-EAST", 10)
    adjustment = make_stock_event(SKU, "DC-EAST", -3, StockEventKind.ADJUSTMENT)
    safety = make_stock_event(SKU, "DC-EAST", 1, StockEventKind.SAFETY_STOCK)

    for event in (snapshot, adjustment, safety):
        state, changed = apply_stock(state, event)
        assert changed
    again, changed = apply_stock(state, adjustment)

    assert not changed
    assert again is state
    assert state.at("DC-EAST") == LocationStock(on_hand=7, reserved=0, safety_stock=1)


def test_a_recount_below_the_holds_keeps_them_and_shows_nothing_available() -> None:
    state = stocked(DC_EAST=5)
    state, _ = apply_command(state, reserve(("ORD-1-1-1", "DC-EAST", 4)), T0)

    state, _ = apply_stock(state, make_stock_event(SKU, "DC-EAST", 2, occurred_at=at(9)))
    state, result = apply_command(state, reserve(("ORD-2-1-1", "DC-EAST", 1), order_id="ORD-2"), T0)

    assert not result.ok
    assert state.at("DC-EAST") == LocationStock(on_hand=2, reserved=4)
    assert figures(result) == {"DC-EAST": (2, 4, 0, 0)}


def test_availability_record_totals_what_can_be_promised() -> None:
    state = stocked(DC_WEST=4, DC_EAST=10, STORE_1=1)
    state, _ = apply_stock(state, make_stock_event(SKU, "DC-EAST", 1, StockEventKind.SAFETY_STOCK))
    state, _ = apply_command(state, reserve(("ORD-1-1-1", "DC-EAST", 2)), T0)
    state, _ = apply_command(state, reserve(("ORD-2-1-1", "DC-WEST", 4), order_id="ORD-2"), T0)
    # STORE-1 recounts to nothing while one unit is still held there.
    state, _ = apply_command(state, reserve(("ORD-3-1-1", "STORE-1", 1), order_id="ORD-3"), T0)
    state, _ = apply_stock(state, make_stock_event(SKU, "STORE-1", 0, occurred_at=at(9)))

    record = availability_record(state, at(10))

    assert record.sku == SKU
    assert record.updated_at == at(10)
    assert record.locations == (
        LocationAvailability(
            location_id="DC-EAST", on_hand=10, reserved=2, safety_stock=1, available=7
        ),
        LocationAvailability(
            location_id="DC-WEST", on_hand=4, reserved=4, safety_stock=0, available=0
        ),
        LocationAvailability(
            location_id="STORE-1", on_hand=0, reserved=1, safety_stock=0, available=0
        ),
    )
    assert record.total_available == 7


def test_availability_of_an_unknown_sku_is_empty() -> None:
    record = availability_record(inventory.empty("SKU-NEW"), T0)

    assert record.locations == ()
    assert record.total_available == 0


# ---- what the owner cannot apply ---------------------------------------------------------------


def test_a_stock_event_past_an_int_is_refused_with_the_reason() -> None:
    state = stocked(LOC_A=2_147_483_647)
    with pytest.raises(StockRefused) as refused:
        apply_stock(state, make_stock_event(SKU, "LOC-B", 2_147_483_647))
    assert refused.value.reason == (
        "SNAPSHOT of 2147483647 at LOC-B would make SKU-1's total on hand 4294967294, "
        "above 2147483647"
    )
    # what was applied still publishes: its availability fits the contract
    assert availability_record(state, T0).total_available == 2_147_483_647


def test_a_refused_reservation_is_answered_no_and_a_redelivery_gets_no_again() -> None:
    state = stocked(DC_EAST=5)
    cmd = reserve(("ORD-1-1-1", "DC-EAST", 2), attempt=2)

    answer = refusal(cmd, "internal error: boom", at(3))
    remembered = refuse_command(state, cmd)

    assert (answer.command_id, answer.order_id, answer.sku) == (cmd.command_id, "ORD-1", SKU)
    assert (answer.action, answer.attempt, answer.holds, answer.at) == (
        SkuAction.RESERVE,
        2,
        cmd.holds,
        at(3),
    )
    assert not answer.ok and answer.reason == "internal error: boom"
    assert answer.locations == ()
    again_state, again = apply_command(remembered, cmd, at(4))
    assert not again.ok  # the sender heard "no": a later "yes" would hold units for nobody
    assert again_state.at("DC-EAST").reserved == 0


def test_a_refusal_keeps_holds_granted_before_and_changes_nothing_for_releases() -> None:
    cmd = reserve(("ORD-1-1-1", "DC-EAST", 2))
    held, first = apply_command(stocked(DC_EAST=5), cmd, T0)
    assert first.ok
    assert refuse_command(held, cmd).closed_holds == held.closed_holds
    for other in (release(("ORD-1-1-1", "DC-EAST", 2)), consume(("ORD-1-1-1", "DC-EAST", 2))):
        assert refuse_command(held, other) is held
        answer = refusal(other, "internal error: boom", T0)
        assert not answer.ok and answer.action == other.action

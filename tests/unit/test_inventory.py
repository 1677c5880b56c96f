"""Inventory core: stock events, holds, idempotence and the no-double-promise invariant."""

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.inventory.stock import (
    MAX_UNITS,
    LocationStock,
    ReservationStatus,
    SkuInventory,
    StockEvent,
    StockEventKind,
    StockRefused,
    apply_stock_event,
    consume,
    done_before,
    empty,
    from_dict,
    note_read,
    release,
    release_order,
    reserve,
    reserve_many,
    restock,
    to_dict,
)

SNAP = StockEventKind.SNAPSHOT
ADJ = StockEventKind.ADJUSTMENT
SAFETY = StockEventKind.SAFETY_STOCK


def stocked(on_hand: int = 10, safety: int = 0, location: str = "DC-1") -> SkuInventory:
    state, _ = apply_stock_event(empty("SKU-1"), StockEvent("snap-0", location, SNAP, on_hand))
    if safety:
        state, _ = apply_stock_event(state, StockEvent("safe-0", location, SAFETY, safety))
    return state


# --- stock events -------------------------------------------------------------------------


def test_snapshot_sets_on_hand_absolutely() -> None:
    state = stocked(10)
    state, changed = apply_stock_event(state, StockEvent("e2", "DC-1", SNAP, 4))
    assert changed
    assert state.at("DC-1").on_hand == 4
    assert state.available("DC-1") == 4


def test_adjustment_is_a_signed_delta_floored_at_zero() -> None:
    state = stocked(10)
    state, _ = apply_stock_event(state, StockEvent("e2", "DC-1", ADJ, 5))
    assert state.at("DC-1").on_hand == 15
    state, _ = apply_stock_event(state, StockEvent("e3", "DC-1", ADJ, -7))
    assert state.at("DC-1").on_hand == 8
    state, _ = apply_stock_event(state, StockEvent("e4", "DC-1", ADJ, -100))
    assert state.at("DC-1").on_hand == 0


@pytest.mark.parametrize("kind", [SNAP, SAFETY])
def test_a_negative_absolute_quantity_is_refused(kind: StockEventKind) -> None:
    state = stocked(10, safety=2)
    with pytest.raises(StockRefused) as refused:
        apply_stock_event(state, StockEvent("e1", "DC-1", kind, -3))
    assert refused.value.reason == f"a {kind} quantity must not be negative: -3"


# --- bounds: every published figure is an Avro int ------------------------------------------


def test_a_snapshot_that_would_push_the_total_past_an_int_is_refused() -> None:
    state, _ = apply_stock_event(empty("SKU-1"), StockEvent("a", "LOC-A", SNAP, MAX_UNITS))
    assert state.total_available == MAX_UNITS  # each alone is valid
    with pytest.raises(StockRefused) as refused:
        apply_stock_event(state, StockEvent("b", "LOC-B", SNAP, MAX_UNITS))
    assert refused.value.reason == (
        "SNAPSHOT of 2147483647 at LOC-B would make SKU-1's total on hand 4294967294, "
        "above 2147483647"
    )
    # a recount of the same location replaces its figure: no overflow, applied
    again, changed = apply_stock_event(state, StockEvent("c", "LOC-A", SNAP, MAX_UNITS - 1))
    assert changed and again.total_available == MAX_UNITS - 1


def test_an_adjustment_past_an_int_is_refused_and_a_negative_one_still_floors() -> None:
    state, _ = apply_stock_event(empty("SKU-1"), StockEvent("a", "LOC-A", SNAP, MAX_UNITS - 1))
    with pytest.raises(StockRefused) as refused:
        apply_stock_event(state, StockEvent("b", "LOC-A", ADJ, 2))
    assert refused.value.reason == (
        "ADJUSTMENT of +2 at LOC-A would make SKU-1's on hand at LOC-A 2147483648, above 2147483647"
    )
    with pytest.raises(StockRefused, match="total on hand 2147483648"):
        apply_stock_event(state, StockEvent("c", "LOC-B", ADJ, 2))
    up, _ = apply_stock_event(state, StockEvent("d", "LOC-A", ADJ, 1))
    assert up.at("LOC-A").on_hand == MAX_UNITS
    down, _ = apply_stock_event(up, StockEvent("e", "LOC-A", ADJ, -MAX_UNITS - 1))
    assert down.at("LOC-A").on_hand == 0


def test_a_refused_event_is_not_remembered_so_a_corrected_one_can_follow() -> None:
    state, _ = apply_stock_event(empty("SKU-1"), StockEvent("a", "LOC-A", SNAP, MAX_UNITS))
    with pytest.raises(StockRefused):
        apply_stock_event(state, StockEvent("b", "LOC-B", SNAP, 1))
    lowered, _ = apply_stock_event(state, StockEvent("c", "LOC-A", SNAP, 10))
    after, changed = apply_stock_event(lowered, StockEvent("b", "LOC-B", SNAP, 1))
    assert changed and after.total_available == 11


def test_a_restock_past_an_int_is_refused() -> None:
    state, _ = apply_stock_event(empty("SKU-1"), StockEvent("a", "LOC-A", SNAP, MAX_UNITS))
    with pytest.raises(StockRefused, match="total on hand 2147483648"):
        restock(state, "LOC-B", 1, "ret-1")


def test_safety_stock_is_absolute_and_reduces_available() -> None:
    state = stocked(10, safety=3)
    assert state.available("DC-1") == 7
    state, _ = apply_stock_event(state, StockEvent("e9", "DC-1", SAFETY, 1))
    assert state.at("DC-1").safety_stock == 1
    assert state.available("DC-1") == 9


def test_available_is_floored_at_zero() -> None:
    state = stocked(2, safety=5)
    assert state.available("DC-1") == 0
    assert LocationStock(on_hand=1, reserved=4, safety_stock=0).available == 0


def test_redelivered_stock_event_changes_nothing() -> None:
    state = stocked(10)
    event = StockEvent("adj-1", "DC-1", ADJ, 5)
    once, changed_once = apply_stock_event(state, event)
    twice, changed_twice = apply_stock_event(once, event)
    assert changed_once and not changed_twice
    assert twice is once
    assert twice.at("DC-1").on_hand == 15


def test_applied_event_memory_is_bounded_and_keeps_the_newest() -> None:
    state = empty("S")
    for n in range(12):
        state, _ = apply_stock_event(state, StockEvent(f"e{n}", "DC-1", ADJ, 1), memory=5)
    assert list(state.applied_events) == ["e7", "e8", "e9", "e10", "e11"]
    assert state.at("DC-1").on_hand == 12
    # Forgotten ids apply again: the bound is the price of a bounded table value.
    again, changed = apply_stock_event(state, StockEvent("e0", "DC-1", ADJ, 1), memory=5)
    assert changed and again.at("DC-1").on_hand == 13


def test_unknown_location_reads_as_empty() -> None:
    state = stocked(10)
    assert state.at("NOWHERE") == LocationStock()
    assert state.available("NOWHERE") == 0


def test_events_do_not_mutate_the_input_state() -> None:
    state = stocked(10)
    before = to_dict(state)
    apply_stock_event(state, StockEvent("e2", "DC-1", ADJ, 3))
    reserve(state, ("o1", "s1"), "DC-1", 2)
    assert to_dict(state) == before


# --- reservations -------------------------------------------------------------------------


def test_reserve_holds_units_and_lowers_available() -> None:
    state, outcome = reserve(stocked(10), ("o1", "s1"), "DC-1", 4)
    assert outcome.status == ReservationStatus.RESERVED and outcome.ok
    assert state.at("DC-1") == LocationStock(on_hand=10, reserved=4, safety_stock=0)
    assert state.available("DC-1") == 6
    assert state.holds[("o1", "s1")] == {"DC-1": 4}


def test_reserve_is_all_or_nothing() -> None:
    state = stocked(5)
    after, outcome = reserve(state, ("o1", "s1"), "DC-1", 6)
    assert outcome.status == ReservationStatus.INSUFFICIENT and not outcome.ok
    assert outcome.short == {"DC-1": 1}
    assert after is state
    assert after.at("DC-1").reserved == 0


def test_reserve_respects_safety_stock() -> None:
    state = stocked(10, safety=4)
    _, too_much = reserve(state, ("o1", "s1"), "DC-1", 7)
    assert too_much.status == ReservationStatus.INSUFFICIENT
    state, exact = reserve(state, ("o1", "s1"), "DC-1", 6)
    assert exact.status == ReservationStatus.RESERVED
    assert state.available("DC-1") == 0


def test_reserve_many_is_all_or_nothing_across_locations() -> None:
    state = stocked(5)
    state, _ = apply_stock_event(state, StockEvent("e2", "DC-2", SNAP, 1))
    after, outcome = reserve_many(state, ("o1", "s1"), {"DC-1": 3, "DC-2": 2})
    assert outcome.status == ReservationStatus.INSUFFICIENT
    assert outcome.short == {"DC-2": 1}
    assert after is state
    after, outcome = reserve_many(state, ("o1", "s1"), {"DC-1": 3, "DC-2": 1})
    assert outcome.ok
    assert after.available("DC-1") == 2 and after.available("DC-2") == 0


def test_reserving_the_same_hold_twice_is_a_no_op() -> None:
    state, first = reserve(stocked(10), ("o1", "s1"), "DC-1", 4)
    again, second = reserve(state, ("o1", "s1"), "DC-1", 4)
    assert first.status == ReservationStatus.RESERVED
    assert second.status == ReservationStatus.ALREADY_HELD and second.ok
    assert again is state
    assert again.at("DC-1").reserved == 4


def test_second_order_cannot_take_units_already_promised() -> None:
    state, _ = reserve(stocked(5), ("o1", "s1"), "DC-1", 4)
    _, outcome = reserve(state, ("o2", "s1"), "DC-1", 2)
    assert outcome.status == ReservationStatus.INSUFFICIENT


def test_reserve_rejects_non_positive_quantities() -> None:
    with pytest.raises(ValueError):
        reserve(stocked(5), ("o1", "s1"), "DC-1", 0)
    with pytest.raises(ValueError):
        reserve_many(stocked(5), ("o1", "s1"), {})


def test_release_returns_units_and_is_idempotent() -> None:
    held, _ = reserve(stocked(10), ("o1", "s1"), "DC-1", 4)
    once = release(held, ("o1", "s1"))
    twice = release(once, ("o1", "s1"))
    assert once.at("DC-1") == LocationStock(10, 0, 0)
    assert twice is once
    assert ("o1", "s1") not in once.holds


def test_release_of_unknown_hold_changes_nothing() -> None:
    state = stocked(10)
    assert release(state, ("nope", "s1")) is state


def test_consume_drops_reserved_and_on_hand_and_is_idempotent() -> None:
    held, _ = reserve(stocked(10, safety=1), ("o1", "s1"), "DC-1", 4)
    shipped = consume(held, ("o1", "s1"))
    assert shipped.at("DC-1") == LocationStock(on_hand=6, reserved=0, safety_stock=1)
    assert shipped.available("DC-1") == 5
    assert consume(shipped, ("o1", "s1")) is shipped
    assert release(shipped, ("o1", "s1")) is shipped


def test_consume_after_release_changes_nothing() -> None:
    held, _ = reserve(stocked(10), ("o1", "s1"), "DC-1", 4)
    released = release(held, ("o1", "s1"))
    assert consume(released, ("o1", "s1")) is released
    assert released.at("DC-1").on_hand == 10


def test_redelivered_reservation_of_a_closed_hold_does_not_hold_again() -> None:
    held, _ = reserve(stocked(10), ("o1", "s1"), "DC-1", 4)
    shipped = consume(held, ("o1", "s1"))
    again, outcome = reserve(shipped, ("o1", "s1"), "DC-1", 4)
    assert outcome.status == ReservationStatus.CLOSED and not outcome.ok
    assert again is shipped
    released = release(reserve(stocked(10), ("o2", "s1"), "DC-1", 4)[0], ("o2", "s1"))
    _, outcome = reserve(released, ("o2", "s1"), "DC-1", 4)
    assert outcome.status == ReservationStatus.CLOSED


def test_consume_with_on_hand_already_recounted_floors_at_zero() -> None:
    held, _ = reserve(stocked(4), ("o1", "s1"), "DC-1", 4)
    recounted, _ = apply_stock_event(held, StockEvent("count", "DC-1", SNAP, 1))
    assert recounted.at("DC-1").oversold == 3
    assert recounted.available("DC-1") == 0
    shipped = consume(recounted, ("o1", "s1"))
    assert shipped.at("DC-1") == LocationStock(0, 0, 0)


def test_release_order_releases_every_shipment_of_that_order_only() -> None:
    state = stocked(10)
    state, _ = reserve(state, ("o1", "s1"), "DC-1", 2)
    state, _ = reserve(state, ("o1", "s2"), "DC-1", 3)
    state, _ = reserve(state, ("o2", "s1"), "DC-1", 1)
    assert set(state.holds_for_order("o1")) == {("o1", "s1"), ("o1", "s2")}
    state = release_order(state, "o1")
    assert state.at("DC-1").reserved == 1
    assert list(state.holds) == [("o2", "s1")]
    assert release_order(state, "o1") is state


def test_restock_adds_on_hand_once_per_event_id() -> None:
    state = stocked(3)
    once, changed = restock(state, "DC-1", 2, "ret-1")
    twice, changed_again = restock(once, "DC-1", 2, "ret-1")
    assert changed and not changed_again
    assert twice is once
    assert once.at("DC-1").on_hand == 5
    other, _ = restock(once, "STORE-9", 1, "ret-2")
    assert other.at("STORE-9").on_hand == 1


def test_restock_rejects_negative_quantity() -> None:
    with pytest.raises(ValueError):
        restock(stocked(3), "DC-1", -1, "ret-1")


def test_availability_and_total() -> None:
    state = stocked(10, safety=2)
    state, _ = apply_stock_event(state, StockEvent("e2", "ST-1", SNAP, 3))
    state, _ = reserve(state, ("o1", "s1"), "ST-1", 1)
    assert state.availability() == {"DC-1": 8, "ST-1": 2}
    assert state.total_available == 10


# --- serialisation ------------------------------------------------------------------------


def test_dict_round_trip_through_json() -> None:
    state = stocked(10, safety=2)
    state, _ = apply_stock_event(state, StockEvent("e2", "ST-1", SNAP, 3))
    state, _ = reserve(state, ("o1", "s1"), "DC-1", 3)
    state, _ = reserve(state, ("o2", "s1"), "ST-1", 1)
    state = consume(state, ("o2", "s1"))
    state = note_read(state, "dom.stock.v1:0", 7, 1_000, {"dom.stock.v1:0": 5})
    wire = json.dumps(to_dict(state))
    back = from_dict(json.loads(wire))
    assert back == state
    assert list(back.applied_events) == list(state.applied_events)
    assert to_dict(back) == to_dict(state)
    # The markers survive: redeliveries are still no-ops after a round trip.
    assert apply_stock_event(back, StockEvent("e2", "ST-1", SNAP, 99))[0] is back
    assert reserve(back, ("o1", "s1"), "DC-1", 3)[1].status == ReservationStatus.ALREADY_HELD
    assert reserve(back, ("o2", "s1"), "ST-1", 1)[1].status == ReservationStatus.CLOSED


def test_from_dict_recomputes_reserved_from_holds() -> None:
    data = to_dict(reserve(stocked(10), ("o1", "s1"), "DC-1", 3)[0])
    data["locations"]["DC-1"]["reserved"] = 999
    assert from_dict(data).at("DC-1").reserved == 3


# --- properties ---------------------------------------------------------------------------

Op = tuple[Any, ...]
LOCS = ("DC-1", "ST-1")
ORDERS = ("o1", "o2", "o3", "o4")

operations = st.one_of(
    st.tuples(
        st.just("stock"),
        st.sampled_from(list(StockEventKind)),
        st.sampled_from(LOCS),
        st.integers(-20, 30),
        st.integers(0, 15),
    ),
    st.tuples(
        st.just("reserve"), st.sampled_from(ORDERS), st.sampled_from(LOCS), st.integers(1, 12)
    ),
    st.tuples(st.just("release"), st.sampled_from(ORDERS)),
    st.tuples(st.just("consume"), st.sampled_from(ORDERS)),
    st.tuples(st.just("restock"), st.sampled_from(LOCS), st.integers(0, 5), st.integers(0, 15)),
)


def _run(state: SkuInventory, op: Op, check: list[str]) -> SkuInventory:
    kind = op[0]
    if kind == "stock":
        _, ev_kind, loc, qty, ev = op
        try:
            return apply_stock_event(state, StockEvent(f"ev{ev}", loc, ev_kind, qty))[0]
        except StockRefused:
            assert (ev_kind != ADJ and qty < 0) or _over(state, loc, ev_kind, qty)
            return state
    if kind == "reserve":
        _, order, loc, qty = op
        after, outcome = reserve(state, (order, "s1"), loc, qty)
        if outcome.status == ReservationStatus.RESERVED:
            stock = after.at(loc)
            # The promise: at the moment of reserving, nothing is promised twice.
            assert stock.reserved <= stock.on_hand - stock.safety_stock
            check.append("reserved")
        else:
            assert after is state
        return after
    if kind == "release":
        return release(state, (op[1], "s1"))
    if kind == "consume":
        return consume(state, (op[1], "s1"))
    _, loc, qty, ev = op
    try:
        return restock(state, loc, qty, f"ret{ev}")[0]
    except StockRefused:
        assert _over(state, loc, ADJ, qty)
        return state


def _over(state: SkuInventory, loc: str, kind: StockEventKind, qty: int) -> bool:
    """Whether a stock event would take a figure past ``MAX_UNITS`` (the model of the bound)."""
    current = state.at(loc)
    on_hand = {SNAP: qty, ADJ: max(0, current.on_hand + qty)}.get(kind, current.on_hand)
    total = sum(s.on_hand for lid, s in state.locations.items() if lid != loc) + on_hand
    return max(on_hand, total, qty if kind == SAFETY else 0) > MAX_UNITS


def _assert_consistent(state: SkuInventory) -> None:
    for loc in LOCS:
        stock = state.at(loc)
        assert stock.available >= 0
        assert stock.on_hand >= 0 and stock.reserved >= 0 and stock.safety_stock >= 0
        held = sum(units.get(loc, 0) for units in state.holds.values())
        assert stock.reserved == held
        assert max(stock.on_hand, stock.reserved, stock.safety_stock) <= MAX_UNITS
    assert sum(s.on_hand for s in state.locations.values()) <= MAX_UNITS


@settings(max_examples=300, deadline=None)
@given(st.lists(operations, max_size=40))
def test_reserved_matches_holds_and_reservations_never_overpromise(ops: list[Op]) -> None:
    state = empty("SKU-P")
    log: list[str] = []
    for op in ops:
        state = _run(state, op, log)
        _assert_consistent(state)
    assert from_dict(json.loads(json.dumps(to_dict(state)))) == state


near_the_bound = st.one_of(
    st.tuples(
        st.just("stock"),
        st.sampled_from(list(StockEventKind)),
        st.sampled_from(LOCS),
        st.sampled_from([-MAX_UNITS, -1, 0, 1, MAX_UNITS // 2 + 1, MAX_UNITS - 1, MAX_UNITS]),
        st.integers(0, 15),
    ),
    st.tuples(
        st.just("reserve"),
        st.sampled_from(ORDERS),
        st.sampled_from(LOCS),
        st.sampled_from([1, MAX_UNITS // 2, MAX_UNITS]),
    ),
    st.tuples(st.just("release"), st.sampled_from(ORDERS)),
    st.tuples(st.just("consume"), st.sampled_from(ORDERS)),
    st.tuples(
        st.just("restock"), st.sampled_from(LOCS), st.sampled_from([1, MAX_UNITS]), st.integers()
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(near_the_bound, max_size=30))
def test_no_sequence_of_inputs_takes_a_published_figure_past_an_int(ops: list[Op]) -> None:
    state = empty("SKU-P")
    log: list[str] = []
    for op in ops:
        state = _run(state, op, log)
        _assert_consistent(state)  # every figure and the total within MAX_UNITS
        assert state.total_available <= MAX_UNITS


non_shrinking = st.one_of(
    st.tuples(
        st.just("stock"),
        st.just(StockEventKind.ADJUSTMENT),
        st.sampled_from(LOCS),
        st.integers(0, 30),
        st.integers(0, 15),
    ),
    st.tuples(
        st.just("reserve"), st.sampled_from(ORDERS), st.sampled_from(LOCS), st.integers(1, 12)
    ),
    st.tuples(st.just("release"), st.sampled_from(ORDERS)),
    st.tuples(st.just("consume"), st.sampled_from(ORDERS)),
    st.tuples(st.just("restock"), st.sampled_from(LOCS), st.integers(0, 5), st.integers(0, 15)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(non_shrinking, max_size=40))
def test_without_stock_losses_reserved_never_exceeds_promisable_stock(ops: list[Op]) -> None:
    # Reserve, release, consume, restock and stock increases can never oversell; only a
    # recount or a higher safety level (covered above) can push on-hand under the holds.
    state = empty("SKU-P")
    log: list[str] = []
    for op in ops:
        state = _run(state, op, log)
        for loc in LOCS:
            stock = state.at(loc)
            assert stock.reserved <= stock.on_hand - stock.safety_stock


@settings(max_examples=200, deadline=None)
@given(st.lists(operations, max_size=30))
def test_replaying_every_operation_twice_equals_playing_it_once(ops: list[Op]) -> None:
    once = empty("SKU-P")
    twice = empty("SKU-P")
    for op in ops:
        once = _run(once, op, [])
        twice = _run(_run(twice, op, []), op, [])
    assert twice.locations == once.locations
    assert twice.holds == once.holds


# --- what a replay may skip ----------------------------------------------------------------

STOCK_P0 = "dom.stock.v1:0"
COMMANDS_P0 = "dom.internal.sku-commands.v1:0"


def test_inputs_before_the_batch_that_last_wrote_the_sku_are_done() -> None:
    state = note_read(empty("SKU-1"), STOCK_P0, 12, 5_000, {STOCK_P0: 10})
    assert done_before(state, STOCK_P0, 9, 4_000)  # an earlier batch's: its records went out
    assert not done_before(state, STOCK_P0, 10, 4_000)  # this batch's may not have
    assert not done_before(state, STOCK_P0, 12, 5_000)
    assert not done_before(state, COMMANDS_P0, 0, 0)  # nothing read there yet


def test_a_partition_the_sku_read_nothing_of_in_a_batch_that_read_it_is_done_up_to_there() -> None:
    state = note_read(empty("SKU-1"), STOCK_P0, 12, 5_000, {STOCK_P0: 10})
    # The next batch writes the sku from its commands only, and read the stock partition too
    # (other skus' records): the sku's stock inputs are all done.
    later = note_read(state, COMMANDS_P0, 41, 6_000, {COMMANDS_P0: 40, STOCK_P0: 20})
    assert done_before(later, STOCK_P0, 12, 5_000)
    assert not done_before(later, STOCK_P0, 13, 5_000)
    assert done_before(later, COMMANDS_P0, 39, 6_000)
    assert not done_before(later, COMMANDS_P0, 40, 6_000)


def test_a_partition_the_batch_did_not_read_is_known_no_further() -> None:
    # A worker stored the sku after commands 115..153 and was killed before its answers went
    # out. Restarted, it reads a stock event of the sku before it reads the commands again:
    # they must be answered again, not taken for done.
    state = note_read(empty("SKU-1"), COMMANDS_P0, 153, 5_000, {COMMANDS_P0: 115})
    restarted = note_read(state, STOCK_P0, 31, 7_000, {STOCK_P0: 31})
    assert not done_before(restarted, COMMANDS_P0, 134, 4_900)
    assert done_before(restarted, COMMANDS_P0, 114, 4_900)


def test_the_input_itself_is_never_taken_for_done() -> None:
    # Whatever the batch's start says (unknown, or past the input), the input may be replayed.
    for batch_from in ({}, {STOCK_P0: 30}):
        state = note_read(empty("SKU-1"), STOCK_P0, 12, 5_000, batch_from)
        assert not done_before(state, STOCK_P0, 12, 5_000)


def test_an_input_newer_than_any_read_is_not_done_whatever_its_offset() -> None:
    # The topic was deleted and made again: offsets start at 0, the records are new.
    state = note_read(empty("SKU-1"), STOCK_P0, 500, 5_000, {STOCK_P0: 500})
    assert done_before(state, STOCK_P0, 3, 5_000)
    assert not done_before(state, STOCK_P0, 3, 5_001)


def test_a_batch_that_reads_again_from_further_back_lowers_nothing() -> None:
    state = note_read(empty("SKU-1"), STOCK_P0, 850, 5_000, {STOCK_P0: 800})
    # A rewound group: the next batch begins at 0 and replays 800..850 by their ids.
    replayed = note_read(state, STOCK_P0, 820, 4_900, {STOCK_P0: 0})
    assert done_before(replayed, STOCK_P0, 799, 4_000)
    assert not done_before(replayed, STOCK_P0, 800, 4_000)

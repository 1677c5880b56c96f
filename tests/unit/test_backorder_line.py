"""A sku's backorder line at its owner: who is woken when stock rises, in what order, what is
set aside for them, and what a redelivery, an expiry or a competing order changes."""

import random
from datetime import timedelta

from schemas.internal import BackorderWait, Hold, SkuAction, SkuCommand, SkuResult
from schemas.models import StockEventKind
from streams.core.inventory import stock as inventory
from streams.core.inventory.backorders import PROMISE_TTL_MS, nobody_to_wake, walk
from streams.core.inventory.sku_owner import answer_command, apply_stock, serve_line
from streams.core.inventory.stock import Line, SkuInventory, line
from streams.inventory_stage import _encode_inventory, expiry_commands
from tests.unit.factories import T0, make_stock_event

SKU = "SKU-1"


def line_command(
    action: SkuAction, order_id: str, quantity: int = 1, *, minute: int = 0, rank: int = 0,
    seen: int = 0, n: int = 1,
) -> SkuCommand:  # fmt: skip
    wait = BackorderWait(
        quantity=quantity,
        rank=rank,
        placed_at=T0 + timedelta(minutes=minute),
        waiting_since=T0,
        seen_available=seen,
    )
    return SkuCommand(
        command_id=f"{action.value}:{SKU}:{order_id}:{n}",
        order_id=order_id,
        sku=SKU,
        action=action,
        attempt=1,
        wait=wait if action == SkuAction.WAIT else None,
        issued_at=T0,
    )


def answer(
    state: SkuInventory, command: SkuCommand, **kw: float
) -> tuple[SkuInventory, list[SkuResult]]:
    return answer_command(state, command, T0, **kw)


def reserve(order_id: str, quantity: int, hold: str = "") -> SkuCommand:
    hold = hold or f"{order_id}-2-1"
    return SkuCommand(
        command_id=f"RESERVE:{SKU}:{hold}",
        order_id=order_id,
        sku=SKU,
        action=SkuAction.RESERVE,
        attempt=2,
        holds=(Hold(hold_id=hold, location_id="DC-EAST", quantity=quantity),),
        issued_at=T0,
    )


def add_stock(state: SkuInventory, units: int, event_id: str, *, minutes: float = 0) -> tuple[
    SkuInventory, list[SkuResult]
]:  # fmt: skip
    event = make_stock_event(
        SKU, "DC-EAST", units, event_id=event_id, kind=StockEventKind.ADJUSTMENT
    )
    after, changed = apply_stock(state, event)
    return serve_line(
        state, after, T0 + timedelta(minutes=minutes), cause=event_id, replay=not changed
    )


def line_of(*orders: tuple[str, int, int]) -> SkuInventory:
    """SKU-1 with nothing on hand and (order, units, minute placed) waiting, joined in order."""
    state = inventory.empty(SKU)
    state, _ = apply_stock(state, make_stock_event(SKU, "DC-EAST", 0, event_id="count"))
    for order_id, quantity, minute in orders:
        state, results = answer(
            state, line_command(SkuAction.WAIT, order_id, quantity, minute=minute)
        )
        assert results == []
    return state


def woken(results: list[SkuResult]) -> list[str]:
    assert all(r.action == SkuAction.WAKE and r.ok for r in results)
    return [r.order_id for r in results]


def test_stock_wakes_the_first_placed_and_only_as_many_as_it_covers() -> None:
    state = line_of(("ORD-B", 1, 2), ("ORD-C", 1, 3), ("ORD-A", 1, 1))

    state, results = add_stock(state, 2, "r-1")
    assert woken(results) == ["ORD-A", "ORD-B"]
    assert results[0].locations[0].available == 2  # the figures to route on
    assert state.promised == 2

    state, results = add_stock(state, 1, "r-2")
    assert woken(results) == ["ORD-C"]


def test_a_later_order_never_takes_the_units_an_earlier_one_waits_for() -> None:
    state = line_of(("ORD-BIG", 3, 1), ("ORD-SMALL", 1, 2))

    state, results = add_stock(state, 2, "r-1")
    assert results == []  # 2 units: not enough for the first, and the second must not pass it

    state, results = add_stock(state, 2, "r-2")
    assert woken(results) == ["ORD-BIG", "ORD-SMALL"]


def test_units_set_aside_refuse_a_competing_reservation_until_the_woken_order_takes_them() -> None:
    state = line_of(("ORD-1", 2, 1))
    state, _ = add_stock(state, 2, "r-1")

    state, [refused, *_] = answer(state, reserve("ORD-NEW", 1))
    assert not refused.ok and "set aside for earlier backorders" in (refused.reason or "")

    state, [granted, *_] = answer(state, reserve("ORD-1", 2))
    assert granted.ok and state.promised == 0
    assert state.at("DC-EAST").reserved == 2


def test_a_refused_reservation_of_the_woken_order_keeps_what_was_set_aside() -> None:
    state = line_of(("ORD-1", 2, 1))
    state, _ = add_stock(state, 2, "r-1")
    # the order asked at a location short of the units (its view lagged): it tries again
    short = reserve("ORD-1", 3)
    state, [refused, *_] = answer(state, short)
    assert not refused.ok and state.promised == 2
    state, [competitor, *_] = answer(state, reserve("ORD-NEW", 1))
    assert not competitor.ok  # the units still wait for ORD-1
    state, [again, *_] = answer(state, short)  # a replay of the refused command: no again
    assert not again.ok and state.promised == 2


def test_an_order_that_leaves_and_joins_again_gets_wakes_with_new_ids() -> None:
    state = line_of(("ORD-1", 1, 1))
    state, first = add_stock(state, 1, "r-1")
    state, _ = answer(state, reserve("ORD-1", 1))
    state, _ = answer(state, line_command(SkuAction.UNWAIT, "ORD-1", n=2))
    state, _ = answer(state, line_command(SkuAction.WAIT, "ORD-1", 1, minute=1, n=3))
    state, second = add_stock(state, 1, "r-2")
    assert woken(first) == woken(second) == ["ORD-1"]
    # the same id would be taken for a replay of the first wake and ignored
    assert first[0].command_id != second[0].command_id


def test_an_order_that_looked_waits_for_the_next_rise_and_keeps_its_place() -> None:
    state = line_of(("ORD-1", 1, 1), ("ORD-2", 1, 2))
    state, _ = add_stock(state, 1, "r-1")
    # ORD-1 was woken, could not use the unit (say it may not ship from there) and waits again
    state, results = answer(state, line_command(SkuAction.WAIT, "ORD-1", 1, minute=1, seen=1, n=2))
    assert woken(results) == ["ORD-2"]  # ORD-1 passed over, not blocking the line
    state, results = add_stock(state, 1, "r-2")
    assert woken(results) == ["ORD-1"]  # first again at the next rise


def test_units_set_aside_and_not_taken_wake_an_order_that_looked_meanwhile() -> None:
    state = line_of(("ORD-W", 1, 1))
    state, _ = add_stock(state, 1, "r-1")  # the unit is set aside for ORD-W
    # ORD-O looks now: its view shows the unit, the owner has none free (set aside)
    state, results = answer(state, line_command(SkuAction.WAIT, "ORD-O", 1, minute=2, seen=1))
    assert results == []
    # ORD-W leaves without taking it: no rise, yet the unit is free again for ORD-O
    state, results = answer(state, line_command(SkuAction.UNWAIT, "ORD-W", n=2))
    assert woken(results) == ["ORD-O"]


def test_orders_that_cannot_use_the_free_units_are_not_woken_in_turn_for_ever() -> None:
    state = line_of(("ORD-1", 1, 1), ("ORD-2", 1, 2))
    state, results = add_stock(state, 1, "r-1")
    assert woken(results) == ["ORD-1"]
    # ORD-1 cannot use the unit (it may not ship from there): it waits again, having seen it
    state, results = answer(state, line_command(SkuAction.WAIT, "ORD-1", 1, minute=1, seen=1, n=2))
    assert woken(results) == ["ORD-2"]  # the unit set aside for ORD-1 is news to ORD-2
    state, results = answer(state, line_command(SkuAction.WAIT, "ORD-2", 1, minute=2, seen=1, n=2))
    assert results == []  # ORD-1 has seen that unit free: nobody is woken again
    state, results = add_stock(state, 1, "r-2")
    assert woken(results) == ["ORD-1", "ORD-2"]  # a rise is news to both


def test_an_order_whose_view_lagged_is_served_at_once() -> None:
    state = line_of()
    state, _ = add_stock(state, 3, "r-1")  # nobody waits yet
    state, results = answer(state, line_command(SkuAction.WAIT, "ORD-1", 2, seen=0))
    assert woken(results) == ["ORD-1"]


def test_a_rank_goes_before_placed_at() -> None:
    state = line_of()
    for order_id, rank, minute in (("ORD-STD", 2, 1), ("ORD-NEXT-DAY", 0, 5)):
        state, _ = answer(state, line_command(SkuAction.WAIT, order_id, rank=rank, minute=minute))
    state, results = add_stock(state, 1, "r-1")
    assert woken(results) == ["ORD-NEXT-DAY"]


def test_a_redelivered_restock_sends_the_standing_wakes_again_with_the_same_ids() -> None:
    state = line_of(("ORD-1", 1, 1))
    state, first = add_stock(state, 1, "r-1")
    again_state, again = add_stock(state, 1, "r-1")
    assert again_state.at("DC-EAST").on_hand == 1
    assert [r.command_id for r in again] == [r.command_id for r in first]


def test_a_wake_nobody_acted_on_is_given_again_after_its_time() -> None:
    state = line_of(("ORD-1", 1, 1))
    state, first = add_stock(state, 1, "r-1")
    state, results = add_stock(state, 0, "r-2", minutes=PROMISE_TTL_MS / 60_000 + 1)
    assert woken(results) == ["ORD-1"]
    assert results[0].command_id != first[0].command_id


def test_leaving_the_line_frees_what_was_set_aside_for_the_next() -> None:
    state = line_of(("ORD-1", 1, 1), ("ORD-2", 1, 2))
    state, _ = add_stock(state, 1, "r-1")
    state, results = answer(state, line_command(SkuAction.UNWAIT, "ORD-1", n=2))
    assert woken(results) == ["ORD-2"]
    state, again = answer(state, line_command(SkuAction.UNWAIT, "ORD-1", n=2))
    assert [w.order_id for w in state.waiters] == ["ORD-2"]
    assert woken(again) == ["ORD-2"]  # a redelivery repeats the wake it caused, same id
    assert again[0].command_id == results[0].command_id


def test_expire_takes_out_the_orders_waiting_too_long_and_tells_each() -> None:
    state = line_of(("ORD-1", 1, 1))
    expire = SkuCommand(
        command_id=f"EXPIRE:{SKU}:ORD-1",
        order_id="ORD-1",
        sku=SKU,
        action=SkuAction.EXPIRE,
        attempt=0,
        issued_at=T0 + timedelta(hours=2),
    )
    state, results = answer(state, expire, expiry_s=3600)
    assert [(r.order_id, r.action, r.ok) for r in results] == [("ORD-1", SkuAction.EXPIRE, False)]
    assert "DOM_BACKORDER_EXPIRY_S" in (results[0].reason or "")
    assert state.waiters == ()
    assert results[0].command_id == f"EXPIRE:{SKU}:ORD-1:1"

    # the order was busy routing and waits again: the scan's next EXPIRE is a new one
    state, _ = answer(state, line_command(SkuAction.WAIT, "ORD-1", minute=1, n=3))
    [scanned] = expiry_commands(
        [(SKU.encode(), _encode_inventory(state))], T0 + timedelta(hours=2), 3600
    )
    assert scanned.command_id == f"EXPIRE:{SKU}:2"
    state, again = answer(state, scanned, expiry_s=3600)
    assert [r.command_id for r in again] == [f"EXPIRE:{SKU}:ORD-1:2"]
    assert expiry_commands([(SKU.encode(), _encode_inventory(state))], T0, 3600) == []


def test_the_line_survives_the_table() -> None:
    state = line_of(("ORD-1", 2, 1))
    state, _ = add_stock(state, 2, "r-1")
    assert inventory.from_dict(inventory.to_dict(state)) == state


def test_a_replayed_command_repeats_only_the_wakes_it_caused() -> None:
    """Otherwise a replayed wake's answers (its reservation, its new place in line) would make
    the owner repeat the wake, whose answers it would repeat again: an echo without end."""
    state = line_of(("ORD-1", 1, 1), ("ORD-2", 1, 2))
    state, _ = add_stock(state, 1, "r-1")  # wakes ORD-1
    wait = line_command(SkuAction.WAIT, "ORD-1", 1, minute=1, seen=1, n=2)
    state, first = answer(state, wait)  # ORD-1 looked and waits again: ORD-2 is woken
    assert woken(first) == ["ORD-2"]

    _, again = answer(state, wait)
    assert [r.command_id for r in again] == [r.command_id for r in first]
    _, other = answer(state, line_command(SkuAction.WAIT, "ORD-2", 1, minute=2, n=1))
    assert other == []  # ORD-2's first place in line caused nothing: a replay repeats nothing


def test_the_line_timer_offers_stale_set_asides_again_when_nothing_else_comes() -> None:
    from streams.inventory_stage import line_tick

    state = line_of(("ORD-1", 1, 1))
    state, first = add_stock(state, 1, "r-1")  # ORD-1 woken; say it was busy and let it pass
    later = T0 + timedelta(milliseconds=PROMISE_TTL_MS)
    state, results = answer_command(state, line_tick(state, later), later)
    assert woken(results) == ["ORD-1"]
    assert results[0].command_id != first[0].command_id
    assert line_tick(state, later).command_id == f"EXPIRE:{SKU}:2"  # each tick its own id


def test_the_line_figures_a_command_reads_match_a_walk_of_the_whole_line() -> None:
    """A long line is not walked per command: its floors and totals are carried from line to
    line. Over random commands, stock moves and time, they match the line counted afresh, and
    whenever they say nobody can be woken, walking the whole line wakes nobody."""
    for seed in range(12):
        rng = random.Random(seed)
        state = line_of()
        orders = [f"ORD-{i}" for i in range(25)]
        for step in range(250):
            now = T0 + timedelta(seconds=step * rng.choice((0.5, 4)))
            woken = [w.order_id for w in state.waiters if w.promised]
            move = rng.random()
            # Woken orders take their units or leave often: what frees units without a rise.
            order_id = rng.choice(woken if woken and 0.45 <= move < 0.8 else orders)
            if move < 0.45:
                command = line_command(
                    SkuAction.WAIT, order_id, rng.randint(1, 3), minute=rng.randint(0, 9),
                    rank=rng.randint(0, 1), seen=rng.randint(0, 6), n=step,
                )  # fmt: skip
            elif move < 0.6:
                command = line_command(SkuAction.UNWAIT, order_id, n=step)
            elif move < 0.8:
                command = reserve(order_id, rng.randint(1, 3), hold=f"{order_id}-{step}")
            else:
                event = make_stock_event(
                    SKU, "DC-EAST", rng.randint(-3, 5), event_id=f"e{step}",
                    kind=StockEventKind.ADJUSTMENT,
                )  # fmt: skip
                try:
                    after, _ = apply_stock(state, event)
                except inventory.StockRefused:
                    continue
                state, _ = serve_line(state, after, now, cause=f"e{step}")
                command = None
            if command is not None:
                state, _ = answer_command(state, command, now)
            fresh = Line(list(state.waiters))
            carried = line(state.waiters)
            assert carried.by_order == fresh.by_order
            assert carried.promised == fresh.promised
            assert carried.since_rise_floor == fresh.since_rise_floor
            assert carried.seen_free_floor == fresh.seen_free_floor
            assert carried.promise_floor == fresh.promise_floor
            later = int(now.timestamp() * 1000) + rng.choice((0, PROMISE_TTL_MS))
            if nobody_to_wake(state, later):
                assert walk(state, later) == (state, [])

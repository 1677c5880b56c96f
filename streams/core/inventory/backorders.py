"""The backorder line of one sku, kept by the sku's owner inside its inventory value.

An order short of a sku joins the sku's line (``WAIT``) with its place: a rank
(``DOM_BACKORDER_PRIORITY``: 0 for everyone by default, else by service level or loyalty tier)
then the time it was placed. It waits for the sku's total available to rise after it looked:
``since_rise`` is the sku's rise count then, and any rise (a count, an adjustment, a release,
a sellable return, a lower safety stock) wakes the line. An order that saw less stock than the
owner holds when it joins (its view lagged) may be served at once.

A wake walks the line in order and serves each waiting order whose units the free stock still
covers (free = total available minus what earlier wakes set aside), and stops at the first it
cannot: a later order never takes the units an earlier one waits for. An order that has not
seen a rise since it last looked is passed over: it could not use what is there (another
location's stock it may not ship from, say) and keeps its place for the next rise; unless more
is free now than when it looked (``seen_free``): units set aside for a woken order that then
did not take them (it left the line, or waited again) are news to those that looked while
they were set aside, with no rise. An order's ``seen_free`` only grows until the next rise, so
orders that cannot use the free units are each woken a bounded number of times, never in turn
for ever.

A woken order gets a ``WAKE`` result, and its units are set aside (``promised``) until it
reserves the sku (a refused reservation keeps them: the order tries again on fresh figures),
joins the line again or leaves it; a reservation by any other order that
would eat into them is refused. A promise nobody acts on for :data:`PROMISE_TTL_MS` is given
back and the order woken again, so a lost or ignored wake delays, never strands (the owner's
line timer sees to it when nothing else comes for the sku).

Every function is pure over :class:`~streams.core.inventory.stock.SkuInventory`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, replace
from operator import attrgetter

from streams.core.inventory.stock import Line, SkuInventory, Waiter, line

PROMISE_TTL_MS = 10_000
"""How long units stay set aside for a woken order that neither reserves nor waits again (a
wake that found it busy): then the next serving of the line, at the latest the owner's line
timer, offers them again. A woken order normally reserves within milliseconds."""


@dataclass(frozen=True)
class Wake:
    """A waiting order served by a wake: its units are set aside for it."""

    order_id: str
    quantity: int
    number: int  # the sku's wakes so far (SkuInventory.wakes): its wake's id


def wait(
    state: SkuInventory,
    order_id: str,
    quantity: int,
    rank: int,
    placed_at_ms: int,
    seen_available: int,
    since_ms: int = 0,
) -> SkuInventory:
    """Put ``order_id`` in the line at its place (again, if it was in it: a new look)."""
    waiters = line(state.waiters)
    old = waiters.by_order.get(order_id)
    free = state.total_available - waiters.promised + (old.promised if old else 0)
    since = state.rises - 1 if free > seen_available else state.rises
    waiter = Waiter(
        order_id=order_id,
        quantity=quantity,
        rank=rank,
        placed_at_ms=placed_at_ms,
        since_rise=since,
        wakes=old.wakes if old else 0,
        since_ms=since_ms,
        seen_free=min(free, seen_available),
    )
    # The line is kept in order: one removal and one insertion, not a sort or a filter (a hot
    # sku's line runs to thousands).
    kept = list(waiters)
    if old is not None:
        del kept[waiters.position(old)]
    bisect.insort(kept, waiter, key=Waiter.line_key)
    return replace(state, waiters=_changed(waiters, kept, old, waiter))


def leave(state: SkuInventory, order_id: str) -> SkuInventory:
    """Take ``order_id`` out of the line (what was set aside for it is free again)."""
    waiters = line(state.waiters)
    old = waiters.by_order.get(order_id)
    if old is None:
        return state
    kept = list(waiters)
    del kept[waiters.position(old)]
    return replace(state, waiters=_changed(waiters, kept, old, None))


def looked(state: SkuInventory, order_id: str) -> SkuInventory:
    """The order reserved the sku (``state`` holds its reservation): what was set aside for it
    is given back, and it waits for the next rise (or more free units) if it needs more."""
    old = _find(state, order_id)
    if old is None:
        return state
    seen = state.total_available - promised_to_others(state, order_id)
    new = replace(old, promised=0, promised_at_ms=0, since_rise=state.rises, seen_free=seen)
    return state if new == old else _put(state, new)


def promised_to_others(state: SkuInventory, order_id: str) -> int:
    """Units set aside for woken orders other than ``order_id``."""
    waiters = line(state.waiters)
    mine = waiters.by_order.get(order_id)
    return waiters.promised - (mine.promised if mine else 0)


def note_rise(before: SkuInventory, after: SkuInventory) -> SkuInventory:
    """Count a rise of the total available (what waiting orders wait for)."""
    if after.total_available > before.total_available and after.waiters:
        return replace(after, rises=after.rises + 1)
    return after


def serve(state: SkuInventory, now_ms: int, cause: str = "") -> tuple[SkuInventory, list[Wake]]:
    """Wake the orders the free stock covers, in line order (see the module doc); ``cause``
    names the input whose application this serving follows (see :func:`caused_by`)."""
    if nobody_to_wake(state, now_ms):
        return state, []
    return walk(state, now_ms, cause)


def nobody_to_wake(state: SkuInventory, now_ms: int) -> bool:
    """Whether :func:`walk` would leave the line as it is, told from the line's figures
    without walking it: no promise is due to be given back, and every order with nothing set
    aside has seen the latest rise and no more free units than there are now."""
    waiters = line(state.waiters)
    if not waiters:
        return True
    oldest = waiters.oldest_promise_ms
    if oldest is not None and now_ms - oldest >= PROMISE_TTL_MS:
        return False
    free = state.total_available - waiters.promised
    rises_seen, _ = waiters.since_rise_floor
    return rises_seen >= state.rises and free <= waiters.seen_free_floor[0]


def walk(state: SkuInventory, now_ms: int, cause: str = "") -> tuple[SkuInventory, list[Wake]]:
    """:func:`serve` by walking the whole line: give back the promises past their time, then
    wake each order the free units cover, in line order."""
    line_now = line(state.waiters)
    waiters = [
        replace(w, promised=0, promised_at_ms=0, since_rise=state.rises - 1)
        if w.promised and now_ms - w.promised_at_ms >= PROMISE_TTL_MS
        else w
        for w in line_now
    ]
    free = state.total_available - sum(w.promised for w in waiters)
    wakes: list[Wake] = []
    for i, w in enumerate(waiters):
        if w.promised or (w.since_rise >= state.rises and free <= w.seen_free):
            continue
        if w.quantity > free:
            break
        free -= w.quantity
        number = state.wakes + len(wakes) + 1
        waiters[i] = replace(
            w, promised=w.quantity, promised_at_ms=now_ms, wakes=number, woken_by=cause
        )
        wakes.append(Wake(w.order_id, w.quantity, number))
    if not wakes and waiters == list(line_now):
        return state, []
    return replace(state, waiters=Line(waiters), wakes=state.wakes + len(wakes)), wakes


def caused_by(state: SkuInventory, cause: str) -> list[Wake]:
    """The standing wakes the input ``cause`` made: sent again when that input is replayed
    and finds its work done (its first answers may not have gone out; the same ids make the
    repeat harmless). Only its own: a replay never repeats what other inputs caused, so the
    answers to a replayed wake cannot echo back and forth."""
    return [
        Wake(w.order_id, w.promised, w.wakes)
        for w in state.waiters
        if w.promised and w.woken_by == cause
    ]


def expire(state: SkuInventory, waiting_before_ms: int) -> tuple[SkuInventory, list[Waiter]]:
    """Take out of the line every order waiting since before ``waiting_before_ms``."""
    gone = [w for w in state.waiters if w.since_ms < waiting_before_ms]
    if not gone:
        return state, []
    kept = Line(w for w in state.waiters if w.since_ms >= waiting_before_ms)
    return replace(state, waiters=kept), gone


def oldest_promise_ms(state: SkuInventory) -> int | None:
    """When the oldest units still set aside were set aside (None: none are)."""
    return line(state.waiters).oldest_promise_ms


def oldest(state: SkuInventory) -> Waiter | None:
    """The order waiting longest."""
    return min(state.waiters, key=lambda w: w.since_ms, default=None)


def _find(state: SkuInventory, order_id: str) -> Waiter | None:
    return line(state.waiters).by_order.get(order_id)


def _put(state: SkuInventory, waiter: Waiter) -> SkuInventory:
    """``waiter`` in place of the line's waiter of the same order (same place in line)."""
    waiters = line(state.waiters)
    old = waiters.by_order[waiter.order_id]
    kept = list(waiters)
    kept[waiters.position(old)] = waiter
    return replace(state, waiters=_changed(waiters, kept, old, waiter))


def _changed(
    before: Line, waiters: list[Waiter], gone: Waiter | None, added: Waiter | None
) -> Line:
    """``waiters``, which are ``before`` less ``gone`` and with ``added``, as a line. What
    ``before`` had looked up is carried over where one waiter less and one more allow it (a
    least figure the waiter that left may have held is looked up again when asked)."""
    after = Line(waiters)
    known, carried = before.__dict__, after.__dict__
    if "by_order" in known:
        by_order = dict(before.by_order)
        if gone is not None:
            del by_order[gone.order_id]
        if added is not None:
            by_order[added.order_id] = added
        carried["by_order"] = by_order
    if "promised" in known:
        carried["promised"] = (
            before.promised - (gone.promised if gone else 0) + (added.promised if added else 0)
        )
    for name, figure, counted in FLOORS:
        if name not in known:
            continue
        least, count = known[name]
        if gone is not None and counted(gone) and figure(gone) == least:
            count -= 1
            if not count:
                continue  # it was the last at the floor: looked up again when asked
        if added is not None and counted(added):
            if figure(added) < least:
                least, count = figure(added), 1
            elif figure(added) == least:
                count += 1
        carried[name] = (least, count)
    return after


FLOORS: tuple[tuple[str, Callable[[Waiter], int], Callable[[Waiter], bool]], ...] = (
    ("since_rise_floor", attrgetter("since_rise"), lambda w: not w.promised),
    ("seen_free_floor", attrgetter("seen_free"), lambda w: not w.promised),
    ("promise_floor", attrgetter("promised_at_ms"), lambda w: bool(w.promised)),
)
"""The line's floors (:class:`~streams.core.inventory.stock.Line`): the figure each is the
least of, and which waiters it counts."""

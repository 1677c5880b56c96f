"""Per-SKU inventory: what is on hand, held for orders and kept back, at every location.

One :class:`SkuInventory` is the value the inventory table stores under a SKU key. It
carries, beside the figures, the markers that make redelivery harmless:

- ``applied_events``: the last ``EVENT_MEMORY`` stock/restock event ids applied, oldest
  first, so a redelivered event changes nothing;
- ``holds``: reservations by hold id (``(order_id, shipment_id)``) -> {location: units}, so
  reserving the same hold twice changes nothing;
- ``closed_holds``: the last ``EVENT_MEMORY`` holds released or consumed, so a redelivered
  reservation for a hold that is already over does not hold stock again (nobody would ever
  release it). A new attempt (say a re-route) must use a new hold id;
- ``read_to``: what the sku read of each input partition (:mod:`streams.core.replays`): a
  replay of an input applied in a batch whose records all went out, however far back (a
  consumer group rewound by an operator), is skipped whole (:func:`done_before`). So the
  memories above need only cover the sku's inputs of the last batch that read each partition
  (a batch holds at most 500 inputs);
- ``channels``: what each published channel may sell of the sku (the figures last published,
  in ``Availability.channels`` and on ``dom.channel-availability.v1`` when that is on), and
  ``channels_plan``, the fingerprint of the channel plan they were figured under
  (:mod:`streams.core.channels.plan`): the owner publishes a channel's figure on the topic only
  when it differs from the one published, and a plan change finds the skus figured under
  another plan.

Every function is pure: it returns a new value (or the same object when nothing changed) and
never mutates its input.

Invariants. ``available = max(0, on_hand - reserved - safety_stock)``. ``reserved`` is always
the sum of the holds at that location. A reservation succeeds only while
``reserved + units <= on_hand - safety_stock``, so no unit is promised twice. Later stock
events may lower on-hand below what is held (a recount finds less); holds are then kept, not
silently dropped, available shows 0 and :attr:`LocationStock.oversold` says by how much, for
the caller to re-route.

Bounds. Every figure the contract publishes is an Avro int, so a stock event is refused
(:class:`StockRefused`, with the reason) rather than applied when it would take a location's
on-hand or safety stock, or the sku's total on hand (which bounds ``total_available``), above
``MAX_UNITS``, and a SNAPSHOT or SAFETY_STOCK quantity must not be negative. Reservations need
no check of their own: ``reserved`` never exceeds on-hand when it grows.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import Any, TypeVar

from schemas.common import INT32_MAX
from streams.core import replays

EVENT_MEMORY = 1000
"""How many applied event ids (and closed holds) a SKU remembers for de-duplication: a replay
reaches them only for the sku's inputs of the last batch that read each partition
(``read_to``), at most a batch (500 inputs) each, with one id and most with one hold. A batch
of packed stock messages is cut so that no sku gets more (``Outbox._parts``)."""

SCHEMA_VERSION = 1
"""The version of the stored value this worker writes (its ``version`` key; absent: 1).

Rolling upgrades: a newer worker reads older values (keys added later get defaults), and an
older worker reads newer ones: :func:`from_dict` reads the keys it knows, ignores the others
and accepts a higher version, so a sku is never dead-lettered mid-upgrade; what it writes back
is its own version, without the keys it did not know. Raise it when a stored key changes
meaning (adding a key with a default needs no new version)."""

HoldId = tuple[str, str]
"""(order_id, shipment_id)."""

K = TypeVar("K")

MAX_UNITS = INT32_MAX
"""The most units any published figure may hold: the contract's figures are Avro ints."""


class StockRefused(ValueError):
    """A stock event that would leave the contract's range; ``reason`` says why, for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StockEventKind(StrEnum):
    SNAPSHOT = "SNAPSHOT"
    """Absolute on-hand count."""
    ADJUSTMENT = "ADJUSTMENT"
    """Signed change to on-hand (floored at zero)."""
    SAFETY_STOCK = "SAFETY_STOCK"
    """Absolute safety level: units never promised."""


@dataclass(frozen=True, slots=True)
class StockEvent:
    event_id: str
    location_id: str
    kind: StockEventKind
    quantity: int


@dataclass(frozen=True, slots=True)
class LocationStock:
    on_hand: int = 0
    reserved: int = 0
    safety_stock: int = 0

    @property
    def available(self) -> int:
        return max(0, self.on_hand - self.reserved - self.safety_stock)

    @property
    def oversold(self) -> int:
        """Units held for orders beyond what is physically on hand."""
        return max(0, self.reserved - self.on_hand)


class ReservationStatus(StrEnum):
    RESERVED = "RESERVED"
    ALREADY_HELD = "ALREADY_HELD"
    """The hold exists: nothing changed (a redelivery)."""
    INSUFFICIENT = "INSUFFICIENT"
    """Not enough available at some location: nothing changed (all or nothing)."""
    CLOSED = "CLOSED"
    """The hold was already released, consumed or refused: nothing changed."""


@dataclass(frozen=True, slots=True)
class ReservationOutcome:
    status: ReservationStatus
    held: Mapping[str, int] = field(default_factory=dict)
    """What the hold holds now (location -> units); empty unless RESERVED / ALREADY_HELD."""
    short: Mapping[str, int] = field(default_factory=dict)
    """For INSUFFICIENT: location -> units missing."""

    @property
    def ok(self) -> bool:
        """True when the hold is in place (now or before)."""
        return self.status in (ReservationStatus.RESERVED, ReservationStatus.ALREADY_HELD)


@dataclass(frozen=True, slots=True)
class Waiter:
    """One order in a sku's backorder line (its rules: :mod:`streams.core.inventory.backorders`)."""

    order_id: str
    quantity: int
    rank: int
    placed_at_ms: int
    since_rise: int
    """The sku's :attr:`SkuInventory.rises` when the order last looked at its stock: it waits
    for a rise after that."""
    promised: int = 0
    """Units set aside for it by its latest wake, until it reserves or waits again (0: none)."""
    promised_at_ms: int = 0
    wakes: int = 0
    """The number of its latest wake (the sku's :attr:`SkuInventory.wakes` then): its id."""
    since_ms: int = 0
    """When it first waited: the backorder's age counts from here."""
    woken_by: str = ""
    """The input whose application woke it last (a replay of that input repeats the wake)."""
    seen_free: int = 0
    """The sku's free units (available, less those set aside for others) when it last looked:
    more free than that is news to it even without a rise (units set aside for an order that
    then did not take them)."""

    def line_key(self) -> tuple[int, int, str]:
        return (self.rank, self.placed_at_ms, self.order_id)


_NOBODY = 2**62
"""Above any figure of a waiter: the floor (least figure) of none."""


class Line(tuple[Waiter, ...]):
    """A sku's backorder line: its waiters in line order (:meth:`Waiter.line_key`), with what
    each command looks up in it computed once per line and shared by every state that keeps
    the line (a command that only reserves keeps it). The owner answers every command with a
    look at the line; walking a bestseller's thousands of waiters for each one was a fifth of
    a sku owner's samples 190,000 orders into a ``dom bench --ship`` run.

    A tuple to everything else (it compares, encodes and iterates as one); built by
    :func:`from_dict`, :func:`line` and the functions of
    :mod:`streams.core.inventory.backorders`."""

    @cached_property
    def by_order(self) -> dict[str, Waiter]:
        """order_id -> its waiter."""
        return {w.order_id: w for w in self}

    @cached_property
    def promised(self) -> int:
        """Units set aside for woken orders."""
        return sum(w.promised for w in self)

    @cached_property
    def since_rise_floor(self) -> tuple[int, int]:
        """The least ``since_rise`` of the orders with nothing set aside, and how many have it
        (:data:`_NOBODY`, 0: there are none)."""
        return _floor([w.since_rise for w in self if not w.promised])

    @cached_property
    def seen_free_floor(self) -> tuple[int, int]:
        """The least ``seen_free`` of the orders with nothing set aside, and how many have it."""
        return _floor([w.seen_free for w in self if not w.promised])

    @cached_property
    def promise_floor(self) -> tuple[int, int]:
        """When the oldest units still set aside were set aside, and for how many orders then
        (:data:`_NOBODY`, 0: nothing is set aside)."""
        return _floor([w.promised_at_ms for w in self if w.promised])

    @property
    def oldest_promise_ms(self) -> int | None:
        """When the oldest units still set aside were set aside (None: none are)."""
        oldest, count = self.promise_floor
        return oldest if count else None

    def position(self, waiter: Waiter) -> int:
        """Where ``waiter`` (one of the line's) stands in it."""
        i = bisect.bisect_left(self, waiter.line_key(), key=Waiter.line_key)
        if i < len(self) and self[i] is waiter:
            return i
        return tuple.index(self, waiter)  # a line built out of order (by hand, in a test)


def _floor(figures: list[int]) -> tuple[int, int]:
    """The least of ``figures`` and how many times it occurs (:data:`_NOBODY`, 0: empty)."""
    if not figures:
        return _NOBODY, 0
    least = min(figures)
    return least, figures.count(least)


def line(waiters: Iterable[Waiter]) -> Line:
    """``waiters`` (in line order) as a :class:`Line`; a line is returned as it is."""
    return waiters if isinstance(waiters, Line) else Line(waiters)


@dataclass(frozen=True)
class SkuInventory:
    """Inventory of one SKU across locations, with its de-duplication markers.

    Treat it as immutable: the mappings are never mutated after construction.
    """

    sku: str
    locations: Mapping[str, LocationStock] = field(default_factory=dict)
    holds: Mapping[HoldId, Mapping[str, int]] = field(default_factory=dict)
    applied_events: Mapping[str, None] = field(default_factory=dict)
    """Insertion-ordered set (a dict) of applied event ids, oldest first."""
    closed_holds: Mapping[HoldId, None] = field(default_factory=dict)
    waiters: tuple[Waiter, ...] = Line()
    """The backorder line: orders waiting for this sku, first served first (a :class:`Line`
    when the core built it; :func:`line` makes one of any tuple)."""
    rises: int = 0
    """How many times its total available rose: what waiting orders wait for."""
    expiries: int = 0
    """How many ``EXPIRE`` commands it applied: numbers the next one's id."""
    read_to: replays.Marks = field(default_factory=dict)
    """What it read of each input partition: see :mod:`streams.core.replays`."""
    wakes: int = 0
    """How many wakes its line made: numbers each wake, so no two share an id, not even those
    of an order that left the line and joined it again (a repeated id is taken for a replay
    and ignored). A value stored before it existed counts from 0: a wake whose id an earlier
    one had is ignored, and its units offered again after ``PROMISE_TTL_MS``."""

    channels: Mapping[str, int] = field(default_factory=dict)
    """channel -> what the channel may sell of the sku, as last published (a channel missing:
    never published, or to be published again)."""
    channels_plan: str = ""
    """The fingerprint of the channel plan ``channels`` were figured under."""

    def at(self, location_id: str) -> LocationStock:
        return self.locations.get(location_id) or LocationStock()

    def available(self, location_id: str) -> int:
        return self.at(location_id).available

    def availability(self) -> dict[str, int]:
        """location_id -> available units: the per-SKU slice routing takes as ``stock``."""
        return {lid: stock.available for lid, stock in self.locations.items()}

    @property
    def total_available(self) -> int:
        return sum(stock.available for stock in self.locations.values())

    @property
    def promised(self) -> int:
        """Units set aside for woken backorders, not yet reserved by them."""
        return line(self.waiters).promised

    def has_applied(self, event_id: str) -> bool:
        return event_id in self.applied_events

    def holds_for_order(self, order_id: str) -> tuple[HoldId, ...]:
        return tuple(hold for hold in self.holds if hold[0] == order_id)


def empty(sku: str) -> SkuInventory:
    return SkuInventory(sku)


def _remember(memory: Mapping[K, None], key: K, limit: int) -> dict[K, None]:
    updated = dict(memory)
    updated.pop(key, None)
    updated[key] = None
    # Dicts keep insertion order, so the first keys are the oldest: drop those past the limit.
    for old in list(updated)[: max(0, len(updated) - limit)]:
        del updated[old]
    return updated


def _with_location(state: SkuInventory, location_id: str, stock: LocationStock) -> SkuInventory:
    locations = dict(state.locations)
    locations[location_id] = stock
    return replace(state, locations=locations)


def remember_event(
    state: SkuInventory, event_id: str, *, memory: int = EVENT_MEMORY
) -> SkuInventory:
    """Mark ``event_id`` applied (a command applied once per id), so a redelivery is known."""
    return replace(state, applied_events=_remember(state.applied_events, event_id, memory))


def apply_stock_event(
    state: SkuInventory, event: StockEvent, *, memory: int = EVENT_MEMORY
) -> tuple[SkuInventory, bool]:
    """Apply a SNAPSHOT, ADJUSTMENT or SAFETY_STOCK event once; ``changed`` is False for a
    redelivered event id.

    Raises :class:`StockRefused` for an event outside the bounds (see the module docstring).
    """
    if event.event_id in state.applied_events:
        return state, False
    current = state.at(event.location_id)
    quantity = event.quantity
    if event.kind != StockEventKind.ADJUSTMENT and quantity < 0:
        raise StockRefused(f"a {event.kind} quantity must not be negative: {quantity}")
    if event.kind == StockEventKind.SNAPSHOT:
        updated = LocationStock(quantity, current.reserved, current.safety_stock)
    elif event.kind == StockEventKind.ADJUSTMENT:
        on_hand = max(0, current.on_hand + quantity)
        updated = LocationStock(on_hand, current.reserved, current.safety_stock)
    else:
        updated = LocationStock(current.on_hand, current.reserved, quantity)
    shown = f"{quantity:+d}" if event.kind == StockEventKind.ADJUSTMENT else str(quantity)
    _check_bounds(state, event.location_id, updated, f"{event.kind} of {shown}")
    moved = _with_location(state, event.location_id, updated)
    applied = _remember(state.applied_events, event.event_id, memory)
    return _replace(moved, applied_events=applied), True


def _check_bounds(state: SkuInventory, location_id: str, updated: LocationStock, what: str) -> None:
    """Raise :class:`StockRefused` when ``updated`` at the location would put a published
    figure of the sku above ``MAX_UNITS``."""
    where = f"{what} at {location_id} would make {state.sku}'s"
    for name, value in (("on hand", updated.on_hand), ("safety stock", updated.safety_stock)):
        if value > MAX_UNITS:
            raise StockRefused(f"{where} {name} at {location_id} {value}, above {MAX_UNITS}")
    others = sum(s.on_hand for loc, s in state.locations.items() if loc != location_id)
    total = others + updated.on_hand
    if total > MAX_UNITS:
        raise StockRefused(f"{where} total on hand {total}, above {MAX_UNITS}")


def restock(
    state: SkuInventory,
    location_id: str,
    quantity: int,
    event_id: str,
    *,
    memory: int = EVENT_MEMORY,
) -> tuple[SkuInventory, bool]:
    """Put sellable returned units back on hand, once per ``event_id``.

    A return with several lines of the same SKU should sum them or use one id per line
    (e.g. ``f"{event_id}:{line_no}"``): the id is the unit of de-duplication. Raises
    :class:`StockRefused` for a negative quantity or one that breaks the bounds.
    """
    if quantity < 0:
        raise StockRefused(f"restock quantity must not be negative: {quantity}")
    if event_id in state.applied_events:
        return state, False
    current = state.at(location_id)
    updated = LocationStock(current.on_hand + quantity, current.reserved, current.safety_stock)
    _check_bounds(state, location_id, updated, f"a restock of {quantity}")
    moved = _with_location(state, location_id, updated)
    return _replace(moved, applied_events=_remember(state.applied_events, event_id, memory)), True


def reserve(
    state: SkuInventory, hold_id: HoldId, location_id: str, quantity: int
) -> tuple[SkuInventory, ReservationOutcome]:
    """Hold ``quantity`` units at one location for ``hold_id``, all or nothing."""
    return reserve_many(state, hold_id, {location_id: quantity})


def reserve_many(
    state: SkuInventory, hold_id: HoldId, quantities: Mapping[str, int]
) -> tuple[SkuInventory, ReservationOutcome]:
    """Hold units at several locations under one hold id: every location or none."""
    if not quantities or any(qty <= 0 for qty in quantities.values()):
        raise ValueError(f"reservation quantities must be positive: {dict(quantities)}")
    if hold_id in state.holds:
        return state, ReservationOutcome(ReservationStatus.ALREADY_HELD, dict(state.holds[hold_id]))
    if hold_id in state.closed_holds:
        return state, ReservationOutcome(ReservationStatus.CLOSED)
    short = {
        lid: qty - state.available(lid)
        for lid, qty in quantities.items()
        if qty > state.available(lid)
    }
    if short:
        return state, ReservationOutcome(ReservationStatus.INSUFFICIENT, short=short)
    locations = dict(state.locations)
    for lid, qty in quantities.items():
        current = state.at(lid)
        locations[lid] = LocationStock(
            current.on_hand, current.reserved + qty, current.safety_stock
        )
    holds = dict(state.holds)
    holds[hold_id] = dict(quantities)
    updated = replace(state, locations=locations, holds=holds)
    return updated, ReservationOutcome(ReservationStatus.RESERVED, dict(quantities))


def release(state: SkuInventory, hold_id: HoldId, *, memory: int = EVENT_MEMORY) -> SkuInventory:
    """Give a hold's units back to available (cancel, reject). Idempotent."""
    return _close(state, hold_id, consume=False, memory=memory)


def consume(state: SkuInventory, hold_id: HoldId, *, memory: int = EVENT_MEMORY) -> SkuInventory:
    """The held units left the building (shipped, picked up): reserved and on-hand both drop
    by the held quantity. Idempotent."""
    return _close(state, hold_id, consume=True, memory=memory)


def consume_released(
    state: SkuInventory,
    hold_id: HoldId,
    location_id: str,
    quantity: int,
    *,
    memory: int = EVENT_MEMORY,
) -> SkuInventory:
    """Units that left the building after their hold was released (a cancel the location did
    not heed): on-hand drops by ``quantity`` once per ``hold_id``, a hold never held, remembered
    as closed so that a redelivery changes nothing."""
    if hold_id in state.holds or hold_id in state.closed_holds:
        return state
    current = state.at(location_id)
    moved = _with_location(
        state,
        location_id,
        LocationStock(max(0, current.on_hand - quantity), current.reserved, current.safety_stock),
    )
    closed = _remember(state.closed_holds, hold_id, memory)
    return replace(moved, closed_holds=closed)


def release_order(
    state: SkuInventory, order_id: str, *, memory: int = EVENT_MEMORY
) -> SkuInventory:
    """Release every hold of one order (an ``OrderCancelled``). Idempotent."""
    for hold_id in state.holds_for_order(order_id):
        state = release(state, hold_id, memory=memory)
    return state


def refuse(
    state: SkuInventory, hold_ids: Iterable[HoldId], *, memory: int = EVENT_MEMORY
) -> SkuInventory:
    """Remember holds whose reservation was refused, so a redelivered request for them is
    refused again rather than granted on later stock (its sender already heard "no")."""
    closed = state.closed_holds
    for hold_id in hold_ids:
        closed = _remember(closed, hold_id, memory)
    return replace(state, closed_holds=closed)


def _close(state: SkuInventory, hold_id: HoldId, *, consume: bool, memory: int) -> SkuInventory:
    held = state.holds.get(hold_id)
    if held is None:
        return state
    locations = dict(state.locations)
    for lid, qty in held.items():
        current = state.at(lid)
        # Floors guard against a recount that already took these units off on-hand.
        on_hand = max(0, current.on_hand - qty) if consume else current.on_hand
        locations[lid] = LocationStock(
            on_hand, max(0, current.reserved - qty), current.safety_stock
        )
    holds = {hid: units for hid, units in state.holds.items() if hid != hold_id}
    closed = _remember(state.closed_holds, hold_id, memory)
    return replace(state, locations=locations, holds=holds, closed_holds=closed)


def done_before(state: SkuInventory, source: str, offset: int, at_ms: int) -> bool:
    """Whether the sku applied the input at ``offset`` of ``source`` in a batch whose records
    all went out: a replay of it is skipped whole (:mod:`streams.core.replays`)."""
    return replays.done_before(state.read_to, source, offset, at_ms)


def note_read(
    state: SkuInventory, source: str, offset: int, at_ms: int, batch_from: Mapping[str, int]
) -> SkuInventory:
    """The value after the input at ``offset`` of ``source``, in a batch that began at
    ``batch_from`` (:func:`streams.core.replays.note_read`)."""
    marks = replays.note_read(state.read_to, source, offset, at_ms, batch_from)
    return state if marks is state.read_to else replace(state, read_to=marks)


def _replace(state: SkuInventory, *, applied_events: Mapping[str, None]) -> SkuInventory:
    return replace(state, applied_events=applied_events)


def to_dict(state: SkuInventory) -> dict[str, Any]:
    """A JSON-able dict (string keys, lists, ints) for the inventory table."""
    return {
        "version": SCHEMA_VERSION,
        "sku": state.sku,
        "locations": {
            lid: {
                "on_hand": stock.on_hand,
                "reserved": stock.reserved,
                "safety_stock": stock.safety_stock,
            }
            for lid, stock in state.locations.items()
        },
        "holds": [
            {"order_id": oid, "shipment_id": sid, "units": dict(units)}
            for (oid, sid), units in state.holds.items()
        ],
        "applied_events": list(state.applied_events),
        "closed_holds": [[oid, sid] for oid, sid in state.closed_holds],
        "waiters": [
            [
                w.order_id,
                w.quantity,
                w.rank,
                w.placed_at_ms,
                w.since_rise,
                w.promised,
                w.promised_at_ms,
                w.wakes,
                w.since_ms,
                w.woken_by,
                w.seen_free,
            ]
            for w in state.waiters
        ],
        "read_to": {source: list(mark) for source, mark in state.read_to.items()},
        "rises": state.rises,
        "expiries": state.expiries,
        "wakes": state.wakes,
        "channels": dict(state.channels),
        "channels_plan": state.channels_plan,
    }


def from_dict(data: Mapping[str, Any]) -> SkuInventory:
    """Inverse of :func:`to_dict`. ``reserved`` is recomputed from the holds, so a stored
    value can never disagree with the holds it protects. Keys it does not know, and a higher
    ``version`` (a newer worker's value, see :data:`SCHEMA_VERSION`), are read past."""
    version = data.get("version", 1)
    if type(version) is not int or version < 1:
        raise ValueError(f"not an inventory state version: {version!r}")
    holds: dict[HoldId, dict[str, int]] = {
        (str(h["order_id"]), str(h["shipment_id"])): {
            str(lid): int(qty) for lid, qty in h["units"].items()
        }
        for h in data.get("holds", [])
    }
    reserved: dict[str, int] = {}
    for units in holds.values():
        for lid, qty in units.items():
            reserved[lid] = reserved.get(lid, 0) + qty
    raw = data.get("locations", {})
    locations = {
        str(lid): LocationStock(int(v["on_hand"]), reserved.get(lid, 0), int(v["safety_stock"]))
        for lid, v in raw.items()
    }
    for lid, qty in reserved.items():
        locations.setdefault(lid, LocationStock(0, qty, 0))
    return SkuInventory(
        sku=str(data["sku"]),
        locations=locations,
        holds=holds,
        applied_events=dict.fromkeys(str(e) for e in data.get("applied_events", [])),
        closed_holds=dict.fromkeys(_hold_ids(data.get("closed_holds", []))),
        waiters=Line(_waiter(w) for w in data.get("waiters", [])),
        read_to={
            str(source): (int(mark[0]), int(mark[1]), int(mark[2]))
            for source, mark in data.get("read_to", {}).items()
        },
        rises=int(data.get("rises", 0)),
        expiries=int(data.get("expiries", 0)),
        wakes=int(data.get("wakes", 0)),
        channels={str(c): int(n) for c, n in data.get("channels", {}).items()},
        channels_plan=str(data.get("channels_plan", "")),
    )


def _waiter(raw: list[Any]) -> Waiter:
    order_id, quantity, rank, placed, since_rise, promised, promised_at, wakes, since = raw[:9]
    return Waiter(
        order_id=str(order_id),
        quantity=int(quantity),
        rank=int(rank),
        placed_at_ms=int(placed),
        since_rise=int(since_rise),
        promised=int(promised),
        promised_at_ms=int(promised_at),
        wakes=int(wakes),
        since_ms=int(since),
        woken_by=str(raw[9]) if len(raw) > 9 else "",
        seen_free=int(raw[10]) if len(raw) > 10 else 0,
    )


def _hold_ids(raw: Iterable[Any]) -> list[HoldId]:
    return [(str(item[0]), str(item[1])) for item in raw]

"""The owner of a sku's inventory: stock events and the order saga's commands, applied to one
:class:`SkuInventory`, with the records that announce the result.

Only the worker owning the sku's partition calls this, so reservations of one sku are applied
one after another and no unit is promised twice.

Every command gets exactly one answer, also one the owner cannot apply (a bug, a stored value
that no longer fits the contract): :func:`refusal` is that answer, ``ok`` False with the reason,
so the saga never waits for a result that will not come.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache

from schemas.enums import Channel
from schemas.internal import LATE_HOLD_SUFFIX, SkuAction, SkuCommand, SkuResult
from schemas.models import Availability, LocationAvailability
from schemas.models import StockEvent as StockEventRecord
from schemas.sellable import ChannelSellable
from streams.core.inventory import backorders
from streams.core.inventory import stock as inventory
from streams.core.inventory.stock import (
    LocationStock,
    ReservationStatus,
    SkuInventory,
    StockEventKind,
    Waiter,
)

EXPIRY_S = 30 * 24 * 3600.0
"""DOM_BACKORDER_EXPIRY_S's default: a backorder is cancelled after 30 days."""
LINE_ACTIONS = frozenset({SkuAction.WAIT, SkuAction.UNWAIT, SkuAction.EXPIRE})


def apply_stock(state: SkuInventory, event: StockEventRecord) -> tuple[SkuInventory, bool]:
    """A SNAPSHOT, ADJUSTMENT or SAFETY_STOCK event; False when it was applied before.

    Raises :class:`~streams.core.inventory.stock.StockRefused` for an event whose figures would
    leave the contract's range, with the reason.
    """
    core_event = inventory.StockEvent(
        event_id=event.event_id,
        location_id=event.location_id,
        kind=StockEventKind(event.kind.value),
        quantity=event.quantity,
    )
    return inventory.apply_stock_event(state, core_event)


def command_problem(command: SkuCommand) -> str | None:
    """Why ``command`` cannot be applied as it stands (None: it can)."""
    if command.action == SkuAction.WAKE:
        return "WAKE is the answer of a sku's owner, never a command to it"
    if command.action == SkuAction.WAIT and command.wait is None:
        return "a WAIT must say what the order waits for (its wait field is null)"
    return None


def answer_command(
    state: SkuInventory, command: SkuCommand, now: datetime, *, expiry_s: float = EXPIRY_S
) -> tuple[SkuInventory, list[SkuResult]]:
    """Apply one command of the saga, then serve the backorder line (:func:`serve_line`).

    A hold command (reserve, release, consume) is always answered first; a line command
    (``WAIT``, ``UNWAIT``, ``EXPIRE``, applied once per command id) is answered only by what
    it causes: the wakes it allows, and for ``EXPIRE`` one ``EXPIRE`` result per order it
    takes out of the line (placed more than ``expiry_s`` before the command was issued).
    """
    if command.action in LINE_ACTIONS:
        return _line_command(state, command, now, expiry_s)
    new_state, result = apply_command(state, command, now)
    replay = new_state is state
    cause = command_cause(command)
    new_state, wakes = serve_line(state, new_state, now, cause=cause, replay=replay)
    return new_state, [result, *wakes]


def serve_line(
    before: SkuInventory,
    after: SkuInventory,
    now: datetime,
    *,
    cause: str,
    replay: bool = False,
) -> tuple[SkuInventory, list[SkuResult]]:
    """After any input (``cause``, its id): count a rise of the total available, and wake the
    waiting orders the free stock covers (:mod:`streams.core.inventory.backorders`). A
    ``replay`` (an input whose work was done before) sends the wakes it caused again, in case
    its first answers never went out."""
    state = backorders.note_rise(before, after)
    state, wakes = backorders.serve(state, _ms(now), cause)
    if replay:
        wakes = backorders.caused_by(state, cause) + wakes
    return state, [_wake_result(state, wake, now) for wake in wakes]


def stock_cause(event: StockEventRecord) -> str:
    """The id of a stock event as the cause of what serving the line after it did."""
    return f"stock:{event.event_id}"


def command_cause(command: SkuCommand) -> str:
    return f"command:{command.command_id}"


def _line_command(
    state: SkuInventory, command: SkuCommand, now: datetime, expiry_s: float
) -> tuple[SkuInventory, list[SkuResult]]:
    cause = command_cause(command)
    if state.has_applied(command.command_id):
        return serve_line(state, state, now, cause=cause, replay=True)
    results: list[SkuResult] = []
    if command.wait is not None and command.action == SkuAction.WAIT:
        wait = command.wait
        new_state = backorders.wait(
            state,
            command.order_id,
            wait.quantity,
            wait.rank,
            _ms(wait.placed_at),
            wait.seen_available,
            _ms(wait.waiting_since),
        )
    elif command.action == SkuAction.EXPIRE:
        cutoff = _ms(command.issued_at) - int(expiry_s * 1000)
        new_state, gone = backorders.expire(state, cutoff)
        new_state = replace(new_state, expiries=state.expiries + 1)
        results = [_expired_result(new_state, waiter, expiry_s, now) for waiter in gone]
    else:
        new_state = backorders.leave(state, command.order_id)
    applied = inventory.remember_event(new_state, command.command_id)
    new_state, wakes = serve_line(state, applied, now, cause=cause)
    return new_state, results + wakes


def _wake_result(state: SkuInventory, wake: backorders.Wake, now: datetime) -> SkuResult:
    """A waiting order's units are there: set aside for it, with the sku's figures to route on."""
    reason = f"{wake.quantity} of {state.sku} set aside for the backorder"
    return _line_result(state, wake.order_id, SkuAction.WAKE, f"{wake.number}", reason, now)


def _expired_result(
    state: SkuInventory, waiter: Waiter, expiry_s: float, now: datetime
) -> SkuResult:
    since = datetime.fromtimestamp(waiter.since_ms / 1000, UTC)
    reason = (
        f"backordered since {since:%Y-%m-%d %H:%M} UTC, longer than "
        f"DOM_BACKORDER_EXPIRY_S ({expiry_s:g} s)"
    )
    number = str(state.expiries)  # each expiry its own id: an order that waits again expires again
    return _line_result(state, waiter.order_id, SkuAction.EXPIRE, number, reason, now)


def _line_result(
    state: SkuInventory, order_id: str, action: SkuAction, number: str, reason: str, now: datetime
) -> SkuResult:
    """What the line tells a waiting order, unasked: a wake (``ok``, with the sku's figures) or
    its expiry. The id names the sku, the order and, for a wake, its number."""
    woken = action == SkuAction.WAKE
    return SkuResult(
        command_id=":".join(x for x in (action.value, state.sku, order_id, number) if x),
        order_id=order_id,
        sku=state.sku,
        action=action,
        attempt=0,
        ok=woken,
        reason=reason,
        locations=location_records(state) if woken else (),
        at=now,
    )


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def apply_command(
    state: SkuInventory, command: SkuCommand, now: datetime
) -> tuple[SkuInventory, SkuResult]:
    """Reserve (every hold of the command or none), release or consume; always answer.

    A refused reservation reports the sku's figures at every location, for the saga to route
    again on; any other answer only those of the locations its holds name (all a re-route
    needs besides the view, which already has the rest: a sku has up to dozens of locations).

    A redelivered command finds its holds already in place (or already closed) and gets the
    same answer without changing anything.
    """
    reason = None
    ok = True
    if command.action == SkuAction.RESERVE:
        new_state, reason = _reserve_all(state, command)
        ok = reason is None
    else:
        new_state = state
        for hold in command.holds:
            hold_id = (command.order_id, hold.hold_id)
            if command.action == SkuAction.RELEASE:
                new_state = inventory.release(new_state, hold_id)
            elif hold.hold_id.endswith(LATE_HOLD_SUFFIX):
                new_state = inventory.consume_released(
                    new_state, hold_id, hold.location_id, hold.quantity
                )
            else:
                new_state = inventory.consume(new_state, hold_id)
    if ok:
        locations = location_records(new_state, _held_at(command))
    else:
        locations = usable_by(new_state, command.order_id)
    return new_state, _answer(command, ok, reason, now, locations)


def refusal(command: SkuCommand, reason: str, now: datetime) -> SkuResult:
    """The answer to a command the owner could not apply: ``ok`` False, with the reason.

    The saga ignores the answers to releases and consumptions and re-routes (or, its attempts
    spent, backorders) an order whose reservation was refused, so no order waits on a command
    that failed. It carries no figures: the state it would read them from is what failed.
    """
    return _answer(command, False, reason, now)


def _answer(
    command: SkuCommand,
    ok: bool,
    reason: str | None,
    now: datetime,
    locations: tuple[LocationAvailability, ...] = (),
) -> SkuResult:
    """The result that answers ``command``, under its id."""
    return SkuResult(
        command_id=command.command_id,
        order_id=command.order_id,
        sku=command.sku,
        action=command.action,
        attempt=command.attempt,
        ok=ok,
        reason=reason,
        holds=command.holds,
        locations=locations,
        at=now,
    )


def refuse_command(state: SkuInventory, command: SkuCommand) -> SkuInventory:
    """The state that remembers a :func:`refusal`: a reservation's holds closed, so that a
    redelivery is refused again (its sender heard "no" and will never release what a later
    "yes" would hold). A hold already in place stays (it was granted before); any other command
    changes nothing."""
    if command.action != SkuAction.RESERVE:
        return state
    hold_ids = [(command.order_id, h.hold_id) for h in command.holds]
    return inventory.refuse(state, [h for h in hold_ids if h not in state.holds])


def _held_at(command: SkuCommand) -> frozenset[str]:
    return frozenset(h.location_id for h in command.holds)


def _reserve_all(state: SkuInventory, command: SkuCommand) -> tuple[SkuInventory, str | None]:
    # It acts on what was set aside for it. A refusal leaves its place as it was: the order
    # tries again on fresh figures, or has given up (a replay of an old attempt's command).
    working = state
    for hold in command.holds:
        hold_id = (command.order_id, hold.hold_id)
        wanted = {hold.location_id: hold.quantity}
        held = working.holds.get(hold_id)
        if held is not None and dict(held) != wanted:
            # Only a replayed saga that re-decided (its state write lost in a crash) asks for a
            # different plan under the same hold id; the newer plan is the one it will track.
            working = inventory.release(working, hold_id)
            working = replace(
                working,
                closed_holds={k: v for k, v in working.closed_holds.items() if k != hold_id},
            )
        working, outcome = inventory.reserve(working, hold_id, hold.location_id, hold.quantity)
        if outcome.status == ReservationStatus.INSUFFICIENT:
            short = ", ".join(f"{loc} short by {n}" for loc, n in sorted(outcome.short.items()))
            return _refused(state, command), f"insufficient {command.sku}: {short}"
        if outcome.status == ReservationStatus.CLOSED:
            reason = f"hold {hold.hold_id} of {command.sku} was already released or refused"
            return _refused(state, command), reason
    working = backorders.looked(working, command.order_id)
    promised = backorders.promised_to_others(working, command.order_id)
    if working.holds != state.holds and working.total_available < promised:
        missing = promised - working.total_available
        reason = f"insufficient {command.sku}: {missing} set aside for earlier backorders"
        return _refused(state, command), reason
    return working, None


def _refused(state: SkuInventory, command: SkuCommand) -> SkuInventory:
    """The command's holds are closed: a redelivery gets "no" again. One of them held already
    (an attempt planned twice, see the saga's ``_answers_plan``, asking again for what its
    first plan got, and for more) is given back: the order heard "no", and will never
    release it."""
    hold_ids = [(command.order_id, h.hold_id) for h in command.holds]
    for hold_id in hold_ids:
        state = inventory.release(state, hold_id)
    return inventory.refuse(state, hold_ids)


def location_records(
    state: SkuInventory, only: frozenset[str] | None = None
) -> tuple[LocationAvailability, ...]:
    """The sku's figures per location (``only`` those locations, when given)."""
    return tuple(
        location_record(loc, stock)
        for loc, stock in sorted(state.locations.items())
        if only is None or loc in only
    )


@lru_cache(maxsize=65_536)
def location_record(location_id: str, stock: LocationStock) -> LocationAvailability:
    """One location's figures as a contract record. A sku's availability lists every location
    it is stocked at, and a batch changes one or two of them: the others' figures are the same
    as last time, and get the same (frozen) record again instead of a new validated one
    (building them all anew was 5% of a worker's samples in ``dom bench --profile``)."""
    return LocationAvailability(
        location_id=location_id,
        on_hand=stock.on_hand,
        reserved=stock.reserved,
        safety_stock=stock.safety_stock,
        available=stock.available,
    )


def usable_by(state: SkuInventory, order_id: str) -> tuple[LocationAvailability, ...]:
    """The sku's figures as ``order_id`` may use them, what a refused reservation answers: the
    units set aside for other woken orders count as reserved, taken off the locations with the
    most available first (which of them those orders take is theirs to choose; any plan within
    these figures passes the owner's check). Without it, an order refused for units set aside
    for earlier backorders saw them still available, planned on them again at every retry, and
    gave back its other skus' units each time, which woke it again: one order of a 50,000-order
    bench tried 140 times in a row."""
    records = location_records(state)
    owed = backorders.promised_to_others(state, order_id)
    if owed <= 0:
        return records
    netted: dict[str, LocationAvailability] = {}
    for record in sorted(records, key=lambda r: (-r.available, r.location_id)):
        cut = min(owed, record.available)
        owed -= cut
        netted[record.location_id] = record.model_copy(
            update={"reserved": record.reserved + cut, "available": record.available - cut}
        )
    return tuple(netted[r.location_id] for r in records)


def availability_record(state: SkuInventory, now: datetime) -> Availability:
    """What channels see of one sku: per-location figures, the total available, and what each
    published channel may sell (the figures ``state`` was settled with), in the contract's
    order of channels."""
    figures = state.channels
    return Availability(
        sku=state.sku,
        locations=location_records(state),
        total_available=state.total_available,
        updated_at=now,
        channels=tuple(
            channel_sellable(channel, figures[channel.value])
            for channel in Channel
            if channel.value in figures
        ),
    )


@lru_cache(maxsize=4_096)
def channel_sellable(channel: Channel, available: int) -> ChannelSellable:
    """One channel's figure as a contract record, the same (frozen) one for the same figure."""
    return ChannelSellable(channel=channel, available=available)

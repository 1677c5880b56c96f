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
from datetime import datetime

from schemas.internal import LATE_HOLD_SUFFIX, SkuAction, SkuCommand, SkuResult
from schemas.models import Availability, LocationAvailability
from schemas.models import StockEvent as StockEventRecord
from streams.core import inventory
from streams.core.inventory import ReservationStatus, SkuInventory, StockEventKind


def apply_stock(state: SkuInventory, event: StockEventRecord) -> tuple[SkuInventory, bool]:
    """A SNAPSHOT, ADJUSTMENT or SAFETY_STOCK event; False when it was applied before.

    Raises :class:`~streams.core.inventory.StockRefused` for an event whose figures would
    leave the contract's range, with the reason.
    """
    core_event = inventory.StockEvent(
        event_id=event.event_id,
        location_id=event.location_id,
        kind=StockEventKind(event.kind.value),
        quantity=event.quantity,
    )
    return inventory.apply_stock_event(state, core_event)


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
    result = SkuResult(
        command_id=command.command_id,
        order_id=command.order_id,
        sku=command.sku,
        action=command.action,
        attempt=command.attempt,
        ok=ok,
        reason=reason,
        holds=command.holds,
        locations=location_records(new_state, None if not ok else _held_at(command)),
        at=now,
    )
    return new_state, result


def refusal(command: SkuCommand, reason: str, now: datetime) -> SkuResult:
    """The answer to a command the owner could not apply: ``ok`` False, with the reason.

    The saga ignores the answers to releases and consumptions and re-routes (or, its attempts
    spent, backorders) an order whose reservation was refused, so no order waits on a command
    that failed. It carries no figures: the state it would read them from is what failed.
    """
    return SkuResult(
        command_id=command.command_id,
        order_id=command.order_id,
        sku=command.sku,
        action=command.action,
        attempt=command.attempt,
        ok=False,
        reason=reason,
        holds=command.holds,
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
    return working, None


def _refused(state: SkuInventory, command: SkuCommand) -> SkuInventory:
    """The command's holds, none taken, are closed: a redelivery gets "no" again."""
    return inventory.refuse(state, [(command.order_id, h.hold_id) for h in command.holds])


def location_records(
    state: SkuInventory, only: frozenset[str] | None = None
) -> tuple[LocationAvailability, ...]:
    """The sku's figures per location (``only`` those locations, when given)."""
    return tuple(
        LocationAvailability(
            location_id=loc,
            on_hand=stock.on_hand,
            reserved=stock.reserved,
            safety_stock=stock.safety_stock,
            available=stock.available,
        )
        for loc, stock in sorted(state.locations.items())
        if only is None or loc in only
    )


def availability_record(state: SkuInventory, now: datetime) -> Availability:
    """What channels see of one sku: per-location figures and the total available."""
    return Availability(
        sku=state.sku,
        locations=location_records(state),
        total_available=state.total_available,
        updated_at=now,
    )

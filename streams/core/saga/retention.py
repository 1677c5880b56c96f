"""Retention: finished orders leave the order table, and what is answered about them after.

An order is finished when nothing can move it any more and nobody can still ask anything of it:

- cancelled or rejected with nothing delivered, or everything delivered came back: at once
  (from its last status change);
- delivered: every shipment left the building or was stopped, and the return window
  (``DOM_RETURN_WINDOW_DAYS``) passed since the last unit left;
- never while it has a shipment being reserved, open or being cancelled, a hold, lines waiting
  for stock, a routing in flight, or a return authorized but not yet back.

``DOM_ORDER_RETENTION_DAYS`` after it finished, the order's owner removes it: the key is
deleted, a tombstone in the changelog. A periodic scan (:func:`purges`) finds such orders among
the worker's own and sends an :class:`~schemas.internal.OrderPurge` for each to the order's
topic; the owner applies it like any input, checking again (:func:`purge_due`), so an order
busy again stays, and a repeat finds nothing left to remove.

In the order's place the owner keeps a short note (:class:`RemovedOrder`, about 150 bytes
under :func:`removed_key`): its last status, when it finished, when it was removed. A return,
a receipt or an action for the order is then refused with that reason, repeating its last
status, instead of looking like an order never placed. The note is itself removed one
retention period later (an ``OrderPurge`` with ``forget``), so the table stays bounded: after
that the order is unknown, and the unknown-order answers say it may have been removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from schemas.enums import OrderStatus
from schemas.internal import OrderPurge
from schemas.models import (
    ActionResult,
    Message,
    OrderAction,
    OrderStatusChanged,
    ReturnReceived,
    ReturnRequested,
)
from streams.core.returns.returns import delivered_units
from streams.core.saga.state import LEFT, OrderState, ReturnState, ShipmentState

DAY_S = 24 * 3600.0
CLOSED_STATUSES = frozenset({"COMPLETED", "CANCELLED", "REJECTED", "RETURNED", "RETURN_AUTHORIZED"})
"""The statuses a finished order may end in (RETURN_AUTHORIZED once its returns are back)."""
_BUSY = frozenset({ShipmentState.RESERVING, ShipmentState.OPEN, ShipmentState.CANCELLING})
REMOVED_PREFIX = b"\xffremoved:"
"""Starts the key of a removed order's note: UTF-8 never holds 0xFF, so no order id can."""
_PLACED_AT = re.compile(rb'"placed_at":"([^"]+)"')


@dataclass(frozen=True)
class Retention:
    """``DOM_RETURN_WINDOW_DAYS`` and ``DOM_ORDER_RETENTION_DAYS`` (fractions allowed)."""

    return_window_days: float = 30.0
    retention_days: float = 90.0

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.return_window_days * DAY_S)

    @property
    def keep(self) -> timedelta:
        return timedelta(seconds=self.retention_days * DAY_S)

    def scan_interval(self) -> float:
        """A 24th of the retention, between 1 s and an hour: an order leaves at most that late,
        and a worker reads its orders' values at most once an hour (by default)."""
        return min(3600.0, max(1.0, self.retention_days * DAY_S / 24))


class RemovedOrder(BaseModel):
    """What the owner keeps of an order it removed: enough to say so, and since when."""

    model_config = ConfigDict(extra="ignore")

    order_id: str
    status: str
    finished_at: datetime
    removed_at: datetime

    @classmethod
    def from_stored(cls, raw: bytes) -> RemovedOrder:
        return cls.model_validate_json(raw)

    def stored(self) -> bytes:
        return self.model_dump_json().encode()


def removed_key(order_id: str) -> bytes:
    """The table key of the note of a removed order."""
    return REMOVED_PREFIX + order_id.encode()


# ---- when an order is finished ------------------------------------------------------------------


def finished_at(state: OrderState, window: timedelta) -> datetime | None:
    """When the order finished (it may be in the future: the end of its return window), or
    None while something can still move it."""
    if _busy(state) or not state.history:
        return None
    last_change = state.history[-1].at
    if state.cancelled or state.status == "REJECTED":
        left = _left_times(state)
        return last_change if not left else max(left) + window
    if state.status not in CLOSED_STATUSES:
        return None  # SHIPPED with units neither delivered nor cancelled, ON_HOLD, ...
    left = _left_times(state)
    if not left:
        return last_change
    if _all_returned(state):
        return last_change
    return max(left) + window


def _busy(state: OrderState) -> bool:
    return bool(
        state.pending
        or state.holds
        or state.waiting
        or (state.backordered and not state.cancelled)
        or any(s.state in _BUSY for s in state.shipments.values())
        or any(r.state != ReturnState.RECEIVED for r in state.returns.values())
        or not (state.routed or state.cancelled)
    )


def _left_times(state: OrderState) -> list[datetime]:
    """When each shipment that left the building left (its last status change before this
    field was kept, for a value written by an older release)."""
    fallback = _last_delivery_status(state)
    return [s.left_at or fallback for s in state.shipments.values() if s.state in LEFT]


def _last_delivery_status(state: OrderState) -> datetime:
    delivered = [h.at for h in state.history if h.status in ("SHIPPED", "COMPLETED")]
    return max(delivered) if delivered else state.history[-1].at


def _all_returned(state: OrderState) -> bool:
    """Every delivered unit was authorized back and received."""
    back: dict[str, int] = {}
    for ret in state.returns.values():
        for sku, n in ret.received.items():
            back[sku] = back.get(sku, 0) + n
    delivered = delivered_units(state)
    return bool(delivered) and all(back.get(sku, 0) >= n for sku, n in delivered.items())


def purge_due(state: OrderState, now: datetime, retention: Retention) -> bool:
    """The order finished more than the retention ago: it leaves the table."""
    done = finished_at(state, retention.window)
    return done is not None and now >= done + retention.keep


def removal_note(state: OrderState, now: datetime, retention: Retention) -> RemovedOrder:
    done = finished_at(state, retention.window)
    return RemovedOrder(
        order_id=state.order.order_id,
        status=state.status,
        finished_at=done or now,
        removed_at=now,
    )


# ---- the scan -----------------------------------------------------------------------------------


def purges(
    items: Iterable[tuple[bytes, bytes | None]], now: datetime, retention: Retention
) -> list[OrderPurge]:
    """The commands the retention owes the stored values ``items`` (one worker's part of the
    order table) at ``now``. An order placed less than the retention ago cannot be due and is
    skipped without decoding (the common case); so is every note not yet due."""
    commands: list[OrderPurge] = []
    for key, raw in items:
        if raw is None:
            continue
        if key.startswith(REMOVED_PREFIX):
            note = RemovedOrder.from_stored(raw)
            if note_expired(note, now, retention):
                commands.append(_forget(note, now))
            continue
        if _placed_recently(raw, now, retention):
            continue
        state = OrderState.from_stored(raw)
        if purge_due(state, now, retention):
            commands.append(_purge(state, now, retention))
    return commands


def note_expired(note: RemovedOrder, now: datetime, retention: Retention) -> bool:
    return now >= note.removed_at + retention.keep


def _placed_recently(raw: bytes, now: datetime, retention: Retention) -> bool:
    """An order finishes after it was placed, so one placed less than the retention ago is
    not due. False when the value does not say (decoded then)."""
    found = _PLACED_AT.search(raw)
    if found is None:
        return False
    try:
        placed = datetime.fromisoformat(found.group(1).decode())
    except ValueError:
        return False
    return placed.tzinfo is not None and now < placed + retention.keep


def _purge(state: OrderState, now: datetime, retention: Retention) -> OrderPurge:
    done = finished_at(state, retention.window) or now
    order_id = state.order.order_id
    return OrderPurge(
        command_id=f"purge:{order_id}:{_millis(done)}", order_id=order_id, issued_at=now
    )


def _forget(note: RemovedOrder, now: datetime) -> OrderPurge:
    return OrderPurge(
        command_id=f"forget:{note.order_id}:{_millis(note.removed_at)}",
        order_id=note.order_id,
        forget=True,
        issued_at=now,
    )


def _millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


# ---- answers about a removed order --------------------------------------------------------------


def removed_reason(note: RemovedOrder, retention: Retention) -> str:
    return (
        f"order {note.order_id} was closed ({note.status}, finished {_when(note.finished_at)}) "
        f"and removed {_when(note.removed_at)} after the retention of "
        f"{retention.retention_days:g} days (DOM_ORDER_RETENTION_DAYS)"
    )


def removed_answer(
    record: Message, note: RemovedOrder, now: datetime, retention: Retention
) -> list[Message]:
    """The refusal of a return, a receipt or an action on a removed order, repeating its last
    status; [] for an input nobody waits an answer for (it is dead-lettered with the reason)."""
    why = removed_reason(note, retention)
    if isinstance(record, ReturnRequested | ReturnReceived):
        return [
            _status(
                note,
                f"{note.order_id}:removed:{record.event_id}",
                f"return {record.return_id} refused: {why}; it takes no returns any more",
                now,
            )
        ]
    if isinstance(record, OrderAction):
        answer = _status(
            note,
            f"{note.order_id}:action:{record.action_id}",
            f"{why}; nothing can be changed on it any more",
            now,
        )
        result = {"action_id": record.action_id, "action_result": ActionResult.REFUSED}
        return [answer.model_copy(update=result)]
    return []


def _status(note: RemovedOrder, event_id: str, reason: str, now: datetime) -> OrderStatusChanged:
    return OrderStatusChanged(
        event_id=event_id,
        order_id=note.order_id,
        status=OrderStatus(note.status),
        reason=reason,
        at=now,
    )


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC"

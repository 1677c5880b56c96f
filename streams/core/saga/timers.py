"""The order saga's timers: shipments nobody accepts, and pickups nobody collects.

A timer here never changes an order. A periodic scan of the orders a worker owns finds those
whose deadline passed and sends, for each, the input a person would have sent, with an id
derived from what timed out; the order stage applies it like any other input, in the order's
sequence. So a restart or a redelivery never fires a timer twice (the id was applied once) and
never loses one (the scan finds the deadline passed again until the input took effect).

- A shipment a location has not ``ACCEPTED`` within ``DOM_ACCEPT_TIMEOUT_STORE_S`` (a store)
  or ``DOM_ACCEPT_TIMEOUT_DC_S`` (a DC) of being commanded is moved away from it: a
  ``MOVE_SHIPMENT`` by :data:`~streams.core.saga.move.ACCEPT_TIMER`, which cancels it there and
  routes it elsewhere (backordered if nowhere else has it, as after a rejection).
- A pickup a store has ready (it ``ACCEPTED`` the ``PICKUP`` shipment) that is not
  ``PICKED_UP`` within ``DOM_PICKUP_EXPIRY_S`` cancels the order (an ``OrderCancelled``): the
  store gets a ``CANCEL`` and the units are released once it confirms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.enums import LocationKind
from schemas.models import Message, OrderAction, OrderActionKind, OrderCancelled
from streams.core.saga.move import ACCEPT_TIMER
from streams.core.saga.state import OrderState, SagaShipment, ShipmentState


@dataclass(frozen=True)
class Deadlines:
    """``DOM_ACCEPT_TIMEOUT_STORE_S``, ``DOM_ACCEPT_TIMEOUT_DC_S`` and ``DOM_PICKUP_EXPIRY_S``."""

    accept_store_s: float = 2 * 3600.0
    accept_dc_s: float = 12 * 3600.0
    pickup_s: float = 7 * 24 * 3600.0

    def scan_interval(self) -> float:
        """A tenth of the shortest deadline, between 1 s and 10 min: how late a timer fires."""
        shortest = min(self.accept_store_s, self.accept_dc_s, self.pickup_s)
        return min(600.0, max(1.0, shortest / 10))


WATCHED = (b'"accepted":false', b'"ready_at":"')
"""A stored order with neither text has nothing a timer watches: skipped without decoding."""


def due(
    raw_states: Iterable[bytes | None],
    now: datetime,
    deadlines: Deadlines,
    kind_of: Callable[[str], str | None],
) -> list[Message]:
    """The inputs the timers owe the stored orders ``raw_states`` at ``now``."""
    inputs: list[Message] = []
    for raw in raw_states:
        if raw is None or not any(text in raw for text in WATCHED):
            continue
        state = OrderState.from_stored(raw)
        if state.cancelled or state.pending:
            continue  # being routed: looked at again at the next scan
        inputs += timed_out(state, now, deadlines, kind_of)
    return inputs


def timed_out(
    state: OrderState,
    now: datetime,
    deadlines: Deadlines,
    kind_of: Callable[[str], str | None],
) -> list[Message]:
    """One order's due timer inputs."""
    order_id = state.order.order_id
    inputs: list[Message] = []
    for shipment in state.shipments.values():
        if shipment.state != ShipmentState.OPEN:
            continue
        if not shipment.accepted and shipment.opened_at is not None:
            store = kind_of(shipment.location_id) == LocationKind.STORE
            limit = deadlines.accept_store_s if store else deadlines.accept_dc_s
            if now - shipment.opened_at >= timedelta(seconds=limit):
                inputs.append(_move_away(state, shipment, limit, store, now))
        elif _pickup_overdue(shipment, now, deadlines):
            inputs.append(
                OrderCancelled(
                    event_id=f"pickup-expired:{order_id}",
                    order_id=order_id,
                    reason=(
                        f"not picked up from {shipment.location_id} within "
                        f"DOM_PICKUP_EXPIRY_S ({deadlines.pickup_s:g} s) of being ready"
                    ),
                    cancelled_at=now,
                )
            )
            break  # the order is cancelled whole
    return inputs


def _pickup_overdue(shipment: SagaShipment, now: datetime, deadlines: Deadlines) -> bool:
    ready = shipment.ready_at
    return (
        shipment.kind == "PICKUP"
        and ready is not None
        and now - ready >= timedelta(seconds=deadlines.pickup_s)
    )


def _move_away(
    state: OrderState, shipment: SagaShipment, limit: float, store: bool, now: datetime
) -> OrderAction:
    setting = "DOM_ACCEPT_TIMEOUT_STORE_S" if store else "DOM_ACCEPT_TIMEOUT_DC_S"
    return OrderAction(
        # the attempt numbers it: one refused while the order was being routed comes again
        action_id=f"accept-timeout:{shipment.shipment_id}:{state.attempt}",
        order_id=state.order.order_id,
        kind=OrderActionKind.MOVE_SHIPMENT,
        shipment_id=shipment.shipment_id,
        reason=f"{shipment.location_id} did not accept it within {setting} ({limit:g} s)",
        requested_by=ACCEPT_TIMER,
        requested_at=now,
    )

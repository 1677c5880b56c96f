"""The work queues of live orders, the orders that wait for an operator or a location:
``held`` (on hold until someone releases it), ``backordered`` (waiting for stock),
``acceptance`` (a location was told to fulfil a shipment and has not accepted it yet) and
``pickup`` (a pickup order not yet collected at its store).

Pure: it reads the order table's stored values and picks the orders of each queue, each with
the time it has waited since, oldest first. A table holds many orders and few of them are in a
queue, so a value is decoded only when its bytes hold every marker of a queue. A marker is
necessary, not sufficient (a past status in the history has the same spelling): the decoded
state decides. Markers are spelled as pydantic writes the stored state (compact JSON, see
``encode_state`` in streams/order_stage.py); a unit test keeps them in step with the model.

Each worker scans only its own partitions; :func:`merge` joins the workers' answers.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.enums import FulfillmentMethod
from streams.core.saga.state import OrderState, SagaShipment, ShipmentState

Entry = dict[str, Any]
"""One order in one queue, as the page shows it (JSON-ready)."""

QUEUES = ("held", "backordered", "acceptance", "pickup")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
ALLOCATED_STATUSES = frozenset({"ALLOCATED", "PARTIALLY_ALLOCATED"})

MARKERS: dict[str, tuple[bytes, ...]] = {
    "held": (b'"status":"ON_HOLD"',),
    "backordered": (b'"backordered":[{',),  # a line, not the empty list
    "acceptance": (b'"state":"OPEN"', b'"accepted":false'),
    "pickup": (b'"fulfillment_method":"PICKUP"',),
}


def parse_query(query: Mapping[str, str]) -> tuple[tuple[str, ...], int]:
    """The queues and the per-queue limit a page request asks for; ValueError if either is
    not understood (the page answers 400 with the message)."""
    queue = query.get("queue") or None
    if queue is not None and queue not in QUEUES:
        raise ValueError(f"queue must be one of {', '.join(QUEUES)}, not {queue!r}")
    text = query.get("limit") or str(DEFAULT_LIMIT)
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise ValueError(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {text!r}")
    return ((queue,) if queue else QUEUES), int(text)


@dataclass
class Scan:
    """What one worker found: the oldest ``limit`` entries of each queue asked for, and how
    many stored values could not be read (they are left out, and counted so it shows)."""

    queues: dict[str, list[Entry]]
    unreadable: int = 0


def scan(values: Iterable[bytes], queues: Sequence[str], limit: int, now: datetime) -> Scan:
    """The entries of ``queues`` among the stored order states ``values``, oldest first."""
    found: dict[str, list[Entry]] = defaultdict(list)
    unreadable = 0
    for raw in values:
        candidates = [q for q in queues if all(m in raw for m in MARKERS[q])]
        if not candidates:
            continue
        try:
            state = OrderState.from_stored(raw)
        except ValueError:  # pydantic's ValidationError and bad JSON alike
            unreadable += 1
            continue
        for queue in candidates:
            entry = SELECTORS[queue](state, now)
            if entry is not None:
                found[queue].append(entry)
    return Scan({q: oldest(found[q], limit) for q in queues}, unreadable)


def merge(
    parts: Iterable[Mapping[str, Sequence[Entry]]], queues: Sequence[str], limit: int
) -> dict[str, list[Entry]]:
    """The workers' queues as one: each order once per queue (during a rebalance two workers
    may both answer for a partition), oldest first, at most ``limit`` a queue."""
    merged: dict[str, dict[str, Entry]] = {q: {} for q in queues}
    for part in parts:
        for queue in queues:
            for entry in part.get(queue, ()):
                merged[queue].setdefault(entry["order_id"], entry)
    return {q: oldest(list(merged[q].values()), limit) for q in queues}


def oldest(entries: Iterable[Entry], limit: int) -> list[Entry]:
    return heapq.nsmallest(
        limit, entries, key=lambda e: (datetime.fromisoformat(e["since"]), e["order_id"])
    )


# ---- one queue each ----------------------------------------------------------------------------


def held_entry(state: OrderState, now: datetime) -> Entry | None:
    """An order on hold, since it went on hold, with what holds it."""
    if state.status != "ON_HOLD":
        return None
    holds = [
        {
            "hold_id": h.hold_id,
            "kind": h.kind.value,
            "reason": h.reason,
            "placed_by": h.placed_by,
            "rule_id": h.rule_id,
        }
        for h in state.holds
    ]
    return _entry(state, _status_since(state), now, holds=holds)


def backordered_entry(state: OrderState, now: datetime) -> Entry | None:
    """An order waiting for stock of some skus, since it first waited for one of them."""
    # Imported here: the saga's modules cost the ``dom`` command line a third of a second.
    from streams.core.saga.backorders import NOT_WAITING

    if not state.backordered or state.cancelled or state.status in NOT_WAITING:
        return None
    wanted = state.waiting or _units_by_sku(state)
    waits = [
        {"sku": sku, "quantity": n, "since": _iso(state.waiting_since.get(sku))}
        for sku, n in sorted(wanted.items())
    ]
    firsts = [state.waiting_since[sku] for sku in wanted if sku in state.waiting_since]
    since = min(firsts) if firsts else _last_change(state)
    return _entry(state, since, now, waits=waits)


def acceptance_entry(state: OrderState, now: datetime) -> Entry | None:
    """An order with shipments their locations have not accepted yet, since the oldest of them
    was commanded."""
    unaccepted = [
        s for s in state.shipments.values() if s.state == ShipmentState.OPEN and not s.accepted
    ]
    if not unaccepted or state.cancelled:
        return None
    opened = {s.shipment_id: s.opened_at or allocated_at(state, now) for s in unaccepted}
    shipments = [
        {
            "shipment_id": s.shipment_id,
            "location_id": s.location_id,
            "since": _iso(opened[s.shipment_id]),
        }
        for s in unaccepted
    ]
    return _entry(state, min(opened.values()), now, shipments=shipments)


def pickup_entry(state: OrderState, now: datetime) -> Entry | None:
    """A pickup order its customer has not collected yet, since the oldest of its shipments was
    ready at the store (the store accepted it), or else commanded."""
    if state.order.fulfillment_method != FulfillmentMethod.PICKUP or state.cancelled:
        return None
    waiting = [s for s in state.shipments.values() if _awaits_pickup(s)]
    if not waiting:
        return None
    shipments = [
        {
            "shipment_id": s.shipment_id,
            "location_id": s.location_id,
            "kind": s.kind,
            "state": s.state.value,
        }
        for s in waiting
    ]
    since = min(s.ready_at or s.opened_at or allocated_at(state, now) for s in waiting)
    store = state.order.pickup_location_id
    return _entry(state, since, now, store=store, shipments=shipments)


SELECTORS: dict[str, Callable[[OrderState, datetime], Entry | None]] = {
    "held": held_entry,
    "backordered": backordered_entry,
    "acceptance": acceptance_entry,
    "pickup": pickup_entry,
}


def allocated_at(state: OrderState, now: datetime) -> datetime:
    """When the order was last allocated, the age of a shipment stored without the time it was
    commanded (written by a release older than ``opened_at``): its latest routing outcome (an
    action's answer repeats the status but allocates nothing) at or before ``now``; else its
    latest change. An order allocated in two steps (a backorder served later) counts from the
    second."""
    for entry in reversed(state.history):
        if entry.status in ALLOCATED_STATUSES and entry.action_id is None and entry.at <= now:
            return entry.at
    return _last_change(state)


def _awaits_pickup(shipment: SagaShipment) -> bool:
    """At the store or on its way there: a transfer counts as collected only when picked up."""
    return shipment.state == ShipmentState.OPEN or (
        shipment.kind == "TRANSFER" and shipment.state == ShipmentState.SHIPPED
    )


def _status_since(state: OrderState) -> datetime:
    """When the order entered its current status: the first of its latest run of entries with
    that status (an action's answer that changes nothing repeats the status)."""
    since = _last_change(state)
    for entry in reversed(state.history):
        if entry.status != state.status:
            break
        since = entry.at
    return since


def _last_change(state: OrderState) -> datetime:
    return state.history[-1].at if state.history else state.order.placed_at


def _units_by_sku(state: OrderState) -> dict[str, int]:
    units: dict[str, int] = defaultdict(int)
    for line in state.backordered:
        units[line.sku] += line.quantity
    return dict(units)


def _entry(state: OrderState, since: datetime, now: datetime, **fields: Any) -> Entry:
    return {
        "order_id": state.order.order_id,
        "channel": state.order.channel.value,
        "status": state.status,
        "since": _iso(since),
        "age_s": max(0, int((now - since).total_seconds())),
        **fields,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None

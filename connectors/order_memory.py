"""What the connector remembers of a live web store order, and the pure planners that decide,
against it, what a Shopify change asks of the pipeline (`connectors.shopify_changes` parses the
webhooks). No network, no clock, no store of its own: the connector loads the memory, plans,
produces, and saves the plan's memory once the broker confirmed its records.

Never cancelling a unit twice. Shopify sends ``orders/edited`` and ``orders/updated`` for one
edit, in either order, and re-sends both. The connector keeps an `OrderMemory` per order, saved
only once the broker confirmed what it planned (`Plan`). Per line it knows:

- ``removed_by_edits``: the removal deltas of the order edits seen, each edit counted once (by its
  id); ``removed_reported``: the most any ``orders/updated`` reported removed, ``quantity -
  current_quantity`` less units refunded as returns (those had shipped: not a cancellation);
  ``asked``: the units the connector has asked the pipeline to cancel.
- Both counts describe the same removals and either may lag: what Shopify is known to have
  removed is their maximum, and a ``CANCEL_LINES`` asks for that maximum less ``asked``. Edited
  then updated, updated then edited, a repeat of either: the second finds nothing left to ask.
- One ``CANCEL_LINES`` per webhook, for every line with units due (the pipeline refuses an
  action that arrives while it routes the order again after the one before, so an edit of two
  lines must not be two actions). Its id, ``shopify-cancel-lines-<order>-<line>-to-<total>``
  (``+``-joined for several lines), names the cumulative total it brings each line to: the
  same knowledge always yields the same id, and the pipeline applies an id once. A connector
  that crashed after the broker confirmed (before it saved), or that lost its file and is sent
  again what it had handled, asks for nothing new.
- Of an order placed through the connector, only the lines it was placed with are asked for,
  and no more units than each was ordered with (a line an edit added, then removed, would have
  the whole action refused).
- Not covered: a connector that lost its file and then first learns a total it never asked
  for in that combination asks again for units it had asked for before (the pipeline refuses
  it if fewer units are open than asked).

Addresses: the memory keeps a digest of the address the pipeline was last given (by the
``OrderPlaced`` of ``orders/create``, or by a ``CHANGE_SHIP_TO``); coordinates are left out of
it (Shopify geocodes late). An ``orders/updated`` whose address has another digest is a
``CHANGE_SHIP_TO``, id ``shopify-ship-to-<order>-<digest>-<updated_at ms>``: a re-sent update
yields the same id, and an address changed back and forth is still a new action each time.
With no digest on record (an order created before the connector kept them) the update's
address becomes the one followed, and nothing is sent. Pickup orders ship nowhere: their
addresses are not followed. An update that both removes units and moves the address is two
actions; the pipeline may refuse the second while it routes the order after the first.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from connectors.shopify import FieldError
from connectors.shopify_changes import OrderEdit, OrderUpdate, ShopifyChangeError, build
from schemas.common import MAX_ID_CHARS, Address
from schemas.enums import FulfillmentMethod, OrderActionKind
from schemas.orders import OrderAction, OrderPlaced

CANCEL_LINES_PREFIX = "shopify-cancel-lines-"
"""The ids of the CANCEL_LINES this connector makes of Shopify's own edits: the channel sync
does not tell Shopify of units it removed itself (`connectors.sync.calls`)."""
REQUESTED_BY = "shopify"
NO_ADDRESS = "none"
"""The digest of "no address": a pickup order, or one placed without a shipping address."""


class LineMemory(BaseModel):
    """What is known of one line of the order, in units."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    ordered: int = 0  # as placed through this connector (0: not in the placed order)
    removed_by_edits: int = 0
    removed_reported: int = 0
    asked: int = 0

    @property
    def removed(self) -> int:
        """What Shopify is known to have removed from the line."""
        return max(self.removed_by_edits, self.removed_reported)


class OrderMemory(BaseModel):
    """What the connector has learnt of one order, and what it has told the pipeline."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: str
    placed: bool = False  # its orders/create went through this connector: its lines are known
    lines: dict[str, LineMemory] = {}
    edits: tuple[str, ...] = ()  # every edit counted: never trimmed, a re-sent one must not count
    ship_to_digest: str | None = None  # None: no address on record


@dataclass(frozen=True)
class Plan:
    """The records to produce, and the memory to keep once the broker confirmed them."""

    memory: OrderMemory
    actions: tuple[OrderAction, ...] = ()
    said: str = ""  # why nothing is produced, for the log


# ---- Deciding ------------------------------------------------------------------------------------


def on_order_placed(memory: OrderMemory, order: OrderPlaced) -> OrderMemory:
    """``orders/create`` reached the pipeline: its lines are the ones that can be cancelled, its
    address the one later changes are judged against. Once: a re-sent ``orders/create`` must
    not take the order back to the address it was placed with."""
    if memory.placed:
        return memory
    pickup = order.fulfillment_method is FulfillmentMethod.PICKUP
    lines = dict(memory.lines)
    for placed in order.lines:
        line = lines.get(placed.line_id, LineMemory())
        lines[placed.line_id] = line.model_copy(update={"ordered": placed.quantity})
    digest = NO_ADDRESS if pickup else address_digest(order.ship_to)
    return memory.model_copy(update={"placed": True, "lines": lines, "ship_to_digest": digest})


def on_order_edited(memory: OrderMemory, edit: OrderEdit, *, now: datetime) -> Plan:
    """Count the edit's removals once, and ask to cancel what is not asked for yet."""
    if edit.edit_id in memory.edits:
        return Plan(memory, said=f"order edit {edit.edit_id} was counted before")
    lines = dict(memory.lines)
    for line_id, units in edit.removals.items():
        line = lines.get(line_id, LineMemory())
        lines[line_id] = line.model_copy(update={"removed_by_edits": line.removed_by_edits + units})
    counted = memory.model_copy(update={"lines": lines, "edits": (*memory.edits, edit.edit_id)})
    note = f" ({edit.staff_note})" if edit.staff_note else ""
    plan = cancel_due(counted, f"Shopify order edit {edit.edit_id}{note}", edit.at or now)
    return plan if plan.actions else replace(plan, said="its removals were asked for before")


def on_order_updated(memory: OrderMemory, update: OrderUpdate, *, now: datetime) -> Plan:
    """Take the update's removals and address in; ask for what the pipeline was not told."""
    del now  # an update carries its own time
    if update.cancelled:
        return Plan(memory, said="the order is cancelled: orders/cancelled carries that")
    lines = dict(memory.lines)
    for line_id, current in update.lines.items():
        line = lines.get(line_id, LineMemory())
        if current.removed > line.removed_reported:
            lines[line_id] = line.model_copy(update={"removed_reported": current.removed})
    reported = memory.model_copy(update={"lines": lines})
    why = f"Shopify orders/updated at {update.updated_at.isoformat()}"
    plan = address_change(cancel_due(reported, why, update.updated_at), update)
    return plan if plan.actions else replace(plan, said="nothing the pipeline was not told")


def cancel_due(memory: OrderMemory, why: str, at: datetime) -> Plan:
    """One ``CANCEL_LINES`` for every line whose removed units exceed those asked for: one
    action per webhook, as the pipeline refuses an action while it routes the order again after
    the one before."""
    due: list[tuple[str, int, int]] = []  # line id, total to bring it to, units to ask for
    lines = dict(memory.lines)
    for line_id, line in sorted(memory.lines.items()):
        # Of an order placed here, only its lines can be cancelled, and no more than it ordered:
        # a line added by an edit, then removed, would have the whole action refused.
        total = min(line.removed, line.ordered) if memory.placed else line.removed
        if total > line.asked:
            due.append((line_id, total, total - line.asked))
            lines[line_id] = line.model_copy(update={"asked": total})
    if not due:
        return Plan(memory)
    fields = {
        "action_id": cancel_id(memory.order_id, [(line_id, total) for line_id, total, _ in due]),
        "order_id": memory.order_id,
        "kind": OrderActionKind.CANCEL_LINES,
        "lines": tuple({"line_id": line_id, "quantity": units} for line_id, _, units in due),
        "reason": f"{why}: removed in Shopify "
        + "; ".join(
            f"{total} unit(s) of line {line_id} in all, {units} not cancelled before"
            for line_id, total, units in due
        ),
        "requested_by": REQUESTED_BY,
        "requested_at": at,
    }
    action = build(OrderAction, fields, "order_action")
    return Plan(memory.model_copy(update={"lines": lines}), (action,))


def cancel_id(order_id: str, totals: list[tuple[str, int]]) -> str:
    """``shopify-cancel-lines-<order>-<line>-to-<total>[+<line>-to-<total>...]``: what the
    action brings each line to; a digest of that when it would be longer than an id may be."""
    named = "+".join(f"{line_id}-to-{total}" for line_id, total in totals)
    action_id = f"{CANCEL_LINES_PREFIX}{order_id}-{named}"
    if len(action_id) <= MAX_ID_CHARS:
        return action_id
    digest = hashlib.sha256(named.encode(errors="surrogatepass")).hexdigest()[:16]
    return f"{CANCEL_LINES_PREFIX}{order_id}-{digest}"


def address_change(plan: Plan, update: OrderUpdate) -> Plan:
    """``plan`` and a ``CHANGE_SHIP_TO`` if the update's address is not the one on record."""
    memory = plan.memory
    if update.pickup or update.ship_to is None:
        return plan
    digest = address_digest(update.ship_to)
    if memory.ship_to_digest == digest:
        return plan
    followed = replace(plan, memory=memory.model_copy(update={"ship_to_digest": digest}))
    if memory.ship_to_digest is None:
        return followed
    address = update.ship_to
    try:
        millis = int(update.updated_at.timestamp() * 1000)
    except (OverflowError, ValueError) as exc:  # 0001-01-01T00:00+01:00 is in year 0 in UTC
        outside = "is outside the years 1 to 9999 once converted to UTC"
        raise ShopifyChangeError([FieldError(field="updated_at", message=outside)]) from exc
    fields = {
        "action_id": f"shopify-ship-to-{memory.order_id}-{digest}-{millis}",
        "order_id": memory.order_id,
        "kind": OrderActionKind.CHANGE_SHIP_TO,
        "ship_to": address,
        "reason": (
            f"Shopify orders/updated at {update.updated_at.isoformat()}: the shipping address "
            f"changed (now {address.city}, {address.country})"
        ),
        "requested_by": REQUESTED_BY,
        "requested_at": update.updated_at,
    }
    return replace(followed, actions=(*plan.actions, build(OrderAction, fields, "order_action")))


def address_digest(address: Address | None) -> str:
    """A short digest of where an order goes: the postal address, coordinates left out."""
    if address is None:
        return NO_ADDRESS
    postal = json.dumps(address.model_dump(exclude={"lat", "lon"}), sort_keys=True)
    return hashlib.sha256(postal.encode()).hexdigest()[:16]

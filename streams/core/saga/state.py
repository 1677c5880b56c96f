"""The state the order saga keeps per order, stored as JSON in the order table.

One value per order holds everything needed to finish the order and to ignore redelivered
inputs: the order itself, its shipments and their holds, the routing attempt in flight, its
authorized returns and the ids of the events already applied (the dedup marker lives inside the
value it protects, so one table write both applies an event and records it).

Rolling upgrades: during one, workers of two releases read each other's values, so a stored
value must read both ways. It carries ``state_version`` (absent in values written before it
existed: read as 1). A newer worker reads older state: fields added later have defaults. An
older worker reads newer state: :meth:`OrderState.from_stored` drops the fields it does not
know, at any depth (in the order record or a reply kept for redelivery too), and keeps the
rest, so the order goes on instead of being dead-lettered; what it writes back is its own
version, without those fields. The contract's records on topics stay strict
(``extra="forbid"``): their evolution goes through Avro schema resolution instead.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

from schemas.common import Message, message_type
from schemas.models import OrderAction, OrderHold, OrderPlaced
from streams.core import replays
from streams.core.stored import from_stored, without_unknown

APPLIED_KEEP = 200  # an order sees few events; this bounds the value even for chatty ones
# A crash can lose sends whose state write survived; the replayed inputs then get the same
# records again. Replays reach only the order's inputs of the batch that last wrote it
# (``read_to``): earlier ones are skipped whole, so their replies are dropped as soon as the
# marks say so (``forget_done_replies``). The handlers of older ones act by state too.
REPLIES_KEEP = 16
STATE_VERSION = 1
"""The version of the order state this worker writes; raise it when a stored field changes
meaning (adding a field with a default needs no new version)."""


class ShipmentState(StrEnum):
    RESERVING = "RESERVING"  # holds requested, not all confirmed
    OPEN = "OPEN"  # reserved, commanded, waiting for the location
    SHIPPED = "SHIPPED"
    COMPLETED = "COMPLETED"  # picked up (or a transfer collected)
    REJECTED = "REJECTED"  # the location refused; released and re-routed
    DROPPED = "DROPPED"  # a lost reservation race; released
    CANCELLING = "CANCELLING"  # CANCEL sent after the location accepted; units held until it
    # confirms CANCELLED (or ships anyway)
    CANCELLED = "CANCELLED"  # released: never commanded, unaccepted when cancelled, or confirmed


LIVE = frozenset({ShipmentState.RESERVING, ShipmentState.OPEN})
LEFT = frozenset({ShipmentState.SHIPPED, ShipmentState.COMPLETED})
"""Shipments whose units left the building: nothing can stop or change them any more."""


class Line(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_id: str
    sku: str
    quantity: int


def plan_hold_id(shipment: SagaShipment) -> str:
    """The shipment's id and a digest of what it plans (location, kind, destination, lines):
    the same plan always gets the same hold id, another plan of the same shipment another."""
    planned = (
        shipment.location_id,
        shipment.kind,
        shipment.destination_location_id,
        sorted((x.line_id, x.sku, x.quantity) for x in shipment.lines),
    )
    digest = hashlib.blake2b(repr(planned).encode(), digest_size=4).hexdigest()
    return f"{shipment.shipment_id}.{digest}"


class SagaShipment(BaseModel):
    """One planned or live shipment, held at every sku it draws on under :attr:`hold`."""

    shipment_id: str
    # The hold id at the skus when it differs from the shipment id: the plan's own (see
    # ``plan_hold_id``), so that two plans of one attempt never share a hold. Absent in
    # shipments planned before plan hold ids, which are held under their shipment id.
    hold_id: str | None = None
    location_id: str
    kind: str
    lines: list[Line]
    destination_location_id: str | None = None
    attempt: int
    state: ShipmentState = ShipmentState.RESERVING
    accepted: bool = False  # the location reported ACCEPTED
    cancel_cause: str | None = None  # who had a CANCEL sent to its location, for later news
    opened_at: datetime | None = None  # commanded: the acceptance deadline counts from here
    ready_at: datetime | None = None  # a pickup the store has ready (it ACCEPTED it)
    left_at: datetime | None = None  # shipped or handed over: the return window counts from here
    tracking_number: str | None = None  # as the location reported it shipped, for the channels
    carrier: str | None = None

    @property
    def hold(self) -> str:
        """The id its units are held under at the skus' owners."""
        return self.hold_id or self.shipment_id

    def left(self, now: datetime, tracking_number: str | None, carrier: str | None) -> None:
        """Its units left the location (or reached the customer) at ``now``; the tracking the
        location reported is kept, and news without one keeps what an earlier report gave."""
        self.left_at = now
        self.tracking_number = tracking_number or self.tracking_number
        self.carrier = carrier or self.carrier

    def units(self) -> dict[str, int]:
        """Units per line id."""
        per_line: dict[str, int] = defaultdict(int)
        for line in self.lines:
            per_line[line.line_id] += line.quantity
        return per_line

    def skus(self) -> set[str]:
        return {line.sku for line in self.lines}

    def units_by_sku(self) -> dict[str, int]:
        per_sku: dict[str, int] = defaultdict(int)
        for line in self.lines:
            per_sku[line.sku] += line.quantity
        return dict(per_sku)


class Reply(BaseModel):
    """One record the saga emitted, kept so a redelivered input can emit it again."""

    record: str  # the Avro name
    data: dict[str, Any]
    # Top-level bytes fields (a PDF return label) held as base64: JSON keeps text only.
    binary: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, message: Message) -> Reply:
        binary = [k for k, v in message if isinstance(v, bytes)]
        data = message.model_dump(mode="json", exclude=set(binary))
        for name in binary:
            data[name] = base64.b64encode(getattr(message, name)).decode("ascii")
        return cls(record=message.avro_name, data=data, binary=binary)

    def message(self) -> Message:
        data = dict(self.data)
        for name in self.binary:
            data[name] = base64.b64decode(data[name])
        model = _model(self.record)
        try:
            return model.model_validate(data)
        except ValidationError as exc:  # kept by a newer worker: drop the fields it added
            return model.model_validate(without_unknown(copy.deepcopy(data), exc))


class ReturnState(StrEnum):
    AUTHORIZED = "AUTHORIZED"  # label sent, units on their way back
    RECEIVED = "RECEIVED"  # every authorized unit came back


class SagaReturn(BaseModel):
    """One authorized return of the order: its RMA, where it goes and what came back so far."""

    return_id: str
    rma_number: str
    location_id: str
    authorized: dict[str, int]  # sku -> units
    received: dict[str, int] = Field(default_factory=dict)  # sku -> units, any condition
    state: ReturnState = ReturnState.AUTHORIZED

    def outstanding(self) -> dict[str, int]:
        return {
            sku: n - self.received.get(sku, 0)
            for sku, n in self.authorized.items()
            if n > self.received.get(sku, 0)
        }


class HistoryEntry(BaseModel):
    """One status the order went through; an action's answer names the action and who asked."""

    status: str
    reason: str
    at: datetime
    action_id: str | None = None
    action_kind: str | None = None
    requested_by: str | None = None
    action_result: str | None = None


class OrderState(BaseModel):
    """Everything the saga knows about one order."""

    model_config = ConfigDict(extra="ignore")  # a newer worker's fields: see the module doc

    # The version of the value as read (1 when absent: written before values had one); a
    # write always stamps this release's STATE_VERSION, since it writes only what it knows.
    state_version: int = STATE_VERSION
    order: OrderPlaced
    status: str = "RECEIVED"
    attempt: int = 0
    first_attempt: int = 1  # where the current routing began: its retries count from here
    attempt_lines: list[Line] = Field(default_factory=list)
    attempt_reason: str = ""
    pending: dict[str, bool | None] = Field(default_factory=dict)  # sku -> confirmed?
    fresh_stock: dict[str, dict[str, int]] = Field(default_factory=dict)
    excluded_locations: list[str] = Field(default_factory=list)
    shipments: dict[str, SagaShipment] = Field(default_factory=dict)
    backordered: list[Line] = Field(default_factory=list)
    explanation: str = ""
    service_level: str | None = None  # set by a routing rule; the order's own otherwise
    rules_fired: list[str] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    applied: list[str] = Field(default_factory=list)
    replies: dict[str, list[Reply]] = Field(default_factory=dict)  # input id -> its outputs
    replied_at: dict[str, tuple[str, int, int]] = Field(default_factory=dict)  # input id ->
    # where it was read (partition, offset, time in ms), for forget_done_replies
    routed: bool = False  # the first routing outcome went out
    cancelled: bool = False
    returns: dict[str, SagaReturn] = Field(default_factory=dict)  # return id -> authorized
    holds: list[OrderHold] = Field(default_factory=list)  # what keeps the order from routing
    hold_versions: dict[str, int] = Field(default_factory=dict)  # RULE hold id -> rule version
    holds_placed: int = 0  # numbers the hold ids
    released_rules: list[str] = Field(default_factory=list)  # "rule@vN" a person overruled
    cancelled_units: dict[str, int] = Field(default_factory=dict)  # line id -> units cancelled
    waiting: dict[str, int] = Field(default_factory=dict)  # sku -> units waited for in its line
    waits: int = 0  # numbers the order's line commands
    waiting_since: dict[str, datetime] = Field(default_factory=dict)  # sku -> first waited
    waits_due: bool = False  # routed again: take its places in line anew
    raced: bool = False  # its last routing gave up after lost races: it never looked at what
    # is there, so its places are taken as if it had seen nothing (woken by what is free now)
    repromising: bool = False  # the routing in flight serves a woken backorder (quiet if not)
    ship_to_changes: int = 0  # numbers the commands that carry a changed address
    deferred: list[OrderAction] = Field(default_factory=list)  # actions that came while it
    # was being routed, applied when that routing ends (streams/core/saga/actions.py)
    read_to: dict[str, tuple[int, int, int]] = Field(default_factory=dict)  # what it read of
    # each input partition: a replay of an input before its last batch is skipped whole
    # (streams/core/replays.py); one of that batch is answered from ``replies``, or by state

    @field_serializer("state_version")
    def _written_version(self, _read: int) -> int:
        return STATE_VERSION

    @classmethod
    def from_stored(cls, raw: bytes | str) -> OrderState:
        """The state stored as ``raw`` (JSON), by whichever release wrote it."""
        return from_stored(cls, raw)

    def seen(self, event_id: str) -> bool:
        return event_id in self.applied

    def mark(self, event_id: str) -> None:
        self.applied.append(event_id)
        del self.applied[:-APPLIED_KEEP]

    def remember_replies(
        self,
        input_id: str,
        outputs: Sequence[Message],
        read_at: tuple[str, int, int] | None = None,
    ) -> None:
        """Keep the records ``input_id`` caused, to emit them again if it is replayed;
        ``read_at``: where it was read (partition, offset, time in ms), if known."""
        self.replies[input_id] = [Reply.of(o) for o in outputs]
        if read_at is not None:
            self.replied_at[input_id] = read_at
        for stale in list(self.replies)[:-REPLIES_KEEP]:
            del self.replies[stale]
            self.replied_at.pop(stale, None)

    def forget_done_replies(self) -> None:
        """Drop the replies of the inputs the marks (``read_to``) say are done: a replay of one
        is skipped whole (:mod:`streams.core.replays`), so nothing reads them again. They
        were most of a stored order (4.2 of 6.9 KB on average over 11,811 orders of a
        ``--ship`` bench run); what an order keeps now is the replies of its last batch of
        each input partition."""
        for input_id, (source, offset, at_ms) in list(self.replied_at.items()):
            if replays.done_before(self.read_to, source, offset, at_ms):
                self.replies.pop(input_id, None)
                del self.replied_at[input_id]

    def replay(self, input_id: str) -> list[Message] | None:
        """The records first emitted for ``input_id``, or None if it was never applied."""
        replies = self.replies.get(input_id)
        if replies is None:
            return None
        return [reply.message() for reply in replies]

    def live_shipments(self) -> list[SagaShipment]:
        return [s for s in self.shipments.values() if s.state in LIVE]

    def attempt_shipments(self) -> list[SagaShipment]:
        return [s for s in self.shipments.values() if s.attempt == self.attempt]

    def set_state(self, shipments: Iterable[SagaShipment], state: ShipmentState) -> None:
        for shipment in shipments:
            shipment.state = state

    def delivered_status(self) -> str:
        """COMPLETED once every ordered unit not cancelled has left (a transfer counts once
        collected at the store), else SHIPPED. Derived from the shipments, as ``backordered``
        only knows the latest routing attempt."""
        delivered = self.delivered_by_line()
        done = all(
            delivered.get(x.line_id, 0) >= x.quantity - self.cancelled_units.get(x.line_id, 0)
            for x in self.order.lines
        )
        return "COMPLETED" if done else "SHIPPED"

    def delivered_by_line(self) -> dict[str, int]:
        """Units of each order line that reached the customer: shipped (a transfer counts
        only once collected at the store) or picked up."""
        delivered: dict[str, int] = defaultdict(int)
        for s in self.shipments.values():
            if s.state == ShipmentState.COMPLETED or (
                s.state == ShipmentState.SHIPPED and s.kind != "TRANSFER"
            ):
                for line in s.lines:
                    delivered[line.line_id] += line.quantity
        return delivered


def _model(avro_name: str) -> type[Message]:
    model = message_type(avro_name)
    if model is None:
        raise KeyError(f"no model registered for {avro_name}")
    return model

"""The state the order saga keeps per order, stored as JSON in the order table.

One value per order holds everything needed to finish the order and to ignore redelivered
inputs: the order itself, its shipments and their holds, the routing attempt in flight, its
authorized returns and the ids of the events already applied (the dedup marker lives inside the
value it protects, so one table write both applies an event and records it). Fields added later
have defaults, so states stored by an older worker still load.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import Message, message_type
from schemas.models import OrderPlaced

APPLIED_KEEP = 200  # an order sees few events; this bounds the value even for chatty ones
# A crash can lose sends whose state write survived; the replayed inputs then get the same
# records again. Replays cover only inputs after the last committed offset, a short window.
REPLIES_KEEP = 16


class ShipmentState(StrEnum):
    RESERVING = "RESERVING"  # holds requested, not all confirmed
    OPEN = "OPEN"  # reserved, commanded, waiting for the location
    SHIPPED = "SHIPPED"
    COMPLETED = "COMPLETED"  # picked up (or a transfer collected)
    REJECTED = "REJECTED"  # the location refused; released and re-routed
    DROPPED = "DROPPED"  # a lost reservation race; released
    CANCELLED = "CANCELLED"


LIVE = frozenset({ShipmentState.RESERVING, ShipmentState.OPEN})


class Line(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_id: str
    sku: str
    quantity: int


class SagaShipment(BaseModel):
    """One planned or live shipment; its id is also the hold id at every sku it draws on."""

    shipment_id: str
    location_id: str
    kind: str
    lines: list[Line]
    destination_location_id: str | None = None
    attempt: int
    state: ShipmentState = ShipmentState.RESERVING

    def skus(self) -> set[str]:
        return {line.sku for line in self.lines}


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
        return _model(self.record).model_validate(data)


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
    status: str
    reason: str
    at: datetime


class OrderState(BaseModel):
    """Everything the saga knows about one order."""

    order: OrderPlaced
    status: str = "RECEIVED"
    attempt: int = 0
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
    routed: bool = False  # the first routing outcome went out
    cancelled: bool = False
    returns: dict[str, SagaReturn] = Field(default_factory=dict)  # return id -> authorized

    def seen(self, event_id: str) -> bool:
        return event_id in self.applied

    def mark(self, event_id: str) -> None:
        self.applied.append(event_id)
        del self.applied[:-APPLIED_KEEP]

    def remember_replies(self, input_id: str, outputs: Sequence[Message]) -> None:
        self.replies[input_id] = [Reply.of(o) for o in outputs]
        for stale in list(self.replies)[:-REPLIES_KEEP]:
            del self.replies[stale]

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

"""The state the order saga keeps per order, stored as JSON in the order table.

One value per order holds everything needed to finish the order and to ignore redelivered
inputs: the order itself, its shipments and their holds, the routing attempt in flight and the
ids of the events already applied (the dedup marker lives inside the value it protects, so one
table write both applies an event and records it).
"""

from __future__ import annotations

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

    def seen(self, event_id: str) -> bool:
        return event_id in self.applied

    def mark(self, event_id: str) -> None:
        self.applied.append(event_id)
        del self.applied[:-APPLIED_KEEP]

    def remember_replies(self, input_id: str, outputs: Sequence[Message]) -> None:
        self.replies[input_id] = [
            Reply(record=o.avro_name, data=o.model_dump(mode="json")) for o in outputs
        ]
        for stale in list(self.replies)[:-REPLIES_KEEP]:
            del self.replies[stale]

    def replay(self, input_id: str) -> list[Message] | None:
        """The records first emitted for ``input_id``, or None if it was never applied."""
        replies = self.replies.get(input_id)
        if replies is None:
            return None
        return [_model(reply.record).model_validate(reply.data) for reply in replies]

    def live_shipments(self) -> list[SagaShipment]:
        return [s for s in self.shipments.values() if s.state in LIVE]

    def attempt_shipments(self) -> list[SagaShipment]:
        return [s for s in self.shipments.values() if s.attempt == self.attempt]

    def set_state(self, shipments: Iterable[SagaShipment], state: ShipmentState) -> None:
        for shipment in shipments:
            shipment.state = state


def _model(avro_name: str) -> type[Message]:
    model = message_type(avro_name)
    if model is None:
        raise KeyError(f"no model registered for {avro_name}")
    return model

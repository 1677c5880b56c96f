"""Records of the pipeline's internal topics: the order saga's per-sku commands and results.

They are Avro like the contract (so every stage speaks one codec), but only the pipeline's own
stages read them; users never need to.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from schemas.common import DomModel, Id, Int32, Message, Quantity, Timestamp
from schemas.models import LocationAvailability


class SkuAction(StrEnum):
    RESERVE = "RESERVE"
    RELEASE = "RELEASE"
    CONSUME = "CONSUME"


LATE_HOLD_SUFFIX = ":late"
"""Ends the hold id of a ``CONSUME`` for units that left the building after their hold was
released (a shipment cancelled before its location accepted, shipped anyway): the sku's owner
takes them off on-hand once per such hold id, though it holds nothing under it."""


class Hold(DomModel):
    """Units of one sku held at one location for one shipment (``hold_id`` = shipment id)."""

    hold_id: Id
    location_id: Id
    quantity: Quantity


class SkuCommand(Message):
    """The saga asks a sku's owner to reserve (all or nothing), release or consume holds."""

    avro_name: ClassVar[str] = "dom.v1.SkuCommand"

    command_id: Id
    order_id: Id
    sku: Id
    action: SkuAction
    attempt: Int32
    holds: tuple[Hold, ...] = ()
    issued_at: Timestamp


class SkuResult(Message):
    """A sku owner's answer, with the sku's stock after the command for a fresh re-route:
    every location when a reservation was refused, else the locations its holds name."""

    avro_name: ClassVar[str] = "dom.v1.SkuResult"

    command_id: Id
    order_id: Id
    sku: Id
    action: SkuAction
    attempt: Int32
    ok: bool
    reason: str | None = None
    holds: tuple[Hold, ...] = ()
    locations: tuple[LocationAvailability, ...] = ()
    at: Timestamp

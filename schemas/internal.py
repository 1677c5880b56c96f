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
    WAIT = "WAIT"  # an order joins (or keeps its place in) the sku's backorder line
    UNWAIT = "UNWAIT"  # it leaves the line (cancelled, served, no longer short of the sku)
    WAKE = "WAKE"  # a result only: units for a waiting order are there, set aside for it
    EXPIRE = "EXPIRE"  # backorders placed longer ago than the expiry leave the line


LATE_HOLD_SUFFIX = ":late"
"""Ends the hold id of a ``CONSUME`` for units that left the building after their hold was
released (a shipment cancelled before its location accepted, shipped anyway): the sku's owner
takes them off on-hand once per such hold id, though it holds nothing under it."""


class Hold(DomModel):
    """Units of one sku held at one location for one shipment (``hold_id`` = shipment id)."""

    hold_id: Id
    location_id: Id
    quantity: Quantity


class BackorderWait(DomModel):
    """What a backordered order waits for at one sku's owner, and its place in the line."""

    quantity: Quantity
    rank: Int32  # served before any higher rank (DOM_BACKORDER_PRIORITY), then by placed_at
    placed_at: Timestamp
    waiting_since: Timestamp  # the backorder's age (DOM_BACKORDER_EXPIRY_S) counts from here
    seen_available: Int32  # the sku's total available as the order's routing saw it


class SkuCommand(Message):
    """The saga asks a sku's owner to reserve (all or nothing), release or consume holds."""

    avro_name: ClassVar[str] = "dom.v1.SkuCommand"

    command_id: Id
    order_id: Id
    sku: Id
    action: SkuAction
    attempt: Int32
    holds: tuple[Hold, ...] = ()
    wait: BackorderWait | None = None
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


class OrderPurge(Message):
    """The order stage's retention timer asks the owner of an order to remove it (a tombstone
    in the order table's changelog) or, ``forget``, to drop the short note it kept of a removed
    one. The owner checks again when it applies it: an order busy again stays."""

    avro_name: ClassVar[str] = "dom.v1.OrderPurge"

    command_id: Id
    order_id: Id
    forget: bool = False
    issued_at: Timestamp


class ChannelRefresh(Message):
    """Asks a sku's owner to figure the sku's channel availability again: the channel policies
    or the locations changed (``streams/inventory_stage.py`` sends it for the skus whose
    figures the change moves). Applied any number of times, it publishes only what changed."""

    avro_name: ClassVar[str] = "dom.v1.ChannelRefresh"

    sku: Id
    plan: str = ""
    issued_at: Timestamp


class BatchedRecord(DomModel):
    """One record of a :class:`RecordBatch`: its key and its encoded value."""

    key: bytes
    value: bytes


class RecordBatch(Message):
    """The records one batch of a stage sends to one partition of an internal topic, carried
    in one message (``streams/runtime/outbox.py`` packs and unpacks them; the codec's
    :meth:`~schemas.codec.Codec.encode_batch` and :meth:`~schemas.codec.Codec.unpack` skip
    this model on the way, it is here for the schema store)."""

    avro_name: ClassVar[str] = "dom.v1.RecordBatch"

    records: tuple[BatchedRecord, ...] = ()

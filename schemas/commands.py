"""Pydantic models of the commands the pipeline sends to locations and carriers.

Field names and defaults mirror the Avro records of the same names. A command's
`command_id` is derived from the decision, so a consumer can drop a repeated one.
"""

from typing import ClassVar, Self

from pydantic import model_validator

from schemas.common import Address, DomModel, Id, Message, Timestamp
from schemas.enums import (
    FulfillmentAction,
    FulfillmentKind,
    InsertKind,
    LabelFormat,
    ServiceLevel,
)
from schemas.orders import ShipmentLine


class FulfillmentCommand(Message):
    """Tells a location to fulfil a shipment."""

    avro_name: ClassVar[str] = "dom.v1.FulfillmentCommand"

    command_id: Id
    order_id: Id
    shipment_id: Id
    location_id: Id
    kind: FulfillmentKind
    lines: tuple[ShipmentLine, ...] = ()
    ship_to: Address | None = None
    destination_location_id: Id | None = None
    service_level: ServiceLevel
    rules_fired: tuple[str, ...] = ()
    created_at: Timestamp
    action: FulfillmentAction = FulfillmentAction.FULFIL

    @model_validator(mode="after")
    def _transfer_has_destination(self) -> Self:
        # A transfer without a destination store cannot be carried out by anyone.
        if self.kind is FulfillmentKind.TRANSFER and self.destination_location_id is None:
            raise ValueError("a TRANSFER needs destination_location_id")
        return self


class Carton(DomModel):
    """A box and the skus packed in it (one entry per unit)."""

    box_type: Id
    skus: tuple[str, ...] = ()


class Insert(DomModel):
    """An item or printed matter added to a parcel."""

    kind: InsertKind
    value: str


class PackagingCommand(Message):
    """Tells a location how to pack a shipment."""

    avro_name: ClassVar[str] = "dom.v1.PackagingCommand"

    command_id: Id
    order_id: Id
    shipment_id: Id
    location_id: Id
    packaging: Id
    cartons: tuple[Carton, ...] = ()
    inserts: tuple[Insert, ...] = ()
    rules_fired: tuple[str, ...] = ()
    created_at: Timestamp


class ReturnLabelCommand(Message):
    """A return label to send to the customer."""

    avro_name: ClassVar[str] = "dom.v1.ReturnLabelCommand"

    command_id: Id
    return_id: Id
    rma_number: Id
    order_id: Id
    return_location_id: Id
    ship_from: Address
    ship_to: Address
    label_format: LabelFormat
    label: bytes
    created_at: Timestamp

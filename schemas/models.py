"""Pydantic models of every record of the event contract, in one namespace.

Master data, stock and rules are defined here; the order lifecycle lives in
`schemas.orders` and commands in `schemas.commands`, both re-exported. Models are
frozen: arrays are tuples (lists are accepted on input) so a model is hashable.
`TOP_LEVEL_MODELS` maps each contract record that travels on a topic to its model;
`message_type` also finds models of internal records defined elsewhere.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, Self

from pydantic import Field, model_validator

from schemas.channels import ChannelCall
from schemas.commands import (
    Carton,
    FulfillmentCommand,
    Insert,
    PackagingCommand,
    ReturnLabelCommand,
)
from schemas.common import (
    Address,
    Count,
    DomModel,
    Id,
    InboundId,
    Int32,
    Message,
    Money,
    Timestamp,
    message_type,
)
from schemas.enums import (
    ActionResult,
    Capability,
    Channel,
    FulfillmentAction,
    FulfillmentKind,
    FulfillmentMethod,
    FulfillmentStatus,
    InsertKind,
    ItemCondition,
    LabelFormat,
    LocationKind,
    OrderActionKind,
    OrderHoldKind,
    OrderStatus,
    RuleStage,
    ServiceLevel,
    StockEventKind,
)
from schemas.orders import (
    ActionLine,
    Customer,
    FulfillmentUpdate,
    OrderAction,
    OrderCancelled,
    OrderHold,
    OrderLine,
    OrderPlaced,
    OrderStatusChanged,
    ReceivedLine,
    ReturnLine,
    ReturnReceived,
    ReturnRequested,
    Shipment,
    ShipmentLine,
)
from schemas.sellable import ChannelAvailability, ChannelPolicy, ChannelSellable


class Location(Message):
    """A distribution centre or store that holds stock."""

    avro_name: ClassVar[str] = "dom.v1.Location"

    location_id: InboundId
    name: str
    kind: LocationKind
    address: Address
    capabilities: tuple[Capability, ...] = ()
    priority: Int32 = 100
    daily_order_capacity: Count | None = None
    active: bool = True
    updated_at: Timestamp


class Product(Message):
    """Master data of a sellable item."""

    avro_name: ClassVar[str] = "dom.v1.Product"

    sku: InboundId
    name: str
    category: str
    unit_price: Money
    weight_grams: Count | None = None
    length_mm: Count | None = None
    width_mm: Count | None = None
    height_mm: Count | None = None
    fragile: bool = False
    hazmat: bool = False
    tags: tuple[str, ...] = ()


class StockEvent(Message):
    """A change of stock of one sku at one location."""

    avro_name: ClassVar[str] = "dom.v1.StockEvent"

    event_id: InboundId
    sku: InboundId
    location_id: InboundId
    kind: StockEventKind
    quantity: Int32
    reason: str | None = None
    occurred_at: Timestamp

    @model_validator(mode="after")
    def _absolute_levels_not_negative(self) -> Self:
        # Only an ADJUSTMENT is a signed delta; the other kinds are absolute levels.
        if self.kind is not StockEventKind.ADJUSTMENT and self.quantity < 0:
            raise ValueError(f"a {self.kind} quantity must be >= 0")
        return self


class RuleAction(DomModel):
    """What a rule does when its condition holds."""

    type: InboundId
    params: dict[str, str] = Field(default_factory=dict)

    def __hash__(self) -> int:
        # params is a dict, which cannot be hashed: hash its items so Rule stays hashable.
        return hash((self.type, tuple(sorted(self.params.items()))))


class Rule(Message):
    """A business rule; a tombstone for its rule_id deletes it."""

    avro_name: ClassVar[str] = "dom.v1.Rule"

    rule_id: InboundId
    version: Count
    stage: RuleStage
    priority: Int32
    condition: str
    actions: tuple[RuleAction, ...] = ()
    enabled: bool = True
    stop_processing: bool = False
    description: str | None = None
    updated_by: InboundId
    updated_at: Timestamp


class LocationAvailability(DomModel):
    """Stock of one sku at one location."""

    location_id: Id
    on_hand: Int32
    reserved: Count
    safety_stock: Count
    available: Count


class Availability(Message):
    """Available-to-promise of one sku over all locations."""

    avro_name: ClassVar[str] = "dom.v1.Availability"

    sku: Id
    locations: tuple[LocationAvailability, ...] = ()
    total_available: Count
    updated_at: Timestamp
    channels: tuple[ChannelSellable, ...] = ()


TOP_LEVEL_MODELS: Mapping[str, type[Message]] = MappingProxyType(
    {
        model.avro_name: model
        for model in (
            Location,
            Product,
            StockEvent,
            OrderPlaced,
            OrderCancelled,
            FulfillmentUpdate,
            ReturnRequested,
            ReturnReceived,
            Rule,
            OrderStatusChanged,
            FulfillmentCommand,
            PackagingCommand,
            ReturnLabelCommand,
            Availability,
            OrderAction,
            ChannelCall,
            ChannelPolicy,
            ChannelAvailability,
        )
    }
)

__all__ = [
    "TOP_LEVEL_MODELS",
    "ActionLine",
    "ActionResult",
    "Address",
    "Availability",
    "Capability",
    "Carton",
    "Channel",
    "ChannelAvailability",
    "ChannelCall",
    "ChannelPolicy",
    "ChannelSellable",
    "Customer",
    "DomModel",
    "FulfillmentAction",
    "FulfillmentCommand",
    "FulfillmentKind",
    "FulfillmentMethod",
    "FulfillmentStatus",
    "FulfillmentUpdate",
    "Insert",
    "InsertKind",
    "ItemCondition",
    "LabelFormat",
    "Location",
    "LocationAvailability",
    "LocationKind",
    "Message",
    "OrderAction",
    "OrderActionKind",
    "OrderCancelled",
    "OrderHold",
    "OrderHoldKind",
    "OrderLine",
    "OrderPlaced",
    "OrderStatus",
    "OrderStatusChanged",
    "PackagingCommand",
    "Product",
    "ReceivedLine",
    "ReturnLabelCommand",
    "ReturnLine",
    "ReturnReceived",
    "ReturnRequested",
    "Rule",
    "RuleAction",
    "RuleStage",
    "ServiceLevel",
    "Shipment",
    "ShipmentLine",
    "StockEvent",
    "StockEventKind",
    "message_type",
]

"""Pydantic models of the order lifecycle: orders, fulfilment updates, returns, status.

Field names and defaults mirror the Avro records of the same names. Only rules
about a single value or record live here; whether an order can be routed (a SHIP
order without an address, say) is for the routing stage to decide and report.
"""

from typing import ClassVar, Self

from pydantic import model_validator

from schemas.common import (
    Address,
    CurrencyCode,
    DomModel,
    Id,
    InboundId,
    Message,
    Money,
    Quantity,
    Timestamp,
)
from schemas.enums import (
    ActionResult,
    Channel,
    FulfillmentKind,
    FulfillmentMethod,
    FulfillmentStatus,
    ItemCondition,
    OrderActionKind,
    OrderHoldKind,
    OrderStatus,
    ServiceLevel,
)


class Customer(DomModel):
    """Who placed an order."""

    customer_id: InboundId
    loyalty_tier: str | None = None
    email: str | None = None


class OrderLine(DomModel):
    """One sku and quantity of an order."""

    line_id: InboundId
    sku: InboundId
    quantity: Quantity
    unit_price: Money


class OrderPlaced(Message):
    """A customer order as a channel received it."""

    avro_name: ClassVar[str] = "dom.v1.OrderPlaced"

    event_id: InboundId
    order_id: InboundId
    channel: Channel
    channel_order_ref: str
    placed_at: Timestamp
    customer: Customer
    fulfillment_method: FulfillmentMethod
    pickup_location_id: InboundId | None = None
    ship_to: Address | None = None
    lines: tuple[OrderLine, ...] = ()
    currency: CurrencyCode
    order_total: Money
    service_level: ServiceLevel
    tags: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _line_ids_unique(self) -> Self:
        # Allocations, shipments and cancellations refer to lines by line_id.
        seen: set[str] = set()
        for line in self.lines:
            if line.line_id in seen:
                raise ValueError(f"line_id {line.line_id!r} appears more than once")
            seen.add(line.line_id)
        return self


class OrderCancelled(Message):
    """The customer or channel cancelled an order."""

    avro_name: ClassVar[str] = "dom.v1.OrderCancelled"

    event_id: InboundId
    order_id: InboundId
    reason: str
    cancelled_at: Timestamp


class FulfillmentUpdate(Message):
    """A location's report on a shipment it was asked to fulfil."""

    avro_name: ClassVar[str] = "dom.v1.FulfillmentUpdate"

    event_id: InboundId
    order_id: InboundId
    shipment_id: Id  # the pipeline's own id, built from the order's: not bounded
    location_id: InboundId
    status: FulfillmentStatus
    reason: str | None = None
    tracking_number: str | None = None
    carrier: str | None = None  # who carries a SHIPPED shipment, shown beside its tracking
    occurred_at: Timestamp


class ReturnLine(DomModel):
    """One sku and quantity a customer wants to return."""

    sku: InboundId
    quantity: Quantity
    reason: str


class ReturnRequested(Message):
    """A customer asked to return items of an order."""

    avro_name: ClassVar[str] = "dom.v1.ReturnRequested"

    event_id: InboundId
    return_id: InboundId
    order_id: InboundId
    lines: tuple[ReturnLine, ...] = ()
    ship_from: Address
    requested_at: Timestamp


class ReceivedLine(DomModel):
    """One sku and quantity a location received back, with its condition."""

    sku: InboundId
    quantity: Quantity
    condition: ItemCondition


class ReturnReceived(Message):
    """A location received returned items."""

    avro_name: ClassVar[str] = "dom.v1.ReturnReceived"

    event_id: InboundId
    return_id: InboundId
    order_id: InboundId
    location_id: InboundId
    lines: tuple[ReceivedLine, ...] = ()
    received_at: Timestamp


class ShipmentLine(DomModel):
    """A quantity of one order line in a shipment."""

    line_id: Id
    sku: Id
    quantity: Quantity


class Shipment(DomModel):
    """Part of an order that one location fulfils."""

    shipment_id: Id
    location_id: Id
    lines: tuple[ShipmentLine, ...] = ()
    kind: FulfillmentKind | None = None
    fulfillment_status: FulfillmentStatus | None = None  # SHIPPED / PICKED_UP: it left now
    tracking_number: str | None = None  # on the status that reports it shipped
    carrier: str | None = None


class OrderHold(DomModel):
    """A hold that keeps an order from being routed until it is released."""

    hold_id: Id
    kind: OrderHoldKind
    reason: str
    rule_id: str | None = None
    placed_by: str | None = None


class OrderStatusChanged(Message):
    """The pipeline's decision about, or a change of, an order."""

    avro_name: ClassVar[str] = "dom.v1.OrderStatusChanged"

    event_id: Id
    order_id: Id
    status: OrderStatus
    reason: str
    shipments: tuple[Shipment, ...] = ()
    rules_fired: tuple[str, ...] = ()
    at: Timestamp
    holds: tuple[OrderHold, ...] = ()
    backordered: tuple[ShipmentLine, ...] = ()
    action_id: Id | None = None
    action_result: ActionResult | None = None
    cancelled: tuple[ShipmentLine, ...] = ()  # units an applied CANCEL_LINES cancelled


class ActionLine(DomModel):
    """Units of one order line an action is about."""

    line_id: InboundId
    quantity: Quantity


class OrderAction(Message):
    """An action on a live order; applied once per action_id, answered by one status."""

    avro_name: ClassVar[str] = "dom.v1.OrderAction"

    action_id: InboundId
    order_id: InboundId
    kind: OrderActionKind
    hold_id: InboundId | None = None
    lines: tuple[ActionLine, ...] = ()
    ship_to: Address | None = None
    shipment_id: Id | None = None  # the pipeline's own id, built from the order's
    to_location_id: InboundId | None = None
    reason: str
    requested_by: InboundId
    requested_at: Timestamp

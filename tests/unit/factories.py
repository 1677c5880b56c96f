"""Factories of contract records for tests: deterministic defaults, keyword overrides.

Every factory takes any field of its model as a keyword to override the default.
Ids that must differ between different events (`event_id`, `command_id`) are derived
from the content, so equal calls give equal records, as a redelivery would.
"""

import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.channels import ChannelCall
from schemas.enums import ChannelCallKind, ChannelCallState
from schemas.models import (
    Address,
    Availability,
    Capability,
    Carton,
    Channel,
    Customer,
    FulfillmentCommand,
    FulfillmentKind,
    FulfillmentMethod,
    FulfillmentStatus,
    FulfillmentUpdate,
    Insert,
    InsertKind,
    ItemCondition,
    LabelFormat,
    Location,
    LocationAvailability,
    LocationKind,
    Message,
    OrderAction,
    OrderActionKind,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderStatus,
    OrderStatusChanged,
    PackagingCommand,
    Product,
    ReceivedLine,
    ReturnLabelCommand,
    ReturnLine,
    ReturnReceived,
    ReturnRequested,
    Rule,
    RuleAction,
    RuleStage,
    ServiceLevel,
    Shipment,
    ShipmentLine,
    StockEvent,
    StockEventKind,
)
from schemas.sellable import ChannelAvailability, ChannelPolicy

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
"""The default time of every record; tests that need a sequence add offsets to it."""


def at(seconds: float) -> datetime:
    """`T0` plus some seconds."""
    return T0 + timedelta(seconds=seconds)


def content_id(prefix: str, *parts: object) -> str:
    """A stable id for given content: same parts, same id."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12]
    return f"{prefix}-{digest}"


def make_address(**overrides: Any) -> Address:
    """A New York address with coordinates."""
    fields: dict[str, Any] = {
        "name": "Ada Lovelace",
        "line1": "1 Main St",
        "city": "New York",
        "region": "NY",
        "postal_code": "10001",
        "country": "US",
        "lat": 40.7506,
        "lon": -73.9972,
    }
    return Address(**{**fields, **overrides})


def make_location(location_id: str = "DC-EAST", **overrides: Any) -> Location:
    """An active DC that ships, at the default address."""
    fields: dict[str, Any] = {
        "location_id": location_id,
        "name": f"Location {location_id}",
        "kind": LocationKind.DC,
        "address": make_address(name=f"Location {location_id}"),
        "capabilities": (Capability.SHIP, Capability.RETURNS),
        "updated_at": T0,
    }
    return Location(**{**fields, **overrides})


def make_product(sku: str = "SKU-1", **overrides: Any) -> Product:
    """A 500 g, 10.00 product."""
    fields: dict[str, Any] = {
        "sku": sku,
        "name": f"Product {sku}",
        "category": "general",
        "unit_price": Decimal("10.00"),
        "weight_grams": 500,
        "length_mm": 200,
        "width_mm": 100,
        "height_mm": 50,
    }
    return Product(**{**fields, **overrides})


def make_stock_event(
    sku: str = "SKU-1",
    location_id: str = "DC-EAST",
    quantity: int = 10,
    kind: StockEventKind = StockEventKind.SNAPSHOT,
    **overrides: Any,
) -> StockEvent:
    """A stock snapshot (or other `kind`) of `quantity` units."""
    occurred_at = overrides.get("occurred_at", T0)
    fields: dict[str, Any] = {
        "event_id": content_id("stock", sku, location_id, kind, quantity, occurred_at),
        "sku": sku,
        "location_id": location_id,
        "kind": kind,
        "quantity": quantity,
        "occurred_at": occurred_at,
    }
    return StockEvent(**{**fields, **overrides})


def make_line(
    line_id: str = "1", sku: str = "SKU-1", quantity: int = 1, **overrides: Any
) -> OrderLine:
    """An order line at 10.00 a unit."""
    fields: dict[str, Any] = {
        "line_id": line_id,
        "sku": sku,
        "quantity": quantity,
        "unit_price": Decimal("10.00"),
    }
    return OrderLine(**{**fields, **overrides})


def make_order(
    order_id: str = "ORD-1",
    lines: Iterable[OrderLine | tuple[str, int]] | None = None,
    **overrides: Any,
) -> OrderPlaced:
    """A web order shipped to the default address.

    `lines` takes OrderLines or (sku, quantity) pairs, numbered "1", "2", ... in order;
    by default one unit of SKU-1 at 10.00. `order_total` defaults to the sum of the lines; a
    larger one given for (sku, quantity) pairs prices their units so that the lines are worth
    it (an order's total may not be far above its lines' worth).
    """
    given = list(lines) if lines is not None else [("SKU-1", 1)]
    total = overrides.get("order_total")
    units = sum(line[1] for line in given if not isinstance(line, OrderLine))
    unit_price = Decimal("10.00")
    if total is not None and units and Decimal(total) > unit_price * units:
        unit_price = (Decimal(total) / units).quantize(Decimal("0.01"))
    order_lines = [
        line
        if isinstance(line, OrderLine)
        else make_line(str(i), line[0], line[1], unit_price=unit_price)
        for i, line in enumerate(given, start=1)
    ]
    fields: dict[str, Any] = {
        "event_id": f"evt-{order_id}",
        "order_id": order_id,
        "channel": Channel.WEB,
        "channel_order_ref": f"WEB-{order_id}",
        "placed_at": T0,
        "customer": Customer(customer_id="CUST-1", loyalty_tier="GOLD", email="ada@example.com"),
        "fulfillment_method": FulfillmentMethod.SHIP,
        "ship_to": make_address(),
        "lines": order_lines,
        "currency": "USD",
        "order_total": sum((line.unit_price * line.quantity for line in order_lines), Decimal(0)),
        "service_level": ServiceLevel.STANDARD,
    }
    return OrderPlaced(**{**fields, **overrides})


def make_pickup_order(
    order_id: str = "ORD-1", store_id: str = "STORE-1", **overrides: Any
) -> OrderPlaced:
    """A BOPIS order to be collected at `store_id`."""
    fields: dict[str, Any] = {
        "fulfillment_method": FulfillmentMethod.PICKUP,
        "pickup_location_id": store_id,
        "ship_to": None,
    }
    return make_order(order_id, **{**fields, **overrides})


def make_cancel(order_id: str = "ORD-1", **overrides: Any) -> OrderCancelled:
    """The customer cancels `order_id`."""
    fields: dict[str, Any] = {
        "event_id": f"cancel-{order_id}",
        "order_id": order_id,
        "reason": "customer request",
        "cancelled_at": at(60),
    }
    return OrderCancelled(**{**fields, **overrides})


def make_fulfillment_update(
    order_id: str = "ORD-1",
    shipment_id: str = "ORD-1-S1",
    location_id: str = "DC-EAST",
    status: FulfillmentStatus = FulfillmentStatus.SHIPPED,
    **overrides: Any,
) -> FulfillmentUpdate:
    """A location reports `status` for a shipment (SHIPPED, with tracking, by default)."""
    fields: dict[str, Any] = {
        "event_id": content_id("ful", order_id, shipment_id, location_id, status),
        "order_id": order_id,
        "shipment_id": shipment_id,
        "location_id": location_id,
        "status": status,
        "tracking_number": "1Z999" if status is FulfillmentStatus.SHIPPED else None,
        "reason": "no stock" if status is FulfillmentStatus.REJECTED else None,
        "occurred_at": at(3600),
    }
    return FulfillmentUpdate(**{**fields, **overrides})


def make_return_request(
    order_id: str = "ORD-1", return_id: str = "RET-1", **overrides: Any
) -> ReturnRequested:
    """The customer returns one unit of SKU-1."""
    fields: dict[str, Any] = {
        "event_id": f"evt-{return_id}",
        "return_id": return_id,
        "order_id": order_id,
        "lines": (ReturnLine(sku="SKU-1", quantity=1, reason="too small"),),
        "ship_from": make_address(),
        "requested_at": at(86400),
    }
    return ReturnRequested(**{**fields, **overrides})


def make_return_received(
    order_id: str = "ORD-1",
    return_id: str = "RET-1",
    location_id: str = "DC-EAST",
    **overrides: Any,
) -> ReturnReceived:
    """`location_id` receives one sellable unit of SKU-1 back."""
    fields: dict[str, Any] = {
        "event_id": f"rcv-{return_id}-{location_id}",
        "return_id": return_id,
        "order_id": order_id,
        "location_id": location_id,
        "lines": (ReceivedLine(sku="SKU-1", quantity=1, condition=ItemCondition.SELLABLE),),
        "received_at": at(3 * 86400),
    }
    return ReturnReceived(**{**fields, **overrides})


def make_return_line(
    sku: str = "SKU-1", quantity: int = 1, reason: str = "too small"
) -> ReturnLine:
    """One line of a return request."""
    return ReturnLine(sku=sku, quantity=quantity, reason=reason)


def make_received_line(
    sku: str = "SKU-1", quantity: int = 1, condition: ItemCondition = ItemCondition.SELLABLE
) -> ReceivedLine:
    """One line of a return receipt, sellable by default."""
    return ReceivedLine(sku=sku, quantity=quantity, condition=condition)


def make_returns_location(
    location_id: str = "STORE-RET",
    lat: float | None = 42.3601,
    lon: float | None = -71.0589,
    **overrides: Any,
) -> Location:
    """An active store that only takes returns, in Boston unless told otherwise."""
    fields: dict[str, Any] = {
        "kind": LocationKind.STORE,
        "capabilities": (Capability.RETURNS,),
        "address": make_address(
            name=f"Returns {location_id}",
            line1="77 Harbor Way",
            city="Boston",
            region="MA",
            postal_code="02110",
            lat=lat,
            lon=lon,
        ),
    }
    return make_location(location_id, **{**fields, **overrides})


def make_rule(rule_id: str = "RULE-1", **overrides: Any) -> Rule:
    """An enabled routing rule that holds orders over 1000."""
    fields: dict[str, Any] = {
        "rule_id": rule_id,
        "version": 1,
        "stage": RuleStage.ROUTING,
        "priority": 10,
        "condition": "order.total > 1000",
        "actions": (RuleAction(type="hold", params={"reason": "large order"}),),
        "description": "Hold large orders for review",
        "updated_by": "ops@example.com",
        "updated_at": T0,
    }
    return Rule(**{**fields, **overrides})


def make_status_changed(
    order_id: str = "ORD-1", status: OrderStatus = OrderStatus.ALLOCATED, **overrides: Any
) -> OrderStatusChanged:
    """The order is `status`, ALLOCATED by default with one shipment from DC-EAST."""
    fields: dict[str, Any] = {
        "event_id": content_id("status", order_id, status),
        "order_id": order_id,
        "status": status,
        "reason": "allocated in one shipment",
        "shipments": (
            Shipment(
                shipment_id=f"{order_id}-S1",
                location_id="DC-EAST",
                lines=(ShipmentLine(line_id="1", sku="SKU-1", quantity=1),),
            ),
        ),
        "at": at(1),
    }
    return OrderStatusChanged(**{**fields, **overrides})


def make_fulfillment_command(
    order_id: str = "ORD-1", location_id: str = "DC-EAST", **overrides: Any
) -> FulfillmentCommand:
    """Ship one unit of SKU-1 from `location_id` to the default address."""
    shipment_id = overrides.get("shipment_id", f"{order_id}-S1")
    fields: dict[str, Any] = {
        "command_id": content_id("ful-cmd", order_id, shipment_id, location_id),
        "order_id": order_id,
        "shipment_id": shipment_id,
        "location_id": location_id,
        "kind": FulfillmentKind.SHIP,
        "lines": (ShipmentLine(line_id="1", sku="SKU-1", quantity=1),),
        "ship_to": make_address(),
        "service_level": ServiceLevel.STANDARD,
        "created_at": at(1),
    }
    return FulfillmentCommand(**{**fields, **overrides})


def make_packaging_command(
    order_id: str = "ORD-1", location_id: str = "DC-EAST", **overrides: Any
) -> PackagingCommand:
    """Pack one unit of SKU-1 in a small box, with a note."""
    shipment_id = overrides.get("shipment_id", f"{order_id}-S1")
    fields: dict[str, Any] = {
        "command_id": content_id("pack-cmd", order_id, shipment_id, location_id),
        "order_id": order_id,
        "shipment_id": shipment_id,
        "location_id": location_id,
        "packaging": "STANDARD",
        "cartons": (Carton(box_type="S", skus=("SKU-1",)),),
        "inserts": (Insert(kind=InsertKind.NOTE, value="Thank you!"),),
        "created_at": at(1),
    }
    return PackagingCommand(**{**fields, **overrides})


def make_return_label_command(
    order_id: str = "ORD-1", return_id: str = "RET-1", **overrides: Any
) -> ReturnLabelCommand:
    """A ZPL label for a return from the default address to DC-EAST."""
    rma_number = overrides.get("rma_number", f"RMA-{return_id}")
    fields: dict[str, Any] = {
        "command_id": content_id("label-cmd", return_id),
        "return_id": return_id,
        "rma_number": rma_number,
        "order_id": order_id,
        "return_location_id": "DC-EAST",
        "ship_from": make_address(),
        "ship_to": make_address(name="Location DC-EAST", line1="500 Warehouse Rd"),
        "label_format": LabelFormat.ZPL,
        "label": f"^XA^BCN,100^FD{rma_number}^FS^XZ".encode(),
        "created_at": at(86400 + 1),
    }
    return ReturnLabelCommand(**{**fields, **overrides})


def make_availability(sku: str = "SKU-1", **overrides: Any) -> Availability:
    """SKU-1 with 7 available at DC-EAST (10 on hand, 2 reserved, 1 safety stock)."""
    fields: dict[str, Any] = {
        "sku": sku,
        "locations": (
            LocationAvailability(
                location_id="DC-EAST", on_hand=10, reserved=2, safety_stock=1, available=7
            ),
        ),
        "total_available": 7,
        "updated_at": at(1),
    }
    return Availability(**{**fields, **overrides})


def make_order_action(
    order_id: str = "ORD-1",
    kind: OrderActionKind = OrderActionKind.RELEASE_HOLD,
    **overrides: Any,
) -> OrderAction:
    """An operator asks for `kind` on `order_id` (releasing every hold, by default)."""
    fields: dict[str, Any] = {
        "action_id": content_id("act", order_id, kind, *sorted(map(str, overrides.values()))),
        "order_id": order_id,
        "kind": kind,
        "reason": "checked by hand",
        "requested_by": "alice",
        "requested_at": at(120),
    }
    return OrderAction(**{**fields, **overrides})


def make_channel_call(order_id: str = "WEB-1", **overrides: Any) -> ChannelCall:
    """Shopify was told that the order's one shipment left DC-EAST with tracking 1Z999."""
    fields: dict[str, Any] = {
        "call_id": f"shopify:FULFIL:{order_id}-1-1",
        "order_id": order_id,
        "channel": "shopify",
        "channel_order_ref": order_id.removeprefix("WEB-"),
        "kind": ChannelCallKind.FULFIL,
        "state": ChannelCallState.DONE,
        "shipment_id": f"{order_id}-1-1",
        "lines": (ShipmentLine(line_id="1", sku="SKU-1", quantity=1),),
        "tracking_number": "1Z999",
        "carrier": "UPS",
        "status_event_id": f"{order_id}:status:3",
        "reported_at": at(3600),
        "attempts": 1,
        "detail": "fulfillment 1 created",
        "channel_ref": "1",
        "at": at(3601),
    }
    return ChannelCall(**{**fields, **overrides})


def make_channel_policy(channel: Channel = Channel.MARKETPLACE, **overrides: Any) -> ChannelPolicy:
    """The marketplace sells only what the DCs hold, less 2 units of each sku."""
    fields: dict[str, Any] = {
        "channel": channel,
        "location_kinds": (LocationKind.DC,),
        "buffer_units": 2,
        "updated_by": "ops@example.com",
        "updated_at": T0,
    }
    return ChannelPolicy(**{**fields, **overrides})


def make_channel_availability(
    channel: Channel = Channel.MARKETPLACE, sku: str = "SKU-1", **overrides: Any
) -> ChannelAvailability:
    """The marketplace may sell 5 of SKU-1."""
    fields: dict[str, Any] = {"channel": channel, "sku": sku, "available": 5, "updated_at": at(1)}
    return ChannelAvailability(**{**fields, **overrides})


FACTORIES: dict[str, Callable[..., Message]] = {
    "dom.v1.Location": make_location,
    "dom.v1.Product": make_product,
    "dom.v1.StockEvent": make_stock_event,
    "dom.v1.OrderPlaced": make_order,
    "dom.v1.OrderCancelled": make_cancel,
    "dom.v1.FulfillmentUpdate": make_fulfillment_update,
    "dom.v1.ReturnRequested": make_return_request,
    "dom.v1.ReturnReceived": make_return_received,
    "dom.v1.Rule": make_rule,
    "dom.v1.OrderStatusChanged": make_status_changed,
    "dom.v1.FulfillmentCommand": make_fulfillment_command,
    "dom.v1.PackagingCommand": make_packaging_command,
    "dom.v1.ReturnLabelCommand": make_return_label_command,
    "dom.v1.Availability": make_availability,
    "dom.v1.OrderAction": make_order_action,
    "dom.v1.ChannelCall": make_channel_call,
    "dom.v1.ChannelPolicy": make_channel_policy,
    "dom.v1.ChannelAvailability": make_channel_availability,
}
"""One factory per top-level record, by Avro full name."""

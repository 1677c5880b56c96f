"""Enumerations of the event contract, one per Avro enum in ``schemas/avro``.

Each is a ``StrEnum`` whose members are the Avro symbols, so a member is written to
Avro as is and compares equal to the plain string a decoder returns.
"""

from enum import StrEnum


class Channel(StrEnum):
    """Sales channel an order came in through."""

    WEB = "WEB"
    MARKETPLACE = "MARKETPLACE"
    POS = "POS"
    WHOLESALE = "WHOLESALE"
    CALL_CENTER = "CALL_CENTER"


class FulfillmentMethod(StrEnum):
    """How the customer receives an order."""

    SHIP = "SHIP"
    PICKUP = "PICKUP"


class ServiceLevel(StrEnum):
    """Delivery speed the customer paid for."""

    STANDARD = "STANDARD"
    EXPRESS = "EXPRESS"
    NEXT_DAY = "NEXT_DAY"


class LocationKind(StrEnum):
    """A distribution centre or a store."""

    DC = "DC"
    STORE = "STORE"


class Capability(StrEnum):
    """What a location can do."""

    SHIP = "SHIP"
    PICKUP = "PICKUP"
    SHIP_FROM_STORE = "SHIP_FROM_STORE"
    RETURNS = "RETURNS"


class StockEventKind(StrEnum):
    """Absolute on-hand level, signed delta, or absolute safety level."""

    SNAPSHOT = "SNAPSHOT"
    ADJUSTMENT = "ADJUSTMENT"
    SAFETY_STOCK = "SAFETY_STOCK"


class FulfillmentStatus(StrEnum):
    """What a location reports about a shipment."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    SHIPPED = "SHIPPED"
    PICKED_UP = "PICKED_UP"
    CANCELLED = "CANCELLED"  # the location stopped a shipment it was told to cancel


class ItemCondition(StrEnum):
    """Condition of a returned item; only SELLABLE goes back on hand."""

    SELLABLE = "SELLABLE"
    DAMAGED = "DAMAGED"


class RuleStage(StrEnum):
    """Pipeline stage whose decisions a rule takes part in."""

    ROUTING = "ROUTING"
    PACKAGING = "PACKAGING"
    MARKETING = "MARKETING"


class OrderStatus(StrEnum):
    """Lifecycle status of an order."""

    RECEIVED = "RECEIVED"
    ALLOCATED = "ALLOCATED"
    PARTIALLY_ALLOCATED = "PARTIALLY_ALLOCATED"
    BACKORDERED = "BACKORDERED"
    ON_HOLD = "ON_HOLD"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    SHIPPED = "SHIPPED"
    COMPLETED = "COMPLETED"
    RETURN_AUTHORIZED = "RETURN_AUTHORIZED"
    RETURNED = "RETURNED"


ROUTING_OUTCOMES = (
    OrderStatus.ALLOCATED,
    OrderStatus.PARTIALLY_ALLOCATED,
    OrderStatus.BACKORDERED,
    OrderStatus.ON_HOLD,
    OrderStatus.REJECTED,
)
"""The statuses that answer an order's routing: one per order (a later one only re-promises
what waited for stock). The statuses are str enums: ``"ALLOCATED" in ROUTING_OUTCOMES``."""


class FulfillmentKind(StrEnum):
    """What a fulfillment command asks a location to do."""

    SHIP = "SHIP"
    SHIP_FROM_STORE = "SHIP_FROM_STORE"
    PICKUP = "PICKUP"
    TRANSFER = "TRANSFER"


class FulfillmentAction(StrEnum):
    """Fulfil a shipment, or cancel one the location was given earlier."""

    FULFIL = "FULFIL"
    CANCEL = "CANCEL"


class OrderActionKind(StrEnum):
    """What an operator or upstream system does to a live order."""

    RELEASE_HOLD = "RELEASE_HOLD"
    PLACE_HOLD = "PLACE_HOLD"
    CANCEL_LINES = "CANCEL_LINES"
    CHANGE_SHIP_TO = "CHANGE_SHIP_TO"
    MOVE_SHIPMENT = "MOVE_SHIPMENT"
    RETRY_BACKORDER = "RETRY_BACKORDER"


class OrderHoldKind(StrEnum):
    """Who or what holds an order."""

    RULE = "RULE"
    MANUAL = "MANUAL"
    FRAUD = "FRAUD"
    PAYMENT = "PAYMENT"
    ADDRESS = "ADDRESS"


class ActionResult(StrEnum):
    """Whether an order action was applied or refused."""

    APPLIED = "APPLIED"
    REFUSED = "REFUSED"


class InsertKind(StrEnum):
    """Kind of item or printed matter added to a parcel."""

    SAMPLE = "SAMPLE"
    DISCOUNT_CODE = "DISCOUNT_CODE"
    NOTE = "NOTE"
    GIFT = "GIFT"


class LabelFormat(StrEnum):
    """Printable format of a return label."""

    ZPL = "ZPL"
    PDF = "PDF"


class ChannelCallKind(StrEnum):
    """What a channel sync call tells a sales channel."""

    FULFIL = "FULFIL"
    CANCEL = "CANCEL"


class ChannelCallState(StrEnum):
    """Where a channel sync call stands."""

    RETRYING = "RETRYING"
    DONE = "DONE"
    FAILED = "FAILED"
    RETRY_REQUESTED = "RETRY_REQUESTED"

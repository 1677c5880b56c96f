"""Building blocks of the contract's pydantic models: base classes, field types, Address.

The field types carry the rules the Avro schemas cannot say (ids are not blank,
money has two decimals, times are UTC) so that a model that validates always
encodes, and a decoded model equals the one that was encoded.
"""

import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
MONEY_PRECISION = 18
MONEY_SCALE = 2

_CENT = Decimal(1).scaleb(-MONEY_SCALE)
# Precision 18 with scale 2 leaves 16 digits before the decimal point.
_MONEY_LIMIT = Decimal(10) ** (MONEY_PRECISION - MONEY_SCALE)
_COUNTRY = re.compile(r"[A-Z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")


class DomModel(BaseModel):
    """Base of every contract record: immutable, and unknown fields are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Message(DomModel):
    """A record that travels on a topic by itself; `avro_name` names its Avro schema.

    Defining a subclass with an `avro_name` registers it: the codec finds the model of
    a record by name through `message_type`, for contract and internal records alike.
    """

    avro_name: ClassVar[str]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        name = cls.__dict__.get("avro_name")
        if name is None:
            return
        known = _MESSAGE_TYPES.setdefault(name, cls)
        if known is not cls:
            raise TypeError(f"{name} already has a model: {known.__qualname__}")


_MESSAGE_TYPES: dict[str, type[Message]] = {}


def message_type(avro_name: str) -> type[Message] | None:
    """The model registered for a record's full Avro name, if its module was imported."""
    return _MESSAGE_TYPES.get(avro_name)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or blank")
    return value


def _utc_millis(value: datetime) -> datetime:
    # timestamp-millis keeps milliseconds only: truncating here makes a decoded model
    # equal to the model that was encoded. Naive times are taken to be UTC.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.tzinfo is not UTC:
        try:
            value = value.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:59-05:00 is in year 10000 in UTC
            raise ValueError("is outside the years 1 to 9999 once converted to UTC") from None
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def millis(at: datetime) -> int:
    """A record's time in whole milliseconds since the epoch, as timestamp-millis holds it
    (rounded: the float of a millisecond time may fall a hair short of it)."""
    return round(at.timestamp() * 1000)


def _money(value: Decimal) -> Decimal:
    if abs(value) >= _MONEY_LIMIT:
        raise ValueError(
            f"must have at most {MONEY_PRECISION} digits, "
            f"{MONEY_PRECISION - MONEY_SCALE} before the decimal point"
        )
    return value.quantize(_CENT, rounding=ROUND_HALF_EVEN)


def _country(value: str) -> str:
    if not _COUNTRY.fullmatch(value):
        raise ValueError("must be an ISO 3166-1 alpha-2 code in upper case, like 'US'")
    return value


def _currency(value: str) -> str:
    if not _CURRENCY.fullmatch(value):
        raise ValueError("must be an ISO 4217 code in upper case, like 'USD'")
    return value


Id = Annotated[str, AfterValidator(_not_blank)]
"""An identifier or code: any non-blank string."""

MAX_ID_CHARS = 256
"""The longest id an upstream system may send (order, line, sku, location, event, ...).

An id is repeated in everything it leads to: a shipment id holds its order's id, a command id
its sku and shipment ids, an order's state every record it caused. A 100 KB order id made an
order's state larger than a Kafka record may be, and the worker stopped. Real ids are tens of
characters; the pipeline's own ids, built from these, are not bounded by this."""

InboundId = Annotated[str, Field(max_length=MAX_ID_CHARS), AfterValidator(_not_blank)]
"""An id in a record from upstream: non-blank, at most ``MAX_ID_CHARS`` characters."""

Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
Quantity = Annotated[int, Field(gt=0, le=INT32_MAX)]
Timestamp = Annotated[datetime, AfterValidator(_utc_millis)]
"""An instant, kept in UTC with millisecond precision (naive input is taken as UTC)."""

Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False), AfterValidator(_money)]
"""A non-negative amount, rounded half-even to cents, with at most 18 digits in all."""

CountryCode = Annotated[str, AfterValidator(_country)]
CurrencyCode = Annotated[str, AfterValidator(_currency)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class Address(DomModel):
    """A postal address, with coordinates when known."""

    name: str
    line1: str
    line2: str | None = None
    city: str
    region: str
    postal_code: str
    country: CountryCode
    lat: Latitude | None = None
    lon: Longitude | None = None

"""Poison for every inbound topic: records that are valid Avro but extreme, as Hypothesis
strategies.

Each record is a plain dict written by fastavro against the contract's current schema, in the
single-object wire format (`C3 01`, fingerprint, body), so the values the pydantic models would
refuse travel too: int32 and int64 extremes, decimal(18,2) at and past its limits, times at 0,
far in the future and past what a datetime holds, NaN and infinite coordinates, 100 KB and empty
strings, conditions thousands of operators deep, references to nothing, fields that contradict
each other, keys that are not the record's id. Raw bytes that are no record at all and
tombstones (null values) go to every topic as well.

Ids that must be new when the record is sent (an order nobody placed yet) are placeholders
(``FRESH_ORDER``, ``FRESH_LONG_ORDER``) the test replaces with unique ids at send time, so
that a strategy stays a pure function of Hypothesis' choices.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from io import BytesIO
from typing import Any

from fastavro import schemaless_writer
from hypothesis import strategies as st

from schemas import topics as registry
from schemas.codec import SINGLE_OBJECT_MAGIC
from schemas.store import default_store

LONG = 100_000
"""Characters of a long string: far more than any id or name, well under a message's limit."""
LONG_TEXT = "x" * LONG

FRESH_ORDER = "@fresh-order@"
FRESH_LONG_ORDER = "@fresh-long-order@"
"""Replaced by a new order id (a 100 KB one for the second) when the record is sent."""

# The world the test loads before any poison: these must keep working.
DC = "DC-OK"
STORE = "ST-OK"
TARGETS = ("T-1", "T-2", "T-3", "T-4")
"""Orders placed (and allocated) before the poison: updates, cancels and returns aim at them.
T-1 and T-3 were shipped, so their units can be returned."""
TARGET_SHIPMENTS = tuple(f"{t}-1-1" for t in TARGETS)
POISON_SKUS = ("SKU-X1", "SKU-X2", "SKU-X3")
"""Skus with stock at DC-OK that poison orders may take, and poison products may redefine;
the normal orders never use them."""

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
T0_MS = 1_714_564_800_000  # 2024-05-01T12:00:00Z
MAX_DATETIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last a datetime holds
MIN_DATETIME_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z

EXTREME_TEXT = (
    "",
    " ",
    "\x00",
    "\t\r\n",
    "^XA^FDx^FS~JR_\\",  # label printer commands
    "é" * 2_000,
    "💥",
    LONG_TEXT,
)
INT32 = (INT32_MIN, INT32_MIN + 1, -1, 0, 1, 100_000, 100_001, INT32_MAX - 1, INT32_MAX)


def past_precision(cents: int) -> bytes:
    """A decimal(18,2) body past the schema's 18 digits: the Avro bytes of ``cents`` unscaled
    (two's complement, big-endian), which fastavro writes as they are."""
    return cents.to_bytes((cents.bit_length() + 8) // 8, "big", signed=True)


MONEY: tuple[Decimal | bytes, ...] = (
    Decimal("0.00"),
    Decimal("0.01"),
    Decimal("-0.01"),
    Decimal("0.50"),
    Decimal("9999999999999999.99"),  # the largest decimal(18,2)
    Decimal("-9999999999999999.99"),
    past_precision(10**18),  # 10^16.00: one cent past the largest
    past_precision(-(10**42)),  # bytes hold any size; the schema's precision does not
)
TIMES = (
    0,
    -1,
    T0_MS,
    MAX_DATETIME_MS,
    MAX_DATETIME_MS + 1,
    MIN_DATETIME_MS,
    MIN_DATETIME_MS - 1,
    INT64_MAX,
    INT64_MIN,
)
COORDINATES = (
    None,
    0.0,
    -0.0,
    90.0,
    -90.0,
    180.0,
    -180.0,
    90.000001,
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    5e-324,
)
COUNTRIES = ("US", "", "us", "USA", "ZZ", "\x00\x00", LONG_TEXT)
CURRENCIES = ("USD", "JPY", "KRW", "", "usd", "EURO", "XXX", LONG_TEXT)
LOCATION_REFS = (DC, STORE, "LOC-P1", "LOC-UNKNOWN", "", " ", LONG_TEXT)
SKU_REFS = (*POISON_SKUS, "SKU-UNKNOWN", "", " ", LONG_TEXT)


OWN_KEY = object()
"""The key of a record keyed as the contract says: its id field, once placeholders are filled."""


@dataclass(frozen=True, repr=False)
class Poison:
    """One input for a topic: a record (written when sent) or raw bytes, and its key."""

    topic: str  # unprefixed registry name
    key: bytes | object | None
    """The key's bytes, None for no key, or ``OWN_KEY``."""
    record: Mapping[str, Any] | None = None
    """The dict to write, placeholders not yet filled; None for raw bytes."""
    record_name: str | None = None
    id_field: str | None = None
    raw: bytes | None = None
    """The value when ``record`` is None (None as well: a tombstone)."""
    timestamp_ms: int = 0
    """The Kafka record's own time (CreateTime, what the stages take as "now"); 0: the
    producer's clock."""

    def __repr__(self) -> str:  # Hypothesis prints failing examples: keep them readable
        if self.record is None:
            return f"Poison({self.topic} key={brief(self.key)} value={brief(self.raw)})"
        key = "own" if self.key is OWN_KEY else brief(self.key)
        return f"Poison({self.topic} key={key} {self.record_name} {brief(self.record)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # Hypothesis' printer
        printer.text(repr(self))

    def materialize(self, fill: Callable[[Any], Any]) -> tuple[bytes | None, bytes | None, Any]:
        """Key and value bytes, and the record sent, with ``fill`` applied to the record."""
        if self.record is None:
            assert self.key is not OWN_KEY
            return self.key, self.raw, None  # type: ignore[return-value]
        assert self.record_name is not None and self.id_field is not None
        record = fill(self.record)
        key = str(record[self.id_field]).encode() if self.key is OWN_KEY else self.key
        return key, encode(self.record_name, record), record  # type: ignore[return-value]


def encode(name: str, record: Mapping[str, Any]) -> bytes:
    """``record`` as the contract's current ``name`` schema writes it, single-object encoded."""
    store = default_store()
    full = f"dom.v1.{name}"
    out = BytesIO()
    out.write(SINGLE_OBJECT_MAGIC + store.fingerprint(full))
    schemaless_writer(out, store.reader_schema(full), dict(record))
    return out.getvalue()


def brief(value: Any) -> str:
    """A repr that shows a long string as ``'x'*100000``, so failure messages stay readable."""
    if isinstance(value, str):
        if len(value) > 60:
            head = value[0]
            if value == head * len(value):
                return f"{head!r}*{len(value)}"
            return repr(value[:40]) + "…"
        return repr(value)
    if isinstance(value, bytes):
        return "b" + brief(value.decode("utf-8", "replace")) if len(value) > 60 else repr(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {brief(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        shown = ", ".join(brief(v) for v in value[:6])
        return f"[{shown}{', …' if len(value) > 6 else ''}] ({len(value)})"
    return repr(value)


def sometimes(usual: Any, extremes: tuple[Any, ...] | st.SearchStrategy[Any]) -> st.SearchStrategy:
    """The usual value about half the time, else an extreme one."""
    pool = extremes if isinstance(extremes, st.SearchStrategy) else st.sampled_from(extremes)
    return st.one_of(st.just(usual), pool)


def text(usual: str) -> st.SearchStrategy[str]:
    return sometimes(usual, EXTREME_TEXT)


def optional_text(usual: str | None) -> st.SearchStrategy[str | None]:
    return sometimes(usual, (None, *EXTREME_TEXT))


def int32(usual: int) -> st.SearchStrategy[int]:
    return sometimes(usual, INT32)


def optional_int32(usual: int | None) -> st.SearchStrategy[int | None]:
    return sometimes(usual, (None, *INT32))


def money(usual: Decimal) -> st.SearchStrategy[Decimal | bytes]:
    return sometimes(usual, MONEY)


def when(usual: int = T0_MS) -> st.SearchStrategy[int]:
    return sometimes(usual, TIMES)


def symbol(usual: str, symbols: tuple[str, ...]) -> st.SearchStrategy[str]:
    return sometimes(usual, symbols)


def address() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "name": text("Ada Lovelace"),
            "line1": text("1 Main St"),
            "line2": optional_text(None),
            "city": text("New York"),
            "region": text("NY"),
            "postal_code": text("10001"),
            "country": sometimes("US", COUNTRIES),
            "lat": sometimes(40.75, COORDINATES),
            "lon": sometimes(-73.99, COORDINATES),
        }
    )


def keyed(
    topic: registry.Topic, name: str, id_field: str, records: st.SearchStrategy[dict[str, Any]]
) -> st.SearchStrategy[Poison]:
    """Records of ``name`` on ``topic``, keyed by their id most of the time, else by a key
    that is not (another entity's id, an empty or 100 KB key, no key at all)."""

    @st.composite
    def build(draw: st.DrawFn) -> Poison:
        record = draw(records)
        key = draw(st.one_of(st.just(OWN_KEY), st.sampled_from(other_keys(topic))))
        return Poison(topic.name, key, record, name, id_field)

    return build()


LARGEST = b"\xc3\x01" + bytes(1_048_300)
"""About the largest value the broker takes (its default limit is 1 MiB a record): its dead
letter, the same bytes with the reason in headers, must fit as well."""


def other_keys(topic: registry.Topic) -> tuple[bytes | None, ...]:
    """Keys that are not a record's id; no key at all only where the broker takes it (a
    compacted topic refuses a record without a key)."""
    keys = (b"", b"DC-OK", b"T-1", b"other-key", LONG_TEXT.encode())
    return keys if topic.compacted else (None, *keys)


def junk(topic: registry.Topic) -> st.SearchStrategy[Poison]:
    """Bytes that are no record, and a tombstone, under a key the pipeline does not use."""
    values = (
        b"not avro at all",
        b"\xc3\x01",  # a truncated header
        b"\xc3\x01" + b"\xff" * 8 + b"body",  # an unknown fingerprint
        b"\x00\x00\x00\x00\x07",  # Confluent format, no registry
        b"",
        None,  # a tombstone
        LARGEST,
    )

    @st.composite
    def build(draw: st.DrawFn) -> Poison:
        value = draw(st.sampled_from(values))
        keys = (b"junk-key", LONG_TEXT.encode()) if value is not LARGEST else (b"junk-key",)
        key = draw(st.sampled_from(keys if topic.compacted else (None, *keys)))
        return Poison(topic.name, key, raw=value)

    return build()


# ---- master data --------------------------------------------------------------------------------

CAPABILITIES = ("SHIP", "PICKUP", "SHIP_FROM_STORE", "RETURNS")


def locations() -> st.SearchStrategy[Poison]:
    record = st.fixed_dictionaries(
        {
            # DC-OK itself only ever as a key that is not the record's id.
            "location_id": st.sampled_from(("LOC-P1", "LOC-P2", "", " ", LONG_TEXT)),
            "name": text("Poison location"),
            "kind": symbol("STORE", ("DC", "STORE")),
            "address": address(),
            "capabilities": sometimes(
                ["RETURNS"],
                st.one_of(
                    st.lists(st.sampled_from(CAPABILITIES), max_size=6),
                    st.just(["RETURNS"] * 10_000),
                ),
            ),
            "priority": int32(100),
            "daily_order_capacity": optional_int32(None),
            "active": st.booleans(),
            "updated_at": when(),
        }
    )
    return keyed(registry.LOCATIONS, "Location", "location_id", record)


def products() -> st.SearchStrategy[Poison]:
    record = st.fixed_dictionaries(
        {
            "sku": st.sampled_from((*POISON_SKUS, "SKU-P9", "", " ", LONG_TEXT)),
            "name": text("Poison product"),
            "category": text("general"),
            "unit_price": money(Decimal("10.00")),
            "weight_grams": optional_int32(500),
            "length_mm": optional_int32(200),
            "width_mm": optional_int32(100),
            "height_mm": optional_int32(50),
            "fragile": st.booleans(),
            "hazmat": st.booleans(),
            "tags": sometimes([], (["gift"], [""], [LONG_TEXT], ["t"] * 10_000)),
        }
    )
    return keyed(registry.PRODUCTS, "Product", "sku", record)


def stock_events() -> st.SearchStrategy[Poison]:
    record = st.fixed_dictionaries(
        {
            "event_id": st.sampled_from(("STK-1", "STK-2", "", " ", LONG_TEXT)),
            "sku": st.sampled_from(SKU_REFS),
            "location_id": st.sampled_from(LOCATION_REFS),
            "kind": st.sampled_from(("SNAPSHOT", "ADJUSTMENT", "SAFETY_STOCK")),
            "quantity": st.sampled_from(INT32),
            "reason": optional_text(None),
            "occurred_at": when(),
        }
    )
    return keyed(registry.STOCK, "StockEvent", "sku", record)


# ---- orders -------------------------------------------------------------------------------------


def order_line(line_ids: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "line_id": st.sampled_from(line_ids),
            "sku": st.sampled_from(SKU_REFS),
            "quantity": int32(1),
            "unit_price": money(Decimal("10.00")),
        }
    )


def _line_ids(n: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(1, n + 1))


@st.composite
def _order(draw: st.DrawFn) -> dict[str, Any]:
    method = draw(st.sampled_from(("SHIP", "PICKUP")))
    # Mostly each line its own id; sometimes repeats, an empty or a 100 KB one.
    n = draw(st.integers(0, 4))
    line_ids = draw(sometimes(_line_ids(max(n, 1)), (("1", "1"), ("",), (LONG_TEXT,))))
    lines = draw(st.lists(order_line(line_ids), min_size=n, max_size=n))
    worth = sum(
        (x["unit_price"] * x["quantity"] for x in lines if isinstance(x["unit_price"], Decimal)),
        Decimal(0),
    )
    consistent = worth if abs(worth) < Decimal("1E16") else Decimal("0.00")
    return {
        "event_id": draw(st.sampled_from(("EVT-P", "", LONG_TEXT))),
        "order_id": draw(st.sampled_from((FRESH_ORDER, FRESH_LONG_ORDER, "", " ", "T-2"))),
        "channel": draw(st.sampled_from(("WEB", "MARKETPLACE", "POS", "WHOLESALE", "CALL_CENTER"))),
        "channel_order_ref": draw(text("REF-1")),
        "placed_at": draw(when()),
        "customer": {
            "customer_id": draw(text("CUST-1")),
            "loyalty_tier": draw(optional_text("GOLD")),
            "email": draw(optional_text(None)),
        },
        "fulfillment_method": method,
        # SHIP without an address, PICKUP without a store, both, neither: all are drawn.
        "pickup_location_id": draw(
            sometimes(STORE if method == "PICKUP" else None, (None, *LOCATION_REFS))
        ),
        "ship_to": draw(sometimes(None, st.one_of(st.none(), address()))),
        "lines": lines,
        "currency": draw(sometimes("USD", CURRENCIES)),
        "order_total": draw(sometimes(consistent, MONEY)),
        "service_level": draw(st.sampled_from(("STANDARD", "EXPRESS", "NEXT_DAY"))),
        "tags": draw(sometimes(["poison"], ([], [""], [LONG_TEXT], ["poison"] * 10_000))),
    }


def orders_placed() -> st.SearchStrategy[Poison]:
    return keyed(registry.ORDERS, "OrderPlaced", "order_id", _order())


ORDER_REFS = (*TARGETS, "ORD-UNKNOWN", "", " ", LONG_TEXT)


def orders_cancelled() -> st.SearchStrategy[Poison]:
    record = st.fixed_dictionaries(
        {
            "event_id": st.sampled_from(("CXL-1", "CXL-2", "", LONG_TEXT)),
            "order_id": st.sampled_from(ORDER_REFS),
            "reason": text("customer request"),
            "cancelled_at": when(),
        }
    )
    return keyed(registry.ORDERS, "OrderCancelled", "order_id", record)


def fulfillment_updates() -> st.SearchStrategy[Poison]:
    # Any order with any shipment: its own, another order's, one that never existed.
    record = st.fixed_dictionaries(
        {
            "event_id": st.sampled_from(("FUL-1", "FUL-2", "", LONG_TEXT)),
            "order_id": st.sampled_from(ORDER_REFS),
            "shipment_id": st.sampled_from((*TARGET_SHIPMENTS, "T-1-9-9", "", LONG_TEXT)),
            "location_id": st.sampled_from(LOCATION_REFS),
            "status": st.sampled_from(("ACCEPTED", "REJECTED", "SHIPPED", "PICKED_UP")),
            "reason": optional_text(None),
            "tracking_number": optional_text("1Z999"),
            "occurred_at": when(),
        }
    )
    return keyed(registry.FULFILLMENT_EVENTS, "FulfillmentUpdate", "order_id", record)


def _return_lines(condition: bool) -> st.SearchStrategy[list[dict[str, Any]]]:
    line = {
        "sku": st.sampled_from(("SKU-OK-0", "SKU-OK-1", *SKU_REFS)),
        # more than was delivered is the usual case here: 1 of 3 units is the exception
        "quantity": sometimes(1, INT32),
    }
    if condition:
        line["condition"] = st.sampled_from(("SELLABLE", "DAMAGED"))
    else:
        line["reason"] = text("too small")
    return st.lists(st.fixed_dictionaries(line), max_size=3)


RETURN_IDS = ("RET-1", "RET-2", "RET-UNKNOWN", "", LONG_TEXT)


def returns_requested() -> st.SearchStrategy[Poison]:
    record = st.fixed_dictionaries(
        {
            "event_id": st.sampled_from(("RRQ-1", "RRQ-2", "", LONG_TEXT)),
            "return_id": st.sampled_from(RETURN_IDS),
            "order_id": st.sampled_from(ORDER_REFS),
            "lines": _return_lines(condition=False),
            "ship_from": address(),
            "requested_at": when(),
        }
    )
    return keyed(registry.RETURNS, "ReturnRequested", "order_id", record)


def returns_received() -> st.SearchStrategy[Poison]:
    record = st.fixed_dictionaries(
        {
            "event_id": st.sampled_from(("RRC-1", "RRC-2", "", LONG_TEXT)),
            "return_id": st.sampled_from(RETURN_IDS),
            "order_id": st.sampled_from(ORDER_REFS),
            "location_id": st.sampled_from(LOCATION_REFS),
            "lines": _return_lines(condition=True),
            "received_at": when(),
        }
    )
    return keyed(registry.RETURNS, "ReturnReceived", "order_id", record)


# ---- rules --------------------------------------------------------------------------------------

CONDITIONS = (
    "true",
    "!" * 4_000 + "true",
    "(" * 3_000 + "true" + ")" * 3_000,
    " || ".join(["false"] * 3_000),
    " && ".join(["true"] * 3_000),
    " + ".join(["1"] * 3_000) + " > 0",
    "order.total > 1.0 ? true : " * 500 + "false",
    "((((",
    "",
    "a" * LONG,
    'order.total > "abc"',
    "customer.teir == 'GOLD'",
    "lines[100000].sku == 'x'",
    "order.total / 0.0 > 1.0",
    "size(lines) > 9223372036854775807",
    '"' + LONG_TEXT[:9_000] + '" == order.channel',
    "\x00",
)
"""Conditions; each is guarded (``(c) && "poison" in order.tags``) so that one that compiles
fires only on poison orders, never on the normal orders the test checks."""


def rule_condition(raw: str) -> str:
    return f'({raw}) && "poison" in order.tags'


ACTIONS = (
    {"type": "hold", "params": {"reason": "poison"}},
    {"type": "hold", "params": {"reason": LONG_TEXT}},
    {"type": "force_location", "params": {"location": "LOC-UNKNOWN"}},
    {"type": "exclude_locations", "params": {"locations": DC}},
    {"type": "cap_shipments", "params": {"max": str(INT32_MAX)}},
    {"type": "cap_shipments", "params": {"max": "99999999999999999999999999"}},
    {"type": "set_packaging", "params": {"type": LONG_TEXT}},
    {"type": "add_note", "params": {"text": LONG_TEXT}},
    {"type": "add_sample", "params": {"sku": ",".join(["SKU-X1"] * 10_000)}},
    {"type": "add_discount_code", "params": {"code": "\x00"}},
    {"type": "", "params": {}},
    {"type": "no_such_action", "params": {"x": "y"}},
    {"type": "hold", "params": {f"p{i}": "v" for i in range(10_000)}},
)


def rules() -> st.SearchStrategy[Poison]:
    record = st.fixed_dictionaries(
        {
            "rule_id": st.sampled_from(("RULE-P1", "RULE-P2", "RULE-P3", "", " ", LONG_TEXT)),
            "version": int32(1),
            "stage": st.sampled_from(("ROUTING", "PACKAGING", "MARKETING")),
            "priority": int32(10),
            "condition": st.sampled_from(CONDITIONS).map(rule_condition),
            "actions": st.lists(st.sampled_from(ACTIONS), max_size=3),
            "enabled": st.booleans(),
            "stop_processing": st.booleans(),
            "description": optional_text(None),
            "updated_by": text("ops@example.com"),
            "updated_at": when(),
        }
    )
    return keyed(registry.RULES, "Rule", "rule_id", record)


POISONS: Mapping[str, Callable[[], st.SearchStrategy[Poison]]] = {
    "Location": locations,
    "Product": products,
    "StockEvent": stock_events,
    "OrderPlaced": orders_placed,
    "OrderCancelled": orders_cancelled,
    "FulfillmentUpdate": fulfillment_updates,
    "ReturnRequested": returns_requested,
    "ReturnReceived": returns_received,
    "Rule": rules,
}
"""Every inbound record type and the strategy of its poison."""


# ---- the cases named in the guarantee, sent first (Hypothesis' explicit examples) ----------------


def base_address(**fields: Any) -> dict[str, Any]:
    return {
        "name": "Ada Lovelace",
        "line1": "1 Main St",
        "line2": None,
        "city": "New York",
        "region": "NY",
        "postal_code": "10001",
        "country": "US",
        "lat": 40.75,
        "lon": -73.99,
        **fields,
    }


def base_order(lines: list[tuple[str, str, int]], **fields: Any) -> dict[str, Any]:
    """A valid SHIP order of ``lines`` (line id, sku, quantity) at 10.00 a unit."""
    order_lines = [
        {"line_id": i, "sku": sku, "quantity": n, "unit_price": Decimal("10.00")}
        for i, sku, n in lines
    ]
    return {
        "event_id": "EVT-P",
        "order_id": FRESH_ORDER,
        "channel": "WEB",
        "channel_order_ref": "REF-1",
        "placed_at": T0_MS,
        "customer": {"customer_id": "CUST-1", "loyalty_tier": None, "email": None},
        "fulfillment_method": "SHIP",
        "pickup_location_id": None,
        "ship_to": base_address(),
        "lines": order_lines,
        "currency": "USD",
        "order_total": sum((Decimal("10.00") * n for _, _, n in lines), Decimal("0.00")),
        "service_level": "STANDARD",
        "tags": ["poison"],
        **fields,
    }


def base_stock(
    sku: str, location_id: str, kind: str, quantity: int, event_id: str
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "sku": sku,
        "location_id": location_id,
        "kind": kind,
        "quantity": quantity,
        "reason": None,
        "occurred_at": T0_MS,
    }


def base_update(order_id: str, shipment_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"FUL-{order_id}-{shipment_id}-{status}",
        "order_id": order_id,
        "shipment_id": shipment_id,
        "location_id": DC,
        "status": status,
        "reason": None,
        "tracking_number": None,
        "occurred_at": T0_MS,
        **fields,
    }


def base_return(order_id: str, lines: list[tuple[str, int]], **fields: Any) -> dict[str, Any]:
    return {
        "event_id": "RRQ-X",
        "return_id": "RET-X",
        "order_id": order_id,
        "lines": [{"sku": sku, "quantity": n, "reason": "too small"} for sku, n in lines],
        "ship_from": base_address(),
        "requested_at": T0_MS,
        **fields,
    }


def base_rule(condition: str, **fields: Any) -> dict[str, Any]:
    return {
        "rule_id": "RULE-DEEP",
        "version": 1,
        "stage": "ROUTING",
        "priority": 10,
        "condition": rule_condition(condition),
        "actions": [{"type": "hold", "params": {"reason": "poison"}}],
        "enabled": True,
        "stop_processing": False,
        "description": None,
        "updated_by": "ops@example.com",
        "updated_at": T0_MS,
        **fields,
    }


def on(
    topic: registry.Topic, name: str, id_field: str, record: dict[str, Any], key: Any = OWN_KEY
) -> Poison:
    return Poison(topic.name, key, record, name, id_field)


def _placed(record: dict[str, Any], key: Any = OWN_KEY) -> Poison:
    return on(registry.ORDERS, "OrderPlaced", "order_id", record, key)


def _update(*args: Any, **fields: Any) -> Poison:
    record = base_update(*args, **fields)
    return on(registry.FULFILLMENT_EVENTS, "FulfillmentUpdate", "order_id", record)


def _return_request(*args: Any, **fields: Any) -> Poison:
    return on(registry.RETURNS, "ReturnRequested", "order_id", base_return(*args, **fields))


def _stock(*args: Any) -> Poison:
    return on(registry.STOCK, "StockEvent", "sku", base_stock(*args))


X1, X2, X3 = POISON_SKUS


def base_location(location_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "location_id": location_id,
        "name": "Poison location",
        "kind": "DC",
        "address": base_address(),
        "capabilities": ["SHIP"],
        "priority": 100,
        "daily_order_capacity": None,
        "active": True,
        "updated_at": T0_MS,
        **fields,
    }


EXPLICIT: Mapping[str, list[list[Poison]]] = {
    "Location": [
        # DC-OK closed, under a key that is not its id: refused, so DC-OK must stay open
        [
            on(
                registry.LOCATIONS,
                "Location",
                "location_id",
                base_location(DC, active=False, capabilities=[]),
                key=b"not-DC-OK",
            )
        ],
        [
            on(
                registry.LOCATIONS,
                "Location",
                "location_id",
                base_location("LOC-P1", address=base_address(lat=math.nan)),
            )
        ],
    ],
    "StockEvent": [
        # each level fits an int32; their sum over two locations does not
        [
            _stock(X3, DC, "SNAPSHOT", INT32_MAX, "STK-MAX-1"),
            _stock(X3, STORE, "SNAPSHOT", INT32_MAX, "STK-MAX-2"),
        ],
        [_stock(X3, DC, "ADJUSTMENT", INT32_MAX, "STK-ADJ-MAX")],
        [_stock(X3, DC, "ADJUSTMENT", INT32_MIN, "STK-ADJ-MIN")],
        [_stock(X3, "LOC-UNKNOWN", "SNAPSHOT", 5, "STK-UNKNOWN-LOC")],
    ],
    "OrderPlaced": [
        # the most units a line may ask for, of a sku in stock: routed, reserved and packed
        [_placed(base_order([("1", X1, 100_000)]))],
        # many lines, each of a sku nobody knows
        [_placed(base_order([(str(i), f"SKU-NONE-{i}", 1) for i in range(2_000)]))],
        # a 100 KB order id, on several skus: every record it causes repeats it
        [_placed(base_order([("1", X1, 1), ("2", X2, 1)], order_id=FRESH_LONG_ORDER))],
        [
            _placed(base_order([("1", X1, 1)], ship_to=None)),  # SHIP without ship_to
            _placed(base_order([("1", X1, 1)], fulfillment_method="PICKUP")),  # no pickup store
            _placed(base_order([("1", X1, 1), ("1", X2, 1)])),  # duplicate line ids
        ],
        # the record's own Kafka time at its earliest (the stages date what it causes by it)
        [dataclasses.replace(_placed(base_order([("1", X1, 1)])), timestamp_ms=1)],
        [
            _placed(base_order([("1", X1, 1)], currency="JPY", order_total=Decimal("10.50"))),
            _placed(base_order([("1", X1, 1)], order_total=Decimal("9999999999999999.99"))),
            _placed(base_order([("1", X1, 1)]), key=b"T-1"),  # the key is another order's id
        ],
    ],
    "FulfillmentUpdate": [
        [_update("T-2", "T-4-1-1", "SHIPPED")],  # another order's shipment
        # a rejection with a 100 KB reason, then the same shipment shipped
        [
            _update("T-2", "T-2-1-1", "REJECTED", reason=LONG_TEXT),
            _update("T-2", "T-2-1-1", "SHIPPED"),
        ],
    ],
    "ReturnRequested": [
        [_return_request("T-1", [("SKU-OK-0", 4)])],  # more than the 3 delivered
        [_return_request("T-3", [("SKU-OK-0", 1)], return_id=LONG_TEXT)],
    ],
    "Rule": [
        [on(registry.RULES, "Rule", "rule_id", base_rule("!" * 4_000 + "true"))],
        [on(registry.RULES, "Rule", "rule_id", base_rule("(" * 3_000 + "true" + ")" * 3_000))],
        [on(registry.RULES, "Rule", "rule_id", base_rule(" || ".join(["false"] * 3_000)))],
    ],
}
"""Batches every run sends first, for each record type: the cases the guarantee names."""

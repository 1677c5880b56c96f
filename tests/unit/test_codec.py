"""The codec: both wire formats, round trips of every record, and every way to fail."""

import io
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro import schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import CONFLUENT_MAGIC, SINGLE_OBJECT_MAGIC, Codec, DecodeError
from schemas.common import MAX_ID_CHARS
from schemas.models import (
    TOP_LEVEL_MODELS,
    Address,
    FulfillmentKind,
    Message,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    StockEventKind,
)
from schemas.store import CONTRACT_RECORDS, SchemaStore, default_store
from tests.unit.factories import (
    FACTORIES,
    make_address,
    make_cancel,
    make_fulfillment_command,
    make_fulfillment_update,
    make_location,
    make_order,
    make_pickup_order,
    make_rule,
    make_stock_event,
)

SINGLE = Codec()
FILLED_VARIANTS = [
    make_location(daily_order_capacity=40, active=False, priority=5),
    make_stock_event(kind=StockEventKind.ADJUSTMENT, quantity=-3, reason="damaged"),
    make_pickup_order(tags=("vip", "gift")),
    make_order(ship_to=make_address(line2="Apt 4", lat=None, lon=None)),
    make_fulfillment_command(
        kind=FulfillmentKind.TRANSFER, destination_location_id="STORE-1", ship_to=None
    ),
    make_rule(actions=(), description=None, enabled=False, stop_processing=True),
]
RECORDS = [factory() for factory in FACTORIES.values()] + FILLED_VARIANTS
RECORD_IDS = [type(record).__name__ for record in RECORDS]


@pytest.fixture(scope="module")
def registry() -> Iterator[SchemaRegistryClient]:
    # The mock keeps its state in this one client: every codec of a test shares it.
    yield SchemaRegistryClient.new_client({"url": "mock://dom-test"})


@pytest.fixture(scope="module")
def confluent(registry: SchemaRegistryClient) -> Codec:
    return Codec(registry=registry)


def crc64_avro(data: bytes) -> int:
    """The spec's reference CRC-64-AVRO (Rabin) fingerprint, written out independently."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def single_object(name: str, datum: dict[str, Any], store: SchemaStore | None = None) -> bytes:
    """Bytes of a record written straight with fastavro, bypassing model validation."""
    store = store or default_store()
    body = io.BytesIO()
    schemaless_writer(body, store.reader_schema(name), datum)
    return SINGLE_OBJECT_MAGIC + store.fingerprint(name) + body.getvalue()


def test_every_contract_record_has_a_factory_and_model() -> None:
    assert set(FACTORIES) == set(TOP_LEVEL_MODELS) == set(CONTRACT_RECORDS)


@pytest.mark.parametrize("record", RECORDS, ids=RECORD_IDS)
def test_single_object_round_trip(record: Message) -> None:
    data = SINGLE.encode(record)

    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == default_store().fingerprint(record.avro_name)
    assert SINGLE.decode(data) == record


@pytest.mark.parametrize("record", RECORDS, ids=RECORD_IDS)
def test_confluent_round_trip(record: Message, registry: SchemaRegistryClient) -> None:
    writer = Codec(registry=registry)
    data = writer.encode(record)

    schema_id = int.from_bytes(data[1:5], "big")
    assert data[:1] == b"\x00"
    assert registry.get_schema(schema_id).schema_str is not None
    # A fresh codec has no cached ids: it must fetch the writer schema by id.
    assert Codec(registry=registry).decode(data) == record


def test_confluent_subject_is_the_record_full_name(registry: SchemaRegistryClient) -> None:
    writer = Codec(registry=registry)
    data = writer.encode(make_order())

    registered = registry.get_latest_version("dom.v1.OrderPlaced")
    assert registered.schema_id == int.from_bytes(data[1:5], "big")


def test_single_object_reader_reads_confluent_bytes(confluent: Codec, registry: Any) -> None:
    reader = Codec(registry=registry, write_format="single-object")
    order = make_order(lines=[("SKU-1", 2), ("SKU-2", 1)])

    assert reader.decode(confluent.encode(order)) == order
    assert reader.encode(order)[:2] == SINGLE_OBJECT_MAGIC


def test_confluent_reader_reads_single_object_bytes(confluent: Codec) -> None:
    order = make_order()

    assert confluent.encode(order)[:1] == CONFLUENT_MAGIC
    assert confluent.decode(SINGLE.encode(order)) == order


def test_confluent_bytes_without_a_registry_say_so(confluent: Codec) -> None:
    with pytest.raises(DecodeError, match="needs a schema registry"):
        SINGLE.decode(confluent.encode(make_order()))


def test_from_url_picks_the_format() -> None:
    assert Codec.from_url(None).encode(make_cancel())[:2] == SINGLE_OBJECT_MAGIC
    codec = Codec.from_url("mock://dom-from-url")
    data = codec.encode(make_cancel())
    assert data[:1] == CONFLUENT_MAGIC
    assert codec.decode(data) == make_cancel()


def test_fingerprint_is_crc64_avro_of_the_canonical_form_little_endian() -> None:
    from fastavro.schema import to_parsing_canonical_form

    store = default_store()
    for name in store.top_level:
        canonical = to_parsing_canonical_form(store.reader_schema(name)).encode()
        assert store.fingerprint(name) == crc64_avro(canonical).to_bytes(8, "little")
        assert store.writer(store.fingerprint(name)) == (name, store.reader_schema(name))


def test_decode_as_accepts_listed_types_and_rejects_others() -> None:
    data = SINGLE.encode(make_order())

    order = SINGLE.decode_as(data, OrderPlaced, OrderCancelled)
    assert isinstance(order, OrderPlaced) and order.order_id == "ORD-1"
    with pytest.raises(DecodeError) as caught:
        SINGLE.decode_as(data, OrderCancelled)
    assert caught.value.reason == "expected OrderCancelled, got OrderPlaced"


def test_encoding_a_nested_record_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Address is not a top-level record"):
        SINGLE.encode(make_address())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty value"),
        (b"\xc3\x01\x00\x01", "truncated single-object header"),
        (b"\x00\x00\x01", "truncated Confluent header"),
        (b'{"order_id": 1}', "unknown wire format: starts with 0x7b22"),
        (b"\xc3\x02" + bytes(20), "unknown wire format"),
        (b"\xc3\x01" + bytes(8) + b"\x02a", "unknown schema fingerprint 0x0000000000000000"),
    ],
    ids=["empty", "short-single", "short-confluent", "json", "bad-magic", "unknown-fp"],
)
def test_undecodable_headers(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        SINGLE.decode(data)
    assert caught.value.reason.startswith(reason)
    assert str(caught.value) == caught.value.reason


def test_unknown_schema_id(registry: SchemaRegistryClient) -> None:
    with pytest.raises(DecodeError, match="unknown schema id 99999"):
        Codec(registry=registry).decode(CONFLUENT_MAGIC + (99999).to_bytes(4, "big") + b"\x02")


def test_truncated_body() -> None:
    data = SINGLE.encode(make_order())

    for cut in (11, len(data) // 2, len(data) - 1):
        with pytest.raises(DecodeError, match="corrupt OrderPlaced body"):
            SINGLE.decode(data[:cut])


def test_trailing_bytes_are_corruption() -> None:
    with pytest.raises(DecodeError, match="1 bytes left after the record"):
        SINGLE.decode(SINGLE.encode(make_cancel()) + b"\x00")


def test_garbage_body() -> None:
    header = SINGLE.encode(make_order())[:10]

    with pytest.raises(DecodeError, match="corrupt OrderPlaced body"):
        SINGLE.decode(header + b"\xff" * 40)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=200), name=st.sampled_from(sorted(TOP_LEVEL_MODELS)))
def test_any_bytes_decode_or_raise_decode_error(body: bytes, name: str) -> None:
    data = SINGLE_OBJECT_MAGIC + default_store().fingerprint(name) + body
    try:
        decoded = SINGLE.decode(data)
    except DecodeError as exc:
        assert exc.reason
    else:
        assert decoded.avro_name == name


def test_invalid_record_names_the_field() -> None:
    datum = make_order().model_dump()
    datum["lines"][0]["quantity"] = 0
    datum["currency"] = "usd"

    with pytest.raises(DecodeError) as caught:
        SINGLE.decode(single_object("OrderPlaced", datum))
    assert caught.value.reason == (
        "invalid OrderPlaced: lines.0.quantity: Input should be greater than 0; "
        "currency: Value error, must be an ISO 4217 code in upper case, like 'USD'"
    )


def test_an_upstream_id_longer_than_an_id_may_be_is_invalid() -> None:
    """An id is repeated in every record and state it leads to: one of 100 KB made an order's
    state larger than a Kafka record, and the worker stopped. Ids the pipeline builds from
    upstream ones (a shipment id holds its order id) are not bounded."""
    datum = make_order().model_dump()
    datum["order_id"] = "x" * 100_000
    datum["lines"][0]["sku"] = "s" * (MAX_ID_CHARS + 1)

    with pytest.raises(DecodeError) as caught:
        SINGLE.decode(single_object("OrderPlaced", datum))
    assert caught.value.reason == (
        "invalid OrderPlaced: order_id: String should have at most 256 characters; "
        "lines.0.sku: String should have at most 256 characters"
    )
    at_most = make_order("o" * MAX_ID_CHARS, lines=[("s" * MAX_ID_CHARS, 1)], event_id="e")
    assert SINGLE.decode(SINGLE.encode(at_most)) == at_most
    update = make_fulfillment_update(at_most.order_id, shipment_id=f"{at_most.order_id}-1-1")
    assert SINGLE.decode(SINGLE.encode(update)) == update


def test_enum_members_survive_the_round_trip() -> None:
    decoded = SINGLE.decode_as(SINGLE.encode(make_stock_event()), type(make_stock_event()))

    assert decoded.kind is StockEventKind.SNAPSHOT


money = st.decimals(min_value=0, max_value=Decimal("9999999999999999.99"), places=2)
ids = st.text(min_size=1, max_size=20).filter(str.strip)
order_lines = st.lists(
    st.tuples(ids, st.integers(min_value=1, max_value=2**31 - 1), money),
    min_size=0,
    max_size=8,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    lines=order_lines,
    total=money,
    placed_at=st.datetimes(),
    ref=st.text(max_size=40),
    tags=st.lists(st.text(max_size=10), max_size=4),
    ship=st.booleans(),
)
def test_order_round_trip_property(
    lines: list[tuple[str, int, Decimal]],
    total: Decimal,
    placed_at: Any,
    ref: str,
    tags: list[str],
    ship: bool,
) -> None:
    order = make_order(
        lines=[
            OrderLine(line_id=str(i), sku=sku, quantity=qty, unit_price=price)
            for i, (sku, qty, price) in enumerate(lines)
        ],
        order_total=total,
        placed_at=placed_at,
        channel_order_ref=ref,
        tags=tags,
        ship_to=make_address() if ship else None,
    )
    confluent = Codec.from_url("mock://dom-property")

    assert SINGLE.decode(SINGLE.encode(order)) == order
    assert confluent.decode(confluent.encode(order)) == order


@settings(max_examples=100, deadline=None)
@given(
    lat=st.floats(min_value=-90, max_value=90) | st.none(),
    lon=st.floats(min_value=-180, max_value=180) | st.none(),
    line2=st.text(max_size=30) | st.none(),
)
def test_location_address_round_trip_property(
    lat: float | None, lon: float | None, line2: str | None
) -> None:
    address = Address(**{**make_address().model_dump(), "lat": lat, "lon": lon, "line2": line2})
    location = make_location(address=address)

    assert SINGLE.decode(SINGLE.encode(location)) == location


class UnitTestPing(Message):
    """An internal record that only this test module defines."""

    avro_name: ClassVar[str] = "dom.v1.UnitTestPing"

    ping_id: str
    at: datetime


def store_with_internal_records(tmp_path: Path) -> SchemaStore:
    avro = tmp_path / "avro"
    shutil.copytree(default_store().avro_dir, avro)
    for name in ("UnitTestPing", "UnitTestOrphan"):
        schema = {
            "type": "record",
            "name": name,
            "namespace": "dom.v1",
            "doc": "A record for tests.",
            "fields": [
                {"name": "ping_id", "type": "string"},
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            ],
        }
        (avro / f"{name}.avsc").write_text(json.dumps(schema))
    return SchemaStore(avro)


def test_internal_records_with_a_model_round_trip(tmp_path: Path) -> None:
    store = store_with_internal_records(tmp_path)
    ping = UnitTestPing(ping_id="p-1", at=datetime(2024, 1, 1, tzinfo=UTC))

    assert "dom.v1.UnitTestPing" in store.top_level
    assert Codec(store).decode(Codec(store).encode(ping)) == ping
    with pytest.raises(TypeError, match="UnitTestPing is not a top-level record"):
        SINGLE.encode(ping)


def test_a_record_without_a_model_is_a_decode_error(tmp_path: Path) -> None:
    store = store_with_internal_records(tmp_path)
    data = single_object(
        "UnitTestOrphan", {"ping_id": "p-1", "at": datetime(2024, 1, 1, tzinfo=UTC)}, store
    )

    with pytest.raises(DecodeError, match=r"no model for dom\.v1\.UnitTestOrphan"):
        Codec(store).decode(data)

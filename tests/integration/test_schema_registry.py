"""The Confluent wire-format path against a real schema registry (Apicurio, Confluent API).

With ``DOM_SCHEMA_REGISTRY_URL`` set, values are written as ``00`` + 4-byte schema id + Avro body,
the schema registered under its record's full name (so several record types share a topic).
Every reader accepts both wire formats; one without a registry cannot resolve a schema id and
says so.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from config.settings import Settings
from connectors.producer import ContractProducer
from dom.admin import create_topics
from dom.registry_local import LocalSchemaRegistry
from schemas.codec import CONFLUENT_MAGIC, SINGLE_OBJECT_MAGIC, Codec, DecodeError
from schemas.models import Message, OrderCancelled, OrderPlaced
from schemas.topics import ORDERS, STOCK
from tests.conftest import free_port
from tests.integration.kafka_io import consume
from tests.unit.factories import make_cancel, make_order, make_stock_event


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSchemaRegistry]:
    """One real registry for the module (in-memory storage: it starts empty)."""
    local = LocalSchemaRegistry(
        Settings(), port=free_port(), directory=tmp_path_factory.mktemp("registry")
    )
    try:
        local.start()
        yield local
    finally:
        local.stop()


def _subjects(registry: LocalSchemaRegistry) -> list[str]:
    with urllib.request.urlopen(registry.url + "/subjects", timeout=10) as response:
        assert response.status == 200
        return list(json.loads(response.read()))


def _schema_id(value: bytes) -> int:
    assert value[:1] == CONFLUENT_MAGIC, f"not Confluent framing: {value[:5].hex()}"
    return int.from_bytes(value[1:5], "big")


def _full_name(schema_str: str) -> str:
    schema = json.loads(schema_str)
    name = schema["name"]
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def test_confluent_codec_writes_a_schema_id_the_registry_knows(
    registry: LocalSchemaRegistry,
) -> None:
    codec = Codec.from_url(registry.url)
    order = make_order("ORD-REG-1", lines=[("SKU-1", 2), ("SKU-9", 1)])

    value = codec.encode(order)

    assert codec.write_format == "confluent"
    assert value[0] == 0x00
    schema_id = _schema_id(value)
    client = SchemaRegistryClient({"url": registry.url})
    registered = client.get_schema(schema_id)
    assert registered.schema_type in (None, "AVRO")
    assert _full_name(registered.schema_str or "") == "dom.v1.OrderPlaced"
    latest = client.get_latest_version("dom.v1.OrderPlaced")
    assert latest.schema_id == schema_id
    assert "dom.v1.OrderPlaced" in _subjects(registry)
    # A reader that has never seen the id resolves it through the registry.
    assert Codec.from_url(registry.url).decode(value) == order


def test_confluent_values_through_the_broker_need_the_registry_to_be_read(
    registry: LocalSchemaRegistry, make_settings: Callable[..., Settings]
) -> None:
    confluent_settings = make_settings(schema_registry_url=registry.url)
    plain_settings = make_settings()  # same cluster and prefix, no registry: single-object
    create_topics(plain_settings, [ORDERS])
    topic = plain_settings.topic(ORDERS.name)
    confluent_orders = [make_order(f"ORD-CF-{i}") for i in range(3)]
    single_object_orders = [make_order(f"ORD-SO-{i}") for i in range(3)]

    with ContractProducer(confluent_settings) as producer:
        producer.send_all(confluent_orders)
    assert (producer.report.delivered, producer.report.failed) == (3, 0)
    with ContractProducer(plain_settings) as producer:
        producer.send_all(single_object_orders)
    assert (producer.report.delivered, producer.report.failed) == (3, 0)
    received = consume(plain_settings, topic, expected=6)
    assert len(received) == 6
    values = {key.decode(): value for key, value, _headers in received if key and value}
    sent = {o.order_id: o for o in [*confluent_orders, *single_object_orders]}
    assert set(values) == set(sent)
    for order in confluent_orders:
        assert values[order.order_id][:1] == CONFLUENT_MAGIC
    for order in single_object_orders:
        assert values[order.order_id][:2] == SINGLE_OBJECT_MAGIC

    # A reader with the registry reads both formats, whatever it writes itself.
    reader = Codec.from_url(registry.url, write_format="single-object")
    assert reader.encode(confluent_orders[0])[:2] == SINGLE_OBJECT_MAGIC
    assert {order_id: reader.decode(value) for order_id, value in values.items()} == sent

    # A reader without a registry still reads single-object values ...
    no_registry = Codec()
    for order in single_object_orders:
        assert no_registry.decode(values[order.order_id]) == order
    # ... and says clearly why it cannot read a Confluent one.
    for order in confluent_orders:
        value = values[order.order_id]
        with pytest.raises(DecodeError) as caught:
            no_registry.decode(value)
        assert caught.value.reason == (
            f"schema id {_schema_id(value)} needs a schema registry; none configured"
        )


def test_unknown_schema_id_is_a_decode_error(registry: LocalSchemaRegistry) -> None:
    body = Codec.from_url(registry.url).encode(make_order("ORD-UNKNOWN"))[5:]
    unknown_id = 987_654

    with pytest.raises(DecodeError) as caught:
        Codec.from_url(registry.url).decode(CONFLUENT_MAGIC + unknown_id.to_bytes(4, "big") + body)

    assert caught.value.reason == f"unknown schema id {unknown_id}"


def test_several_record_types_share_one_topic_in_confluent_format(
    registry: LocalSchemaRegistry, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(schema_registry_url=registry.url)
    create_topics(settings, [ORDERS])
    topic = settings.topic(ORDERS.name)
    events: list[Message] = []
    for i in range(4):
        events.append(make_order(f"ORD-MIX-{i}"))
        if i % 2 == 0:
            events.append(make_cancel(f"ORD-MIX-{i}"))

    with ContractProducer(settings) as producer:
        producer.send_all(events)
    assert (producer.report.delivered, producer.report.failed) == (len(events), 0)
    received = consume(settings, topic, expected=len(events))
    assert len(received) == len(events)

    reader = Codec.from_url(registry.url)
    decoded = [(_schema_id(value or b""), reader.decode(value or b"")) for _, value, _ in received]
    assert sorted(m.model_dump_json() for _, m in decoded) == sorted(
        e.model_dump_json() for e in events
    )
    ids_by_type: dict[type[Message], set[int]] = {}
    for schema_id, model in decoded:
        ids_by_type.setdefault(type(model), set()).add(schema_id)
    assert set(ids_by_type) == {OrderPlaced, OrderCancelled}
    (placed_id,) = ids_by_type[OrderPlaced]
    (cancelled_id,) = ids_by_type[OrderCancelled]
    assert placed_id != cancelled_id

    # Record-name subject strategy: one subject per record type, not one per topic.
    subjects = _subjects(registry)
    assert {"dom.v1.OrderPlaced", "dom.v1.OrderCancelled"} <= set(subjects)
    assert not any(s.startswith(topic) for s in subjects)
    client = SchemaRegistryClient({"url": registry.url})
    assert _full_name(client.get_schema(placed_id).schema_str or "") == "dom.v1.OrderPlaced"
    assert _full_name(client.get_schema(cancelled_id).schema_str or "") == "dom.v1.OrderCancelled"


def test_a_packed_bulk_load_of_stock_is_registered_and_read_back(
    registry: LocalSchemaRegistry, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(schema_registry_url=registry.url)
    create_topics(settings, [STOCK])
    counts = [make_stock_event(f"SKU-{n}", "DC-1", n) for n in range(20)]

    with ContractProducer(settings) as producer:
        producer.send_bulk(counts)
    assert (producer.report.delivered, producer.report.failed) == (20, 0)

    received = consume(settings, settings.topic(STOCK.name), expected=settings.topic_partitions)
    reader = Codec.from_url(registry.url)
    carried = []
    for _key, value, _headers in received:
        assert value is not None and value[:1] == CONFLUENT_MAGIC  # the envelope, registered
        for key, record in reader.unpack(value) or []:
            assert record[:1] == CONFLUENT_MAGIC  # and each record in it
            carried.append((key, reader.decode(record)))
    assert sorted(carried, key=str) == sorted(((c.sku.encode(), c) for c in counts), key=str)
    assert {"dom.v1.RecordBatch", "dom.v1.StockEvent"} <= set(_subjects(registry))

"""Schema files, their history, and the rules that keep old data readable."""

import copy
import io
import json
import shutil
from pathlib import Path
from typing import Any, cast

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import parse_schema
from fastavro.utils import generate_many

from schemas.codec import SINGLE_OBJECT_MAGIC, Codec
from schemas.store import (
    AVRO_DIR,
    CONTRACT_RECORDS,
    SchemaStore,
    check_backward_compatible,
    default_store,
    freeze_current,
    main,
    schema_fingerprint,
)
from tests.unit.factories import FACTORIES, make_product

# The records and fields CONTRACT.md names; a schema may have more, never fewer.
CONTRACT_FIELDS = {
    "Address": "name line1 line2 city region postal_code country lat lon",
    "Location": "location_id name kind address capabilities priority daily_order_capacity "
    "active updated_at",
    "Product": "sku name category unit_price weight_grams length_mm width_mm height_mm fragile "
    "hazmat tags",
    "StockEvent": "event_id sku location_id kind quantity reason occurred_at",
    "OrderPlaced": "event_id order_id channel channel_order_ref placed_at customer "
    "fulfillment_method pickup_location_id ship_to lines currency order_total service_level tags",
    "Customer": "customer_id loyalty_tier email",
    "OrderLine": "line_id sku quantity unit_price",
    "OrderCancelled": "event_id order_id reason cancelled_at",
    "FulfillmentUpdate": "event_id order_id shipment_id location_id status reason "
    "tracking_number occurred_at",
    "ReturnRequested": "event_id return_id order_id lines ship_from requested_at",
    "ReturnLine": "sku quantity reason",
    "ReturnReceived": "event_id return_id order_id location_id lines received_at",
    "ReceivedLine": "sku quantity condition",
    "Rule": "rule_id version stage priority condition actions enabled stop_processing "
    "description updated_by updated_at",
    "RuleAction": "type params",
    "OrderStatusChanged": "event_id order_id status reason shipments rules_fired at",
    "Shipment": "shipment_id location_id lines",
    "ShipmentLine": "line_id sku quantity",
    "FulfillmentCommand": "command_id order_id shipment_id location_id kind lines ship_to "
    "destination_location_id service_level rules_fired created_at",
    "PackagingCommand": "command_id order_id shipment_id location_id packaging cartons inserts "
    "rules_fired created_at",
    "Carton": "box_type skus",
    "Insert": "kind value",
    "ReturnLabelCommand": "command_id return_id rma_number order_id return_location_id "
    "ship_from ship_to label_format label created_at",
    "Availability": "sku locations total_available updated_at",
    "LocationAvailability": "location_id on_hand reserved safety_stock available",
}
MONEY = {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}
TIME = {"type": "long", "logicalType": "timestamp-millis"}


def parse(schema: Any) -> dict[str, Any]:
    """A self-contained record schema parsed by fastavro."""
    return cast(dict[str, Any], parse_schema(schema, {}))


def avsc_files() -> list[Path]:
    return sorted(AVRO_DIR.glob("*.avsc"))


def load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((AVRO_DIR / f"{name}.avsc").read_text())
    return schema


def field_of(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(field for field in schema["fields"] if field["name"] == name)


def named(schema: Any, name: str) -> dict[str, Any]:
    """The definition of named type `name` (full name) inside a self-contained schema."""
    if isinstance(schema, list):
        found = [named(branch, name) for branch in schema]
    elif isinstance(schema, dict):
        if schema.get("name") == name:
            return schema
        inner = [field["type"] for field in schema.get("fields", ())]
        inner += [schema[key] for key in ("items", "values") if key in schema]
        found = [named(item, name) for item in inner]
    else:
        found = []
    return next((item for item in found if item), {})


# -- the .avsc files -----------------------------------------------------------------------


@pytest.mark.parametrize("path", avsc_files(), ids=lambda p: p.stem)
def test_every_file_is_one_documented_type_of_namespace_dom_v1(path: Path) -> None:
    schema = json.loads(path.read_text())

    assert schema["namespace"] == "dom.v1"
    assert schema["name"] == path.stem
    assert schema["doc"].strip()


def test_every_contract_record_has_its_fields() -> None:
    for record, fields in CONTRACT_FIELDS.items():
        schema = load(record)
        assert schema["type"] == "record"
        present = {field["name"] for field in schema["fields"]}
        assert set(fields.split()) <= present, record


def test_field_conventions() -> None:
    for path in avsc_files():
        schema = json.loads(path.read_text())
        for field in schema.get("fields", ()):
            kind = field["type"]
            where = f"{path.stem}.{field['name']}"
            if isinstance(kind, list):
                assert kind[0] == "null" and field["default"] is None, where
            if isinstance(kind, dict) and kind["type"] == "array":
                assert field["default"] == [], where
            if field["name"] in ("unit_price", "order_total"):
                assert kind == MONEY, where
            if field["name"].endswith("_at") or field["name"] == "at":
                assert kind == TIME, where
    assert field_of(load("Location"), "priority")["default"] == 100
    assert field_of(load("Location"), "active")["default"] is True
    assert field_of(load("RuleAction"), "params")["type"] == {"type": "map", "values": "string"}


def test_top_level_records_are_those_no_other_type_uses() -> None:
    schemas = {path.stem: json.loads(path.read_text()) for path in avsc_files()}
    text = json.dumps(list(schemas.values()))
    unused = {
        n for n, s in schemas.items() if s["type"] == "record" and f'"dom.v1.{n}"' not in text
    }
    top_level = default_store().top_level

    assert set(top_level) == {f"dom.v1.{name}" for name in unused}
    assert top_level[: len(CONTRACT_RECORDS)] == CONTRACT_RECORDS


# -- history ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONTRACT_RECORDS)
def test_current_schema_is_frozen_in_history(name: str) -> None:
    store = default_store()
    frozen = [schema_fingerprint(schema) for _, schema in store.history(name)]

    assert store.fingerprint(name) in frozen, "run: python -m schemas.store freeze"
    assert store.is_frozen(name)


@pytest.mark.parametrize("name", CONTRACT_RECORDS)
def test_history_files_are_self_contained(name: str) -> None:
    for _, schema in default_store().history(name):
        parse_schema(schema, {})  # no named type from another file needed


@pytest.mark.parametrize("name", CONTRACT_RECORDS)
def test_every_history_version_is_readable_by_the_current_schema(name: str) -> None:
    store = default_store()
    reader = store.reader_schema(name)
    for version, schema in store.history(name):
        writer = parse(schema)
        assert check_backward_compatible(reader, writer) == [], f"v{version}"
        for datum in generate_many(writer, 20):
            body = io.BytesIO()
            schemaless_writer(body, writer, datum)
            body.seek(0)
            schemaless_reader(body, writer, reader)


@pytest.mark.parametrize("name", CONTRACT_RECORDS)
def test_codec_decodes_every_history_version_into_the_current_model(name: str) -> None:
    record = FACTORIES[name]()
    for _, schema in default_store().history(name):
        writer = parse(schema)
        body = io.BytesIO()
        schemaless_writer(body, writer, record.model_dump())
        data = SINGLE_OBJECT_MAGIC + schema_fingerprint(writer) + body.getvalue()

        decoded = Codec().decode(data)
        written = {field["name"] for field in writer["fields"]}
        for field, info in type(record).model_fields.items():
            expected = getattr(record, field) if field in written else info.get_default()
            assert getattr(decoded, field) == expected


def older_product_store(tmp_path: Path) -> tuple[SchemaStore, dict[str, Any]]:
    """A store whose Product history has an older v1 without `tags` and `hazmat`."""
    avro = tmp_path / "avro"
    shutil.copytree(AVRO_DIR, avro)
    old = default_store().standalone("Product")
    old["fields"] = [f for f in old["fields"] if f["name"] not in ("tags", "hazmat")]
    current = (avro / "history" / "Product.v1.avsc").read_text()
    (avro / "history" / "Product.v2.avsc").write_text(current)
    (avro / "history" / "Product.v1.avsc").write_text(json.dumps(old))
    return SchemaStore(avro), old


def test_an_older_writer_decodes_into_the_current_model(tmp_path: Path) -> None:
    store, old = older_product_store(tmp_path)
    writer = parse(old)
    body = io.BytesIO()
    schemaless_writer(body, writer, make_product(tags=("x",), hazmat=True).model_dump())

    decoded = Codec(store).decode(
        SINGLE_OBJECT_MAGIC + schema_fingerprint(writer) + body.getvalue()
    )
    assert decoded == make_product()  # tags and hazmat take the reader's defaults


def test_an_older_writer_registered_in_the_registry_decodes(tmp_path: Path) -> None:
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    _, old = older_product_store(tmp_path)
    registry = SchemaRegistryClient.new_client({"url": "mock://dom-evolution"})
    schema_id = registry.register_schema("dom.v1.Product", Schema(json.dumps(old), "AVRO"))
    body = io.BytesIO()
    schemaless_writer(body, parse_schema(old, {}), make_product().model_dump())

    data = b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()
    # The repo's store does not know this version: it is resolved from the registry alone.
    assert Codec(registry=registry).decode(data) == make_product()


# -- the compatibility check -----------------------------------------------------------------


def order_schema() -> dict[str, Any]:
    return default_store().standalone("OrderPlaced")


def test_new_field_without_default_is_incompatible() -> None:
    reader = order_schema()
    reader["fields"].append({"name": "loyalty_points", "type": "int"})

    assert check_backward_compatible(reader, order_schema()) == [
        "OrderPlaced.loyalty_points: the writer has no such field and the reader's field "
        "has no default"
    ]
    with pytest.raises(SchemaResolutionError):
        read_with(reader, order_schema())


def test_removed_enum_symbol_is_incompatible() -> None:
    reader = order_schema()
    channel = named(reader, "dom.v1.Channel")
    channel["symbols"].remove("POS")

    problems = check_backward_compatible(reader, order_schema())
    assert problems == [
        "OrderPlaced.channel: the reader's enum dom.v1.Channel lacks the writer's symbols "
        "['POS'] and has no default symbol"
    ]
    channel["default"] = "WEB"
    assert check_backward_compatible(reader, order_schema()) == []


def test_type_changes_are_incompatible() -> None:
    reader = order_schema()
    line = named(reader, "dom.v1.OrderLine")
    field_of(line, "quantity")["type"] = "string"
    field_of(line, "unit_price")["type"] = {**MONEY, "scale": 3}
    pickup = field_of(reader, "pickup_location_id")
    pickup["type"] = "string"
    del pickup["default"]
    field_of(reader, "ship_to")["type"] = ["null", "string"]

    assert check_backward_compatible(reader, order_schema()) == [
        "OrderPlaced.pickup_location_id: the writer's null cannot be read as string",
        "OrderPlaced.ship_to: the writer's dom.v1.Address matches no branch of the reader's "
        "union [null, string]",
        "OrderPlaced.lines[].quantity: the writer's int cannot be read as string",
        "OrderPlaced.lines[].unit_price: the writer's bytes/decimal(18,2) would be read as "
        "bytes/decimal(18,3), which changes its meaning",
    ]
    with pytest.raises(SchemaResolutionError):
        read_with(reader, order_schema())


def test_compatible_changes_are_accepted_and_readable() -> None:
    reader = order_schema()
    reader["fields"].append({"name": "gift_message", "type": ["null", "string"], "default": None})
    reader["fields"] = [f for f in reader["fields"] if f["name"] != "tags"]
    field_of(named(reader, "dom.v1.OrderLine"), "quantity")["type"] = "long"
    named(reader, "dom.v1.Channel")["symbols"].append("KIOSK")
    renamed = field_of(reader, "channel_order_ref")
    renamed.update(name="external_ref", aliases=["channel_order_ref"])

    assert check_backward_compatible(reader, order_schema()) == []
    decoded = read_with(reader, order_schema())
    assert decoded["gift_message"] is None
    assert "tags" not in decoded
    assert decoded["external_ref"] == "WEB-ORD-1"


def read_with(reader: dict[str, Any], writer: dict[str, Any]) -> dict[str, Any]:
    """Write an order with `writer`, read it with `reader`, as fastavro resolves it."""
    parsed_writer = parse(writer)
    body = io.BytesIO()
    schemaless_writer(body, parsed_writer, FACTORIES["dom.v1.OrderPlaced"]().model_dump())
    body.seek(0)
    return cast(dict[str, Any], schemaless_reader(body, parsed_writer, parse(reader)))


# -- freezing --------------------------------------------------------------------------------


def copy_avro(tmp_path: Path) -> Path:
    avro = tmp_path / "avro"
    shutil.copytree(AVRO_DIR, avro)
    return avro


def test_freeze_writes_a_new_version_only_when_the_schema_changed(tmp_path: Path) -> None:
    avro = copy_avro(tmp_path)
    assert freeze_current("Product", avro) is None

    product = json.loads((avro / "Product.avsc").read_text())
    product["fields"].append({"name": "brand", "type": ["null", "string"], "default": None})
    (avro / "Product.avsc").write_text(json.dumps(product))
    written = freeze_current("Product", avro)

    assert written == avro / "history" / "Product.v2.avsc"
    frozen = json.loads(written.read_text())
    assert field_of(frozen, "brand")["default"] is None
    assert [v for v, _ in SchemaStore(avro).history("Product")] == [1, 2]
    assert freeze_current("dom.v1.Product", avro) is None


def test_freeze_refuses_an_incompatible_change(tmp_path: Path) -> None:
    avro = copy_avro(tmp_path)
    product = json.loads((avro / "Product.avsc").read_text())
    product["fields"].append({"name": "brand", "type": "string"})
    (avro / "Product.avsc").write_text(json.dumps(product))

    with pytest.raises(ValueError, match=r"v1: Product\.brand: the writer has no such field"):
        freeze_current("Product", avro)
    assert not (avro / "history" / "Product.v2.avsc").exists()


def test_a_named_type_changed_in_its_own_file_reaches_every_record(tmp_path: Path) -> None:
    avro = copy_avro(tmp_path)
    address = json.loads((avro / "Address.avsc").read_text())
    address["fields"].append({"name": "phone", "type": ["null", "string"], "default": None})
    (avro / "Address.avsc").write_text(json.dumps(address))
    store = SchemaStore(avro)

    for name in ("Location", "OrderPlaced", "ReturnLabelCommand"):
        assert store.fingerprint(name) != default_store().fingerprint(name)
        assert store.incompatibilities(name) == []
    assert store.fingerprint("Product") == default_store().fingerprint("Product")
    assert copy.deepcopy(store.standalone("Product")) == default_store().standalone("Product")


def test_check_command_reports_unfrozen_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    avro = copy_avro(tmp_path)
    main(["freeze"], avro)  # internal records not frozen in the repo yet, if any
    assert main(["check"], avro) == 0

    product = json.loads((avro / "Product.avsc").read_text())
    product["fields"].append({"name": "brand", "type": ["null", "string"], "default": None})
    (avro / "Product.avsc").write_text(json.dumps(product))
    assert main(["check"], avro) == 1
    assert "dom.v1.Product: not frozen" in capsys.readouterr().err
    assert main(["freeze"], avro) == 0
    assert main(["check"], avro) == 0
    assert main(["bogus"], avro) == 2

    product["fields"].append({"name": "origin", "type": "string"})
    (avro / "Product.avsc").write_text(json.dumps(product))
    assert main(["freeze"], avro) == 1
    assert "Product.origin: the writer has no such field" in capsys.readouterr().err

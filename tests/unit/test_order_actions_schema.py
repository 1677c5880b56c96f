"""The contract's additions for order actions and holds, and how old and new data mix.

Every added field is optional with a default: a reader of the first version skips them, and
the current reader fills them in for data written before them. A CANCELLED fulfillment update
is the one thing a first-version reader cannot read (its enum has no such symbol and no
default), so only pipelines of this version should be sent one.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import parse_schema

from schemas.codec import Codec
from schemas.models import (
    ActionResult,
    FulfillmentAction,
    FulfillmentStatus,
    OrderHold,
    OrderHoldKind,
    ShipmentLine,
)
from schemas.store import default_store
from schemas.topics import ORDER_ACTIONS, topic_for
from tests.unit.factories import (
    make_fulfillment_command,
    make_fulfillment_update,
    make_order_action,
    make_status_changed,
)

NEW_FIELDS = {
    "OrderStatusChanged": {"holds", "backordered", "action_id", "action_result"},
    "FulfillmentCommand": {"action"},
    "OrderAction": {
        "action_id",
        "order_id",
        "kind",
        "hold_id",
        "lines",
        "ship_to",
        "shipment_id",
        "to_location_id",
        "reason",
        "requested_by",
        "requested_at",
    },
}


def first_version(name: str) -> dict[str, Any]:
    version, schema = default_store().history(name)[0]
    assert version == 1
    return dict(parse_schema(schema, {}))


def write(schema: dict[str, Any], datum: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    schemaless_writer(body, schema, datum)
    return body.getvalue()


def read(data: bytes, writer: dict[str, Any], reader: dict[str, Any]) -> dict[str, Any]:
    return dict(schemaless_reader(io.BytesIO(data), writer, reader))  # type: ignore[arg-type]


def test_the_contract_names_the_new_fields_and_the_topic() -> None:
    store = default_store()
    for name, fields in NEW_FIELDS.items():
        present = {f["name"] for f in store.reader_schema(name)["fields"]}
        assert fields <= present, name
    assert topic_for("dom.v1.OrderAction") is ORDER_ACTIONS
    assert (ORDER_ACTIONS.name, ORDER_ACTIONS.key) == ("dom.order-actions.v1", "order_id")


def held_status() -> Any:
    return make_status_changed(
        status="ON_HOLD",
        holds=(
            OrderHold(
                hold_id="ORD-1-H1",
                kind=OrderHoldKind.RULE,
                reason="needs a review",
                rule_id="hold-very-large-orders",
            ),
        ),
        backordered=(ShipmentLine(line_id="L1", sku="SKU-1", quantity=2),),
        action_id="A-1",
        action_result=ActionResult.REFUSED,
    )


def test_a_first_version_reader_reads_the_new_records() -> None:
    store = default_store()
    status = held_status()
    cancel = make_fulfillment_command(action=FulfillmentAction.CANCEL)
    for record in (status, cancel):
        name = record.avro_name
        current = store.reader_schema(name)
        old = first_version(name)

        got = read(write(current, record.model_dump()), current, old)

        assert set(got) == {f["name"] for f in old["fields"]}
        assert got["order_id"] == record.order_id


def test_the_current_reader_fills_in_the_new_fields_of_old_records() -> None:
    store = default_store()
    for record, defaults in (
        (
            make_status_changed(),
            {"holds": [], "backordered": [], "action_id": None, "action_result": None},
        ),
        (make_fulfillment_command(), {"action": "FULFIL"}),
    ):
        old = first_version(record.avro_name)
        datum = {k: v for k, v in record.model_dump().items() if k not in defaults}

        got = read(write(old, datum), old, store.reader_schema(record.avro_name))

        assert {k: got[k] for k in defaults} == defaults


def test_new_records_round_trip_through_the_codec() -> None:
    codec = Codec()
    for record in (
        held_status(),
        make_fulfillment_command(action=FulfillmentAction.CANCEL),
        make_fulfillment_update(status=FulfillmentStatus.CANCELLED),
        make_order_action(hold_id="ORD-1-H1"),
    ):
        assert codec.decode(codec.encode(record)) == record


def test_a_first_version_reader_cannot_read_a_cancelled_update_but_reads_the_others() -> None:
    store = default_store()
    current = store.reader_schema("FulfillmentUpdate")
    old = first_version("FulfillmentUpdate")
    shipped = make_fulfillment_update(status=FulfillmentStatus.SHIPPED).model_dump()
    cancelled = make_fulfillment_update(status=FulfillmentStatus.CANCELLED).model_dump()

    assert read(write(current, shipped), current, old)["status"] == "SHIPPED"
    with pytest.raises(SchemaResolutionError):
        read(write(current, cancelled), current, old)

"""Inputs that are valid Avro but cannot be used: garbage master records are dead-lettered, and
orders whose own figures disagree are refused with a reason, while the pipeline goes on."""

from __future__ import annotations

from decimal import Decimal

from config.settings import Settings
from connectors.producer import ContractProducer
from schemas.models import OrderStatusChanged
from tests.e2e.harness import Pipeline
from tests.unit.factories import (
    make_line,
    make_location,
    make_order,
    make_product,
    make_stock_event,
)


def _outcomes(pipeline: Pipeline, count: int) -> dict[str, OrderStatusChanged]:
    statuses = pipeline.read(
        "dom.order-status.v1",
        lambda r: len([s for s in r if s.status != "RECEIVED"]) >= count,
    )
    return {s.order_id: s for s in statuses if s.status != "RECEIVED"}


def test_garbage_masters_are_dead_lettered_and_bad_orders_refused(
    pipeline: Pipeline, settings: Settings
) -> None:
    pipeline.produce(
        [
            make_location("DC-EAST"),
            make_product("SKU-1"),
            make_stock_event(sku="SKU-1", location_id="DC-EAST", quantity=100),
        ]
    )
    pipeline.availability_where("SKU-1", lambda x: x["DC-EAST"].available == 100)
    with ContractProducer(settings) as raw:
        raw.send_raw("dom.locations.v1", b"DC-JUNK", b"not a location")
        raw.send_raw("dom.products.v1", b"SKU-JUNK", b"\xc3\x01garbage")
        raw.send_raw("dom.products.v1", b"SKU-2", pipeline.codec.encode(make_product("SKU-3")))

    euro = make_order("ORD-EUR", currency="EUR").model_copy(
        update={"order_total": Decimal("99999.00")}
    )
    huge = make_order("ORD-HUGE").model_copy(
        update={"lines": (make_line("1", "SKU-1", 10**9),), "order_total": Decimal(0)}
    )
    pipeline.produce([euro, huge, make_order("ORD-OK", lines=[("SKU-1", 2)])])

    outcomes = _outcomes(pipeline, 3)
    assert outcomes["ORD-OK"].status == "ALLOCATED"
    assert outcomes["ORD-EUR"].status == "REJECTED"
    assert "above what its lines are worth" in outcomes["ORD-EUR"].reason
    assert outcomes["ORD-HUGE"].status == "REJECTED"
    assert "asks for 1000000000 units" in outcomes["ORD-HUGE"].reason
    # nothing was reserved for the refused orders: only ORD-OK's two units
    stock = pipeline.availability_where("SKU-1", lambda x: x["DC-EAST"].reserved == 2)
    assert stock["DC-EAST"].available == 98

    letters = pipeline.read_raw("dom.dlq.v1", expected=3)
    by_key = {m.key(): dict(m.headers()) for m in letters}
    assert set(by_key) == {b"DC-JUNK", b"SKU-JUNK", b"SKU-2"}, by_key
    assert all(h["dom.stage"] == b"masters" for h in by_key.values())
    assert b"unknown wire format" in by_key[b"DC-JUNK"]["dom.error"]
    assert by_key[b"SKU-2"]["dom.error"] == b"key must be the sku 'SKU-3'"

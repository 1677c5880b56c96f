"""One order through the whole chain on the real broker: placed -> routed -> commands."""

from __future__ import annotations

import json
import urllib.request

from config.settings import Settings
from connectors.producer import ContractProducer
from schemas.models import FulfillmentCommand, OrderStatusChanged, PackagingCommand
from tests.e2e.harness import Pipeline
from tests.e2e.world import one_dc
from tests.unit.factories import (
    make_cancel,
    make_order,
)


def test_order_is_allocated_with_commands(pipeline: Pipeline, settings: Settings) -> None:
    one_dc(pipeline, {"SKU-1": 10})
    with ContractProducer(settings) as raw:  # garbage first: the stage must keep going
        raw.send_raw("dom.orders.v1", b"ORD-X", b"not avro at all")
    pipeline.produce([make_order(order_id="ORD-1", lines=[("SKU-1", 2)])])
    statuses = pipeline.read("dom.order-status.v1", lambda r: len(r) >= 2)
    assert [s.status for s in statuses if isinstance(s, OrderStatusChanged)] == [
        "RECEIVED",
        "ALLOCATED",
    ], pipeline.workers["w1"].log_tail()
    commands = pipeline.read("dom.fulfillment.commands.v1", lambda r: len(r) >= 1)
    assert isinstance(commands[0], FulfillmentCommand)
    assert commands[0].location_id == "DC-EAST"
    packs = pipeline.read("dom.packaging.commands.v1", lambda r: len(r) >= 1)
    assert isinstance(packs[0], PackagingCommand)
    with urllib.request.urlopen(pipeline.url("w1", "/orders/ORD-1/")) as response:
        body = json.loads(response.read())
    assert body["status"] == "ALLOCATED" and body["shipments"][0]["location_id"] == "DC-EAST"
    with urllib.request.urlopen(pipeline.url("w1", "/inventory/SKU-1/")) as response:
        stock = json.loads(response.read())
    assert stock["locations"][0]["reserved"] == 2

    [letter] = pipeline.read_raw("dom.dlq.v1", expected=1)
    headers = dict(letter.headers())
    assert letter.key() == b"ORD-X" and letter.value() == b"not avro at all"
    assert headers["dom.stage"] == b"orders" and b"unknown wire format" in headers["dom.error"]
    assert headers["dom.source.topic"] == settings.topic("dom.orders.v1").encode()

    pipeline.produce([make_cancel("ORD-1")])
    statuses = pipeline.read("dom.order-status.v1", lambda r: len(r) >= 3)
    assert statuses[-1].status == "CANCELLED"
    released = pipeline.read(
        "dom.inventory.availability.v1",
        lambda r: any(a.locations[0].reserved == 0 and a.locations[0].on_hand == 10 for a in r[1:]),
    )
    assert released[-1].locations[0].available == 10

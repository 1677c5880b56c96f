"""A return end to end through topics: an order ships, the customer asks to send part of it
back, gets a printable label to the nearest returns location, and what arrives there in
sellable condition is back on hand (the damaged unit is not)."""

from __future__ import annotations

from collections.abc import Callable

import tests.unit.test_returns as zpl  # the module: its label parser, not its tests
from schemas.enums import ItemCondition
from schemas.models import LocationAvailability, ReturnLabelCommand, StockEvent
from streams.core.returns.returns import rma_number
from tests.e2e.harness import Pipeline
from tests.unit.factories import (
    make_address,
    make_fulfillment_update,
    make_location,
    make_order,
    make_product,
    make_received_line,
    make_return_line,
    make_return_received,
    make_return_request,
    make_returns_location,
    make_stock_event,
)

# DC-EAST ships from New York (and takes returns); STORE-RET in Boston only takes returns.
BOSTON_CUSTOMER = make_address(
    name="Grace Hopper",
    line1="9 Beacon St",
    city="Boston",
    region="MA",
    postal_code="02108",
    lat=42.3577,
    lon=-71.0624,
)

Figures = dict[str, tuple[int, int]]  # location -> (on_hand, available)


def availability(pipeline: Pipeline, sku: str, done: Callable[[Figures], bool]) -> Figures:
    """The first availability of ``sku`` whose figures satisfy ``done`` (empty if none came)."""

    def pairs(found: dict[str, LocationAvailability]) -> Figures:
        return {loc: (x.on_hand, x.available) for loc, x in found.items()}

    return pairs(pipeline.availability_where(sku, lambda f: done(pairs(f))))


def test_return_is_authorized_labelled_received_and_restocked(pipeline: Pipeline) -> None:
    pipeline.produce(
        [
            make_location("DC-EAST"),
            make_returns_location("STORE-RET"),
            make_product("SKU-1"),
            make_product("SKU-2"),
            make_stock_event("SKU-1", "DC-EAST", 10, event_id="s-1"),
            make_stock_event("SKU-2", "DC-EAST", 10, event_id="s-2"),
        ]
    )
    assert availability(pipeline, "SKU-2", lambda f: f.get("DC-EAST") == (10, 10))
    pipeline.produce([make_order("ORD-1", lines=[("SKU-1", 2), ("SKU-2", 1)])])
    allocated = pipeline.statuses(2)[-1]
    assert allocated.status == "ALLOCATED", allocated
    [shipment] = allocated.shipments
    pipeline.produce([make_fulfillment_update("ORD-1", shipment.shipment_id, "DC-EAST")])
    assert pipeline.statuses(3)[-1].status == "COMPLETED"

    lines = (make_return_line("SKU-1", 2), make_return_line("SKU-2", 1, "broken"))
    pipeline.produce([make_return_request(ship_from=BOSTON_CUSTOMER, lines=lines)])
    authorized = pipeline.statuses(4)[-1]
    rma = rma_number("ORD-1", "RET-1")
    assert authorized.status == "RETURN_AUTHORIZED", authorized
    assert rma in authorized.reason and "STORE-RET" in authorized.reason

    [label] = pipeline.read("dom.return-labels.commands.v1", lambda r: len(r) >= 1)
    assert isinstance(label, ReturnLabelCommand)
    assert label.rma_number == rma and label.return_location_id == "STORE-RET"
    fields = zpl.zpl_fields(label.label.decode("utf-8"))
    assert zpl.barcodes(fields) == [rma]
    shown = zpl.texts(fields)
    assert rma in shown and "Order ORD-1  Return RET-1" in shown
    for line in ["Grace Hopper", "9 Beacon St", "Boston, MA 02108"]:  # from the customer
        assert line in shown
    for line in ["Returns STORE-RET", "77 Harbor Way", "Boston, MA 02110"]:  # to the store
        assert line in shown

    received = (
        make_received_line("SKU-1", 2, ItemCondition.SELLABLE),
        make_received_line("SKU-2", 1, ItemCondition.DAMAGED),
    )
    pipeline.produce([make_return_received(location_id="STORE-RET", lines=received)])
    returned = pipeline.statuses(5)[-1]
    assert returned.status == "RETURNED", returned
    assert "2 SKU-1 restocked, 1 SKU-2 damaged" in returned.reason
    sku1 = availability(pipeline, "SKU-1", lambda f: "STORE-RET" in f)
    assert sku1 == {"DC-EAST": (8, 8), "STORE-RET": (2, 2)}
    # Only the sellable line went back on hand: one stock event, none for the damaged sku.
    restocks = [
        r
        for r in pipeline.read("dom.stock.v1", lambda r: len(r) >= 3, timeout=10)
        if isinstance(r, StockEvent) and r.reason == "return RET-1"
    ]
    assert [(r.sku, r.location_id, r.quantity) for r in restocks] == [("SKU-1", "STORE-RET", 2)]

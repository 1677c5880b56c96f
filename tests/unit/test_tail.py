"""``dom tail`` prints what a warehouse or a channel receives, readable by a person."""

from __future__ import annotations

from dom.tail import describe
from schemas.commands import Carton, Insert, PackagingCommand
from schemas.enums import InsertKind
from tests.unit.factories import T0, make_fulfillment_command, make_status_changed


def test_a_fulfilment_command_reads_as_what_to_send_where() -> None:
    text = describe(make_fulfillment_command())
    first, *rest = text.splitlines()
    assert "FULFIL" in first and "ORD-1" in first and "SHIP" in first
    assert "New York" in first  # the ship-to address
    assert any("x SKU-1" in line for line in rest)


def test_a_packaging_command_lists_cartons_and_inserts() -> None:
    pack = PackagingCommand(
        command_id="S-1:pack",
        order_id="ORD-1",
        shipment_id="S-1",
        location_id="DC-EAST",
        packaging="PROTECTIVE",
        cartons=(Carton(box_type="PADDED-S", skus=("SKU-1", "SKU-1", "SKU-2")),),
        inserts=(Insert(kind=InsertKind.SAMPLE, value="SAMPLE-001"),),
        created_at=T0,
    )
    text = describe(pack)
    assert "PROTECTIVE" in text and "PADDED-S [SKU-1 x2, SKU-2 x1]" in text
    assert "SAMPLE 'SAMPLE-001'" in text


def test_a_status_change_shows_the_reason() -> None:
    text = describe(make_status_changed(reason="nearest DC with stock"))
    assert "ALLOCATED" in text and "nearest DC with stock" in text

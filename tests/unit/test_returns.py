"""Returns in the order saga, in memory: authorization (RMA, nearest returns location, label),
receipt (sellable units restocked through a stock event, damaged ones not), the rules a return
must meet, redelivery, and the labels themselves (ZPL decoded by a small field parser, PDF).

The saga and the sku owners run in ``test_saga.World``; the stock events a receipt emits are
applied to the owners as the inventory stage would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TypeVar

import pytest

import tests.unit.test_saga as saga_world  # the module, so its tests are not collected twice
from schemas.common import MAX_ID_CHARS
from schemas.enums import Capability, ItemCondition, LabelFormat, StockEventKind
from schemas.models import (
    Location,
    Message,
    OrderStatusChanged,
    ReturnLabelCommand,
    StockEvent,
)
from streams.core.inventory.sku_owner import apply_stock
from streams.core.returns.labels import ReturnLabel, pdf_label, zpl_escape, zpl_label
from streams.core.returns.returns import nearest_returns_location, rma_number
from streams.core.saga.apply import apply_input
from streams.core.saga.state import OrderState
from tests.unit.factories import (
    make_address,
    make_cancel,
    make_fulfillment_update,
    make_location,
    make_order,
    make_received_line,
    make_return_line,
    make_return_received,
    make_return_request,
    make_returns_location,
)

SELLABLE, DAMAGED = ItemCondition.SELLABLE, ItemCondition.DAMAGED
BOSTON = make_address(name="Grace Hopper", city="Boston", region="MA", lat=42.35, lon=-71.06)
# The same network as test_saga (Newark, Philadelphia, Chicago), plus a Boston returns store.
DC_EAST = make_location("DC-EAST", address=make_address(name="DC East", lat=40.7357, lon=-74.1724))
DC_SOUTH = make_location("DC-SOUTH", address=make_address(name="DC South", lat=39.95, lon=-75.17))
DC_WEST = make_location("DC-WEST", address=make_address(name="DC West", lat=41.88, lon=-87.63))
STORE_RET = make_returns_location("STORE-RET")
RECORDS = {x.location_id: x for x in (DC_EAST, DC_SOUTH, DC_WEST, STORE_RET)}
RMA = re.compile(r"RMA-[0-9A-HJKMNP-TV-Z]{10}")
T = TypeVar("T")


# ---- a shipped order in the in-memory world -----------------------------------------------------


def shipped(
    lines: list[tuple[str, int]] | None = None,
    records: dict[str, Location] | None = None,
    ship: bool = True,
    label_format: LabelFormat = LabelFormat.ZPL,
) -> saga_world.World:
    """ORD-1 placed, allocated from DC-EAST and (unless ``ship`` is False) shipped."""
    world = saga_world.World({"SKU-1": {"DC-EAST": 10}, "SKU-2": {"DC-EAST": 10}})
    world.ctx = replace(
        world.ctx,
        location_records=RECORDS if records is None else records,
        label_format=label_format,
    )
    saga_world.placed(world, make_order(lines=lines or [("SKU-1", 2), ("SKU-2", 1)]))
    if ship:
        [command] = world.fulfillment()
        world.update(make_fulfillment_update("ORD-1", command.shipment_id, "DC-EAST"))
        world.run()
    return world


def apply(world: saga_world.World, record: object) -> list[Message]:
    """The saga applies one input (as the order stage does); stock events reach the owners."""
    state, outputs = apply_input(world.orders.get("ORD-1"), record, world.ctx)  # type: ignore[arg-type]
    if state is not None:
        world.orders["ORD-1"] = state
    for stock in (x for x in outputs if isinstance(x, StockEvent)):
        sku_state = world.inventory[stock.sku]
        world.inventory[stock.sku], _ = apply_stock(sku_state, stock)
    return world.send(outputs)


def only(records: list[Message], kind: type[T]) -> list[T]:
    return [x for x in records if isinstance(x, kind)]


def status_of(records: list[Message]) -> OrderStatusChanged:
    [status] = only(records, OrderStatusChanged)
    return status


# ---- RMA and the returns location ---------------------------------------------------------------


def test_rma_is_stable_short_and_differs_between_returns() -> None:
    first = rma_number("ORD-1", "RET-1")
    assert first == rma_number("ORD-1", "RET-1")
    assert RMA.fullmatch(first)
    others = {rma_number("ORD-1", "RET-2"), rma_number("ORD-2", "RET-1"), first}
    assert len(others) == 3


def test_nearest_returns_location_by_great_circle() -> None:
    assert nearest_returns_location(BOSTON, RECORDS.values()) == STORE_RET
    assert nearest_returns_location(make_address(), RECORDS.values()) == DC_EAST  # Manhattan


def test_inactive_and_non_returns_locations_are_not_candidates() -> None:
    closed = make_returns_location("STORE-CLOSED", active=False)
    ship_only = make_location("DC-BOS", capabilities=(Capability.SHIP,), address=BOSTON)
    candidates = [closed, ship_only, DC_WEST]
    assert nearest_returns_location(BOSTON, candidates) == DC_WEST
    assert nearest_returns_location(BOSTON, [closed, ship_only]) is None


def test_without_coordinates_priority_then_id_decides() -> None:
    nowhere = make_address(lat=None, lon=None)
    a = make_returns_location("B-STORE", priority=50)
    b = make_returns_location("A-STORE", priority=50)
    c = make_returns_location("C-STORE", priority=10, lat=None, lon=None)
    assert nearest_returns_location(nowhere, [a, b, c]) == c  # nothing measurable: priority
    assert nearest_returns_location(nowhere, [a, b]) == b  # then id
    # A location with a distance beats one without, whatever its priority.
    assert nearest_returns_location(BOSTON, [a, c]) == a


# ---- authorization ------------------------------------------------------------------------------


def test_return_request_is_authorized_with_a_label_to_the_nearest_returns_location() -> None:
    world = shipped()
    request = make_return_request(ship_from=BOSTON)

    outputs = apply(world, request)

    status = status_of(outputs)
    [label] = only(outputs, ReturnLabelCommand)
    rma = rma_number("ORD-1", "RET-1")
    assert status.status == "RETURN_AUTHORIZED"
    assert status.reason.startswith(f"return RET-1 authorized as {rma}: 1 SKU-1 to STORE-RET")
    assert label.command_id == "ORD-1:RET-1:label"
    assert label.rma_number == rma and label.return_id == "RET-1" and label.order_id == "ORD-1"
    assert label.return_location_id == "STORE-RET"
    assert label.ship_from == BOSTON and label.ship_to == STORE_RET.address
    assert label.label_format == LabelFormat.ZPL and label.created_at == world.ctx.now
    fields = zpl_fields(label.label.decode())
    assert barcodes(fields) == [rma]
    assert "Grace Hopper" in texts(fields) and "Returns STORE-RET" in texts(fields)
    assert world.orders["ORD-1"].returns["RET-1"].location_id == "STORE-RET"


def test_no_returns_location_refuses_the_return_without_a_label() -> None:
    world = shipped(records={"DC-EAST": make_location("DC-EAST", capabilities=(Capability.SHIP,))})

    outputs = apply(world, make_return_request())

    assert only(outputs, ReturnLabelCommand) == []
    status = status_of(outputs)
    assert status.status == "COMPLETED"  # the order keeps its status
    assert status.reason == "return RET-1 refused: no active location accepts returns"
    assert world.orders["ORD-1"].returns == {}


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        ([make_return_line("SKU-9")], "SKU-9 is not part of the order"),
        ([make_return_line("SKU-1", 3)], "3 SKU-1 asked back, but only 2 can be returned"),
        (  # lines of one sku add up
            [make_return_line("SKU-1", 2), make_return_line("SKU-1", 1)],
            "3 SKU-1 asked back, but only 2 can be returned",
        ),
        ([], "it has no lines"),
    ],
)
def test_invalid_return_lines_are_refused(lines: list[object], why: str) -> None:
    world = shipped()

    outputs = apply(world, make_return_request(lines=tuple(lines)))

    assert only(outputs, ReturnLabelCommand) == []
    assert status_of(outputs).reason.startswith(f"return RET-1 refused: {why}")
    assert world.orders["ORD-1"].returns == {}


def test_an_order_never_shipped_cannot_be_returned() -> None:
    world = shipped(ship=False)

    outputs = apply(world, make_return_request())

    status = status_of(outputs)
    assert status.status == "ALLOCATED"
    assert "refused: nothing of the order was shipped or picked up yet" in status.reason


def test_a_cancelled_order_cannot_be_returned() -> None:
    world = shipped(ship=False)
    apply(world, make_cancel())

    outputs = apply(world, make_return_request())

    assert status_of(outputs).reason == "return RET-1 refused: the order was cancelled"


def test_units_already_authorized_count_against_a_second_return() -> None:
    world = shipped()
    apply(world, make_return_request(lines=(make_return_line("SKU-1", 2),)))

    second = apply(world, make_return_request(return_id="RET-2"))

    assert "1 SKU-1 asked back, but only 0 can be returned" in status_of(second).reason
    third = apply(world, make_return_request(return_id="RET-3", lines=(make_return_line("SKU-2"),)))
    assert status_of(third).status == "RETURN_AUTHORIZED"


def test_a_return_of_an_unknown_order_is_left_to_the_stage() -> None:
    state, outputs = apply_input(None, make_return_request(order_id="NOPE"), shipped().ctx)
    assert (state, outputs) == (None, [])  # the order stage dead-letters it


def test_redelivered_request_gives_the_same_records_and_changes_nothing_twice() -> None:
    world = shipped()
    request = make_return_request(ship_from=BOSTON)
    first = apply(world, request)
    history = len(world.orders["ORD-1"].history)

    again = apply(world, request)

    assert again == first  # same ids, same label bytes
    assert len(world.orders["ORD-1"].history) == history
    # The same return under another event id: still one RMA, one label.
    assert apply(world, make_return_request(ship_from=BOSTON, event_id="evt-RET-1-bis")) == []


def test_a_cancel_after_the_return_was_authorized_changes_nothing() -> None:
    world = shipped()
    apply(world, make_return_request())

    assert apply(world, make_cancel()) == []
    assert world.orders["ORD-1"].status == "RETURN_AUTHORIZED"


# ---- receipt ------------------------------------------------------------------------------------


def authorized(lines: tuple[object, ...] | None = None) -> saga_world.World:
    world = shipped()
    given = lines or (make_return_line("SKU-1", 2), make_return_line("SKU-2", 1))
    apply(world, make_return_request(ship_from=BOSTON, lines=given))
    return world


def test_receipt_restocks_sellable_units_at_the_receiving_location_not_damaged_ones() -> None:
    world = authorized()
    receipt = make_return_received(
        location_id="STORE-RET",
        lines=(make_received_line("SKU-1", 2, SELLABLE), make_received_line("SKU-2", 1, DAMAGED)),
    )

    outputs = apply(world, receipt)

    [stock] = only(outputs, StockEvent)
    assert stock == StockEvent(
        event_id="RET-1:rcv-RET-1-STORE-RET:STORE-RET:SKU-1",
        sku="SKU-1",
        location_id="STORE-RET",
        kind=StockEventKind.ADJUSTMENT,
        quantity=2,
        reason="return RET-1",
        occurred_at=receipt.received_at,
    )
    status = status_of(outputs)
    assert status.status == "RETURNED"
    assert "2 SKU-1 restocked, 1 SKU-2 damaged" in status.reason
    assert world.at("SKU-1", "STORE-RET").on_hand == 2
    assert "STORE-RET" not in world.inventory["SKU-2"].locations  # damaged: not back on hand


def test_redelivered_receipt_restocks_once() -> None:
    world = authorized()
    receipt = make_return_received(location_id="STORE-RET", lines=(make_received_line("SKU-1", 2),))
    first = apply(world, receipt)

    again = apply(world, receipt)

    assert again == first  # the same stock event id: the inventory stage drops the repeat
    assert world.at("SKU-1", "STORE-RET").on_hand == 2


def test_partial_receipts_add_up_to_returned() -> None:
    world = authorized()

    first = apply(world, make_return_received(lines=(make_received_line("SKU-1", 1),)))
    assert status_of(first).status == "RETURN_AUTHORIZED"
    assert "still expected: 1 SKU-1, 1 SKU-2" in status_of(first).reason

    rest = (make_received_line("SKU-1", 1), make_received_line("SKU-2", 1))
    second = apply(world, make_return_received(event_id="rcv-2", lines=rest))
    assert status_of(second).status == "RETURNED"
    ids = [x.event_id for x in only(first + second, StockEvent)]
    assert len(ids) == len(set(ids)) == 3
    assert world.at("SKU-1", "DC-EAST").on_hand == 8 + 2  # shipped 2, both back (received there)


def test_a_receipt_of_long_ids_restocks_under_a_stock_event_id_that_fits() -> None:
    """The restock's id joins four ids; each may be as long as an id may be, the joined one
    not (a StockEvent's id is an upstream id too): it is then a digest of them."""
    world = shipped()
    return_id = "R" * MAX_ID_CHARS
    lines = (make_return_line("SKU-1", 2),)
    apply(world, make_return_request(return_id=return_id, event_id="rrq-1", lines=lines))
    receipt = make_return_received(
        return_id=return_id,
        event_id="E" * MAX_ID_CHARS,
        location_id="L" * MAX_ID_CHARS,
        lines=(make_received_line("SKU-1", 1),),
    )

    first = apply(world, receipt)
    again = apply(world, receipt)
    second = apply(world, receipt.model_copy(update={"event_id": "E" * (MAX_ID_CHARS - 1)}))

    [stock] = only(first, StockEvent)
    assert len(stock.event_id) <= MAX_ID_CHARS and stock.quantity == 1
    assert only(again, StockEvent) == [stock]  # a redelivery: the same id, dropped by the owner
    [other] = only(second, StockEvent)
    assert other.event_id != stock.event_id
    assert status_of(second).status == "RETURNED"


@pytest.mark.parametrize(
    ("receipt", "why"),
    [
        (make_return_received(return_id="RET-X"), "RET-X refused: it was never authorized"),
        (
            make_return_received(lines=(make_received_line("SKU-1", 3),)),
            "3 SKU-1 received, but RMA-",
        ),
        (make_return_received(lines=(make_received_line("SKU-2"),)), "expects 0 more"),
        (make_return_received(lines=()), "the receipt has no lines"),
    ],
)
def test_invalid_receipts_are_refused_whole(receipt: object, why: str) -> None:
    world = authorized(lines=(make_return_line("SKU-1", 2),))

    outputs = apply(world, receipt)

    assert only(outputs, StockEvent) == []
    assert status_of(outputs).status == "RETURN_AUTHORIZED"
    assert why in status_of(outputs).reason
    assert world.at("SKU-1", "DC-EAST").on_hand == 8


def test_a_return_received_in_full_takes_no_second_receipt() -> None:
    world = authorized(lines=(make_return_line("SKU-1", 1),))
    apply(world, make_return_received())

    again = apply(world, make_return_received(event_id="rcv-again"))

    assert only(again, StockEvent) == []
    assert "already received in full" in status_of(again).reason


# ---- stored state -------------------------------------------------------------------------------


def test_state_with_a_pdf_label_reply_survives_the_table_round_trip() -> None:
    world = shipped(label_format=LabelFormat.PDF)
    request = make_return_request()
    first = apply(world, request)
    [label] = only(first, ReturnLabelCommand)
    assert label.label_format == LabelFormat.PDF and label.label.startswith(b"%PDF")

    stored = OrderState.model_validate_json(world.orders["ORD-1"].model_dump_json())
    _, again = apply_input(stored, request, world.ctx)

    assert again == first  # the replayed label is the same bytes


def test_a_state_stored_before_returns_existed_still_loads() -> None:
    old = shipped().orders["ORD-1"].model_dump(mode="json")
    del old["returns"]
    for replies in old["replies"].values():
        for reply in replies:
            del reply["binary"]
    assert OrderState.model_validate(old).returns == {}


# ---- labels -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZplField:
    x: int
    y: int
    commands: str  # what stands between ^FO and ^FD (font, barcode, ^FH)
    data: str  # decoded

    @property
    def barcode(self) -> str | None:
        """The Code 128 symbology of the field (``^BC``), if it is one."""
        return self.data if "^BC" in self.commands else None


FIELD = re.compile(r"\^FO(\d+),(\d+)((?:\^(?!FD|FS)[^\^]*)*)\^FD([^\^~]*)\^FS")


def zpl_fields(zpl: str) -> list[ZplField]:
    """Every ``^FO...^FD...^FS`` field of a label, ``^FH`` escapes decoded (UTF-8 bytes)."""
    assert zpl.startswith("^XA") and zpl.rstrip().endswith("^XZ")
    fields = []
    for m in FIELD.finditer(zpl):
        commands, data = m.group(3), m.group(4)
        hex_on = re.search(r"\^FH(.?)", commands)
        if hex_on:
            data = _unhex(data, hex_on.group(1) or "_")
        fields.append(ZplField(int(m.group(1)), int(m.group(2)), commands, data))
    return fields


def _unhex(data: str, indicator: str) -> str:
    out, i = bytearray(), 0
    while i < len(data):
        if data[i] == indicator:
            out += bytes.fromhex(data[i + 1 : i + 3])
            i += 3
        else:
            out += data[i].encode()
            i += 1
    return out.decode("utf-8")


def barcodes(fields: list[ZplField]) -> list[str]:
    return [f.barcode for f in fields if f.barcode is not None]


def texts(fields: list[ZplField]) -> list[str]:
    return [f.data for f in fields if f.barcode is None]


LABEL = ReturnLabel(
    rma_number="RMA-0123456789",
    order_id="ORD-1",
    return_id="RET-1",
    ship_from=make_address(name="Zoë ^XZ~JR_Hacker", line2="Apt 4\\B"),
    ship_to=STORE_RET.address,
)


def test_zpl_label_is_4x6_at_203_dpi_with_the_rma_as_code128() -> None:
    zpl = zpl_label(LABEL).decode("utf-8")
    assert "^PW812" in zpl and "^LL1218" in zpl and "^CI28" in zpl

    fields = zpl_fields(zpl)

    assert barcodes(fields) == ["RMA-0123456789"]
    assert "RMA-0123456789" in texts(fields)  # human readable too
    assert "Order ORD-1  Return RET-1" in texts(fields)
    assert len(fields) == zpl.count("^FD")  # every field parsed: nothing escaped the parser


def test_zpl_label_carries_both_addresses_with_hostile_characters_escaped() -> None:
    zpl = zpl_label(LABEL).decode("utf-8")
    shown = texts(zpl_fields(zpl))

    for line in ["Zoë ^XZ~JR_Hacker", "1 Main St", "Apt 4\\B", "New York, NY 10001", "US"]:
        assert line in shown
    for line in ["Returns STORE-RET", "77 Harbor Way", "Boston, MA 02110"]:
        assert line in shown
    assert zpl.count("^XZ") == 1 and "~JR" not in zpl  # no command smuggled in
    assert zpl_escape("a^b~c_d\\e\nf") == "a_5Eb_7Ec_5Fd_5Ce f"


def test_zpl_label_refuses_an_rma_the_barcode_would_misread() -> None:
    with pytest.raises(ValueError, match="barcode-safe"):
        zpl_label(replace(LABEL, rma_number="RMA>1"))


def test_pdf_label_has_the_rma_barcode_and_both_addresses() -> None:
    pdf = pdf_label(replace(LABEL, ship_from=BOSTON))

    assert pdf.startswith(b"%PDF")
    assert pdf == pdf_label(replace(LABEL, ship_from=BOSTON))  # deterministic bytes
    for text in [b"RMA-0123456789", b"Grace Hopper", b"Returns STORE-RET", b"77 Harbor Way"]:
        assert text in pdf
    assert b"Return label RMA-0123456789" in pdf  # the title
    assert pdf.count(b" re") > 30  # the barcode's bars are drawn as rectangles

"""An operator moves an open shipment, on the real broker: to a named location it goes, with a
CANCEL to the old one and the units moved with it; a move that cannot apply is refused and
changes nothing."""

from __future__ import annotations

from config.settings import Settings
from schemas.models import FulfillmentAction, FulfillmentCommand, Message, OrderStatusChanged
from tests.e2e.harness import Pipeline
from tests.e2e.test_order_actions import dom
from tests.unit.factories import (
    make_address,
    make_fulfillment_update,
    make_location,
    make_order,
    make_product,
    make_stock_event,
)

CHICAGO = make_address(city="Chicago", region="IL", postal_code="60601", lat=41.88, lon=-87.63)


def start(pipeline: Pipeline) -> None:
    """DC-EAST (New York, nearest the customer) and DC-WEST (Chicago), 5 of SKU-1 each."""
    pipeline.produce(
        [
            make_location("DC-EAST"),
            make_location("DC-WEST", address=CHICAGO),
            make_product("SKU-1"),
            make_stock_event("SKU-1", "DC-EAST", 5, event_id="s-east"),
            make_stock_event("SKU-1", "DC-WEST", 5, event_id="s-west"),
        ]
    )
    pipeline.availability_where("SKU-1", lambda f: {"DC-EAST", "DC-WEST"} <= set(f))


def commands(pipeline: Pipeline, count: int) -> list[FulfillmentCommand]:
    records: list[Message] = pipeline.read(
        "dom.fulfillment.commands.v1",
        lambda r: len([c for c in r if isinstance(c, FulfillmentCommand)]) >= count,
        timeout=30,
    )
    return [c for c in records if isinstance(c, FulfillmentCommand)]


def allocated(pipeline: Pipeline, count: int) -> list[OrderStatusChanged]:
    records = pipeline.read(
        "dom.order-status.v1",
        lambda r: len([s for s in r if s.status == "ALLOCATED" and not s.action_id]) >= count,
    )
    return [s for s in records if isinstance(s, OrderStatusChanged) and s.status == "ALLOCATED"]


def test_a_shipment_moves_to_a_named_location_and_the_old_one_is_told(
    pipeline: Pipeline, settings: Settings
) -> None:
    start(pipeline)
    pipeline.produce([make_order("ORD-1", lines=[("SKU-1", 2)])])
    [first] = [s for s in allocated(pipeline, 1) if not s.action_id]
    [shipment] = first.shipments
    assert shipment.location_id == "DC-EAST"

    moved = dom(settings, "orders", "move", "ORD-1", "--shipment", shipment.shipment_id,
                "--to", "DC-WEST", "--by", "ops", "--reason", "flood at DC-EAST")  # fmt: skip
    assert moved.exit_code == 0, moved.output
    assert moved.output.startswith("APPLIED") and "CANCEL sent to DC-EAST" in moved.output

    second = [s for s in allocated(pipeline, 2) if not s.action_id][-1]
    [new] = second.shipments
    assert (new.location_id, [(x.sku, x.quantity) for x in new.lines]) == (
        "DC-WEST",
        [("SKU-1", 2)],
    )
    sent = commands(pipeline, 3)
    assert [(c.shipment_id, c.location_id, c.action) for c in sent] == [
        (shipment.shipment_id, "DC-EAST", FulfillmentAction.FULFIL),
        (shipment.shipment_id, "DC-EAST", FulfillmentAction.CANCEL),
        (new.shipment_id, "DC-WEST", FulfillmentAction.FULFIL),
    ]
    # DC-EAST had not accepted: its units are free at once; DC-WEST holds them now
    figures = pipeline.availability_where(
        "SKU-1", lambda f: f["DC-EAST"].reserved == 0 and f["DC-WEST"].reserved == 2
    )
    assert figures["DC-EAST"].available == 5


def test_a_move_that_cannot_apply_is_refused_and_changes_nothing(
    pipeline: Pipeline, settings: Settings
) -> None:
    start(pipeline)
    pipeline.produce([make_order("ORD-1", lines=[("SKU-1", 2)])])
    [shipment] = allocated(pipeline, 1)[0].shipments

    for args, why in (
        (["--to", "DC-NOWHERE"], "no location DC-NOWHERE is known"),
        (["--to", "DC-EAST"], "is at DC-EAST already"),
    ):
        refused = dom(settings, "orders", "move", "ORD-1", "--shipment", shipment.shipment_id,
                      *args, "--by", "ops", "--reason", "try")  # fmt: skip
        assert refused.exit_code == 1, refused.output
        assert refused.output.startswith("REFUSED") and why in refused.output

    pipeline.produce(
        [make_fulfillment_update("ORD-1", shipment.shipment_id, "DC-EAST", event_id="shipped")]
    )
    pipeline.read(
        "dom.order-status.v1", lambda r: any(s.status == "COMPLETED" for s in r), timeout=30
    )
    late = dom(settings, "orders", "move", "ORD-1", "--shipment", shipment.shipment_id,
               "--by", "ops", "--reason", "too late")  # fmt: skip
    assert late.exit_code == 1 and "already shipped" in late.output
    assert [c.action for c in commands(pipeline, 1)] == [FulfillmentAction.FULFIL]
    figures = pipeline.availability_where("SKU-1", lambda f: f["DC-EAST"].on_hand == 3)
    assert (figures["DC-EAST"].reserved, figures["DC-WEST"].reserved) == (0, 0)


def test_an_address_change_re_routes_an_unaccepted_shipment_to_the_nearer_location(
    pipeline: Pipeline, settings: Settings
) -> None:
    start(pipeline)
    pipeline.produce([make_order("ORD-1", lines=[("SKU-1", 2)])])
    [shipment] = allocated(pipeline, 1)[0].shipments
    assert shipment.location_id == "DC-EAST"

    changed = dom(settings, "orders", "change-address", "ORD-1", "--name", "Ada",
                  "--line1", "1 Lake St", "--city", "Chicago", "--region", "IL",
                  "--postal-code", "60601", "--country", "US", "--lat", "41.88",
                  "--lon", "-87.63", "--by", "cs", "--reason", "moved")  # fmt: skip
    assert changed.exit_code == 0, changed.output
    assert f"{shipment.shipment_id} re-routed from DC-EAST" in changed.output

    second = [s for s in allocated(pipeline, 2) if not s.action_id][-1]
    [new] = second.shipments
    assert new.location_id == "DC-WEST"
    sent = commands(pipeline, 3)
    assert [(c.location_id, c.action) for c in sent] == [
        ("DC-EAST", FulfillmentAction.FULFIL),
        ("DC-EAST", FulfillmentAction.CANCEL),
        ("DC-WEST", FulfillmentAction.FULFIL),
    ]
    assert sent[-1].ship_to is not None and sent[-1].ship_to.city == "Chicago"

    pipeline.produce(
        [make_fulfillment_update("ORD-1", new.shipment_id, "DC-WEST", event_id="shipped")]
    )
    pipeline.read(
        "dom.order-status.v1", lambda r: any(s.status == "COMPLETED" for s in r), timeout=30
    )
    late = dom(settings, "orders", "change-address", "ORD-1", "--name", "Ada",
               "--line1", "2 Main St", "--city", "New York", "--region", "NY",
               "--postal-code", "10001", "--country", "US", "--by", "cs",
               "--reason", "again")  # fmt: skip
    assert late.exit_code == 1 and "has already shipped" in late.output

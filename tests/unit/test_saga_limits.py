"""What upstream systems send may be as large as the contract lets it be; the saga keeps what
it stores and sends small enough for a Kafka record, and says so when an order is too large."""

from __future__ import annotations

from schemas.internal import SkuCommand
from schemas.models import FulfillmentStatus
from streams.core.packing.cartons import MAX_PACKING_LIST_BYTES
from streams.core.saga.apply import MAX_QUOTE_CHARS
from tests.unit.factories import make_cancel, make_order
from tests.unit.test_saga import World, placed, report

LONG = "x" * 100_000


def test_an_order_of_more_units_than_packaging_commands_can_list_is_rejected_up_front() -> None:
    """100,000 units (the most a line may ask for) of one sku: their packaging command alone
    would have been as large as a Kafka record may be, and the state keeping it larger."""
    world = World({"SKU-1": {"DC-EAST": 200_000}})

    placed(world, make_order(lines=[("SKU-1", 100_000)]))

    assert world.statuses() == ["RECEIVED", "REJECTED"]
    reason = world.last_status().reason
    assert "100000 units are more than packaging commands can list" in reason
    assert f"at most {MAX_PACKING_LIST_BYTES}" in reason
    assert not [x for x in world.published if isinstance(x, SkuCommand)]
    assert world.at("SKU-1", "DC-EAST").reserved == 0


def test_an_order_within_the_packing_limit_is_packed() -> None:
    world = World({"SKU-1": {"DC-EAST": 30_000}})

    placed(world, make_order(lines=[("SKU-1", 25_000)]))

    assert world.statuses() == ["RECEIVED", "ALLOCATED"]


def test_a_long_rejection_reason_is_quoted_cut_short() -> None:
    world = World({"SKU-1": {"DC-EAST": 5, "DC-SOUTH": 5}})
    placed(world, make_order())

    rejected = FulfillmentStatus.REJECTED
    world.update(report("ORD-1", "ORD-1-1-1", "DC-EAST", status=rejected, reason=LONG))
    world.run()

    rerouted = world.last_status()
    assert rerouted.shipments[0].location_id == "DC-SOUTH"
    assert "DC-EAST rejected ORD-1-1-1 (xxx" in rerouted.reason
    assert len(rerouted.reason) < 2 * MAX_QUOTE_CHARS
    assert len(world.orders["ORD-1"].model_dump_json()) < 10 * MAX_QUOTE_CHARS


def test_a_long_cancel_reason_is_quoted_cut_short() -> None:
    world = World({"SKU-1": {"DC-EAST": 5}})
    placed(world, make_order())

    world.cancel(make_cancel(reason=LONG))

    cancelled = world.last_status()
    assert cancelled.status == "CANCELLED"
    assert cancelled.reason.startswith("xxx") and len(cancelled.reason) == MAX_QUOTE_CHARS

"""Life after routing, end to end through topics: a warehouse rejects its shipment and the
order is re-routed elsewhere; the new location ships it and the order completes, with the
stock consumed where it left and released where it was refused."""

from __future__ import annotations

import time

from config.settings import Settings
from dom.tail import describe, follow
from schemas.enums import FulfillmentStatus
from schemas.models import FulfillmentCommand
from tests.e2e.harness import Pipeline
from tests.unit.factories import (
    make_address,
    make_fulfillment_update,
    make_location,
    make_order,
    make_product,
    make_stock_event,
)

# DC-EAST is in New York, next to the customer; DC-WEST in Chicago.
CHICAGO = make_address(city="Chicago", region="IL", postal_code="60601", lat=41.88, lon=-87.63)


def figures(pipeline: Pipeline, done) -> dict[str, tuple[int, int]]:  # type: ignore[no-untyped-def]
    """location -> (on_hand, reserved) from the first availability of SKU-1 that ``done``."""

    def pairs(found: dict) -> dict[str, tuple[int, int]]:  # type: ignore[type-arg]
        return {loc: (x.on_hand, x.reserved) for loc, x in found.items()}

    return pairs(pipeline.availability_where("SKU-1", lambda f: done(pairs(f))))


def west_sees(settings: Settings, pipeline: Pipeline) -> list[tuple[str, str]]:
    deadline = time.monotonic() + 15
    seen: list[tuple[str, str]] = []
    messages = follow(
        settings,
        ("dom.fulfillment.commands.v1", "dom.packaging.commands.v1"),
        key="DC-WEST",
        from_start=True,
        stop=lambda: len(seen) >= 2 or time.monotonic() > deadline,
    )
    for message in messages:
        text = describe(pipeline.codec.decode(message.value()))
        kind = "FULFIL" if "FULFIL" in text else "PACK"
        seen.append((kind, text.split(f"{kind} ", 1)[1].split()[0]))
    return sorted(seen, key=lambda x: x[0] != "FULFIL")


def test_rejected_shipment_is_rerouted_then_shipped_to_completion(
    pipeline: Pipeline, settings: Settings
) -> None:
    pipeline.produce(
        [
            make_location("DC-EAST"),
            make_location("DC-WEST", address=CHICAGO),
            make_product("SKU-1"),
            make_stock_event("SKU-1", "DC-EAST", 10, event_id="s-east"),
            make_stock_event("SKU-1", "DC-WEST", 10, event_id="s-west"),
        ]
    )
    figures(pipeline, lambda f: len(f) == 2)
    pipeline.produce([make_order("ORD-1", lines=[("SKU-1", 3)])])
    first = pipeline.statuses(2)[-1]
    assert first.status == "ALLOCATED", first
    [east] = first.shipments
    assert east.location_id == "DC-EAST"

    pipeline.produce(
        [make_fulfillment_update("ORD-1", east.shipment_id, "DC-EAST", FulfillmentStatus.REJECTED)]
    )
    rerouted = pipeline.statuses(3)[-1]
    assert rerouted.status == "ALLOCATED"
    [west] = rerouted.shipments
    assert west.location_id == "DC-WEST" and west.shipment_id != east.shipment_id
    assert "DC-EAST rejected" in rerouted.reason and "no stock" in rerouted.reason
    commands = pipeline.read("dom.fulfillment.commands.v1", lambda r: len(r) >= 2)
    assert [(c.location_id, c.shipment_id) for c in commands] == [
        ("DC-EAST", east.shipment_id),
        ("DC-WEST", west.shipment_id),
    ]
    assert all(isinstance(c, FulfillmentCommand) for c in commands)
    assert figures(pipeline, lambda f: f.get("DC-EAST") == (10, 0)) == {
        "DC-EAST": (10, 0),
        "DC-WEST": (10, 3),
    }
    # what `dom tail fulfillment --location DC-WEST` shows: its commands only, readable
    assert west_sees(settings, pipeline) == [
        ("FULFIL", west.shipment_id),
        ("PACK", west.shipment_id),
    ]

    pipeline.produce(
        [make_fulfillment_update("ORD-1", west.shipment_id, "DC-WEST", FulfillmentStatus.SHIPPED)]
    )
    done = pipeline.statuses(4)[-1]
    assert done.status == "COMPLETED" and west.shipment_id in done.reason
    # shipped: the units left DC-WEST (on hand and reserved both drop)
    assert figures(pipeline, lambda f: f.get("DC-WEST") == (7, 0))["DC-EAST"] == (10, 0)

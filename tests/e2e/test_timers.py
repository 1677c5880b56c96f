"""Timers on the real broker, with short settings: a store that never accepts loses the
shipment to the next location (once, across a SIGKILL and restart of the worker), and a
pickup nobody collects is cancelled, its units released once the store confirms."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from schemas.enums import Capability, FulfillmentStatus, LocationKind
from schemas.models import FulfillmentAction, FulfillmentCommand, Message, OrderStatusChanged
from tests.e2e.harness import Pipeline
from tests.unit.factories import (
    make_address,
    make_fulfillment_update,
    make_location,
    make_order,
    make_pickup_order,
    make_product,
    make_stock_event,
)

CHICAGO = make_address(city="Chicago", region="IL", postal_code="60601", lat=41.88, lon=-87.63)
STORE = make_location(
    "STORE-1",
    kind=LocationKind.STORE,
    capabilities=(Capability.SHIP_FROM_STORE, Capability.PICKUP),
)


@pytest.fixture
def timed(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[Pipeline]:
    settings = make_settings(
        accept_timeout_store_s=4.0, accept_timeout_dc_s=4.0, pickup_expiry_s=3.0
    )
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    yield pipeline
    pipeline.stop_all()


def start(pipeline: Pipeline) -> None:
    """STORE-1 next to the customer and DC-WEST in Chicago, 5 of SKU-1 each."""
    pipeline.produce(
        [
            STORE,
            make_location("DC-WEST", address=CHICAGO),
            make_product("SKU-1"),
            make_stock_event("SKU-1", "STORE-1", 5, event_id="s-store"),
            make_stock_event("SKU-1", "DC-WEST", 5, event_id="s-west"),
        ]
    )
    pipeline.availability_where("SKU-1", lambda f: {"STORE-1", "DC-WEST"} <= set(f))


def commands(pipeline: Pipeline, done: Callable[[list[FulfillmentCommand]], bool]) -> list[
    FulfillmentCommand
]:  # fmt: skip
    def only(records: list[Message]) -> list[FulfillmentCommand]:
        return [c for c in records if isinstance(c, FulfillmentCommand)]

    return only(pipeline.read("dom.fulfillment.commands.v1", lambda r: done(only(r)), timeout=60))


def statuses(pipeline: Pipeline) -> list[OrderStatusChanged]:
    records = pipeline.read("dom.order-status.v1", lambda r: False, timeout=3)
    return [r for r in records if isinstance(r, OrderStatusChanged)]


def test_a_store_that_never_accepts_loses_the_shipment_once_across_a_restart(
    timed: Pipeline,
) -> None:
    pipeline = timed
    start(pipeline)
    pipeline.produce([make_order("ORD-1", lines=[("SKU-1", 2)])])
    [first] = commands(pipeline, lambda c: len(c) >= 1)
    assert first.location_id == "STORE-1"
    # the worker dies with the timer pending and comes back from its data directory
    pipeline.workers["w1"].kill()
    pipeline.start_worker("w1")

    sent = commands(pipeline, lambda c: any(x.location_id == "DC-WEST" for x in c))
    moved = next(c for c in sent if c.location_id == "DC-WEST")
    pipeline.produce(
        [make_fulfillment_update("ORD-1", moved.shipment_id, "DC-WEST", FulfillmentStatus.ACCEPTED)]
    )
    time.sleep(6)  # past DC-WEST's deadline had it not accepted: nothing more may move

    records = pipeline.read("dom.fulfillment.commands.v1", lambda r: False, timeout=3)
    # a redelivery after the SIGKILL may repeat a command: the same id, which warehouses drop
    unique = {c.command_id: c for c in records if isinstance(c, FulfillmentCommand)}
    sent = list(unique.values())
    assert [(c.location_id, c.action) for c in sent] == [
        ("STORE-1", FulfillmentAction.FULFIL),
        ("STORE-1", FulfillmentAction.CANCEL),
        ("DC-WEST", FulfillmentAction.FULFIL),
    ]
    answers = list({s.event_id: s for s in statuses(pipeline) if s.action_id}.values())
    assert [(a.action_id, a.action_result) for a in answers] == [
        (f"accept-timeout:{first.shipment_id}:1", "APPLIED")
    ]
    assert "did not accept it within DOM_ACCEPT_TIMEOUT_STORE_S" in answers[0].reason
    figures = pipeline.availability_where(
        "SKU-1", lambda f: f["STORE-1"].reserved == 0 and f["DC-WEST"].reserved == 2
    )
    assert figures["STORE-1"].available == 5


def test_a_pickup_nobody_collects_is_cancelled_and_released_once_the_store_confirms(
    timed: Pipeline,
) -> None:
    pipeline = timed
    start(pipeline)
    pipeline.produce([make_pickup_order("ORD-P", lines=[("SKU-1", 1)])])
    [ready] = commands(pipeline, lambda c: len(c) >= 1)
    assert ready.location_id == "STORE-1"
    pipeline.produce(
        [make_fulfillment_update("ORD-P", ready.shipment_id, "STORE-1", FulfillmentStatus.ACCEPTED)]
    )

    cancel = commands(pipeline, lambda c: len(c) >= 2)[-1]
    assert (cancel.shipment_id, cancel.action) == (ready.shipment_id, FulfillmentAction.CANCEL)
    cancelled = [s for s in statuses(pipeline) if s.status == "CANCELLED"]
    assert len(cancelled) == 1 and "DOM_PICKUP_EXPIRY_S" in cancelled[0].reason
    held = pipeline.availability_where("SKU-1", lambda f: "STORE-1" in f)
    assert held["STORE-1"].reserved == 1  # the store had it ready: held until it confirms

    pipeline.produce(
        [
            make_fulfillment_update(
                "ORD-P", ready.shipment_id, "STORE-1", FulfillmentStatus.CANCELLED
            )
        ]
    )
    released = pipeline.availability_where("SKU-1", lambda f: f["STORE-1"].reserved == 0)
    assert released["STORE-1"].available == 5

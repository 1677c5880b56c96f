"""What each sales channel may sell, on the real broker, as its users see it: each sku's
availability record carries every published channel's figure (and nothing goes on
``dom.channel-availability.v1`` unless the workers are told to); the figures on that topic
leave out the locations a channel's policy does not name and hold its buffer back, change live
when an operator changes the policy with ``dom channels`` (no restart), are published only
when they move, and a channel's orders are routed only to its locations."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from schemas.enums import Channel, LocationKind, StockEventKind
from schemas.models import (
    Availability,
    Capability,
    FulfillmentCommand,
    Message,
    OrderStatusChanged,
)
from schemas.sellable import ChannelAvailability
from tests.e2e.conftest import one_worker
from tests.e2e.harness import Pipeline
from tests.e2e.test_rules_live import dom
from tests.unit.factories import (
    make_address,
    make_location,
    make_order,
    make_product,
    make_stock_event,
)

TOPIC = "dom.channel-availability.v1"
Figures = list[ChannelAvailability]


@pytest.fixture
def pipeline(settings: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    """One worker, ``w1``, publishing every channel's figures (by default only the web
    store's and the marketplace's are published: DOM_CHANNEL_AVAILABILITY_FOR), on the
    per-channel topic too (DOM_CHANNEL_AVAILABILITY_TOPIC, off by default)."""
    with one_worker(
        settings,
        tmp_path,
        DOM_CHANNEL_AVAILABILITY_FOR="all",
        DOM_CHANNEL_AVAILABILITY_TOPIC="true",
    ) as pipeline:
        yield pipeline


def network(pipeline: Pipeline) -> None:
    """A DC in Edison, NJ and a store in Manhattan that ships and hands over orders."""
    dc = make_location(
        "DC-EAST",
        address=make_address(name="DC-EAST", city="Edison", region="NJ", lat=40.52, lon=-74.41),
    )
    store = make_location(
        "ST-NYC",
        kind=LocationKind.STORE,
        capabilities=(Capability.SHIP_FROM_STORE, Capability.PICKUP),
        address=make_address(name="ST-NYC", lat=40.758, lon=-73.9855),
        priority=50,
    )
    pipeline.produce([dc, store, make_product("SKU-1"), make_product("SKU-2")])


def stock(pipeline: Pipeline, sku: str, location_id: str, units: int, **extra: Any) -> None:
    pipeline.produce([make_stock_event(sku, location_id, units, **extra)])


def figures(pipeline: Pipeline, done: Callable[[Figures], bool]) -> Figures:
    """The channel figures published so far, once ``done`` holds of them."""

    def only(records: list[Message]) -> Figures:
        return [r for r in records if isinstance(r, ChannelAvailability)]

    return only(pipeline.read(TOPIC, lambda r: done(only(r)), timeout=60))


def latest(records: Figures, channel: Channel, sku: str) -> int | None:
    mine = [r.available for r in records if r.channel == channel and r.sku == sku]
    return mine[-1] if mine else None


def count(records: Figures, channel: Channel, sku: str) -> int:
    return sum(1 for r in records if r.channel == channel and r.sku == sku)


def showing(*expected: tuple[Channel, str, int]) -> Callable[[Figures], bool]:
    return lambda records: all(latest(records, c, sku) == n for c, sku, n in expected)


def all_published(pipeline: Pipeline) -> Figures:
    """Every figure published, once the workers are idle."""
    pipeline.wait_until_idle()
    return [
        record
        for record in map(
            pipeline.codec.decode, pipeline.read_changelog(pipeline.settings.topic(TOPIC))
        )
        if isinstance(record, ChannelAvailability)
    ]


def wait_for_policy(pipeline: Pipeline, channel: Channel, done: Callable[[Any], bool]) -> None:
    """Until worker w1's view holds a policy of ``channel`` for which ``done`` holds."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(pipeline.url("w1", "/channels/")) as response:
            body = json.loads(response.read())
        [entry] = [c for c in body["channels"] if c["channel"] == channel.value]
        if done(entry["policy"]):
            return
        time.sleep(0.2)
    raise AssertionError(f"w1 never had the {channel.value} policy wanted: {entry}")


def test_by_default_the_figures_of_the_web_store_and_the_marketplace_ride_on_availability(
    settings: Settings, tmp_path: Path
) -> None:
    with one_worker(settings, tmp_path) as pipeline:  # the default settings
        dom(settings, "channels", "set", "MARKETPLACE", "--kinds", "DC", "--buffer-units", "2")
        wait_for_policy(pipeline, Channel.MARKETPLACE, lambda p: p and p["buffer_units"] == 2)
        network(pipeline)
        stock(pipeline, "SKU-1", "DC-EAST", 5)
        stock(pipeline, "SKU-1", "ST-NYC", 7)

        def channels_of(records: list[Message]) -> dict[str, int]:
            mine = [r for r in records if isinstance(r, Availability) and r.sku == "SKU-1"]
            return {f.channel.value: f.available for f in mine[-1].channels} if mine else {}

        wanted = {"WEB": 12, "MARKETPLACE": 3}  # the marketplace: the DC's 5 less 2
        pipeline.read(
            "dom.inventory.availability.v1", lambda records: channels_of(records) == wanted
        )
        # 4 of the DC's units written off: both figures follow in the sku's next record
        stock(pipeline, "SKU-1", "DC-EAST", -4, kind=StockEventKind.ADJUSTMENT, event_id="adj-1")
        wanted = {"WEB": 8, "MARKETPLACE": 0}  # 1 left at the DC, under the buffer
        records = pipeline.read(
            "dom.inventory.availability.v1", lambda records: channels_of(records) == wanted
        )
        [last] = [r for r in records if isinstance(r, Availability) and r.sku == "SKU-1"][-1:]
        assert [f.channel for f in last.channels] == [Channel.WEB, Channel.MARKETPLACE]
        assert last.total_available == 8
        pipeline.wait_until_idle()
        assert pipeline.read_changelog(pipeline.settings.topic(TOPIC)) == []


def test_store_stock_is_not_sellable_on_a_dc_only_channel_and_a_store_change_leaves_it_alone(
    pipeline: Pipeline, settings: Settings
) -> None:
    said = dom(settings, "channels", "publish-defaults", "--by", "ops-anna")
    assert "published  MARKETPLACE  DC; buffer 2 units" in said, said
    assert "unchanged  WEB" in said  # the default already: nothing to publish
    wait_for_policy(pipeline, Channel.MARKETPLACE, lambda p: p and p["buffer_units"] == 2)
    network(pipeline)
    stock(pipeline, "SKU-1", "DC-EAST", 5)
    stock(pipeline, "SKU-1", "ST-NYC", 7)
    stock(pipeline, "SKU-2", "ST-NYC", 9)

    # the marketplace sees the DC's 5 less its buffer of 2; the web store all 12
    figures(
        pipeline,
        showing(
            (Channel.MARKETPLACE, "SKU-1", 3),
            (Channel.WEB, "SKU-1", 12),
            (Channel.MARKETPLACE, "SKU-2", 0),  # held only at the store
            (Channel.WEB, "SKU-2", 9),
        ),
    )
    before = all_published(pipeline)
    assert latest(before, Channel.POS, "SKU-1") == 12

    # more units at the store: every channel the store serves moves, the marketplace does not
    stock(pipeline, "SKU-1", "ST-NYC", 4, kind=StockEventKind.ADJUSTMENT, event_id="adj-1")
    figures(pipeline, showing((Channel.WEB, "SKU-1", 16)))
    after = all_published(pipeline)
    assert count(after, Channel.MARKETPLACE, "SKU-1") == count(before, Channel.MARKETPLACE, "SKU-1")
    assert latest(after, Channel.MARKETPLACE, "SKU-1") == 3
    for channel in (Channel.WEB, Channel.POS, Channel.WHOLESALE, Channel.CALL_CENTER):
        assert latest(after, channel, "SKU-1") == 16
        assert count(after, channel, "SKU-1") == count(before, channel, "SKU-1") + 1
    assert count(after, Channel.WEB, "SKU-2") == count(before, Channel.WEB, "SKU-2")

    # publishing the defaults again changes nothing
    again = dom(settings, "channels", "publish-defaults")
    assert "published" not in again and "unchanged  MARKETPLACE" in again, again


def test_a_buffer_of_2_units_shows_as_available_less_2(
    pipeline: Pipeline, settings: Settings
) -> None:
    dom(settings, "channels", "set", "WHOLESALE", "--buffer-units", "2", "--by", "ops-anna")
    wait_for_policy(pipeline, Channel.WHOLESALE, lambda p: p and p["buffer_units"] == 2)
    network(pipeline)
    stock(pipeline, "SKU-1", "DC-EAST", 10)
    stock(pipeline, "SKU-1", "ST-NYC", 3)
    stock(pipeline, "SKU-2", "DC-EAST", 1)  # less than the buffer: nothing to sell

    found = figures(
        pipeline,
        showing(
            (Channel.WHOLESALE, "SKU-1", 11),
            (Channel.WEB, "SKU-1", 13),
            (Channel.WHOLESALE, "SKU-2", 0),
            (Channel.WEB, "SKU-2", 1),
        ),
    )
    assert latest(found, Channel.WHOLESALE, "SKU-1") == latest(found, Channel.WEB, "SKU-1") - 2  # type: ignore[operator]

    # a reservation takes 4 units: the wholesale figure follows, 2 below the rest
    pipeline.produce([make_order("ORD-1", lines=[("SKU-1", 4)], channel=Channel.WEB)])
    figures(pipeline, showing((Channel.WEB, "SKU-1", 9), (Channel.WHOLESALE, "SKU-1", 7)))


def test_a_policy_change_takes_effect_without_a_restart(
    pipeline: Pipeline, settings: Settings
) -> None:
    network(pipeline)
    stock(pipeline, "SKU-1", "DC-EAST", 5)
    stock(pipeline, "SKU-1", "ST-NYC", 7)
    stock(pipeline, "SKU-2", "ST-NYC", 2)
    figures(
        pipeline,
        showing((Channel.MARKETPLACE, "SKU-1", 12), (Channel.MARKETPLACE, "SKU-2", 2)),
    )
    before = all_published(pipeline)

    # the operator limits the marketplace to the DCs, 1 unit held back, while w1 runs
    started = time.monotonic()
    said = dom(
        settings,
        "channels",
        "set",
        "marketplace",
        "--kinds",
        "DC",
        "--buffer-units",
        "1",
        "--by",
        "ops-anna",
    )
    assert "MARKETPLACE  DC; buffer 1 units" in said, said
    figures(
        pipeline,
        showing((Channel.MARKETPLACE, "SKU-1", 4), (Channel.MARKETPLACE, "SKU-2", 0)),
    )
    print(f"\nnew marketplace figures {time.monotonic() - started:.2f}s after `dom channels set`")
    after = all_published(pipeline)
    # only the marketplace's figures moved: no other channel's was published again
    for channel in (Channel.WEB, Channel.POS, Channel.WHOLESALE, Channel.CALL_CENTER):
        for sku in ("SKU-1", "SKU-2"):
            assert count(after, channel, sku) == count(before, channel, sku), (channel, sku)
    assert "MARKETPLACE  DC; buffer 1 units  (by ops-anna" in dom(settings, "channels", "list")

    # a change of only the buffer moves only what it changes
    dom(settings, "channels", "set", "MARKETPLACE", "--buffer-units", "2")
    figures(pipeline, showing((Channel.MARKETPLACE, "SKU-1", 3)))
    later = all_published(pipeline)
    assert count(later, Channel.MARKETPLACE, "SKU-2") == count(after, Channel.MARKETPLACE, "SKU-2")

    # reset: back to every location, no buffer
    dom(settings, "channels", "reset", "MARKETPLACE")
    figures(
        pipeline,
        showing((Channel.MARKETPLACE, "SKU-1", 12), (Channel.MARKETPLACE, "SKU-2", 2)),
    )
    assert "MARKETPLACE  every location; no buffer  (default)" in dom(settings, "channels", "list")


def test_a_marketplace_order_never_routes_to_a_location_outside_its_channel(
    pipeline: Pipeline, settings: Settings
) -> None:
    dom(settings, "channels", "set", "MARKETPLACE", "--kinds", "DC")
    wait_for_policy(pipeline, Channel.MARKETPLACE, lambda p: p and p["location_kinds"] == ["DC"])
    network(pipeline)
    stock(pipeline, "SKU-1", "DC-EAST", 5)
    stock(pipeline, "SKU-1", "ST-NYC", 5)
    stock(pipeline, "SKU-2", "ST-NYC", 5)  # only the store holds it
    figures(pipeline, showing((Channel.WEB, "SKU-2", 5), (Channel.WEB, "SKU-1", 10)))

    # the store is the nearest to the customer in Manhattan: a web order ships from it
    pipeline.produce(
        [
            make_order("WEB-1", channel=Channel.WEB),
            make_order("MKT-1", channel=Channel.MARKETPLACE),
            make_order("MKT-2", lines=[("SKU-2", 1)], channel=Channel.MARKETPLACE),
            make_order("MKT-3", lines=[("SKU-1", 1), ("SKU-2", 1)], channel=Channel.MARKETPLACE),
        ]
    )
    outcomes = {
        s.order_id: s
        for s in pipeline.statuses(8)
        if isinstance(s, OrderStatusChanged) and s.status != "RECEIVED"
    }
    assert set(outcomes) == {"WEB-1", "MKT-1", "MKT-2", "MKT-3"}, outcomes
    assert [x.location_id for x in outcomes["WEB-1"].shipments] == ["ST-NYC"]
    assert outcomes["MKT-1"].status == "ALLOCATED"
    assert [x.location_id for x in outcomes["MKT-1"].shipments] == ["DC-EAST"]
    # what only the store holds waits: the channel's policy says why
    assert outcomes["MKT-2"].status == "BACKORDERED" and not outcomes["MKT-2"].shipments
    reason = outcomes["MKT-2"].reason
    assert "limited by the MARKETPLACE channel policy: ST-NYC holds SKU-2" in reason, reason
    assert "outside the MARKETPLACE channel policy: ST-NYC" in reason, reason
    assert outcomes["MKT-3"].status == "PARTIALLY_ALLOCATED"
    assert [x.location_id for x in outcomes["MKT-3"].shipments] == ["DC-EAST"]
    assert [(x.sku, x.quantity) for x in outcomes["MKT-3"].backordered] == [("SKU-2", 1)]

    commands = pipeline.read(
        "dom.fulfillment.commands.v1",
        lambda r: len([c for c in r if isinstance(c, FulfillmentCommand)]) >= 3,
    )
    where = {c.order_id: c.location_id for c in commands if isinstance(c, FulfillmentCommand)}
    assert where == {"WEB-1": "ST-NYC", "MKT-1": "DC-EAST", "MKT-3": "DC-EAST"}

    # the store's units stay for the channels it serves: a web order for SKU-2 gets them
    pipeline.produce([make_order("WEB-2", lines=[("SKU-2", 1)], channel=Channel.WEB)])
    routed = pipeline.read(
        "dom.order-status.v1",
        lambda r: any(
            isinstance(s, OrderStatusChanged) and s.order_id == "WEB-2" and s.shipments for s in r
        ),
    )
    [web2] = [
        s
        for s in routed
        if isinstance(s, OrderStatusChanged) and s.order_id == "WEB-2" and s.shipments
    ]
    assert [x.location_id for x in web2.shipments] == ["ST-NYC"]

"""The demo's synthetic retailer and its traffic: deterministic, realistic, every channel."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from connectors.demo_traffic import Outgoing, TrafficConfig, TrafficGenerator
from connectors.demo_world import CITIES, DC_CITIES, DemoWorld, build_world
from schemas.models import (
    Capability,
    Channel,
    FulfillmentCommand,
    FulfillmentKind,
    FulfillmentMethod,
    FulfillmentStatus,
    FulfillmentUpdate,
    LabelFormat,
    LocationKind,
    Message,
    OrderCancelled,
    OrderPlaced,
    ReturnLabelCommand,
    ReturnReceived,
    ReturnRequested,
    ServiceLevel,
    ShipmentLine,
    StockEvent,
    StockEventKind,
)
from streams.core.routing.geo import haversine_km
from tests.unit.factories import make_address

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@cache
def world(skus: int = 2500, stores: int = 36, seed: int = 42) -> DemoWorld:
    return build_world(now=NOW, skus=skus, stores=stores, seed=seed)


def run_traffic(
    w: DemoWorld, seconds: float, config: TrafficConfig | None = None, step: float = 0.1
) -> list[Outgoing]:
    generator = TrafficGenerator(w, config or TrafficConfig(), run_id="t1", start=NOW)
    out: list[Outgoing] = []
    for n in range(1, int(seconds / step) + 1):
        out += generator.tick(NOW + timedelta(seconds=n * step))
    return out


def test_same_arguments_same_world_and_seed_changes_it() -> None:
    a = build_world(now=NOW, skus=300, stores=8, seed=5)
    assert a == build_world(now=NOW, skus=300, stores=8, seed=5)
    b = build_world(now=NOW, skus=300, stores=8, seed=6)
    assert a.products != b.products and a.stock != b.stock


def test_a_stock_scale_multiplies_the_counts_and_keeps_the_world() -> None:
    plain = build_world(now=NOW, skus=300, stores=8, seed=5)
    deep = build_world(now=NOW, skus=300, stores=8, seed=5, stock_scale=3)
    assert (deep.locations, deep.products) == (plain.locations, plain.products)
    pairs = list(zip(plain.stock, deep.stock, strict=True))
    for before, after in pairs:
        assert (after.sku, after.location_id, after.kind) == (
            before.sku,
            before.location_id,
            before.kind,
        )
        wanted = before.quantity * (3 if before.kind is StockEventKind.SNAPSHOT else 1)
        assert after.quantity == wanted  # safety stock stays as it was
    assert any(b.kind is StockEventKind.SAFETY_STOCK for b, _ in pairs)
    with pytest.raises(ValueError, match="stock_scale"):
        build_world(now=NOW, skus=3, stock_scale=0)


def test_counts_ids_and_capabilities() -> None:
    w = world()
    assert len(w.dcs) == 4 and len(w.stores) == 36
    assert len(w.products) == 2500 and len(w.customers) == 5000
    assert len({x.location_id for x in w.locations}) == 40
    assert len({p.sku for p in w.products}) == 2500
    for dc in w.dcs:
        assert set(dc.capabilities) == {Capability.SHIP, Capability.RETURNS}
    for store in w.stores:
        assert {Capability.PICKUP, Capability.SHIP_FROM_STORE} <= set(store.capabilities)
    assert 0 < sum(Capability.RETURNS in s.capabilities for s in w.stores) < len(w.stores)
    assert any(x.daily_order_capacity for x in w.locations)
    assert len({x.priority for x in w.locations}) > 3
    small = build_world(now=NOW, skus=200, stores=5, seed=1)
    assert len(small.stores) == 5 and len(small.products) == 200


def test_locations_sit_at_real_us_cities() -> None:
    known = {(c.name, c.region): c for c in (*CITIES, *DC_CITIES)}
    for location in world().locations:
        a = location.address
        city = known[(a.city, a.region)]
        assert (a.lat, a.lon) == (city.lat, city.lon) and a.postal_code == city.postal_code
        assert a.country == "US" and 24 < city.lat < 49.5 and -125 < city.lon < -66
    by_code = {c.code: c for c in CITIES}
    nyc, lax, chi = by_code["NYC"], by_code["LAX"], by_code["CHI"]
    # Real great-circle distances: New York-Los Angeles ~3936 km, New York-Chicago ~1145 km.
    assert haversine_km(nyc.lat, nyc.lon, lax.lat, lax.lon) == pytest.approx(3936, abs=15)
    assert haversine_km(nyc.lat, nyc.lon, chi.lat, chi.lon) == pytest.approx(1145, abs=15)


def test_catalogue_is_varied() -> None:
    products = world().products
    assert len({p.category for p in products}) >= 8
    assert 0.03 < sum(p.fragile for p in products) / len(products) < 0.4
    assert 0.03 < sum(p.hazmat for p in products) / len(products) < 0.3
    assert all(p.unit_price > 0 and p.weight_grams and p.length_mm for p in products)
    assert any(p.tags for p in products) and any(not p.tags for p in products)
    assert max(p.unit_price for p in products) > 500  # high-value items exist


def test_stock_never_negative_deep_at_dcs_shallow_in_stores() -> None:
    w = world()
    skus, kinds = {p.sku for p in w.products}, {x.location_id: x.kind for x in w.locations}
    on_hand: dict[str, list[int]] = defaultdict(list)
    totals: Counter[str] = Counter()
    for event in w.stock:
        assert event.quantity >= 0
        assert event.sku in skus and event.location_id in kinds
        if event.kind is StockEventKind.SNAPSHOT:
            on_hand[kinds[event.location_id]].append(event.quantity)
            totals[event.sku] += event.quantity
    dc, store = on_hand[LocationKind.DC], on_hand[LocationKind.STORE]
    assert min(dc) >= 0 and sum(dc) / len(dc) > 10 * (sum(store) / len(store))
    scarce = [sku for sku in skus if totals[sku] <= 3]
    assert 0.02 * len(skus) < len(scarce) < 0.15 * len(skus)
    assert len({e.event_id for e in w.stock}) == len(w.stock)


def test_traffic_covers_every_channel_at_the_rate() -> None:
    w = world()
    records = run_traffic(w, 10.0, TrafficConfig(rate=20))
    orders = [r for r in records if isinstance(r, OrderPlaced)]
    assert len(orders) == 200
    assert {o.channel for o in orders} == set(Channel)
    assert len({o.order_id for o in orders}) == 200
    assert any(isinstance(r, StockEvent) for r in records)
    assert {o.service_level for o in orders} == set(ServiceLevel)
    assert any("gift" in o.tags for o in orders)
    stores = {s.location_id for s in w.stores}
    for o in orders:
        assert 1 <= len(o.lines) <= 5
        assert o.order_total == sum(x.unit_price * x.quantity for x in o.lines)
        if o.channel is Channel.POS:
            assert o.fulfillment_method is FulfillmentMethod.PICKUP
            assert o.pickup_location_id in stores
        if o.fulfillment_method is FulfillmentMethod.SHIP:
            assert o.ship_to is not None and o.ship_to.lat is not None
            assert o.ship_to.lon is not None
            nearest = min(haversine_km(o.ship_to.lat, o.ship_to.lon, c.lat, c.lon) for c in CITIES)
            assert nearest < 25


def test_traffic_is_deterministic_for_a_run() -> None:
    w = world(skus=300, stores=6)
    config = TrafficConfig(rate=30, cancel_share=0.2)
    assert run_traffic(w, 5.0, config) == run_traffic(w, 5.0, config)
    assert any(isinstance(r, OrderCancelled) for r in run_traffic(w, 5.0, config))


def _command(kind: FulfillmentKind, **fields: object) -> FulfillmentCommand:
    values: dict[str, object] = {
        "command_id": f"ORD-1-1-1:{kind.value}",
        "order_id": "ORD-1",
        "shipment_id": "ORD-1-1-1",
        "location_id": "DC-NJ",
        "kind": kind,
        "lines": (ShipmentLine(line_id="1", sku="APP-00001", quantity=2),),
        "service_level": ServiceLevel.STANDARD,
        "created_at": NOW,
    }
    values.update(fields)
    return FulfillmentCommand(**values)  # type: ignore[arg-type]


def _answers(
    config: TrafficConfig, *commands: FulfillmentCommand, label: ReturnLabelCommand | None = None
) -> list[Message]:
    generator = TrafficGenerator(world(skus=300, stores=6), config, run_id="t2", start=NOW)
    for command in commands:
        generator.on_fulfillment_command(command, NOW)
        generator.on_fulfillment_command(command, NOW)  # a redelivered command is answered once
    if label is not None:
        generator.on_return_label(label)
    end = NOW + timedelta(seconds=60)
    return [
        r
        for r in generator.tick(end)
        if isinstance(r, Message) and not isinstance(r, OrderPlaced | StockEvent)
    ]


def test_warehouses_ship_stores_hand_over_transfers_do_both() -> None:
    config = TrafficConfig(reject_share=0, return_share=0)
    ship = _answers(config, _command(FulfillmentKind.SHIP, ship_to=make_address()))
    assert [u.status for u in ship if isinstance(u, FulfillmentUpdate)] == [
        FulfillmentStatus.ACCEPTED,
        FulfillmentStatus.SHIPPED,
    ]
    pickup = _answers(config, _command(FulfillmentKind.PICKUP, location_id="ST-NYC"))
    assert [(u.status, u.location_id) for u in pickup if isinstance(u, FulfillmentUpdate)] == [
        (FulfillmentStatus.PICKED_UP, "ST-NYC")
    ]
    transfer = _command(FulfillmentKind.TRANSFER, destination_location_id="ST-BOS")
    updates = [u for u in _answers(config, transfer) if isinstance(u, FulfillmentUpdate)]
    assert [(u.status, u.location_id) for u in updates][-2:] == [
        (FulfillmentStatus.SHIPPED, "DC-NJ"),
        (FulfillmentStatus.PICKED_UP, "ST-BOS"),
    ]


def test_some_shipments_are_rejected() -> None:
    answers = _answers(TrafficConfig(reject_share=1), _command(FulfillmentKind.SHIP))
    [update] = answers
    assert isinstance(update, FulfillmentUpdate) and update.status is FulfillmentStatus.REJECTED
    assert update.reason


def test_returns_follow_shipments_and_go_where_the_pipeline_says() -> None:
    config = TrafficConfig(reject_share=0, return_share=1)
    ship_to = make_address(city="Boston", region="MA", lat=42.36, lon=-71.06)
    answers = _answers(config, _command(FulfillmentKind.SHIP, ship_to=ship_to))
    requested = [r for r in answers if isinstance(r, ReturnRequested)]
    received = [r for r in answers if isinstance(r, ReturnReceived)]
    assert len(requested) == 1 and len(received) == 1
    assert requested[0].ship_from == ship_to and received[0].return_id == requested[0].return_id
    assert received[0].location_id == "ST-NYC"  # the nearest location that takes returns
    assert requested[0].requested_at < received[0].received_at
    label = ReturnLabelCommand(
        command_id="c",
        return_id=requested[0].return_id,
        rma_number="RMA-1",
        order_id="ORD-1",
        return_location_id="DC-NJ",
        ship_from=ship_to,
        ship_to=make_address(),
        label_format=LabelFormat.ZPL,
        label=b"^XA^XZ",
        created_at=NOW,
    )
    relabelled = _answers(config, _command(FulfillmentKind.SHIP, ship_to=ship_to), label=label)
    assert [r.location_id for r in relabelled if isinstance(r, ReturnReceived)] == ["DC-NJ"]

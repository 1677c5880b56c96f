"""The inventory stage's channel figures, batch by batch: every published channel's figure in
the sku's availability record; on dom.channel-availability.v1 (when that is on) once per sku
and batch, only the figures that moved, stored with the stock they come from; a plan change
reaches the skus it moves through a refresh; a batch read again publishes its skus' figures
again."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from schemas.enums import Channel, LocationKind, StockEventKind
from schemas.internal import ChannelRefresh
from schemas.models import Availability
from schemas.sellable import ChannelAvailability
from streams.core.inventory.stock import from_dict
from streams.inventory_channels import ChannelRefresher, plan_marker
from tests.unit.factories import T0, make_channel_policy, make_location, make_stock_event
from tests.unit.test_batch_table import FakeTable
from tests.unit.test_inventory_stage import Inventory, reserve

STORE = "ST-1"


def inventory(topic: bool = True) -> Inventory:
    """LOC-A and LOC-B (DCs) and a store; the marketplace sells from the DCs, 2 held back;
    ``topic``: the figures also go on dom.channel-availability.v1."""
    inv = Inventory(topic=topic)
    inv.view.apply(make_location(STORE, kind=LocationKind.STORE))
    inv.view.apply(make_channel_policy())
    return inv


def figures(inv: Inventory, since: int = 0) -> list[tuple[str, str, int]]:
    """(channel, sku, available) of every channel record sent, from the ``since``-th on."""
    records = [r for r in inv.run.records() if isinstance(r, ChannelAvailability)]
    return [(r.channel.value, r.sku, r.available) for r in records[since:]]


def sent(inv: Inventory) -> int:
    return len(figures(inv))


def in_availability(inv: Inventory, since: int = 0) -> list[dict[str, int]]:
    """Each availability record's channel figures (channel -> available), from the
    ``since``-th on."""
    records = [r for r in inv.run.records() if isinstance(r, Availability)]
    return [{f.channel.value: f.available for f in r.channels} for r in records[since:]]


def everyone(sku: str, n: int, marketplace: int) -> list[tuple[str, str, int]]:
    by = {"MARKETPLACE": marketplace}
    return [(c.value, sku, by.get(c.value, n)) for c in Channel]


def stored(inv: Inventory, sku: str = "SKU-1") -> Any:
    return from_dict(json.loads(inv.table[sku.encode()]))


def test_a_batch_publishes_each_channel_once_with_its_final_figure() -> None:
    inv = inventory()
    inv.batch(
        inv.event(make_stock_event("SKU-1", "LOC-A", 10)),
        inv.event(make_stock_event("SKU-1", STORE, 5)),
        *(inv.event(reserve(f"ORD-{n}", "SKU-1", "LOC-A")) for n in range(4)),
    )
    # the marketplace: LOC-A's 6 left, less 2; the others 6 + the store's 5
    assert figures(inv) == everyone("SKU-1", 11, 4)
    assert stored(inv).channels == {c: n for c, _, n in everyone("SKU-1", 11, 4)}
    assert stored(inv).channels_plan == inv.view.channel_plan().fingerprint
    assert plan_marker(inv.view.channel_plan().fingerprint) in inv.table[b"SKU-1"]


def test_a_change_at_a_store_republishes_only_the_channels_the_store_serves() -> None:
    inv = inventory()
    inv.batch(inv.event(make_stock_event("SKU-1", "LOC-A", 10)))
    before = sent(inv)
    inv.batch(inv.event(make_stock_event("SKU-1", STORE, 3, kind=StockEventKind.ADJUSTMENT)))
    assert figures(inv, before) == [
        (c.value, "SKU-1", 13) for c in Channel if c != Channel.MARKETPLACE
    ]


def test_a_batch_that_moves_no_figure_sends_no_channel_record() -> None:
    inv = inventory()
    inv.batch(inv.event(make_stock_event("SKU-1", "LOC-A", 10)))
    before = sent(inv)
    # the same count again, under another event id: the stock is what it was
    inv.batch(inv.event(make_stock_event("SKU-1", "LOC-A", 10, event_id="recount")))
    assert sent(inv) == before
    assert [r.sku for r in inv.run.records() if isinstance(r, Availability)] == ["SKU-1"] * 2


def test_a_refresh_after_a_policy_change_publishes_only_the_figures_it_moves() -> None:
    inv = inventory()
    inv.batch(
        inv.event(make_stock_event("SKU-1", "LOC-A", 10)),
        inv.event(make_stock_event("SKU-2", STORE, 4)),
    )
    before = sent(inv)
    inv.view.apply(make_channel_policy(buffer_units=5))  # the marketplace holds back 5 now

    inv.batch(
        inv.event(ChannelRefresh(sku="SKU-1", issued_at=T0)),
        inv.event(ChannelRefresh(sku="SKU-2", issued_at=T0)),  # 0 for it under either policy
        inv.event(ChannelRefresh(sku="SKU-9", issued_at=T0)),  # never stocked
    )
    assert figures(inv, before) == [("MARKETPLACE", "SKU-1", 5)]
    assert b"SKU-9" not in inv.table
    assert stored(inv, "SKU-2").channels_plan != inv.view.channel_plan().fingerprint  # untouched

    again = sent(inv)
    inv.batch(inv.event(ChannelRefresh(sku="SKU-1", issued_at=T0)))  # applied any number of times
    assert sent(inv) == again


def test_a_batch_read_again_publishes_its_skus_figures_again() -> None:
    inv = inventory()
    count = inv.event(make_stock_event("SKU-1", "LOC-A", 10))
    inv.batch(count)
    before = sent(inv)
    inv.batch(count)  # redelivered: its first records may never have gone out
    assert figures(inv, before) == everyone("SKU-1", 10, 8)
    inv.batch(inv.event(make_stock_event("SKU-1", "LOC-B", 0)))
    assert sent(inv) == before + len(Channel)  # then, as usual, only what moves


def test_availability_carries_every_channels_figure_and_no_channel_record_goes_out() -> None:
    inv = inventory(topic=False)
    inv.batch(
        inv.event(make_stock_event("SKU-1", "LOC-A", 10)),
        inv.event(make_stock_event("SKU-1", STORE, 5)),
        *(inv.event(reserve(f"ORD-{n}", "SKU-1", "LOC-A")) for n in range(4)),
    )
    # one record for the batch, every channel in the contract's order
    [availability] = inv.availability().values()
    assert [f.channel for f in availability.channels] == list(Channel)
    assert in_availability(inv) == [{c: n for c, _, n in everyone("SKU-1", 11, 4)}]
    assert sent(inv) == 0

    # a change at the store: every figure again in the one record, the marketplace's unmoved
    inv.batch(inv.event(make_stock_event("SKU-1", STORE, 3, kind=StockEventKind.ADJUSTMENT)))
    assert in_availability(inv, 1) == [{c: n for c, _, n in everyone("SKU-1", 14, 4)}]
    assert sent(inv) == 0


def test_without_the_topic_a_policy_change_republishes_the_availability_of_the_skus_it_moves() -> (
    None
):
    inv = inventory(topic=False)
    inv.batch(
        inv.event(make_stock_event("SKU-1", "LOC-A", 10)),
        inv.event(make_stock_event("SKU-2", STORE, 4)),
    )
    inv.view.apply(make_channel_policy(buffer_units=5))  # the marketplace holds back 5 now
    inv.batch(
        inv.event(ChannelRefresh(sku="SKU-1", issued_at=T0)),
        inv.event(ChannelRefresh(sku="SKU-2", issued_at=T0)),  # 0 for it under either policy
    )
    assert in_availability(inv, 2) == [{c: n for c, _, n in everyone("SKU-1", 10, 5)}]
    assert [r.sku for r in inv.run.records() if isinstance(r, Availability)][2:] == ["SKU-1"]
    assert sent(inv) == 0


def test_no_published_channel_leaves_the_availability_without_figures() -> None:
    inv = Inventory()
    inv.view.published_channels = ()
    inv.batch(inv.event(make_stock_event("SKU-1", "LOC-A", 10)))
    assert inv.availability()["SKU-1"].channels == ()
    assert inv.availability()["SKU-1"].total_available == 10


# ---- the refresher: a plan change reaches the skus it moves -------------------------------


class FakeRuntime:
    def __init__(self) -> None:
        self.sent: list[list[Any]] = []
        self.moving = False
        self.gen = 1

    def rebalancing(self) -> bool:
        return self.moving

    def generation(self) -> int:
        return self.gen

    async def send_all(self, records: list[Any], sender: str) -> None:
        self.sent.append(list(records))


def refreshed(runtime: FakeRuntime) -> list[list[str]]:
    return [[r.sku for r in batch] for batch in runtime.sent]


def test_a_plan_change_sends_a_refresh_for_each_sku_whose_figures_it_moves() -> None:
    inv = inventory()
    inv.batch(
        inv.event(make_stock_event("SKU-1", "LOC-A", 10)),
        inv.event(make_stock_event("SKU-2", STORE, 4)),
        inv.event(make_stock_event("SKU-3", "LOC-B", 1)),
    )
    table = FakeTable(dict(inv.table))
    table[b"SKU-BROKEN"] = b"not json"
    runtime = FakeRuntime()
    refresher = ChannelRefresher(runtime, table, inv.view)  # type: ignore[arg-type]
    inv.view.ready.set()

    asyncio.run(refresher.check())
    assert refreshed(runtime) == []  # figured under the plan in force: nothing decoded
    table.reads.clear()

    inv.view.apply(make_channel_policy(buffer_units=0))  # the marketplace holds nothing back
    asyncio.run(refresher.check())
    # SKU-2 is only at the store: 0 for the marketplace under either policy
    assert refreshed(runtime) == [["SKU-1", "SKU-3"]]
    asyncio.run(refresher.check())
    assert len(runtime.sent) == 1  # the same plan, the same partitions: nothing to look at

    runtime.gen = 2  # a rebalance: the partitions may have come from a worker that lagged
    asyncio.run(refresher.check())
    assert refreshed(runtime)[-1] == ["SKU-1", "SKU-3"]


def test_a_refresh_look_cut_short_by_a_rebalance_is_made_again() -> None:
    inv = inventory()
    inv.batch(inv.event(make_stock_event("SKU-1", "LOC-A", 10)))
    runtime = FakeRuntime()
    refresher = ChannelRefresher(runtime, FakeTable(dict(inv.table)), inv.view)  # type: ignore[arg-type]
    inv.view.ready.set()
    inv.view.apply(make_channel_policy(buffer_units=0))
    runtime.moving = True
    asyncio.run(refresher.check())
    assert runtime.sent == [] and refresher.done is None
    runtime.moving = False
    asyncio.run(refresher.check())
    assert refreshed(runtime) == [["SKU-1"]]

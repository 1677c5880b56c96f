"""What each sales channel may sell of a sku, by its policy: the pure core
(``streams.core.channels``), the default policy file, and the figures a sku's owner publishes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.enums import Channel, LocationKind
from streams.core import replays
from streams.core.channels.files import ChannelFileError, load_channel_file
from streams.core.channels.plan import ChannelPlan, Site, changed_figures, published_channels
from streams.core.channels.policy import SellPolicy, default_policy, from_record, same_policy
from streams.core.channels.sku import channel_records, needs_refigure, publish_again, refigure
from streams.core.inventory import stock as inventory
from streams.core.inventory.stock import LocationStock
from tests.unit.factories import T0, make_channel_policy

DC, STORE = LocationKind.DC, LocationKind.STORE
SITES = (Site("DC-1", DC), Site("DC-2", DC), Site("ST-1", STORE), Site("ST-2", STORE))
DEFAULTS = Path(__file__).resolve().parents[2] / "deploy" / "channels" / "channels.yaml"


def plan(*policies: SellPolicy, sites: tuple[Site, ...] = SITES) -> ChannelPlan:
    return ChannelPlan({p.channel: p for p in policies}, sites)


def dc_only(**kw: int) -> SellPolicy:
    return SellPolicy(Channel.MARKETPLACE, location_kinds=frozenset({DC}), **kw)


# ---- the arithmetic -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "available", "sellable"),
    [
        (SellPolicy(Channel.WEB), 12, 12),
        (SellPolicy(Channel.WEB, buffer_units=2), 12, 10),
        (SellPolicy(Channel.WEB, buffer_units=2), 2, 0),
        (SellPolicy(Channel.WEB, buffer_units=5), 3, 0),  # never below zero
        (SellPolicy(Channel.WEB, buffer_pct=10), 12, 10),  # 10% of 12 is 1.2: 2 held back
        (SellPolicy(Channel.WEB, buffer_pct=10), 30, 27),  # exactly 3, not 4 (no float error)
        (SellPolicy(Channel.WEB, buffer_pct=100), 7, 0),
        (SellPolicy(Channel.WEB, buffer_units=1, buffer_pct=50), 10, 4),
        (SellPolicy(Channel.WEB, low_stock_threshold=5), 4, 0),  # below the threshold: 0
        (SellPolicy(Channel.WEB, low_stock_threshold=5), 5, 5),
        (SellPolicy(Channel.WEB, buffer_units=2, low_stock_threshold=5), 6, 4),
        (SellPolicy(Channel.WEB), 0, 0),
    ],
)
def test_what_a_channel_may_sell_of_what_its_locations_hold(
    policy: SellPolicy, available: int, sellable: int
) -> None:
    assert policy.sellable(available) == sellable


def test_a_location_serves_a_channel_named_by_id_or_by_kind_and_every_one_without_a_policy() -> (
    None
):
    policy = SellPolicy(
        Channel.MARKETPLACE, location_ids=frozenset({"ST-1"}), location_kinds=frozenset({DC})
    )
    assert policy.serves("DC-9", DC) and policy.serves("ST-1", STORE)
    assert not policy.serves("ST-2", STORE)
    assert default_policy(Channel.WEB).serves("ST-2", STORE)


def test_the_figures_of_every_channel_count_only_the_active_locations_that_serve_it() -> None:
    sites = (*SITES[:3], Site("ST-2", STORE, active=False))
    figures = plan(dc_only(buffer_units=2), sites=sites).figures(
        [("DC-1", 5), ("DC-2", 1), ("ST-1", 7), ("ST-2", 100), ("GONE", 50)]
    )
    # the marketplace: the DCs' 6 less 2; the others every active known location's 13
    assert figures == {
        "WEB": 13,
        "MARKETPLACE": 4,
        "POS": 13,
        "WHOLESALE": 13,
        "CALL_CENTER": 13,
    }


def test_stock_held_only_outside_a_channel_is_zero_for_it() -> None:
    figures = plan(dc_only()).figures([("ST-1", 9)])
    assert figures["MARKETPLACE"] == 0 and figures["WEB"] == 9


def test_routing_gets_the_locations_a_channel_may_use() -> None:
    policy = SellPolicy(
        Channel.MARKETPLACE, location_ids=frozenset({"ST-1"}), location_kinds=frozenset({DC})
    )
    both = plan(policy)
    assert both.locations_for("MARKETPLACE") == {"DC-1", "DC-2", "ST-1"}
    assert both.locations_for("WEB") is None  # every location
    assert both.policy("MARKETPLACE") == policy
    assert both.policy("POS") == default_policy(Channel.POS)


def test_the_plan_fingerprint_names_what_the_figures_depend_on_and_nothing_else() -> None:
    base = plan(dc_only(buffer_units=2))
    assert plan(dc_only(buffer_units=2)).fingerprint == base.fingerprint  # deterministic
    assert plan(dc_only(buffer_units=2), sites=SITES[::-1]).fingerprint == base.fingerprint
    assert plan(dc_only(buffer_units=3)).fingerprint != base.fingerprint
    assert plan(dc_only(buffer_units=2, low_stock_threshold=1)).fingerprint != base.fingerprint
    assert plan().fingerprint != base.fingerprint
    closed = (*SITES[:3], Site("ST-2", STORE, active=False))
    assert plan(dc_only(buffer_units=2), sites=closed).fingerprint != base.fingerprint
    # a policy naming a location nobody knows moves no figure
    named = SellPolicy(Channel.WEB, location_ids=frozenset({"DC-1", "DC-2", "ST-1", "ST-2", "X"}))
    assert plan(named).fingerprint == plan().fingerprint


def test_only_the_figures_that_moved_are_news() -> None:
    assert changed_figures({"WEB": 5, "POS": 5}, {"WEB": 5, "POS": 4}) == {"POS": 4}
    assert changed_figures({}, {"WEB": 0}) == {"WEB": 0}  # never published: news, even 0


def test_policy_records_read_as_the_core_applies_them() -> None:
    record = make_channel_policy(buffer_pct=10)
    policy = from_record(record)
    assert policy == dc_only(buffer_units=2, buffer_pct=10)
    assert policy.describe() == "DC; buffer 2 units + 10%"
    assert same_policy(record, record.model_copy(update={"updated_by": "bob", "updated_at": T0}))
    assert not same_policy(record, record.model_copy(update={"buffer_units": 3}))
    assert default_policy(Channel.WEB).describe() == "every location; no buffer"


# ---- a sku's figures, as its owner keeps them -----------------------------------------------


def sku(**on_hand: int) -> inventory.SkuInventory:
    locations = {loc.replace("_", "-"): LocationStock(n) for loc, n in on_hand.items()}
    return inventory.SkuInventory("SKU-1", locations=locations)


def test_a_sku_publishes_each_channel_once_then_only_what_moves() -> None:
    marketplace = plan(dc_only())
    first, news = refigure(sku(DC_1=5, ST_1=7), marketplace)
    assert news == {"WEB": 12, "MARKETPLACE": 5, "POS": 12, "WHOLESALE": 12, "CALL_CENTER": 12}
    assert first.channels == news and first.channels_plan == marketplace.fingerprint

    # more units at the store: the marketplace, served by the DCs alone, hears nothing
    at_store = replace(first, locations={**first.locations, "ST-1": LocationStock(9)})
    second, news = refigure(at_store, marketplace)
    assert news == {"WEB": 14, "POS": 14, "WHOLESALE": 14, "CALL_CENTER": 14}
    same, news = refigure(second, marketplace)
    assert news == {} and same is second


def test_a_new_plan_publishes_only_the_channels_it_moves() -> None:
    state, _ = refigure(sku(DC_1=5, ST_1=7), plan())
    assert needs_refigure(state, plan(dc_only()))
    moved, news = refigure(state, plan(dc_only()))
    assert news == {"MARKETPLACE": 5}
    # a plan that moves no figure of this sku (POS loses ST-2, which holds none of it): nothing
    # to publish, and the sku notes the plan it was figured under
    other = plan(dc_only(), SellPolicy(Channel.POS, location_ids=frozenset({"DC-1", "ST-1"})))
    assert not needs_refigure(moved, other)
    noted, news = refigure(moved, other)
    assert news == {} and noted.channels == moved.channels
    assert noted.channels_plan == other.fingerprint != moved.channels_plan


def test_a_sku_whose_figures_may_be_lost_publishes_them_all_again() -> None:
    state, _ = refigure(sku(DC_1=5), plan())
    again, news = refigure(publish_again(state), plan())
    assert news == state.channels and again.channels == state.channels


def test_published_figures_survive_the_table() -> None:
    state, _ = refigure(sku(DC_1=5, ST_1=7), plan(dc_only()))
    restored = inventory.from_dict(inventory.to_dict(state))
    assert restored.channels == state.channels
    assert restored.channels_plan == state.channels_plan
    legacy = inventory.to_dict(state)
    del legacy["channels"], legacy["channels_plan"]  # a value of an older worker
    assert needs_refigure(inventory.from_dict(legacy), plan(dc_only()))


def test_the_records_of_the_figures_that_moved_are_keyed_channel_and_sku() -> None:
    records = channel_records("SKU-1", {"POS": 3, "WEB": 4}, T0)
    assert [(r.channel_sku, r.available) for r in records] == [("WEB|SKU-1", 4), ("POS|SKU-1", 3)]


def test_a_batch_that_reads_again_what_the_sku_read_is_a_replay() -> None:
    marks = {"cmds:0": (0, 41, 1000), "stock:0": (0, 7, 1000)}
    assert not replays.rereads(marks, {"cmds:0": 42})  # the next batch: no overlap
    assert not replays.rereads(marks, {"stock:1": 0})  # another partition
    assert replays.rereads(marks, {"cmds:0": 40})  # a restart from an earlier commit
    assert replays.rereads(marks, {"cmds:0": 50, "stock:0": 7})


# ---- the default policy file ----------------------------------------------------------------


def test_the_default_policies_sell_marketplace_from_the_dcs_with_2_held_back() -> None:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    policies = load_channel_file(DEFAULTS.read_text(), str(DEFAULTS), updated_by="ops", now=now)
    by_channel = {p.channel: from_record(p) for p in policies}
    assert set(by_channel) == set(Channel)
    assert by_channel[Channel.MARKETPLACE] == dc_only(buffer_units=2)
    for channel in set(Channel) - {Channel.MARKETPLACE}:
        assert by_channel[channel] == default_policy(channel)


def test_a_policy_file_with_problems_names_each_of_them() -> None:
    text = """
channels:
  - channel: MARKET
  - channel: WEB
    buffer_pct: 150
  - channel: POS
    kinds: [DC]
  - channel: WHOLESALE
  - channel: WHOLESALE
    buffer_units: 1
  - just a string
"""
    with pytest.raises(ChannelFileError) as error:
        load_channel_file(text, "bad.yaml", updated_by="ops", now=T0)
    problems = error.value.problems
    assert len(problems) == 5, problems
    assert problems[0].startswith("bad.yaml: entry 1: channel: Input should be 'WEB'")
    assert "buffer_pct: Input should be less than or equal to 100" in problems[1]
    assert "unknown key(s) kinds" in problems[2]
    assert "entry 5: WHOLESALE is given by an earlier entry" in problems[3]
    assert "expected a mapping" in problems[4]
    with pytest.raises(ChannelFileError, match="expected a list of policies"):
        load_channel_file("rules: []", "x.yaml", updated_by="ops", now=T0)


def test_only_the_published_channels_get_figures_and_routing_follows_every_policy() -> None:
    assert published_channels("WEB, marketplace") == (Channel.WEB, Channel.MARKETPLACE)
    assert published_channels("all") == tuple(Channel)
    with pytest.raises(ValueError, match="no channel EBAY"):
        published_channels("WEB,EBAY")
    sites = [Site("DC-1", LocationKind.DC), Site("ST-1", LocationKind.STORE)]
    dc_only = replace(default_policy(Channel.POS), location_kinds=frozenset({LocationKind.DC}))
    plan = ChannelPlan({Channel.POS: dc_only}, sites, published=(Channel.WEB,))

    assert plan.figures([("DC-1", 3), ("ST-1", 4)]) == {"WEB": 7}
    assert plan.locations_for("POS") == frozenset({"DC-1"})  # routing still follows it
    # A policy of a channel not published changes no figure: no rescan of the skus.
    everything = ChannelPlan({}, sites, published=(Channel.WEB,))
    assert plan.fingerprint == everything.fingerprint

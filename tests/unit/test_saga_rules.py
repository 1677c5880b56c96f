"""The saga under the operators' rules: routing steered or held, parcels packed as the
packaging and marketing rules say, cartons from the catalogue, and every record naming the
rules that fired."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

from schemas.commands import PackagingCommand
from schemas.enums import InsertKind, RuleStage
from schemas.models import OrderPlaced, RuleAction
from streams.core.rules.files import load_rule_file
from streams.core.rules.ruleset import RuleSet
from tests.unit.factories import T0, make_order, make_product, make_rule
from tests.unit.test_saga import STORE, WITH_STORE, World, placed

DEFAULT_RULES = Path(__file__).parents[2] / "deploy" / "rules" / "default.yaml"
PRODUCTS = {
    "SKU-1": make_product("SKU-1"),
    "VASE": make_product("VASE", fragile=True, unit_price=Decimal("300.00")),
    "ACID": make_product("ACID", hazmat=True),
}


def default_rules() -> RuleSet:
    rules = load_rule_file(DEFAULT_RULES.read_text(), "default.yaml", updated_by="test", now=T0)
    ruleset, errors = RuleSet.of(rules)
    assert not errors
    return ruleset


def ruled(world: World, rules: RuleSet) -> World:
    world.ctx = dataclasses.replace(world.ctx, rules=rules, products=PRODUCTS)
    return world


def packaging(world: World) -> list[PackagingCommand]:
    return [x for x in world.published if isinstance(x, PackagingCommand)]


def order_of(total: str, lines: list[tuple[str, int]], **kw: object) -> OrderPlaced:
    return make_order(lines=lines, order_total=Decimal(total), **kw)


def test_a_hold_rule_puts_the_order_on_hold_and_reserves_nothing() -> None:
    world = ruled(World({"SKU-1": {"DC-EAST": 10}}), default_rules())

    placed(world, order_of("6000.00", [("SKU-1", 1)]))

    assert world.statuses() == ["RECEIVED", "ON_HOLD"]
    held = world.last_status()
    assert "manual review" in held.reason
    assert held.rules_fired == ("hold-very-large-orders",)
    assert world.reserved_total() == 0 and not world.fulfillment()


def test_hazmat_never_ships_from_a_store_even_when_it_is_nearest() -> None:
    # The store is in Manhattan, next to the customer; the DC is further away.
    world = World({"ACID": {"STORE-1": 5, "DC-WEST": 5}}, locations=WITH_STORE)
    ruled(world, default_rules())

    placed(world, order_of("20.00", [("ACID", 1)]))

    [command] = world.fulfillment()
    assert command.location_id == "DC-WEST"
    assert "hazmat-not-from-stores" in command.rules_fired
    assert "hazmat-not-from-stores" in world.last_status().reason
    assert world.at("ACID", STORE.location_id).reserved == 0


def test_without_the_rule_the_store_ships_the_hazmat_item() -> None:
    world = World({"ACID": {"STORE-1": 5, "DC-WEST": 5}}, locations=WITH_STORE)
    ruled(world, RuleSet())

    placed(world, order_of("20.00", [("ACID", 1)]))

    assert [c.location_id for c in world.fulfillment()] == ["STORE-1"]


def test_high_value_fragile_order_gets_protective_padded_cartons_a_note_and_inserts() -> None:
    world = ruled(World({"VASE": {"DC-EAST": 5}, "SKU-1": {"DC-EAST": 5}}), default_rules())

    placed(world, order_of("610.00", [("VASE", 2), ("SKU-1", 1)]))

    [pack] = packaging(world)
    assert pack.packaging == "PROTECTIVE"
    assert all(c.box_type.startswith("PADDED") for c in pack.cartons)
    assert sorted(s for c in pack.cartons for s in c.skus) == ["SKU-1", "VASE", "VASE"]
    inserts = {(i.kind, i.value) for i in pack.inserts}
    assert (InsertKind.NOTE, "Fragile - handle with care") in inserts
    assert (InsertKind.SAMPLE, "SAMPLE-001") in inserts  # over 150
    assert (InsertKind.DISCOUNT_CODE, "GOLD10") in inserts  # the factory's customer is GOLD
    fired = set(pack.rules_fired)
    assert {"high-value-protective", "fragile-handle-with-care", "gold-discount"} <= fired
    assert set(world.last_status().rules_fired) == fired


def test_marketing_inserts_go_in_the_first_parcel_only() -> None:
    # Neither DC holds both skus: two shipments.
    world = ruled(World({"SKU-1": {"DC-EAST": 5}, "VASE": {"DC-WEST": 5}}), default_rules())

    placed(world, order_of("310.00", [("SKU-1", 1), ("VASE", 1)]))

    first, second = packaging(world)
    samples = [[i.value for i in p.inserts if i.kind == InsertKind.SAMPLE] for p in (first, second)]
    assert samples == [["SAMPLE-001"], []]


def test_a_routing_rule_sets_the_service_level_and_forces_a_location() -> None:
    rules = RuleSet().with_rule(
        make_rule(
            "wholesale-west",
            condition='order.channel == "WEB" && customer.tier == "GOLD"',
            actions=(
                RuleAction(type="force_location", params={"location": "DC-WEST"}),
                RuleAction(type="set_service_level", params={"level": "EXPRESS"}),
            ),
        )
    )
    world = ruled(World({"SKU-1": {"DC-EAST": 5, "DC-WEST": 5}}), rules)

    placed(world, order_of("10.00", [("SKU-1", 1)]))

    [command] = world.fulfillment()
    assert (command.location_id, command.service_level.value) == ("DC-WEST", "EXPRESS")
    assert command.rules_fired == ("wholesale-west",)


def test_no_rules_means_standard_packing_and_nothing_fired() -> None:
    world = ruled(World({"SKU-1": {"DC-EAST": 5}}), RuleSet())

    placed(world, order_of("10.00", [("SKU-1", 3)]))

    [pack] = packaging(world)
    assert pack.packaging == "STANDARD" and pack.inserts == () and pack.rules_fired == ()
    assert [s for c in pack.cartons for s in c.skus] == ["SKU-1"] * 3


def test_a_packaging_rule_never_changes_routing() -> None:
    rule = make_rule(
        "all-gift",
        stage=RuleStage.PACKAGING,
        condition="true",
        actions=(RuleAction(type="set_packaging", params={"type": "GIFT"}),),
    )
    world = ruled(World({"SKU-1": {"DC-EAST": 5}}), RuleSet().with_rule(rule))

    placed(world, order_of("10.00", [("SKU-1", 1)]))

    assert world.statuses() == ["RECEIVED", "ALLOCATED"]
    assert packaging(world)[0].packaging == "GIFT"

"""Routing steers around the units its worker promised other orders and its view does not show
yet (streams/core/routing/promised.py): the ledger itself, then the saga with two orders in
flight together for the last unit at the nearest location."""

from dataclasses import replace

from schemas.common import millis
from schemas.internal import SkuAction, SkuCommand, SkuResult
from schemas.models import Message, OrderPlaced
from streams.core.routing.promised import Promised
from tests.unit.factories import T0, make_order
from tests.unit.test_saga import World, held_at

NOW = 1_000_000


# ---- the ledger ---------------------------------------------------------------------------------


def test_a_promise_counts_for_other_orders_only() -> None:
    promised = Promised()
    promised.asked("RESERVE:SKU-1:A-1-1", "A", "SKU-1", [("DC-EAST", 2), ("DC-WEST", 1)], NOW)
    promised.asked("RESERVE:SKU-1:B-1-1", "B", "SKU-1", [("DC-EAST", 1)], NOW)

    assert promised.units("SKU-1", "C", None, NOW) == {"DC-EAST": 3, "DC-WEST": 1}
    assert promised.units("SKU-1", "A", None, NOW) == {"DC-EAST": 1}
    assert promised.units("SKU-2", "C", None, NOW) == {}


def test_a_repeated_command_is_one_promise() -> None:
    promised = Promised()
    for _ in range(3):  # a replayed input sends its command again
        promised.asked("RESERVE:SKU-1:A-1-1", "A", "SKU-1", [("DC-EAST", 2)], NOW)

    assert promised.units("SKU-1", "B", None, NOW) == {"DC-EAST": 2}
    assert len(promised) == 1


def test_a_refused_reservation_holds_nothing() -> None:
    promised = Promised()
    promised.asked("RESERVE:SKU-1:A-1-1", "A", "SKU-1", [("DC-EAST", 2)], NOW)

    promised.answered("RESERVE:SKU-1:A-1-1", False, NOW + 5)

    assert promised.units("SKU-1", "B", None, NOW + 10) == {}
    assert len(promised) == 0


def test_a_granted_hold_counts_until_the_view_shows_it() -> None:
    promised = Promised()
    promised.asked("RESERVE:SKU-1:A-1-1", "A", "SKU-1", [("DC-EAST", 2)], NOW)
    promised.answered("RESERVE:SKU-1:A-1-1", True, NOW + 40)

    # The view's record of SKU-1 is older than the owner's answer: it does not show the hold.
    assert promised.units("SKU-1", "B", NOW + 39, NOW + 50) == {"DC-EAST": 2}
    # The record that carries the hold is stamped with the owner's input: as new as the answer.
    assert promised.units("SKU-1", "B", NOW + 40, NOW + 60) == {}
    assert len(promised) == 0


def test_an_unanswered_promise_counts_until_its_ttl() -> None:
    promised = Promised(ttl_ms=3000)
    promised.asked("RESERVE:SKU-1:A-1-1", "A", "SKU-1", [("DC-EAST", 2)], NOW)

    # No answer yet: a newer record of the sku does not show a hold not yet applied.
    assert promised.units("SKU-1", "B", NOW + 2000, NOW + 3000) == {"DC-EAST": 2}
    assert promised.units("SKU-1", "B", NOW + 2000, NOW + 3001) == {}


def test_promises_nobody_asks_about_are_swept_after_their_ttl() -> None:
    promised = Promised(ttl_ms=3000)
    promised.asked("RESERVE:SKU-1:A-1-1", "A", "SKU-1", [("DC-EAST", 2)], NOW)
    promised.asked("RESERVE:SKU-2:A-1-1", "A", "SKU-2", [("DC-EAST", 1)], NOW + 2000)

    promised.forget_expired(NOW + 3500)

    assert len(promised) == 1
    assert promised.units("SKU-2", "B", None, NOW + 3500) == {"DC-EAST": 1}


# ---- the saga, with a worker's view that has not caught up ---------------------------------------


class PromisingWorld(World):
    """The saga and the owners as in test_saga, routing as the order stage does: every
    reservation the saga sends is a promise until its answer comes back and the view shows it.
    ``view_ms`` is the stamp of the worker's (fixed) view: None, older than every answer."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.promised = Promised()
        self.view_ms: int | None = None

    def _for(self, order_id: str) -> None:
        def units(sku: str) -> dict[str, int]:
            return self.promised.units(sku, order_id, self.view_ms, NOW)

        self.ctx = replace(self.ctx, promised=units)

    def send(self, outputs: object) -> list[Message]:
        sent = super().send(outputs)  # type: ignore[arg-type]
        for x in sent:
            if isinstance(x, SkuCommand) and x.action == SkuAction.RESERVE:
                holds = [(h.location_id, h.quantity) for h in x.holds]
                self.promised.asked(x.command_id, x.order_id, x.sku, holds, NOW)
        return sent

    def place(self, order: OrderPlaced) -> list[Message]:
        self._for(order.order_id)
        return super().place(order)

    def deliver(self, result: SkuResult) -> list[Message]:
        if result.action == SkuAction.RESERVE:
            self.promised.answered(result.command_id, result.ok, millis(result.at))
        self._for(result.order_id)
        return super().deliver(result)


# DC-EAST is nearest to the default ship-to and has one unit left; DC-SOUTH has plenty. The
# worker's view still shows DC-EAST's unit while two orders for it are routed one after another.
ON_HAND = {"SKU-1": {"DC-EAST": 1, "DC-SOUTH": 5}}
VIEW = {"SKU-1": {"DC-EAST": 1, "DC-SOUTH": 5}}


def two_orders_in_flight(world: World) -> World:
    world.place(make_order("A"))
    world.place(make_order("B"))  # before any owner has applied A's reservation
    world.run()
    return world


def test_the_second_order_goes_where_the_unit_is_not_promised_and_races_no_one() -> None:
    world = two_orders_in_flight(PromisingWorld(ON_HAND, view=VIEW))

    reserves = world.sku_commands(SkuAction.RESERVE)
    assert [(x.order_id, held_at(x)) for x in reserves] == [
        ("A", {"DC-EAST"}),
        ("B", {"DC-SOUTH"}),
    ]
    assert all(r.ok for r in world.sku_results)
    assert world.statuses("A") == ["RECEIVED", "ALLOCATED"]
    assert world.statuses("B") == ["RECEIVED", "ALLOCATED"]
    reason = world.last_status("B").reason
    assert "lost a race" not in reason
    assert reason.startswith("units at DC-EAST promised to other orders in flight; ")
    assert world.at("SKU-1", "DC-EAST").reserved == 1
    assert world.at("SKU-1", "DC-SOUTH").reserved == 1


def test_without_the_promises_the_second_order_loses_the_race_and_routes_again() -> None:
    world = two_orders_in_flight(World(ON_HAND, view=VIEW))

    reserves = world.sku_commands(SkuAction.RESERVE)
    assert [(x.order_id, x.attempt, held_at(x)) for x in reserves] == [
        ("A", 1, {"DC-EAST"}),
        ("B", 1, {"DC-EAST"}),
        ("B", 2, {"DC-SOUTH"}),
    ]
    assert [r.ok for r in world.sku_results if r.order_id == "B"] == [False, True]
    assert "lost a race" in world.last_status("B").reason


def test_a_promise_the_view_already_shows_never_costs_an_order_its_units() -> None:
    # A's hold is in the view already (DC-EAST shows 1 of 2 left), but the worker has not heard
    # the owner's answer yet, so it still counts it: less the promise, DC-EAST has nothing
    # and B would backorder. The view as it is serves B, so that route is taken.
    world = PromisingWorld({"SKU-1": {"DC-EAST": 2}}, view={"SKU-1": {"DC-EAST": 2}})
    world.place(make_order("A"))
    world.apply_commands()  # the owner holds A's unit; its answer waits for the saga
    world.view["SKU-1"] = {"DC-EAST": 1}

    world.place(make_order("B"))
    world.run()

    assert world.statuses("B") == ["RECEIVED", "ALLOCATED"]
    assert [held_at(x) for x in world.sku_commands(SkuAction.RESERVE) if x.order_id == "B"] == [
        {"DC-EAST"}
    ]
    assert world.at("SKU-1", "DC-EAST").reserved == 2


def test_the_answer_and_the_view_that_shows_it_end_the_promise() -> None:
    world = PromisingWorld(ON_HAND, view=VIEW)
    world.place(make_order("A"))
    world.run()  # answered: A holds DC-EAST's unit
    world.view_ms = millis(T0)  # the view's record carries the hold, stamped as the answer
    world.view["SKU-1"] = {"DC-EAST": 0, "DC-SOUTH": 5}

    assert world.promised.units("SKU-1", "B", world.view_ms, NOW) == {}
    assert len(world.promised) == 0

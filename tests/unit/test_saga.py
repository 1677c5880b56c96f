"""The order saga, end to end in memory: the saga and the sku owners talk through FIFO queues.

A :class:`World` plays the pipeline without Kafka: the saga's ``SkuCommand``s go to the sku
owners (``sku_owner.apply_command`` on one ``SkuInventory`` per sku) and their ``SkuResult``s
come back to the saga, until nothing moves. Tests look at what a user would: the order's
statuses, the fulfillment and packaging commands, and the inventory figures.
"""

from collections import deque
from collections.abc import Callable, Iterable, Sequence

from hypothesis import event, given, settings
from hypothesis import strategies as st

from schemas.enums import ROUTING_OUTCOMES
from schemas.internal import Hold, SkuAction, SkuCommand, SkuResult
from schemas.models import (
    FulfillmentCommand,
    FulfillmentStatus,
    FulfillmentUpdate,
    Message,
    OrderCancelled,
    OrderPlaced,
    OrderStatusChanged,
    PackagingCommand,
    StockEventKind,
)
from streams.core.inventory import stock as inventory
from streams.core.inventory.sku_owner import apply_command, apply_stock
from streams.core.inventory.stock import SkuInventory
from streams.core.routing.model import Capability, LocationInfo, LocationKind
from streams.core.saga.apply import (
    SagaContext,
    on_fulfillment_update,
    on_order_cancelled,
    on_order_placed,
    on_sku_result,
)
from streams.core.saga.state import Line, OrderState
from tests.unit.factories import (
    T0,
    make_cancel,
    make_fulfillment_update,
    make_order,
    make_pickup_order,
    make_stock_event,
)

SHIPPED = FulfillmentStatus.SHIPPED
PICKED_UP = FulfillmentStatus.PICKED_UP
REJECTED = FulfillmentStatus.REJECTED
ACCEPTED = FulfillmentStatus.ACCEPTED
CANCELLED = FulfillmentStatus.CANCELLED


DC_CAPS = frozenset({Capability.SHIP, Capability.RETURNS})
STORE_CAPS = frozenset({Capability.PICKUP, Capability.SHIP_FROM_STORE, Capability.RETURNS})
# The default ship-to is in Manhattan: Newark is nearest, then Philadelphia, then Chicago.
EAST = LocationInfo("DC-EAST", LocationKind.DC, DC_CAPS, lat=40.7357, lon=-74.1724)
SOUTH = LocationInfo("DC-SOUTH", LocationKind.DC, DC_CAPS, lat=39.9526, lon=-75.1652)
WEST = LocationInfo("DC-WEST", LocationKind.DC, DC_CAPS, lat=41.8781, lon=-87.6298)
STORE = LocationInfo("STORE-1", LocationKind.STORE, STORE_CAPS, lat=40.7580, lon=-73.9855)
NETWORK = (EAST, SOUTH, WEST)
WITH_STORE = (*NETWORK, STORE)

Stock = dict[str, dict[str, int]]
"""sku -> location_id -> units on hand."""


class World:
    """The saga and the sku owners, in memory.

    Records travel through FIFO queues like the per-key ordered topics they stand for.
    ``view`` overrides, per sku, what the saga's worker believes is available (a stale view);
    otherwise the saga sees the owners' live figures. ``before_command`` runs just before an
    owner applies a command (to make stock vanish behind the saga's back).
    """

    def __init__(
        self,
        on_hand: Stock,
        *,
        locations: Sequence[LocationInfo] = NETWORK,
        safety: Stock | None = None,
        view: Stock | None = None,
        max_attempts: int = 3,
        before_command: Callable[["World", SkuCommand], None] | None = None,
    ) -> None:
        self.inventory: dict[str, SkuInventory] = {}
        self.stock_events = 0
        for sku, per_location in on_hand.items():
            for location_id, quantity in per_location.items():
                self.stock_event(sku, location_id, quantity)
        for sku, per_location in (safety or {}).items():
            for location_id, quantity in per_location.items():
                self.stock_event(sku, location_id, quantity, StockEventKind.SAFETY_STOCK)
        self.view = view or {}
        self.ctx = SagaContext(
            locations=locations, stock=self.lookup, now=T0, max_attempts=max_attempts
        )
        self.before_command = before_command
        self.orders: dict[str, OrderState] = {}
        self.commands: deque[SkuCommand] = deque()
        self.results: deque[SkuResult] = deque()
        self.published: list[Message] = []  # everything the saga sent, in order
        self.sku_results: list[SkuResult] = []  # everything the owners answered, in order

    # ---- the sku owners ---------------------------------------------------------------------

    def stock_event(
        self,
        sku: str,
        location_id: str,
        quantity: int,
        kind: StockEventKind = StockEventKind.SNAPSHOT,
    ) -> None:
        self.stock_events += 1
        event = make_stock_event(
            sku, location_id, quantity, kind, event_id=f"stk-{self.stock_events}"
        )
        state = self.inventory.get(sku) or inventory.empty(sku)
        self.inventory[sku], _ = apply_stock(state, event)

    def lookup(self, sku: str) -> dict[str, int]:
        if sku in self.view:
            return self.view[sku]
        state = self.inventory.get(sku)
        return state.availability() if state else {}

    def owner_step(self) -> None:
        command = self.commands.popleft()
        if self.before_command is not None:
            self.before_command(self, command)
        state = self.inventory.get(command.sku) or inventory.empty(command.sku)
        self.inventory[command.sku], result = apply_command(state, command, T0)
        self.results.append(result)
        self.sku_results.append(result)

    def apply_commands(self) -> None:
        """The owners work through their queue; their answers wait for the saga."""
        while self.commands:
            self.owner_step()

    def at(self, sku: str, location_id: str) -> inventory.LocationStock:
        return self.inventory[sku].at(location_id)

    def reserved_total(self) -> int:
        return sum(s.reserved for inv in self.inventory.values() for s in inv.locations.values())

    # ---- the saga ---------------------------------------------------------------------------

    def send(self, outputs: Iterable[Message]) -> list[Message]:
        outputs = list(outputs)
        self.published += outputs
        self.commands += [x for x in outputs if isinstance(x, SkuCommand)]
        return outputs

    def place(self, order: OrderPlaced) -> list[Message]:
        state, outputs = on_order_placed(self.orders.get(order.order_id), order, self.ctx)
        self.orders[order.order_id] = state
        return self.send(outputs)

    def cancel(self, event: OrderCancelled) -> list[Message]:
        return self.send(on_order_cancelled(self.orders[event.order_id], event, self.ctx))

    def update(self, event: FulfillmentUpdate) -> list[Message]:
        return self.send(on_fulfillment_update(self.orders[event.order_id], event, self.ctx))

    def deliver(self, result: SkuResult) -> list[Message]:
        return self.send(on_sku_result(self.orders[result.order_id], result, self.ctx))

    def run(self) -> None:
        """Until quiet: owners apply what is queued, the saga takes their answers in order."""
        while self.commands or self.results:
            if self.commands:
                self.owner_step()
            else:
                self.deliver(self.results.popleft())

    # ---- what users see ---------------------------------------------------------------------

    def statuses(self, order_id: str = "ORD-1") -> list[str]:
        return [x.status.value for x in self.status_records(order_id)]

    def status_records(self, order_id: str = "ORD-1") -> list[OrderStatusChanged]:
        return [
            x
            for x in self.published
            if isinstance(x, OrderStatusChanged) and x.order_id == order_id
        ]

    def last_status(self, order_id: str = "ORD-1") -> OrderStatusChanged:
        return self.status_records(order_id)[-1]

    def fulfillment(self, order_id: str = "ORD-1") -> list[FulfillmentCommand]:
        return [
            x
            for x in self.published
            if isinstance(x, FulfillmentCommand) and x.order_id == order_id
        ]

    def sku_commands(self, action: SkuAction | None = None) -> list[SkuCommand]:
        return [
            x
            for x in self.published
            if isinstance(x, SkuCommand) and (action is None or x.action == action)
        ]


def placed(world: World, order: OrderPlaced) -> World:
    world.place(order)
    world.run()
    return world


def kinds(records: Iterable[Message]) -> list[str]:
    """A compact picture of a batch of outputs: status names and command kinds."""
    out = []
    for x in records:
        if isinstance(x, OrderStatusChanged):
            out.append(x.status.value)
        elif isinstance(x, SkuCommand):
            out.append(f"{x.action.value} {x.sku}")
        else:
            out.append(type(x).__name__)
    return out


def held_at(command: SkuCommand) -> set[str]:
    return {hold.location_id for hold in command.holds}


def report(order_id: str, shipment_id: str, location_id: str, **kw: object) -> FulfillmentUpdate:
    return make_fulfillment_update(order_id, shipment_id, location_id, **kw)  # type: ignore[arg-type]


# ---- placing an order ---------------------------------------------------------------------------


def test_order_placed_says_received_and_asks_the_owner_to_reserve() -> None:
    world = World({"SKU-1": {"DC-EAST": 10, "DC-WEST": 10}})

    outputs = world.place(make_order(lines=[("SKU-1", 2)]))

    assert kinds(outputs) == ["RECEIVED", "RESERVE SKU-1"]
    reserve = outputs[1]
    assert isinstance(reserve, SkuCommand)
    assert reserve.command_id == "RESERVE:SKU-1:ORD-1-1-1"
    assert reserve.order_id == "ORD-1"
    assert reserve.attempt == 1
    assert reserve.holds == (Hold(hold_id="ORD-1-1-1", location_id="DC-EAST", quantity=2),)
    assert reserve.issued_at == T0
    # Nothing is promised until the owner answers.
    assert world.at("SKU-1", "DC-EAST").reserved == 0


def test_happy_path_allocates_one_shipment_from_the_nearest_dc() -> None:
    world = World({"SKU-1": {"DC-EAST": 10, "DC-WEST": 10}})
    order = make_order(lines=[("SKU-1", 2)])

    placed(world, order)

    assert world.statuses() == ["RECEIVED", "ALLOCATED"]
    allocated = world.last_status()
    assert [(s.shipment_id, s.location_id) for s in allocated.shipments] == [
        ("ORD-1-1-1", "DC-EAST")
    ]
    assert [(x.line_id, x.sku, x.quantity) for x in allocated.shipments[0].lines] == [
        ("1", "SKU-1", 2)
    ]
    assert allocated.reason  # a human-readable reason
    [fulfil] = world.fulfillment()
    assert fulfil.command_id == "ORD-1-1-1:fulfil"
    assert fulfil.kind.value == "SHIP"
    assert fulfil.location_id == "DC-EAST"
    assert fulfil.ship_to == order.ship_to
    assert fulfil.destination_location_id is None
    assert fulfil.service_level == order.service_level
    [pack] = [x for x in world.published if isinstance(x, PackagingCommand)]
    assert pack.command_id == "ORD-1-1-1:pack"
    assert pack.location_id == "DC-EAST"
    assert [c.skus for c in pack.cartons] == [("SKU-1", "SKU-1")]  # one entry per unit
    # The outcome comes first, then per shipment its fulfillment and packaging commands.
    assert kinds(world.published[-3:]) == [
        "ALLOCATED",
        "FulfillmentCommand",
        "PackagingCommand",
    ]
    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=10, reserved=2)
    assert world.at("SKU-1", "DC-WEST").reserved == 0


def test_same_inputs_give_identical_outputs_and_ids() -> None:
    def script() -> World:
        world = World({"SKU-1": {"DC-EAST": 1, "DC-WEST": 5}, "SKU-2": {"DC-WEST": 5}})
        placed(world, make_order(lines=[("SKU-1", 3), ("SKU-2", 1)]))
        world.update(report("ORD-1", "ORD-1-1-1", "DC-WEST"))
        world.run()
        return world

    first, second = script(), script()

    assert first.published == second.published
    assert first.sku_results == second.sku_results
    event_ids = [x.event_id for x in first.status_records()]
    assert len(set(event_ids)) == len(event_ids)
    commands = (SkuCommand, FulfillmentCommand, PackagingCommand)
    command_ids = [x.command_id for x in first.published if isinstance(x, commands)]
    assert len(set(command_ids)) == len(command_ids)


def test_a_sku_missing_at_the_nearest_dc_splits_the_order_across_two_locations() -> None:
    world = World({"SKU-A": {"DC-EAST": 5}, "SKU-B": {"DC-WEST": 5}})

    placed(world, make_order(lines=[("SKU-A", 1), ("SKU-B", 2)]))

    assert world.statuses() == ["RECEIVED", "ALLOCATED"]
    shipments = {s.location_id: s for s in world.last_status().shipments}
    assert set(shipments) == {"DC-EAST", "DC-WEST"}
    assert [(x.sku, x.quantity) for x in shipments["DC-EAST"].lines] == [("SKU-A", 1)]
    assert [(x.sku, x.quantity) for x in shipments["DC-WEST"].lines] == [("SKU-B", 2)]
    assert {x.location_id for x in world.fulfillment()} == {"DC-EAST", "DC-WEST"}
    assert len([x for x in world.published if isinstance(x, PackagingCommand)]) == 2
    assert world.at("SKU-A", "DC-EAST").reserved == 1
    assert world.at("SKU-B", "DC-WEST").reserved == 2


def test_one_sku_split_over_two_locations_is_one_command_with_two_holds() -> None:
    world = World({"SKU-1": {"DC-EAST": 3, "DC-WEST": 2}})

    outputs = world.place(make_order(lines=[("SKU-1", 5)]))
    world.run()

    [reserve] = [x for x in outputs if isinstance(x, SkuCommand)]
    assert sorted((h.location_id, h.quantity) for h in reserve.holds) == [
        ("DC-EAST", 3),
        ("DC-WEST", 2),
    ]
    assert world.statuses() == ["RECEIVED", "ALLOCATED"]
    assert len(world.last_status().shipments) == 2
    assert world.at("SKU-1", "DC-EAST").available == 0
    assert world.at("SKU-1", "DC-WEST").available == 0


def test_short_stock_is_partially_allocated_and_the_rest_backordered() -> None:
    world = World({"SKU-1": {"DC-EAST": 3}, "SKU-2": {}})

    placed(world, make_order(lines=[("SKU-1", 5), ("SKU-2", 1)]))

    assert world.statuses() == ["RECEIVED", "PARTIALLY_ALLOCATED"]
    [shipment] = world.last_status().shipments
    assert [(x.line_id, x.sku, x.quantity) for x in shipment.lines] == [("1", "SKU-1", 3)]
    assert world.orders["ORD-1"].backordered == [
        Line(line_id="1", sku="SKU-1", quantity=2),
        Line(line_id="2", sku="SKU-2", quantity=1),
    ]
    [fulfil] = world.fulfillment()
    assert [(x.sku, x.quantity) for x in fulfil.lines] == [("SKU-1", 3)]
    assert world.at("SKU-1", "DC-EAST").reserved == 3


def test_nothing_available_is_backordered_without_reserving_anything() -> None:
    world = World({"SKU-1": {"DC-EAST": 0}})

    outputs = world.place(make_order(lines=[("SKU-1", 2)]))

    assert kinds(outputs) == ["RECEIVED", "BACKORDERED"]
    assert world.commands == deque()
    assert world.fulfillment() == []
    assert world.last_status().shipments == ()
    assert world.orders["ORD-1"].backordered == [Line(line_id="1", sku="SKU-1", quantity=2)]


def test_an_unknown_pickup_store_is_rejected_without_reserving_anything() -> None:
    world = World({"SKU-1": {"DC-EAST": 5}}, locations=WITH_STORE)

    outputs = world.place(make_pickup_order(store_id="STORE-404"))

    assert kinds(outputs) == ["RECEIVED", "REJECTED"]
    assert "STORE-404" in world.last_status().reason
    assert world.sku_commands() == []


def test_redelivered_order_placed_is_ignored() -> None:
    world = World({"SKU-1": {"DC-EAST": 5}})
    order = make_order(lines=[("SKU-1", 2)])
    placed(world, order)
    before = world.orders["ORD-1"].model_copy(deep=True)

    assert world.place(order) == []
    assert world.place(order.model_copy(update={"event_id": "another-id"})) == []

    world.run()
    assert world.orders["ORD-1"] == before
    assert world.statuses() == ["RECEIVED", "ALLOCATED"]
    assert world.at("SKU-1", "DC-EAST").reserved == 2


# ---- pickup ---------------------------------------------------------------------------------


def test_pickup_at_a_store_holding_everything_is_a_pickup_there() -> None:
    world = World({"SKU-1": {"STORE-1": 2, "DC-EAST": 10}}, locations=WITH_STORE)

    placed(world, make_pickup_order(lines=[("SKU-1", 2)]))

    assert world.statuses() == ["RECEIVED", "ALLOCATED"]
    [fulfil] = world.fulfillment()
    assert fulfil.kind.value == "PICKUP"
    assert fulfil.location_id == "STORE-1"
    assert fulfil.ship_to is None
    assert world.at("SKU-1", "STORE-1").reserved == 2
    assert world.at("SKU-1", "DC-EAST").reserved == 0

    outputs = world.update(report("ORD-1", "ORD-1-1-1", "STORE-1", status=PICKED_UP))
    world.run()

    assert kinds(outputs) == ["CONSUME SKU-1", "COMPLETED"]
    assert world.at("SKU-1", "STORE-1") == inventory.LocationStock(on_hand=0, reserved=0)


def test_pickup_at_a_store_without_stock_transfers_from_the_nearest_dc() -> None:
    world = World({"SKU-1": {"DC-EAST": 5, "DC-WEST": 5}}, locations=WITH_STORE)

    placed(world, make_pickup_order(lines=[("SKU-1", 2)]))

    assert world.statuses() == ["RECEIVED", "ALLOCATED"]
    [fulfil] = world.fulfillment()
    assert fulfil.kind.value == "TRANSFER"
    assert fulfil.location_id == "DC-EAST"
    assert fulfil.destination_location_id == "STORE-1"
    assert fulfil.ship_to is None
    assert world.at("SKU-1", "DC-EAST").reserved == 2


def test_a_transfer_completes_when_the_customer_collects_not_when_the_dc_ships() -> None:
    world = World({"SKU-1": {"DC-EAST": 5}}, locations=WITH_STORE)
    placed(world, make_pickup_order(lines=[("SKU-1", 2)]))

    on_its_way = world.update(report("ORD-1", "ORD-1-1-1", "DC-EAST"))
    world.run()

    assert kinds(on_its_way) == ["CONSUME SKU-1", "SHIPPED"]
    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=3, reserved=0)

    collected = world.update(report("ORD-1", "ORD-1-1-1", "STORE-1", status=PICKED_UP))
    world.run()

    assert kinds(collected) == ["COMPLETED"]  # the units were consumed once, at the DC
    # The channel learns which news each status reports: the transfer left the DC, then the
    # customer collected it.
    [moving] = on_its_way[-1].shipments  # type: ignore[attr-defined]
    [handed] = collected[-1].shipments  # type: ignore[attr-defined]
    assert (moving.kind, moving.fulfillment_status) == ("TRANSFER", "SHIPPED")
    assert (handed.kind, handed.fulfillment_status) == ("TRANSFER", "PICKED_UP")
    assert world.statuses() == ["RECEIVED", "ALLOCATED", "SHIPPED", "COMPLETED"]
    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=3, reserved=0)


# ---- reservation races ----------------------------------------------------------------------


def test_a_lost_reservation_race_releases_the_rest_and_succeeds_on_fresh_numbers() -> None:
    # The worker's view says DC-EAST has SKU-B; its owner knows it has none left.
    world = World(
        {"SKU-A": {"DC-EAST": 5, "DC-WEST": 5}, "SKU-B": {"DC-EAST": 0, "DC-WEST": 5}},
        view={"SKU-B": {"DC-EAST": 5, "DC-WEST": 5}},
    )

    first = world.place(make_order(lines=[("SKU-A", 1), ("SKU-B", 1)]))
    world.run()

    reserves = world.sku_commands(SkuAction.RESERVE)
    assert [held_at(x) for x in first if isinstance(x, SkuCommand)] == [{"DC-EAST"}, {"DC-EAST"}]
    [release] = world.sku_commands(SkuAction.RELEASE)
    assert release.sku == "SKU-A"
    assert release.holds == (Hold(hold_id="ORD-1-1-1", location_id="DC-EAST", quantity=1),)
    assert [(x.sku, x.attempt, held_at(x)) for x in reserves[2:]] == [
        ("SKU-A", 2, {"DC-WEST"}),
        ("SKU-B", 2, {"DC-WEST"}),
    ]
    assert world.statuses() == ["RECEIVED", "ALLOCATED"]
    allocated = world.last_status()
    assert [(s.shipment_id, s.location_id) for s in allocated.shipments] == [
        ("ORD-1-2-1", "DC-WEST")
    ]
    assert "lost a race" in allocated.reason
    assert world.at("SKU-A", "DC-EAST").reserved == 0
    assert world.at("SKU-A", "DC-WEST").reserved == 1
    assert world.at("SKU-B", "DC-WEST").reserved == 1
    assert [x.location_id for x in world.fulfillment()] == ["DC-WEST"]


def test_a_retry_counts_the_units_the_order_itself_gives_back() -> None:
    # DC-EAST has the only SKU-A; SKU-B there was a mirage. The retry releases its own SKU-A
    # hold before reserving again, so it must route on that unit as free.
    world = World(
        {"SKU-A": {"DC-EAST": 1}, "SKU-B": {"DC-EAST": 0, "DC-WEST": 5}},
        view={"SKU-B": {"DC-EAST": 5, "DC-WEST": 5}},
    )

    placed(world, make_order(lines=[("SKU-A", 1), ("SKU-B", 1)]))

    assert world.statuses() == ["RECEIVED", "ALLOCATED"]
    shipments = {s.location_id: [x.sku for x in s.lines] for s in world.last_status().shipments}
    assert shipments == {"DC-EAST": ["SKU-A"], "DC-WEST": ["SKU-B"]}
    assert world.at("SKU-A", "DC-EAST") == inventory.LocationStock(on_hand=1, reserved=1)


def vanishing(sku: str) -> Callable[[World, SkuCommand], None]:
    """Just before each RESERVE of ``sku``, a recount finds none where it is to be held."""

    def recount(world: World, command: SkuCommand) -> None:
        if command.sku == sku and command.action == SkuAction.RESERVE:
            for hold in command.holds:
                world.stock_event(sku, hold.location_id, 0)

    return recount


def test_exhausted_retries_backorder_the_order_and_release_every_hold() -> None:
    everywhere = {"DC-EAST": 5, "DC-SOUTH": 5, "DC-WEST": 5}
    world = World({"SKU-A": everywhere, "SKU-B": everywhere}, before_command=vanishing("SKU-B"))

    placed(world, make_order(lines=[("SKU-A", 2), ("SKU-B", 1)]))

    assert world.statuses() == ["RECEIVED", "BACKORDERED"]
    assert "retries exhausted" in world.last_status().reason
    b_reserves = [x for x in world.sku_commands(SkuAction.RESERVE) if x.sku == "SKU-B"]
    assert [x.attempt for x in b_reserves] == [1, 2, 3]
    # Every attempt tried a different place: the fresh numbers showed where SKU-B had gone.
    assert len({frozenset(held_at(x)) for x in b_reserves}) == 3
    assert len(world.sku_commands(SkuAction.RELEASE)) == 3
    assert world.fulfillment() == []
    assert world.reserved_total() == 0
    assert all(not inv.holds for inv in world.inventory.values())
    assert world.orders["ORD-1"].backordered == [
        Line(line_id="1", sku="SKU-A", quantity=2),
        Line(line_id="2", sku="SKU-B", quantity=1),
    ]


def test_a_single_allowed_attempt_backorders_at_the_first_lost_race() -> None:
    world = World(
        {"SKU-A": {"DC-EAST": 5}, "SKU-B": {"DC-EAST": 0, "DC-WEST": 5}},
        view={"SKU-B": {"DC-EAST": 5}},
        max_attempts=1,
    )

    placed(world, make_order(lines=[("SKU-A", 1), ("SKU-B", 1)]))

    assert world.statuses() == ["RECEIVED", "BACKORDERED"]
    assert kinds(world.sku_commands()) == ["RESERVE SKU-A", "RESERVE SKU-B", "RELEASE SKU-A"]
    assert world.reserved_total() == 0


def test_a_duplicate_sku_result_is_ignored() -> None:
    world = World({"SKU-A": {"DC-EAST": 5}, "SKU-B": {"DC-EAST": 5}})
    world.place(make_order(lines=[("SKU-A", 1), ("SKU-B", 1)]))
    world.apply_commands()
    result_a, result_b = world.results

    world.deliver(result_a)
    assert world.deliver(result_a) == []  # still waiting for SKU-B: the repeat changes nothing
    assert kinds(world.deliver(result_b)) == ["ALLOCATED", "FulfillmentCommand", "PackagingCommand"]
    assert world.deliver(result_b) == []
    assert world.deliver(result_a) == []

    assert world.statuses() == ["RECEIVED", "ALLOCATED"]
    assert world.at("SKU-A", "DC-EAST").reserved == 1


def test_a_failed_result_repeated_does_not_restart_the_attempt() -> None:
    world = World(
        {"SKU-A": {"DC-EAST": 5}, "SKU-B": {"DC-EAST": 0, "DC-WEST": 5}},
        view={"SKU-B": {"DC-EAST": 5}},
    )
    world.place(make_order(lines=[("SKU-A", 1), ("SKU-B", 1)]))
    world.apply_commands()
    result_a, result_b = world.results
    assert not result_b.ok

    world.deliver(result_b)
    assert world.deliver(result_b) == []
    retry = world.deliver(result_a)

    assert kinds(retry) == ["RELEASE SKU-A", "RESERVE SKU-A", "RESERVE SKU-B"]
    assert world.deliver(result_b) == []
    assert world.orders["ORD-1"].attempt == 2


def test_a_stale_successful_result_after_the_attempt_was_given_up_is_released() -> None:
    world = World(
        {"SKU-A": {"DC-EAST": 5, "DC-WEST": 5}, "SKU-B": {"DC-EAST": 0, "DC-WEST": 5}},
        view={"SKU-B": {"DC-EAST": 5, "DC-WEST": 5}},
    )
    placed(world, make_order(lines=[("SKU-A", 1), ("SKU-B", 1)]))
    [stale] = [
        x
        for x in world.sku_results
        if x.sku == "SKU-A" and x.attempt == 1 and x.action == SkuAction.RESERVE
    ]
    assert stale.ok

    outputs = world.deliver(stale)

    [release] = outputs
    assert isinstance(release, SkuCommand)
    assert release.action == SkuAction.RELEASE
    assert release.holds == stale.holds
    world.run()
    # The hold was already given back: the repeat release changes nothing, the order stands.
    assert world.at("SKU-A", "DC-EAST").reserved == 0
    assert world.at("SKU-A", "DC-WEST").reserved == 1
    assert world.statuses() == ["RECEIVED", "ALLOCATED"]


def test_a_stale_failed_result_needs_no_release() -> None:
    world = World(
        {"SKU-A": {"DC-EAST": 5, "DC-WEST": 5}, "SKU-B": {"DC-EAST": 0, "DC-WEST": 5}},
        view={"SKU-B": {"DC-EAST": 5, "DC-WEST": 5}},
    )
    placed(world, make_order(lines=[("SKU-A", 1), ("SKU-B", 1)]))
    [lost] = [x for x in world.sku_results if not x.ok]

    assert world.deliver(lost) == []


def test_releases_and_consumptions_need_no_follow_up() -> None:
    world = World({"SKU-1": {"DC-EAST": 5}})
    placed(world, make_order())
    world.update(report("ORD-1", "ORD-1-1-1", "DC-EAST"))
    world.apply_commands()
    [consumed] = world.results

    assert consumed.action == SkuAction.CONSUME
    assert world.deliver(consumed) == []


# ---- cancellation ---------------------------------------------------------------------------


def test_cancel_before_the_owners_answer_releases_the_holds_once_they_land() -> None:
    world = World({"SKU-A": {"DC-EAST": 5}, "SKU-B": {"DC-EAST": 5}})
    world.place(make_order(lines=[("SKU-A", 2), ("SKU-B", 1)]))

    outputs = world.cancel(make_cancel())

    assert kinds(outputs) == ["RELEASE SKU-A", "RELEASE SKU-B", "CANCELLED"]
    assert world.last_status().reason == "customer request"
    world.run()
    assert world.statuses() == ["RECEIVED", "CANCELLED"]
    assert world.reserved_total() == 0
    assert world.at("SKU-A", "DC-EAST").available == 5
    assert world.fulfillment() == []


def test_cancel_while_reservations_are_in_flight_releases_what_they_took() -> None:
    world = World({"SKU-A": {"DC-EAST": 5}, "SKU-B": {"DC-EAST": 5}})
    world.place(make_order(lines=[("SKU-A", 2), ("SKU-B", 1)]))
    world.apply_commands()  # the owners reserved; their answers are still on the way
    assert world.reserved_total() == 3

    world.cancel(make_cancel())
    world.run()

    assert world.statuses() == ["RECEIVED", "CANCELLED"]
    assert world.reserved_total() == 0
    assert all(not inv.holds for inv in world.inventory.values())
    assert world.fulfillment() == []


def test_cancel_after_allocation_releases_the_holds() -> None:
    world = World({"SKU-1": {"DC-EAST": 5}})
    placed(world, make_order(lines=[("SKU-1", 2)]))

    outputs = world.cancel(make_cancel())
    world.run()

    # The location had not accepted it: told to cancel, and the units are free at once.
    assert kinds(outputs) == ["FulfillmentCommand", "RELEASE SKU-1", "CANCELLED"]
    assert world.statuses() == ["RECEIVED", "ALLOCATED", "CANCELLED"]
    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=5, reserved=0)
    # The location's later confirmation (or refusal) of the cancelled shipment changes nothing.
    assert world.update(report("ORD-1", "ORD-1-1-1", "DC-EAST", status=CANCELLED)) == []
    assert world.update(report("ORD-1", "ORD-1-1-1", "DC-EAST", status=REJECTED)) == []


def test_redelivered_cancel_is_ignored() -> None:
    world = World({"SKU-1": {"DC-EAST": 5}})
    placed(world, make_order(lines=[("SKU-1", 2)]))
    world.cancel(make_cancel())

    assert world.cancel(make_cancel()) == []
    assert world.cancel(make_cancel(event_id="cancel-again")) == []
    assert world.statuses() == ["RECEIVED", "ALLOCATED", "CANCELLED"]


def test_cancel_after_shipping_is_ignored() -> None:
    world = World({"SKU-1": {"DC-EAST": 5}})
    placed(world, make_order(lines=[("SKU-1", 2)]))
    world.update(report("ORD-1", "ORD-1-1-1", "DC-EAST"))
    world.run()

    assert world.cancel(make_cancel()) == []
    world.run()

    assert world.statuses() == ["RECEIVED", "ALLOCATED", "COMPLETED"]
    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=3, reserved=0)


def test_cancel_of_a_backordered_order_says_cancelled_without_commands() -> None:
    world = World({"SKU-1": {}})
    placed(world, make_order())

    assert kinds(world.cancel(make_cancel())) == ["CANCELLED"]


# ---- fulfillment updates --------------------------------------------------------------------


def test_a_rejection_releases_and_reroutes_never_back_to_the_rejecting_location() -> None:
    world = World({"SKU-1": {"DC-EAST": 5, "DC-SOUTH": 5, "DC-WEST": 5}})
    placed(world, make_order(lines=[("SKU-1", 2)]))

    outputs = world.update(report("ORD-1", "ORD-1-1-1", "DC-EAST", status=REJECTED))
    world.run()

    assert kinds(outputs) == ["RELEASE SKU-1", "RESERVE SKU-1"]
    release = outputs[0]
    assert isinstance(release, SkuCommand)
    assert release.holds == (Hold(hold_id="ORD-1-1-1", location_id="DC-EAST", quantity=2),)
    assert world.statuses() == ["RECEIVED", "ALLOCATED", "ALLOCATED"]
    rerouted = world.last_status()
    assert [(s.shipment_id, s.location_id) for s in rerouted.shipments] == [
        ("ORD-1-2-1", "DC-SOUTH")
    ]
    assert "DC-EAST rejected ORD-1-1-1 (no stock)" in rerouted.reason
    assert [x.location_id for x in world.fulfillment()] == ["DC-EAST", "DC-SOUTH"]
    assert world.at("SKU-1", "DC-EAST").reserved == 0
    assert world.at("SKU-1", "DC-SOUTH").reserved == 2

    world.update(report("ORD-1", "ORD-1-2-1", "DC-SOUTH", status=REJECTED))
    world.run()
    assert world.last_status().shipments[0].location_id == "DC-WEST"

    world.update(report("ORD-1", "ORD-1-3-1", "DC-WEST", status=REJECTED))
    world.run()

    # DC-EAST still has the units and is nearest, but it refused this order once.
    assert world.statuses()[-1] == "BACKORDERED"
    later = world.sku_commands(SkuAction.RESERVE)[1:]
    assert all("DC-EAST" not in held_at(x) for x in later)
    assert world.reserved_total() == 0
    assert world.orders["ORD-1"].excluded_locations == ["DC-EAST", "DC-SOUTH", "DC-WEST"]


def test_a_rejection_repeated_or_of_a_closed_shipment_is_ignored() -> None:
    world = World({"SKU-1": {"DC-EAST": 5, "DC-WEST": 5}})
    placed(world, make_order())
    rejected = report("ORD-1", "ORD-1-1-1", "DC-EAST", status=REJECTED)
    world.update(rejected)
    world.run()

    assert world.update(rejected) == []
    assert world.update(rejected.model_copy(update={"event_id": "again"})) == []
    assert world.update(report("ORD-1", "ORD-404", "DC-EAST", status=REJECTED)) == []
    assert world.statuses() == ["RECEIVED", "ALLOCATED", "ALLOCATED"]
    assert world.at("SKU-1", "DC-WEST").reserved == 1


def test_an_accepted_update_changes_nothing() -> None:
    world = World({"SKU-1": {"DC-EAST": 5}})
    placed(world, make_order())

    assert world.update(report("ORD-1", "ORD-1-1-1", "DC-EAST", status=ACCEPTED)) == []
    assert world.statuses() == ["RECEIVED", "ALLOCATED"]


def test_shipping_consumes_the_hold_and_completes_a_single_shipment_order() -> None:
    world = World({"SKU-1": {"DC-EAST": 10}})
    placed(world, make_order(lines=[("SKU-1", 2)]))

    outputs = world.update(report("ORD-1", "ORD-1-1-1", "DC-EAST"))
    world.run()

    assert kinds(outputs) == ["CONSUME SKU-1", "COMPLETED"]
    consume = outputs[0]
    assert isinstance(consume, SkuCommand)
    assert consume.command_id == "CONSUME:SKU-1:ORD-1-1-1"
    assert world.last_status().reason == "ORD-1-1-1 shipped from DC-EAST"
    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=8, reserved=0)


def test_an_order_in_two_shipments_is_shipped_then_completed() -> None:
    world = World({"SKU-A": {"DC-EAST": 5}, "SKU-B": {"DC-WEST": 5}})
    placed(world, make_order(lines=[("SKU-A", 1), ("SKU-B", 1)]))
    ids = {s.location_id: s.shipment_id for s in world.last_status().shipments}

    world.update(report("ORD-1", ids["DC-WEST"], "DC-WEST"))
    world.run()
    assert world.statuses()[-1] == "SHIPPED"
    assert world.last_status().shipments[0].shipment_id == ids["DC-WEST"]
    # One parcel has left: the order can no longer be cancelled; the other still holds.
    assert world.cancel(make_cancel()) == []
    assert world.at("SKU-A", "DC-EAST").reserved == 1

    world.update(report("ORD-1", ids["DC-EAST"], "DC-EAST"))
    world.run()

    assert world.statuses() == ["RECEIVED", "ALLOCATED", "SHIPPED", "COMPLETED"]
    assert world.at("SKU-A", "DC-EAST") == inventory.LocationStock(on_hand=4, reserved=0)
    assert world.at("SKU-B", "DC-WEST") == inventory.LocationStock(on_hand=4, reserved=0)


def test_the_shipped_status_carries_the_tracking_the_location_reported() -> None:
    world = World({"SKU-A": {"DC-EAST": 5}, "SKU-B": {"DC-WEST": 5}})
    placed(world, make_order(lines=[("SKU-A", 1), ("SKU-B", 1)]))
    assert all(s.tracking_number is None for s in world.last_status().shipments)
    ids = {s.location_id: s.shipment_id for s in world.last_status().shipments}

    west = report("ORD-1", ids["DC-WEST"], "DC-WEST", tracking_number="1ZWEST", carrier="UPS")
    world.update(west)
    world.run()
    [shipped] = world.last_status().shipments
    assert (shipped.shipment_id, shipped.tracking_number, shipped.carrier) == (
        ids["DC-WEST"],
        "1ZWEST",
        "UPS",
    )
    assert (shipped.kind, shipped.fulfillment_status) == ("SHIP", "SHIPPED")

    world.update(report("ORD-1", ids["DC-EAST"], "DC-EAST", tracking_number="94001", carrier=None))
    world.run()
    [done] = world.last_status().shipments
    assert (done.shipment_id, done.tracking_number, done.carrier) == (ids["DC-EAST"], "94001", None)


def test_a_partially_allocated_order_stays_shipped_while_lines_are_backordered() -> None:
    world = World({"SKU-1": {"DC-EAST": 1}})
    placed(world, make_order(lines=[("SKU-1", 3)]))

    world.update(report("ORD-1", "ORD-1-1-1", "DC-EAST"))
    world.run()

    assert world.statuses() == ["RECEIVED", "PARTIALLY_ALLOCATED", "SHIPPED"]


def test_a_rerouted_part_of_a_partial_order_does_not_complete_the_backordered_rest() -> None:
    world = World({"SKU-1": {"DC-EAST": 1, "DC-WEST": 1}, "SKU-2": {}})
    placed(world, make_order(lines=[("SKU-1", 1), ("SKU-2", 1)]))
    assert world.statuses() == ["RECEIVED", "PARTIALLY_ALLOCATED"]
    world.update(report("ORD-1", "ORD-1-1-1", "DC-EAST", status=REJECTED))
    world.run()
    [again] = world.last_status().shipments
    assert again.location_id == "DC-WEST"

    world.update(report("ORD-1", again.shipment_id, "DC-WEST"))
    world.run()

    # SKU-2 never left: the order is shipped, not complete.
    assert world.statuses()[-1] == "SHIPPED"


def test_a_redelivered_shipped_update_is_ignored() -> None:
    world = World({"SKU-1": {"DC-EAST": 10}})
    placed(world, make_order(lines=[("SKU-1", 2)]))
    update = report("ORD-1", "ORD-1-1-1", "DC-EAST")
    world.update(update)
    world.run()

    assert world.update(update) == []
    # Another report of the same parcel (a new event id) consumes nothing more either.
    assert world.update(update.model_copy(update={"event_id": "tracking-again"})) == []
    world.run()

    assert world.statuses() == ["RECEIVED", "ALLOCATED", "COMPLETED"]
    assert len(world.sku_commands(SkuAction.CONSUME)) == 1
    assert world.at("SKU-1", "DC-EAST") == inventory.LocationStock(on_hand=8, reserved=0)


def test_an_update_for_an_unknown_shipment_is_ignored() -> None:
    world = World({"SKU-1": {"DC-EAST": 10}})
    placed(world, make_order())

    assert world.update(report("ORD-1", "ORD-1-9-9", "DC-EAST")) == []


def test_a_rejection_while_a_reroute_is_still_reserving_folds_both_and_leaks_nothing() -> None:
    world = World({"SKU-A": {"DC-EAST": 1, "DC-WEST": 1}, "SKU-B": {"DC-SOUTH": 1}})
    placed(world, make_order(lines=[("SKU-A", 1), ("SKU-B", 1)]))
    ids = {s.location_id: s.shipment_id for s in world.last_status().shipments}
    assert set(ids) == {"DC-EAST", "DC-SOUTH"}
    world.update(report("ORD-1", ids["DC-EAST"], "DC-EAST", status=REJECTED))

    # DC-SOUTH rejects before the owners confirm SKU-A's re-route to DC-WEST.
    outputs = world.update(report("ORD-1", ids["DC-SOUTH"], "DC-SOUTH", status=REJECTED))
    world.run()

    assert kinds(outputs) == ["RELEASE SKU-B", "RELEASE SKU-A", "RESERVE SKU-A"]
    assert world.statuses()[-1] == "PARTIALLY_ALLOCATED"
    [shipment] = world.last_status().shipments
    assert (shipment.location_id, [x.sku for x in shipment.lines]) == ("DC-WEST", ["SKU-A"])
    state = world.orders["ORD-1"]
    assert state.backordered == [Line(line_id="2", sku="SKU-B", quantity=1)]
    assert [s.shipment_id for s in state.live_shipments()] == [shipment.shipment_id]
    assert world.at("SKU-A", "DC-WEST").reserved == 1
    assert world.reserved_total() == 1
    assert world.inventory["SKU-A"].holds_for_order("ORD-1") == (("ORD-1", shipment.shipment_id),)


# ---- property: many orders, scarce stock, any interleaving ---------------------------------

SKUS = ("SKU-A", "SKU-B")
PLACES = ("DC-EAST", "DC-SOUTH", "DC-WEST")


@st.composite
def order_lines(draw: st.DrawFn) -> list[tuple[str, int]]:
    skus = draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=2, unique=True))
    return [(sku, draw(st.integers(1, 3))) for sku in skus]


def assert_never_overpromised(world: World) -> None:
    for inv in world.inventory.values():
        for location_id, stock in inv.locations.items():
            promisable = max(0, stock.on_hand - stock.safety_stock)
            assert stock.reserved <= promisable, (inv.sku, location_id, stock)


class Pipeline:
    """Many orders through the in-memory saga and owners, in an order the test draws.

    Each topic partition is a FIFO queue (the orders and fulfillment topics and the results
    per order, the commands per sku); the next record comes from any non-empty queue.
    """

    def __init__(self, world: World, data: st.DataObject, *, rejections: bool) -> None:
        self.world = world
        self.data = data
        self.rejections = rejections
        self.inbound: dict[str, deque[OrderPlaced | OrderCancelled]] = {}
        self.updates: dict[str, deque[FulfillmentUpdate]] = {}
        self.results: dict[str, deque[SkuResult]] = {}
        self.commands: dict[str, deque[SkuCommand]] = {sku: deque() for sku in SKUS}
        self.rejected: dict[str, set[str]] = {}  # order -> locations that refused it

    def add(self, order: OrderPlaced, *, cancel: bool) -> None:
        self.inbound[order.order_id] = deque([order])
        if cancel:
            self.inbound[order.order_id].append(make_cancel(order.order_id))
        self.updates[order.order_id] = deque()
        self.results[order.order_id] = deque()
        self.rejected[order.order_id] = set()

    def send(self, outputs: Iterable[Message]) -> None:
        for x in self.world.send(outputs):
            if isinstance(x, SkuCommand):
                if x.action == SkuAction.RESERVE:  # never again where the order was refused
                    assert not held_at(x) & self.rejected[x.order_id], x
                self.commands[x.sku].append(x)
            elif (
                isinstance(x, FulfillmentCommand)
                and self.rejections
                and self.data.draw(st.booleans(), label=f"{x.location_id} rejects")
            ):
                refusal = report(x.order_id, x.shipment_id, x.location_id, status=REJECTED)
                self.updates[x.order_id].append(refusal)
        self.world.commands.clear()  # routed per sku above

    def run(self) -> None:
        world = self.world
        queues = (self.inbound, self.updates, self.results, self.commands)
        while ready := [q for group in queues for q in group.values() if q]:
            item = ready[self.data.draw(st.integers(0, len(ready) - 1))].popleft()
            if isinstance(item, OrderPlaced):
                state, outputs = on_order_placed(None, item, world.ctx)
                world.orders[item.order_id] = state
                self.send(outputs)
            elif isinstance(item, OrderCancelled):
                self.send(on_order_cancelled(world.orders[item.order_id], item, world.ctx))
            elif isinstance(item, FulfillmentUpdate):
                self.rejected[item.order_id].add(item.location_id)
                self.send(on_fulfillment_update(world.orders[item.order_id], item, world.ctx))
            elif isinstance(item, SkuResult):
                self.send(on_sku_result(world.orders[item.order_id], item, world.ctx))
            else:
                sku_state = world.inventory[item.sku]
                world.inventory[item.sku], result = apply_command(sku_state, item, T0)
                self.results[item.order_id].append(result)
                assert_never_overpromised(world)

    def assert_nothing_leaked(self) -> None:
        """Every unit still reserved is held by an open shipment, and nothing is in flight."""
        world = self.world
        for sku, inv in world.inventory.items():
            for location_id, stock in inv.locations.items():
                expected = sum(
                    line.quantity
                    for state in world.orders.values()
                    for shipment in state.live_shipments()
                    if shipment.location_id == location_id
                    for line in shipment.lines
                    if line.sku == sku
                )
                assert stock.reserved == expected, (sku, location_id)
        for state in world.orders.values():
            assert all(s.state.value == "OPEN" for s in state.live_shipments())
            assert state.pending == {}
            assert not (state.cancelled and state.live_shipments())


def scarce_world(on_hand: list[int], safety: list[int], stale_view: bool) -> World:
    pairs = [(sku, loc) for sku in SKUS for loc in PLACES]
    stock: Stock = {sku: {} for sku in SKUS}
    keep: Stock = {sku: {} for sku in SKUS}
    for (sku, loc), units, kept in zip(pairs, on_hand, safety, strict=True):
        stock[sku][loc] = units
        keep[sku][loc] = kept
    world = World(stock, safety=keep)
    if stale_view:  # every worker routes on the figures from before the first order
        world.view = {sku: world.lookup(sku) for sku in SKUS}
    return world


UNITS = st.lists(st.integers(0, 3), min_size=6, max_size=6)
SAFETY = st.lists(st.integers(0, 1), min_size=6, max_size=6)


@settings(max_examples=150, deadline=None)
@given(
    on_hand=UNITS,
    safety=SAFETY,
    orders=st.lists(order_lines(), min_size=1, max_size=5),
    stale_view=st.booleans(),
    data=st.data(),
)
def test_competing_orders_never_overpromise_and_each_ends_in_one_outcome(
    on_hand: list[int],
    safety: list[int],
    orders: list[list[tuple[str, int]]],
    stale_view: bool,
    data: st.DataObject,
) -> None:
    world = scarce_world(on_hand, safety, stale_view)
    pipeline = Pipeline(world, data, rejections=False)
    for n, lines in enumerate(orders):
        pipeline.add(make_order(f"ORD-{n}", lines=lines), cancel=False)

    pipeline.run()

    for order_id in world.orders:
        outcomes = [s for s in world.statuses(order_id) if s in ROUTING_OUTCOMES]
        assert len(outcomes) == 1, (order_id, world.statuses(order_id))
        assert outcomes[0] in {"ALLOCATED", "PARTIALLY_ALLOCATED", "BACKORDERED"}
        assert world.statuses(order_id) == ["RECEIVED", outcomes[0]]
    pipeline.assert_nothing_leaked()
    event(f"most attempts by one order: {max(s.attempt for s in world.orders.values())}")


@settings(max_examples=150, deadline=None)
@given(
    on_hand=UNITS,
    safety=SAFETY,
    orders=st.lists(order_lines(), min_size=1, max_size=4),
    cancels=st.lists(st.booleans(), min_size=4, max_size=4),
    stale_view=st.booleans(),
    data=st.data(),
)
def test_cancels_and_rejections_in_any_order_leak_no_hold(
    on_hand: list[int],
    safety: list[int],
    orders: list[list[tuple[str, int]]],
    cancels: list[bool],
    stale_view: bool,
    data: st.DataObject,
) -> None:
    world = scarce_world(on_hand, safety, stale_view)
    pipeline = Pipeline(world, data, rejections=True)
    for n, lines in enumerate(orders):
        pipeline.add(make_order(f"ORD-{n}", lines=lines), cancel=cancels[n])

    pipeline.run()

    pipeline.assert_nothing_leaked()
    for order_id, state in world.orders.items():
        last = world.statuses(order_id)[-1]
        if state.cancelled:
            assert last == "CANCELLED"
        else:
            assert last in ROUTING_OUTCOMES
            assert pipeline.rejected[order_id] <= set(state.excluded_locations)

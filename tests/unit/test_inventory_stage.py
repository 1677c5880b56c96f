"""The inventory stage's batches: no stock event stops it, figures stay within the contract,
stock for a place that does not exist is refused, and every sku command gets one answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from schemas.enums import StockEventKind
from schemas.internal import Hold, SkuAction, SkuCommand, SkuResult
from schemas.models import Availability, Message
from streams import inventory_stage
from streams.core.inventory.stock import EVENT_MEMORY, MAX_UNITS, from_dict
from streams.inventory_channels import ChannelFigures
from streams.inventory_stage import InventoryStage, sku_table
from streams.location_gate import LocationGate
from streams.runtime.outbox import BATCH_MAX
from streams.views import NetworkView
from tests.unit.batch_fakes import FakeEvent, FakeMessage, Run
from tests.unit.factories import T0, make_location, make_stock_event

STOCK = "dom.stock.v1"
COMMANDS = "dom.internal.sku-commands.v1"


class KnownGate(LocationGate):
    """The gate once the view has read every location: it knows what the view knows."""

    async def _end_offsets(self) -> dict[int, int]:
        return {}


class Inventory:
    """The stage over a table of its own, with a view that knows LOC-A and LOC-B; with
    ``topic``, channel figures also go on dom.channel-availability.v1."""

    def __init__(self, stored: dict[bytes, bytes] | None = None, topic: bool = False) -> None:
        self.run = Run("inventory")
        self.table = self.run.table(stored or {})
        self.view = NetworkView()
        for location_id in ("LOC-A", "LOC-B"):
            self.view.apply(make_location(location_id))
        figures = ChannelFigures(self.view, topic=topic)
        self.skus = sku_table(self.table, figures)
        gate = KnownGate(self.view, {}, "locations")
        self.stage = InventoryStage(self.skus, figures, self.run.codec, self.view, gate)
        self.run.outbox.on_refused("inventory", self.stage.refuse)

    def event(self, record: Message, key: str | None = None) -> FakeEvent:
        topic = STOCK if record.avro_name == "dom.v1.StockEvent" else COMMANDS
        sku = key or record.sku  # type: ignore[attr-defined]
        return self.run.event(self.run.settings.topic(topic), sku, self.run.codec.encode(record))

    def batch(self, *events: FakeEvent) -> None:
        self.run.batch(list(events), self.stage.handle, self.skus, self.stage.announce)

    def answers(self) -> dict[str, SkuResult]:
        results = [r for r in self.run.records() if isinstance(r, SkuResult)]
        by_order = {r.order_id: r for r in results}
        assert len(by_order) == len(results), "a command was answered more than once"
        return by_order

    def availability(self) -> dict[str, Availability]:
        return {r.sku: r for r in self.run.records() if isinstance(r, Availability)}


def reserve(order_id: str, sku: str, location_id: str, quantity: int = 1) -> SkuCommand:
    return command(SkuAction.RESERVE, order_id, sku, location_id, quantity)


def command(
    action: SkuAction, order_id: str, sku: str, location_id: str, quantity: int = 1
) -> SkuCommand:
    hold_id = f"{order_id}-1-1"
    return SkuCommand(
        command_id=f"{action.value}:{sku}:{hold_id}",
        order_id=order_id,
        sku=sku,
        action=action,
        attempt=1,
        holds=(Hold(hold_id=hold_id, location_id=location_id, quantity=quantity),),
        issued_at=T0,
    )


def per_location(record: Availability) -> dict[str, tuple[int, int]]:
    return {x.location_id: (x.on_hand, x.reserved) for x in record.locations}


def test_two_valid_snapshots_whose_sum_is_past_an_int_stop_nothing() -> None:
    inv = Inventory()
    second = make_stock_event("SKU-1", "LOC-B", MAX_UNITS)

    inv.batch(
        inv.event(make_stock_event("SKU-1", "LOC-A", MAX_UNITS)),
        inv.event(reserve("ORD-1", "SKU-2", "LOC-A")),  # another customer, same batch
        inv.event(second),
        inv.event(make_stock_event("SKU-2", "LOC-A", 5)),
        inv.event(reserve("ORD-2", "SKU-1", "LOC-A", 3)),
    )

    [letter] = inv.run.letters()
    assert letter.value == inv.run.codec.encode(second)
    assert letter.error == (
        "SNAPSHOT of 2147483647 at LOC-B would make SKU-1's total on hand 4294967294, "
        "above 2147483647"
    )
    published = inv.availability()
    assert per_location(published["SKU-1"]) == {"LOC-A": (MAX_UNITS, 3)}
    assert published["SKU-1"].total_available == MAX_UNITS - 3
    answers = inv.answers()
    assert answers["ORD-2"].ok
    assert not answers["ORD-1"].ok  # SKU-2 had no stock yet when it came: refused, answered


def test_a_command_on_a_poisoned_sku_is_answered_no_and_the_rest_of_the_batch_goes_on() -> None:
    # A value stored before the bounds existed: its availability cannot be published.
    legacy = {
        "sku": "SKU-1",
        "locations": {
            "LOC-A": {"on_hand": MAX_UNITS, "safety_stock": 0},
            "LOC-B": {"on_hand": MAX_UNITS, "safety_stock": 0},
        },
    }
    inv = Inventory({b"SKU-1": json.dumps(legacy).encode()})
    poisoned = reserve("ORD-1", "SKU-1", "LOC-A")

    inv.batch(
        inv.event(poisoned),
        inv.event(make_stock_event("SKU-2", "LOC-A", 5)),
        inv.event(reserve("ORD-2", "SKU-2", "LOC-A", 2)),
        inv.event(reserve("ORD-3", "SKU-2", "LOC-A", 2)),
    )
    inv.batch(
        inv.event(make_stock_event("SKU-1", "LOC-B", 0)),  # the recount that heals it
        inv.event(reserve("ORD-4", "SKU-1", "LOC-A", 1)),
    )

    answers = inv.answers()
    assert set(answers) == {"ORD-1", "ORD-2", "ORD-3", "ORD-4"}
    assert not answers["ORD-1"].ok and "cannot be published" in (answers["ORD-1"].reason or "")
    assert answers["ORD-2"].ok and answers["ORD-3"].ok and answers["ORD-4"].ok
    [letter] = inv.run.letters()
    assert letter.value == inv.run.codec.encode(poisoned)
    published = inv.availability()
    assert per_location(published["SKU-2"]) == {"LOC-A": (5, 4)}
    assert per_location(published["SKU-1"]) == {"LOC-A": (MAX_UNITS, 1), "LOC-B": (0, 0)}
    # the first batch stored only SKU-2 (SKU-1 kept its value), and before it sent anything
    assert inv.table.log[:2] == ["write SKU-2", "flush"]


def test_a_command_the_stage_cannot_apply_is_answered_no_and_so_is_its_redelivery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inv = Inventory()
    inv.batch(inv.event(make_stock_event("SKU-1", "LOC-A", 10)))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the owner")

    monkeypatch.setattr(inventory_stage, "answer_command", broken)
    first = inv.event(reserve("ORD-1", "SKU-1", "LOC-A", 2))
    release = inv.event(command(SkuAction.RELEASE, "ORD-2", "SKU-1", "LOC-A"))
    inv.batch(first, release)
    monkeypatch.undo()
    inv.batch(first)  # redelivered after a crash, the bug fixed meanwhile

    results = [r for r in inv.run.records() if isinstance(r, SkuResult)]
    assert [(r.order_id, r.action, r.ok) for r in results] == [
        ("ORD-1", SkuAction.RESERVE, False),
        ("ORD-2", SkuAction.RELEASE, False),
        ("ORD-1", SkuAction.RESERVE, False),  # the same answer: the sender heard "no"
    ]
    assert "a bug in the owner" in (results[0].reason or "")
    assert len(inv.run.letters()) == 2
    assert per_location(inv.availability()["SKU-1"]) == {"LOC-A": (10, 0)}


def test_stock_for_a_location_that_does_not_exist_is_refused() -> None:
    inv = Inventory()
    ghost = make_stock_event("SKU-1", "LOC-DOES-NOT-EXIST", 7)

    inv.batch(inv.event(make_stock_event("SKU-1", "LOC-A", 5)), inv.event(ghost))

    [letter] = inv.run.letters()
    assert letter.value == inv.run.codec.encode(ghost)
    assert letter.error == "unknown location LOC-DOES-NOT-EXIST"
    published = inv.availability()["SKU-1"]
    assert per_location(published) == {"LOC-A": (5, 0)}
    assert published.total_available == 5


# ---- the gate: wait for the view to read the locations published up to now ----------------------


class EndsAt(LocationGate):
    """A gate whose locations topic ends at ``ends`` (partition -> end offset)."""

    def __init__(self, view: NetworkView, ends: dict[int, int]) -> None:
        super().__init__(view, {}, "locations")
        self.ends = ends
        self.asked = 0

    async def _end_offsets(self) -> dict[int, int]:
        self.asked += 1
        return self.ends


def test_a_known_location_passes_without_asking_the_broker() -> None:
    view = NetworkView()
    view.apply(make_location("LOC-A"))
    gate = EndsAt(view, {0: 5})
    assert asyncio.run(gate.knows("LOC-A"))
    assert gate.asked == 0


def test_a_location_published_just_before_its_stock_is_waited_for() -> None:
    view = NetworkView()
    view.note_locations_read({0: 2, 1: 0})
    gate = EndsAt(view, {0: 3, 1: 0})

    async def scenario() -> bool:
        asking = asyncio.ensure_future(gate.knows("LOC-NEW"))
        await asyncio.sleep(0)
        assert not asking.done()  # the view has not read offset 2 yet
        view.apply(make_location("LOC-NEW"))  # the follower reads it...
        view.note_locations_read({0: 3, 1: 0})  # ...and says how far it got
        return await asking

    assert asyncio.run(scenario())


def test_a_location_still_unknown_once_the_view_caught_up_is_refused_at_once() -> None:
    view = NetworkView()
    view.note_locations_read({0: 3})
    gate = EndsAt(view, {0: 3})
    assert not asyncio.run(gate.knows("LOC-DOES-NOT-EXIST"))
    assert gate.asked == 1


def test_a_view_that_does_not_catch_up_in_time_judges_on_what_it_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("streams.location_gate.CATCH_UP_TIMEOUT", 0.01)
    view = NetworkView()
    view.note_locations_read({0: 1})
    assert not asyncio.run(EndsAt(view, {0: 9}).knows("LOC-NEW"))


def test_a_command_keyed_by_another_sku_is_answered_no_and_changes_nothing() -> None:
    inv = Inventory()
    inv.batch(inv.event(make_stock_event("SKU-1", "LOC-A", 10)))
    misplaced = reserve("ORD-1", "SKU-1", "LOC-A", 2)

    inv.batch(inv.event(misplaced, key="SKU-9"))

    [answer] = inv.answers().values()
    assert not answer.ok and answer.reason == "key must be the sku 'SKU-1'"
    [letter] = inv.run.letters()
    assert letter.headers["dom.error"] == "key must be the sku 'SKU-1'"
    assert json.loads(inv.table[b"SKU-1"])["holds"] == []


def again(inv: Inventory, event: FakeEvent, *, later_s: float = 0.0) -> FakeEvent:
    """``event`` read once more by ``inv``, at the same offset (``later_s``: a new record that
    took the old one's offset, written that much later)."""
    m = event.message
    message = FakeMessage(m.topic, m.partition, m.offset, m.key, m.value)
    message.timestamp += later_s
    return FakeEvent(message)


def on_hand(inv: Inventory, sku: str, location_id: str) -> int:
    return from_dict(json.loads(inv.table[sku.encode()])).at(location_id).on_hand


def adjustments(inv: Inventory, count: int) -> list[FakeEvent]:
    return [
        inv.event(
            make_stock_event("SKU-1", "LOC-A", 1, StockEventKind.ADJUSTMENT, event_id=f"a{i}")
        )
        for i in range(count)
    ]


def test_a_replay_from_far_back_changes_nothing_though_the_ids_are_forgotten() -> None:
    # 1,200 deltas of one sku in three batches: the sku remembers the last 1,000 ids only.
    inv = Inventory()
    events = adjustments(inv, 1200)
    for start in range(0, 1200, 400):
        inv.batch(*events[start : start + 400])
    assert on_hand(inv, "SKU-1", "LOC-A") == 1200

    # The worker restarts and reads them again (its group rewound to the start), in batches
    # cut elsewhere: it stops after the first; then it reads them all.
    table = dict(inv.table)
    for rewind, (size, end) in enumerate([(1000, 1000), (400, 1200)]):
        restarted = Inventory(table)
        for start in range(0, end, size):
            restarted.batch(*(again(restarted, e) for e in events[start : start + size]))
        table = dict(restarted.table)

        assert on_hand(restarted, "SKU-1", "LOC-A") == 1200, f"rewind {rewind}"
        skipped = restarted.stage.metrics.replays_skipped.labels("inventory")._value.get()
        # The inputs of the last batch that wrote the sku go the way of any redelivery: by id.
        assert skipped == 800
        [published] = restarted.availability().values()
        assert per_location(published) == {"LOC-A": (1200, 0)}


def test_a_replay_of_the_last_batch_answers_again() -> None:
    # The crash came after the batch's state was stored, before its answers went out.
    inv = Inventory()
    stock = inv.event(make_stock_event("SKU-1", "LOC-A", 5))
    order = inv.event(reserve("ORD-1", "SKU-1", "LOC-A", 2))
    inv.batch(stock)
    inv.batch(order)

    restarted = Inventory(dict(inv.table))
    restarted.batch(again(restarted, stock), again(restarted, order))

    assert restarted.answers()["ORD-1"].ok
    assert per_location(restarted.availability()["SKU-1"]) == {"LOC-A": (5, 2)}
    # The stock event's batch is not known to have gone out either (the last batch read no
    # stock): it is replayed by its id, and changes nothing.
    assert restarted.stage.metrics.replays_skipped.labels("inventory")._value.get() == 0


def test_a_topic_made_again_is_read_though_its_offsets_were_read_before() -> None:
    inv = Inventory()
    first = adjustments(inv, 3)
    inv.batch(*first[:2])
    inv.batch(first[2])

    # The stock topic was deleted and made again: its offsets start at 0, its records are new.
    restarted = Inventory(dict(inv.table))
    new = make_stock_event("SKU-1", "LOC-A", 10, StockEventKind.ADJUSTMENT, event_id="new")
    fresh = restarted.event(new)
    restarted.batch(again(restarted, fresh, later_s=3600))

    assert on_hand(restarted, "SKU-1", "LOC-A") == 13


def test_what_a_sku_remembers_covers_what_a_replay_can_reach() -> None:
    # A replay reaches the ids only for the sku's inputs of the last batch that wrote it.
    assert EVENT_MEMORY >= BATCH_MAX


def test_a_reservation_applied_here_ends_the_order_stage_promise_of_it() -> None:
    # Both stages share the worker's view: once this worker's own inventory stage has applied
    # a reservation and put the figures after it in the view, the view shows the hold, and
    # routing must not count the units a second time (streams/core/routing/promised.py).
    inv = Inventory()
    inv.batch(inv.event(make_stock_event("SKU-1", "LOC-A", 5)))
    held = reserve("ORD-1", "SKU-1", "LOC-A", 2)
    other = reserve("ORD-2", "SKU-2", "LOC-A", 1)  # another owner's sku: still in flight
    for command in (held, other):
        hold = command.holds[0]
        inv.view.promised.asked(
            command.command_id, command.order_id, command.sku, [(hold.location_id, 2)], 0
        )

    inv.batch(inv.event(held))

    assert inv.view.stock("SKU-1") == {"LOC-A": 3}
    assert inv.view.promised.units("SKU-1", "ORD-9", None, 0) == {}
    assert inv.view.promised.units("SKU-2", "ORD-9", None, 0) == {"LOC-A": 2}

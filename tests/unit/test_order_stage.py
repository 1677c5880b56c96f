"""The order stage's batches: an input whose effect cannot be stored is dead-lettered with the
reason, and the rest of the batch goes on."""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from schemas.models import Message, OrderStatusChanged
from streams.core.saga.state import OrderState
from streams.order_stage import MAX_STATE_BYTES, OrderStage, SagaSettings, order_table
from streams.views import NetworkView
from tests.unit.batch_fakes import FakeEvent, Run
from tests.unit.factories import make_address, make_cancel, make_location, make_order

ORDERS = "dom.orders.v1"


class Orders:
    """The stage over a table of its own, with a view of one DC."""

    def __init__(self, stored: dict[bytes, bytes] | None = None) -> None:
        self.run = Run("orders")
        self.table = self.run.table({} if stored is None else stored)
        self.orders = order_table(self.table)
        view = NetworkView()
        view.apply(make_location("DC-EAST"))
        saga = SagaSettings.of(Settings())
        self.stage = OrderStage(self.orders, self.run.codec, view, saga, self.run.outbox.metrics)

    def event(self, record: Message) -> FakeEvent:
        key = record.order_id  # type: ignore[attr-defined]
        return self.run.event(self.run.settings.topic(ORDERS), key, self.run.codec.encode(record))

    def batch(self, *events: FakeEvent) -> None:
        self.run.batch(list(events), self.stage.handle, self.orders)

    def statuses(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for record in self.run.records():
            if isinstance(record, OrderStatusChanged):
                out.setdefault(record.order_id, []).append(record.status.value)
        return out


def test_an_order_too_large_to_store_is_dead_lettered_and_the_batch_goes_on() -> None:
    orders = Orders()
    # Within the contract, but its state (the order, and its address again in the commands
    # it causes) is more than a changelog record may hold.
    huge = make_order("ORD-HUGE", ship_to=make_address(name="x" * MAX_STATE_BYTES))

    orders.batch(orders.event(huge), orders.event(make_order("ORD-OK")))

    [letter] = orders.run.letters()
    assert letter.key == b"ORD-HUGE" and letter.stage == "orders"
    assert "state would be" in letter.error and f"{MAX_STATE_BYTES}" in letter.error
    assert orders.statuses() == {"ORD-OK": ["RECEIVED", "BACKORDERED"]}
    assert b"ORD-HUGE" not in orders.table and b"ORD-OK" in orders.table
    assert all(len(value) <= MAX_STATE_BYTES for value in _values(orders.table))


def test_an_order_keeps_the_replies_of_its_last_batch_only() -> None:
    orders = Orders()
    placed, cancelled = make_order("ORD-1"), make_cancel("ORD-1")
    place = orders.event(placed)
    orders.batch(place)
    assert set(_stored(orders, "ORD-1").replies) == {"event:" + placed.event_id}

    orders.batch(orders.event(cancelled))  # the next batch of that partition: placing is done

    state = _stored(orders, "ORD-1")
    assert set(state.replies) == set(state.replied_at) == {"event:" + cancelled.event_id}
    assert orders.statuses() == {"ORD-1": ["RECEIVED", "BACKORDERED", "CANCELLED"]}
    # The placement read again (a consumer group rewound by hand): skipped whole, as before.
    again = Orders(dict(orders.table))
    again.batch(place)
    assert again.run.records() == []


def test_the_inputs_of_one_batch_keep_their_replies_for_a_replay_of_that_batch() -> None:
    orders = Orders()
    placed, cancelled = make_order("ORD-1"), make_cancel("ORD-1")
    batch = [orders.event(placed), orders.event(cancelled)]
    orders.batch(*batch)
    first = orders.run.records()

    state = _stored(orders, "ORD-1")
    assert set(state.replies) == {"event:" + placed.event_id, "event:" + cancelled.event_id}
    # A stage killed before the batch's records went out reads the batch again: the same
    # records, from the replies.
    again = Orders(dict(orders.table))
    again.batch(*batch)
    assert again.run.records() == first


def _stored(orders: Orders, order_id: str) -> OrderState:
    return OrderState.from_stored(orders.table[order_id.encode()])


def _values(table: Any) -> list[bytes]:
    return [table[key] for key in list(table)]

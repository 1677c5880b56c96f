"""The order stage's batches: an input whose effect cannot be stored is dead-lettered with the
reason, and the rest of the batch goes on."""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from schemas.models import Message, OrderStatusChanged
from streams.order_stage import MAX_STATE_BYTES, OrderStage, SagaSettings, order_table
from streams.views import NetworkView
from tests.unit.batch_fakes import FakeEvent, Run
from tests.unit.factories import make_address, make_location, make_order

ORDERS = "dom.orders.v1"


class Orders:
    """The stage over a table of its own, with a view of one DC."""

    def __init__(self) -> None:
        self.run = Run("orders")
        self.table = self.run.table({})
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


def _values(table: Any) -> list[bytes]:
    return [table[key] for key in list(table)]

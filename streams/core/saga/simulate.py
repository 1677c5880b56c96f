"""The saga and the sku owners in memory, over a snapshot of the network: what the pipeline
would decide for a sequence of orders, without Kafka and without emitting anything.

``dom rules dry-run`` runs the same orders through two of these (live rules, proposed rules)
and compares what comes out. Results travel through FIFO queues as they would through the
per-key ordered topics, so the outcome is the one the pipeline reaches without races.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from schemas.internal import SkuCommand, SkuResult
from schemas.models import Availability, Message, OrderPlaced
from streams.core.inventory.sku_owner import answer_command
from streams.core.inventory.stock import LocationStock, SkuInventory
from streams.core.saga.apply import apply_input
from streams.core.saga.context import SagaContext
from streams.core.saga.state import OrderState


def inventory_from(records: Iterable[Availability]) -> dict[str, SkuInventory]:
    """Sku owners' state as the availability topic last published it."""
    return {
        a.sku: SkuInventory(
            a.sku,
            {
                x.location_id: LocationStock(x.on_hand, x.reserved, x.safety_stock)
                for x in a.locations
            },
        )
        for a in records
    }


@dataclass
class Simulation:
    """One network snapshot, routing order after order (each sees what the last one took)."""

    inventory: dict[str, SkuInventory]
    ctx: SagaContext
    orders: dict[str, OrderState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ctx = dataclasses.replace(self.ctx, stock=self._stock)

    def _stock(self, sku: str) -> Mapping[str, int]:
        state = self.inventory.get(sku)
        return state.availability() if state else {}

    def route(self, order: OrderPlaced) -> list[Message]:
        """Every record the pipeline would publish for ``order`` until it is routed."""
        published: list[Message] = []
        inputs: deque[OrderPlaced | SkuResult] = deque([order])
        while inputs:
            record = inputs.popleft()
            state, outputs = apply_input(self.orders.get(order.order_id), record, self.ctx)
            if state is None:
                break
            self.orders[order.order_id] = state
            for output in outputs:
                if isinstance(output, SkuCommand):
                    inputs.extend(self._owner(output))
                else:
                    published.append(output)
        return published

    def _owner(self, command: SkuCommand) -> list[SkuResult]:
        state = self.inventory.get(command.sku) or SkuInventory(command.sku)
        self.inventory[command.sku], results = answer_command(state, command, self.ctx.now)
        return results

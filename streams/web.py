"""HTTP on every worker: per-location availability of a sku, an order's state, the rules, and
the worker's health.

``/inventory/{sku}`` and ``/rules`` answer from the worker's network view (every worker has
all skus and rules);
``/orders/{order_id}`` is routed by Faust to the worker owning the order's partition;
``/health/`` answers 200 when the worker is healthy and 503 when it is starting or a stage is
failing (streams/health.py), with the reasons and every stage's crashes in the body.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from streams.core.saga_state import OrderState
from streams.health import WorkerHealth
from streams.views import NetworkView


def register_pages(app: faust.App, view: NetworkView, orders: Any, health: WorkerHealth) -> None:
    @app.page("/health/")
    class HealthPage(View):
        async def get(self, request: Request) -> Response:
            report = health.report()
            return self.json(report, status=200 if report["healthy"] else 503)

    @app.page("/inventory/{sku}/")
    class InventoryPage(View):
        async def get(self, request: Request, sku: str) -> Response:
            record = view.availability.get(sku)
            if record is None:
                return self.error(404, f"no stock is known for sku {sku!r}")
            return self.json(record.model_dump(mode="json"))

    @app.page("/rules/")
    class RulesPage(View):
        async def get(self, request: Request) -> Response:
            return self.json(rules_view(view))

    @app.page("/orders/{order_id}/")
    class OrderPage(View):
        @app.table_route(table=orders, match_info="order_id")  # type: ignore[arg-type]
        async def get(self, request: Request, order_id: str) -> Response:
            raw = orders.get(order_id.encode())
            if raw is None:
                return self.error(404, f"no order {order_id!r} is known")
            return self.json(order_view(OrderState.from_stored(raw)))


def order_view(state: OrderState) -> dict[str, Any]:
    """What an operator wants to see of an order: status, holds, shipments, why, and the
    timeline (an action's entry names it, who asked and its result)."""
    return {
        "order_id": state.order.order_id,
        "channel": state.order.channel.value,
        "status": state.status,
        "explanation": state.explanation,
        "rules_fired": state.rules_fired,
        "shipments": [
            {
                "shipment_id": s.shipment_id,
                "location_id": s.location_id,
                "kind": s.kind,
                "state": s.state.value,
                "accepted": s.accepted,
                "destination_location_id": s.destination_location_id,
                "lines": [line.model_dump() for line in s.lines],
            }
            for s in state.shipments.values()
        ],
        "backordered": [line.model_dump() for line in state.backordered],
        "holds": [hold.model_dump(mode="json") for hold in state.holds],
        "excluded_locations": state.excluded_locations,
        "history": [h.model_dump(mode="json") for h in state.history],
    }


def rules_view(view: NetworkView) -> dict[str, Any]:
    """The rules in force on this worker, in evaluation order, and the refused versions."""
    return {
        "rules": [rule.model_dump(mode="json") for rule in view.rules.rules()],
        "refused": [
            {"rule_id": rule_id, "version": version, "error": error}
            for rule_id, (version, error) in sorted(view.rule_errors.items())
        ],
    }

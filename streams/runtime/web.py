"""HTTP on every worker: per-location availability of a sku, an order's state, the rules, the
channel policies, and the worker's health.

``/inventory/{sku}``, ``/rules`` and ``/channels`` answer from the worker's network view (every
worker has all skus, rules and channel policies);
``/orders/{order_id}`` is routed by Faust to the worker owning the order's partition;
``/orders/`` lists the work queues of live orders (streams/core/saga/queues.py): each worker
has only its own partitions, so the one asked asks every other worker that holds some for
theirs (``local=1``) and merges them, naming those that did not answer in time;
``/health/`` answers 200 when the worker is healthy and 503 when it is starting or a stage is
failing (streams/health.py), with the reasons and every stage's crashes in the body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import faust
from faust.web import Request, Response, View

from streams.core.saga.queues import merge, parse_query, scan
from streams.core.saga.state import OrderState
from streams.health import WorkerHealth

if TYPE_CHECKING:  # streams.views imports the runtime: a name for annotations only
    from streams.views import NetworkView

ASK_TIMEOUT = aiohttp.ClientTimeout(total=5.0)
"""How long the worker asked waits for another worker's queues before naming it unanswered."""


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

    @app.page("/channels/")
    class ChannelsPage(View):
        async def get(self, request: Request) -> Response:
            return self.json(channels_view(view))

    @app.page("/orders/{order_id}/")
    class OrderPage(View):
        @app.table_route(table=orders, match_info="order_id")  # type: ignore[arg-type]
        async def get(self, request: Request, order_id: str) -> Response:
            raw = orders.get(order_id.encode())
            if raw is None:
                return self.error(404, f"no order {order_id!r} is known")
            return self.json(order_view(OrderState.from_stored(raw)))

    @app.page("/orders/")
    class OrderQueuesPage(View):
        async def get(self, request: Request) -> Response:
            try:
                queues, limit = parse_query(request.query)
            except ValueError as error:
                return self.error(400, str(error))
            local = request.query.get("local") == "1"
            return self.json(await queues_page(app, orders, queues, limit, local))


async def queues_page(
    app: faust.App, orders: Any, queues: Sequence[str], limit: int, local: bool
) -> dict[str, Any]:
    """The queues of this worker's partitions and, unless ``local``, of every other worker
    holding some of the order table's: ``workers`` names this one first, then those asked."""
    found = scan(orders.values(), queues, limit, datetime.now(UTC))
    others = [] if local else other_workers(app, orders)
    params = {"local": "1", "limit": str(limit)}
    if len(queues) == 1:
        params["queue"] = queues[0]
    answers = await asyncio.gather(*(ask_worker(app, url, params) for url in others))
    parts = [found.queues, *(a["queues"] for a in answers if a is not None)]
    return {
        "queues": merge(parts, queues, limit),
        "workers": [str(app.conf.canonical_url), *others],
        "unanswered": [url for url, answer in zip(others, answers, strict=True) if answer is None],
        "unreadable": found.unreadable + sum(a.get("unreadable", 0) for a in answers if a),
    }


def other_workers(app: faust.App, orders: Any) -> list[str]:
    """The web addresses of the other workers holding active partitions of ``orders``, from the
    assignment of the last rebalance (every member learns every member's URL and partitions)."""
    own = str(app.conf.canonical_url)
    hosts = app.router.table_metadata(orders.name)
    return sorted(url for url, topics in hosts.items() if url != own and any(topics.values()))


async def ask_worker(app: faust.App, url: str, params: Mapping[str, str]) -> dict[str, Any] | None:
    """Another worker's own queues, or None if it did not answer them in time."""
    try:
        async with app.http_client.get(
            f"{url.rstrip('/')}/orders/", params=params, timeout=ASK_TIMEOUT
        ) as response:
            if response.status != 200:
                return None
            answer = await response.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, ValueError):
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("queues"), dict):
        return None
    return answer


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


def channels_view(view: NetworkView) -> dict[str, Any]:
    """Each channel's policy in force on this worker (None: the default, every location and no
    buffer), what it means, and the locations its orders may be routed to (None: every one);
    ``plan`` names the plan the worker figures channel availability under."""
    plan = view.channel_plan()
    channels = []
    for policy in plan.policies():
        name = policy.channel.value
        record = view.channel_policies.get(name)
        allowed = plan.locations_for(name)
        channels.append(
            {
                "channel": name,
                "policy": record.model_dump(mode="json") if record is not None else None,
                "means": policy.describe(),
                "locations": sorted(allowed) if allowed is not None else None,
            }
        )
    return {"plan": plan.fingerprint, "channels": channels}

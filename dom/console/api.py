"""The console's read-only JSON API: inventory, orders, work queues, the outcome feed, low stock,
health, and the vocabulary the rule form offers. Answers come from the workers' endpoints and from
the feed of outbound topics; nothing here writes anything."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dom.console import validate
from dom.console.state import CONSOLE, json_error
from dom.console.workers import WorkersUnavailable
from schemas.enums import RuleStage
from streams.core.rules.actions import ACTIONS
from streams.core.rules.context import CONTEXT_SCHEMA
from streams.core.saga.queues import MAX_LIMIT, QUEUES

ACTION_HINTS = {
    "hold": "why the order is held",
    "exclude_locations": "location ids, comma-separated",
    "exclude_location_kinds": "DC or STORE, comma-separated",
    "prefer_locations": "location ids, comma-separated",
    "force_location": "one location id",
    "set_service_level": "STANDARD, EXPRESS or NEXT_DAY",
    "cap_shipments": "a whole number, at least 1",
    "set_packaging": "STANDARD, PROTECTIVE, GIFT or your own",
    "add_note": "the note's text",
    "add_gift_insert": "the gift message",
    "add_sample": "sample skus, comma-separated",
    "add_discount_code": "codes, comma-separated",
}


async def config(request: web.Request) -> web.Response:
    """What the page needs to draw its forms: stages, actions, filters, vocabulary."""
    console = request.app[CONSOLE]
    return web.json_response(
        {
            "workers": console.client.urls,
            "grafana_url": console.grafana_url,
            "stages": [s.value for s in RuleStage],
            "actions": {
                name: {
                    "stage": spec.stage.value,
                    "param": spec.param,
                    "hint": ACTION_HINTS.get(name, ""),
                }
                for name, spec in ACTIONS.items()
            },
            "channels": sorted(validate.CHANNELS),
            "statuses": sorted(validate.STATUSES),
            "vocabulary": {name: str(kind) for name, kind in CONTEXT_SCHEMA.items()},
        }
    )


async def inventory(request: web.Request) -> web.Response:
    """Per-location stock of one sku, as a worker sees it (the feed's copy when none answers)."""
    sku = validate.key(request.match_info["sku"], "sku")
    console = request.app[CONSOLE]
    source = "worker"
    try:
        answer = await console.client.get_json("inventory", sku)
        status, body = answer.status, answer.body
    except WorkersUnavailable as error:
        record = console.feed.availability_of(sku)
        if record is None:
            return json_error(503, str(error))
        status, body, source = 200, record.model_dump(mode="json"), "topic"
    if status == 404:
        return json_error(404, f"no stock is known for sku {sku!r}")
    facts = console.feed.location_facts()
    for row in body.get("locations", []):
        row.update(facts.get(row.get("location_id"), {}))
    return web.json_response({**body, "source": source})


async def low_stock(request: web.Request) -> web.Response:
    query = request.query
    threshold = validate.bounded_int(query.get("threshold"), "threshold", 0, 1_000_000, 5)
    limit = validate.bounded_int(query.get("limit"), "limit", 1, 500, 50)
    return web.json_response({"skus": request.app[CONSOLE].feed.low_stock(threshold, limit)})


async def skus(request: web.Request) -> web.Response:
    """SKUs starting with ``prefix`` (suggestions for the search box)."""
    prefix = request.query.get("prefix", "")
    if prefix:
        prefix = validate.key(prefix, "prefix")
    return web.json_response({"skus": request.app[CONSOLE].feed.skus_like(prefix)})


async def order(request: web.Request) -> web.Response:
    """An order as its owning worker knows it, with the commands the feed saw for it and what
    the channel sync told its channel."""
    order_id = validate.key(request.match_info["order_id"], "order id")
    console = request.app[CONSOLE]
    try:
        answer = await console.client.get_json("orders", order_id)
    except WorkersUnavailable as error:
        return json_error(503, str(error))
    if answer.status == 404:
        return json_error(404, f"no order {order_id!r} is known to the workers")
    body: dict[str, Any] = dict(answer.body)
    body["commands"] = console.feed.commands_of(order_id)
    body["channel_calls"] = console.feed.channel_calls_of(order_id)
    body["explanation_parts"] = _explanation_parts(str(body.get("explanation") or ""))
    return web.json_response(body)


async def queues(request: web.Request) -> web.Response:
    """The work queues of live orders (held, backordered, acceptance, pickup), gathered by a
    worker from every worker; one queue when ``queue`` names it."""
    query = request.query
    queue = query.get("queue", "").strip().lower()
    if queue and queue not in QUEUES:
        raise validate.problem("queue", f"queue must be one of {', '.join(QUEUES)}")
    limit = validate.bounded_int(query.get("limit"), "limit", 1, MAX_LIMIT, 50)
    params = {"limit": str(limit), **({"queue": queue} if queue else {})}
    try:
        answer = await request.app[CONSOLE].client.get_json("orders", params=params)
    except WorkersUnavailable as error:
        return json_error(503, str(error))
    return web.json_response({**answer.body, "worker": answer.worker})


def _explanation_parts(explanation: str) -> list[str]:
    """The one-line explanation cut at its clauses, one per line on the page."""
    return [part.strip() for part in explanation.split("; ") if part.strip()]


async def outcomes(request: web.Request) -> web.Response:
    """Recent routing outcomes, newest first, by channel and status."""
    query = request.query
    channel = validate.choice(query.get("channel"), validate.CHANNELS, "channel")
    status = validate.choice(query.get("status"), validate.STATUSES, "status")
    limit = validate.bounded_int(query.get("limit"), "limit", 1, 500, 100)
    found = request.app[CONSOLE].feed.recent_outcomes(channel=channel, status=status, limit=limit)
    return web.json_response({"outcomes": found})


async def health(request: web.Request) -> web.Response:
    return web.json_response(await request.app[CONSOLE].sampler.sample())

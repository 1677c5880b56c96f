"""The console's order actions: release a hold, place one, retry a backorder, move a shipment,
cancel lines, as ``dom orders`` does them.

An action is an ``OrderAction`` record on ``dom.order-actions.v1`` with a fresh action id,
requested by the signed-in user (a ``requested_by`` in the body is ignored); nothing here
changes an order directly. The console then waits, bounded by ``ANSWER_TIMEOUT``, for the one
``OrderStatusChanged`` that answers the action, APPLIED or REFUSED, and passes it on; with no
answer in time it says 202 and the action id (the action may still apply). Producing and
waiting block, so they run on a thread (``send_and_wait`` of :mod:`dom.orders_cli`).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Protocol

import click
from aiohttp import web
from pydantic import ValidationError

from config.settings import Settings
from dom.console import validate
from dom.console.login_api import current_user
from dom.console.state import json_body, json_error
from dom.orders_cli import new_action
from schemas.models import ActionLine, OrderAction, OrderActionKind, OrderStatusChanged

ANSWER_TIMEOUT = 10.0
"""Seconds to wait for the pipeline's answer before saying 202 (normally under a second)."""
KINDS = frozenset(
    {
        OrderActionKind.RELEASE_HOLD,
        OrderActionKind.PLACE_HOLD,
        OrderActionKind.RETRY_BACKORDER,
        OrderActionKind.MOVE_SHIPMENT,
        OrderActionKind.CANCEL_LINES,
    }
)
"""What the console offers (a new address, CHANGE_SHIP_TO, is left to ``dom orders``)."""
MAX_REASON = 500
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@\-]{0,255}")
"""A hold, shipment, location or line id (a shipment id is its order's id and more)."""
MAX_LINES = 100


class ActionSender(Protocol):
    """Produces an action and returns the status answering it, None if none came in time;
    a blocking call, run off the event loop."""

    def __call__(self, action: OrderAction, timeout: float) -> OrderStatusChanged | None: ...


SENDER: web.AppKey[ActionSender] = web.AppKey("order_action_sender")


class KafkaActions:
    """The live actions topic, answered on the status topic (``dom orders``' own code)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, action: OrderAction, timeout: float) -> OrderStatusChanged | None:
        from dom.orders_cli import send_and_wait

        return send_and_wait(self.settings, action, timeout)


async def act(request: web.Request) -> web.Response:
    """Send one action on the order in the path and answer with the pipeline's verdict."""
    order_id = validate.key(request.match_info["order_id"], "order id")
    body = await json_body(request)
    try:
        action = action_of(body, order_id, requested_by=current_user(request).name)
    except validate.InputError as error:
        return json_error(422, error.errors[0]["message"], error.errors)
    send = request.app[SENDER]
    try:
        answer = await asyncio.to_thread(send, action, ANSWER_TIMEOUT)
    except click.ClickException as error:  # the broker did not confirm the record
        return json_error(503, error.message)
    if answer is None:
        return web.json_response({"action_id": action.action_id, "result": None}, status=202)
    result = answer.action_result.value if answer.action_result else None
    return web.json_response(
        {
            "action_id": action.action_id,
            "result": result,
            "reason": answer.reason,
            "status": answer.status.value,
        }
    )


def action_of(body: dict[str, Any], order_id: str, *, requested_by: str) -> OrderAction:
    """The ``OrderAction`` a form's body asks for; InputError names the first field wrong."""
    kind = _kind(body.get("kind"))
    reason = _reason(body.get("reason"))
    fields: dict[str, Any] = {
        name: _optional_id(body.get(name), name) for name in ("hold_id", "to_location_id")
    }
    fields["shipment_id"] = _optional_id(body.get("shipment_id"), "shipment_id")
    if kind is OrderActionKind.MOVE_SHIPMENT and fields["shipment_id"] is None:
        raise validate.problem("shipment_id", "say which shipment to move (shipment_id)")
    if kind is OrderActionKind.CANCEL_LINES:
        fields["lines"] = _lines(body.get("lines"))
    try:
        return new_action(order_id, kind, requested_by, reason, source="console", **fields)
    except ValidationError as error:  # a limit of the contract the checks above missed
        raise validate.problem("body", str(error).splitlines()[-1].strip()) from None


def _kind(raw: Any) -> OrderActionKind:
    names = ", ".join(sorted(KINDS))
    if not isinstance(raw, str) or raw.strip().upper() not in KINDS:
        raise validate.problem("kind", f"kind must be one of {names}")
    return OrderActionKind(raw.strip().upper())


def _reason(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise validate.problem("reason", "say why: the reason goes in the order's timeline")
    if len(raw) > MAX_REASON:
        raise validate.problem("reason", f"the reason is longer than {MAX_REASON} characters")
    return raw.strip()


def _optional_id(raw: Any, what: str) -> str | None:
    if raw is None or raw == "":
        return None
    return _id(raw, what)


def _id(raw: Any, what: str) -> str:
    if not isinstance(raw, str) or not ID.fullmatch(raw.strip()):
        raise validate.problem(what, f"{what} must be letters, digits, '.', '_', ':' or '-'")
    return raw.strip()


def _lines(raw: Any) -> list[ActionLine]:
    if not isinstance(raw, list) or not raw:
        raise validate.problem("lines", "name the lines to cancel: [{line_id, quantity}]")
    if len(raw) > MAX_LINES:
        raise validate.problem("lines", f"at most {MAX_LINES} lines")
    lines = []
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise validate.problem("lines", f"line {number}: expected {{line_id, quantity}}")
        line_id = _id(item["line_id"], "line_id")
        quantity = validate.bounded_int(item.get("quantity"), "quantity", 1, 2**31 - 1, 0)
        if not quantity:
            raise validate.problem("lines", f"line {number}: say how many units to cancel")
        lines.append(ActionLine(line_id=line_id, quantity=quantity))
    return lines

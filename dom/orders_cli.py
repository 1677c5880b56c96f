"""``dom orders``: what operators type to look at an order and to act on it.

``show`` reads the order's page on a worker (Faust routes ``/orders/ID/`` to the worker owning
the order). Actions (``release``, ``hold``, ``cancel-lines``) are ``OrderAction`` records on
``dom.order-actions.v1`` with a fresh action_id; the command then waits, bounded, for the one
``OrderStatusChanged`` that answers it and prints APPLIED or REFUSED with the reason (a refusal
exits 1, no answer in time exits 2). Nothing here changes an order directly.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

import click
from pydantic import ValidationError

from config.settings import Settings
from dom.rules_cli import _operator
from schemas.models import (
    ActionLine,
    ActionResult,
    Address,
    OrderAction,
    OrderActionKind,
    OrderStatusChanged,
)

ANSWER_TIMEOUT_S = 30.0


@click.group()
def orders() -> None:
    """Look at orders and act on them: show, list, release, hold, retry, move, change-address,
    cancel-lines."""


by_option = click.option(
    "--by", "requested_by", default=_operator, show_default="the login name", help="Who asks."
)
reason_option = click.option("--reason", required=True, help="Why, for the order's timeline.")
timeout_option = click.option(
    "--timeout",
    type=float,
    default=ANSWER_TIMEOUT_S,
    show_default=True,
    help="Seconds to wait for the pipeline's answer.",
)


@orders.command("show")
@click.argument("order_id")
@click.option("--url", help="A worker's web address (default: this host's DOM_WEB_PORT).")
@click.option("--json", "as_json", is_flag=True, help="Print the worker's page as JSON.")
@click.pass_obj
def show(settings: Settings, order_id: str, url: str | None, as_json: bool) -> None:
    """An order's status, holds, shipments and timeline, as its worker has it."""
    page = _order_page(url or f"http://127.0.0.1:{settings.web_port}", order_id)
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    click.echo("\n".join(render_order(page)))


@orders.command("release")
@click.argument("order_id")
@click.option("--hold", "hold_id", help="The hold to release (default: every hold).")
@by_option
@reason_option
@timeout_option
@click.pass_obj
def release(
    settings: Settings,
    order_id: str,
    hold_id: str | None,
    requested_by: str,
    reason: str,
    timeout: float,
) -> None:
    """Release one hold of an order, or all of them; the last one released routes it."""
    action = _action(order_id, OrderActionKind.RELEASE_HOLD, requested_by, reason, hold_id=hold_id)
    _report(send_and_wait(settings, action, timeout))


@orders.command("hold")
@click.argument("order_id")
@by_option
@reason_option
@timeout_option
@click.pass_obj
def hold(settings: Settings, order_id: str, requested_by: str, reason: str, timeout: float) -> None:
    """Put an order that has not shipped on hold: its open shipments are cancelled at their
    locations and their units released until the hold is released."""
    action = _action(order_id, OrderActionKind.PLACE_HOLD, requested_by, reason)
    _report(send_and_wait(settings, action, timeout))


@orders.command("retry")
@click.argument("order_id")
@by_option
@reason_option
@timeout_option
@click.pass_obj
def retry(
    settings: Settings, order_id: str, requested_by: str, reason: str, timeout: float
) -> None:
    """Route an order's backordered lines again now, instead of waiting for their stock to
    rise (it keeps its place in line if nothing can be served)."""
    action = _action(order_id, OrderActionKind.RETRY_BACKORDER, requested_by, reason)
    _report(send_and_wait(settings, action, timeout))


@orders.command("move")
@click.argument("order_id")
@click.option("--shipment", "shipment_id", required=True, help="The open shipment to move.")
@click.option("--to", "to_location_id", help="Where to (default: anywhere but where it is).")
@by_option
@reason_option
@timeout_option
@click.pass_obj
def move(
    settings: Settings,
    order_id: str,
    shipment_id: str,
    to_location_id: str | None,
    requested_by: str,
    reason: str,
    timeout: float,
) -> None:
    """Move an open shipment to another location: the old one gets a CANCEL, and the move is
    refused, changing nothing, when the new place cannot take all of it."""
    action = _action(
        order_id,
        OrderActionKind.MOVE_SHIPMENT,
        requested_by,
        reason,
        shipment_id=shipment_id,
        to_location_id=to_location_id,
    )
    _report(send_and_wait(settings, action, timeout))


@orders.command("change-address")
@click.argument("order_id")
@click.option("--name", required=True, help="Who receives it.")
@click.option("--line1", required=True)
@click.option("--line2")
@click.option("--city", required=True)
@click.option("--region", required=True, help="State or province code, like NY.")
@click.option("--postal-code", required=True)
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 code, like US.")
@click.option("--lat", type=float, help="Latitude (routing's distance needs it).")
@click.option("--lon", type=float, help="Longitude.")
@by_option
@reason_option
@timeout_option
@click.pass_obj
def change_address(
    settings: Settings,
    /,
    order_id: str,
    requested_by: str,
    reason: str,
    timeout: float,
    **address: Any,
) -> None:
    """Give an order that has not shipped a new delivery address. Its open shipments are
    routed again where that is cheaper for the new address; the others get it sent."""
    try:
        ship_to = Address(**address)
    except ValidationError as exc:
        raise click.BadParameter(str(exc).splitlines()[-1], param_hint="address") from exc
    action = _action(
        order_id, OrderActionKind.CHANGE_SHIP_TO, requested_by, reason, ship_to=ship_to
    )
    _report(send_and_wait(settings, action, timeout))


@orders.command("cancel-lines")
@click.argument("order_id")
@click.option(
    "--line",
    "lines",
    multiple=True,
    required=True,
    metavar="LINE_ID:QTY",
    help="Units of one line to cancel (repeat for several lines).",
)
@by_option
@reason_option
@timeout_option
@click.pass_obj
def cancel_lines(
    settings: Settings,
    order_id: str,
    lines: tuple[str, ...],
    requested_by: str,
    reason: str,
    timeout: float,
) -> None:
    """Cancel some units of some lines. Their shipments are cancelled at their locations (the
    rest of a shipment is sent again); cancelling every open unit cancels the order."""
    wanted = [_action_line(text) for text in lines]
    action = _action(order_id, OrderActionKind.CANCEL_LINES, requested_by, reason, lines=wanted)
    _report(send_and_wait(settings, action, timeout))


def _action_line(text: str) -> ActionLine:
    line_id, sep, quantity = text.rpartition(":")
    if not sep or not line_id or not quantity.isdigit() or int(quantity) < 1:
        raise click.BadParameter(f"{text!r}: expected LINE_ID:QTY, QTY a whole number above 0")
    return ActionLine(line_id=line_id, quantity=int(quantity))


def _action(
    order_id: str, kind: OrderActionKind, requested_by: str, reason: str, **fields: Any
) -> OrderAction:
    return new_action(order_id, kind, requested_by, reason, source="cli", **fields)


def new_action(
    order_id: str,
    kind: OrderActionKind,
    requested_by: str,
    reason: str,
    *,
    source: str,
    **fields: Any,
) -> OrderAction:
    """A fresh action (its id: where it came from and a random part), asked for now."""
    return OrderAction(
        action_id=f"{source}-{uuid.uuid4().hex}",
        order_id=order_id,
        kind=kind,
        reason=reason,
        requested_by=requested_by,
        requested_at=datetime.now(UTC),
        **fields,
    )


def send_and_wait(
    settings: Settings, action: OrderAction, timeout: float
) -> OrderStatusChanged | None:
    """Produce ``action`` and return the status that answers it, or None if none came in time.
    The status topic is read from its end as it was before sending, so the answer is not
    missed, whichever partition it lands on."""
    from confluent_kafka import Consumer, TopicPartition

    from connectors.producer import ContractProducer
    from schemas.codec import Codec, DecodeError
    from schemas.topics import ORDER_STATUS

    codec = Codec.from_url(
        settings.schema_registry_url, **(settings.schema_registry_config() or {})
    )
    name = settings.topic(ORDER_STATUS.name)
    consumer = Consumer(
        settings.librdkafka_config(
            **{"group.id": f"dom-orders-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
        )
    )
    try:
        partitions = consumer.list_topics(name, timeout=timeout).topics[name].partitions
        ends = [
            TopicPartition(name, p, consumer.get_watermark_offsets(TopicPartition(name, p))[1])
            for p in partitions
        ]
        consumer.assign(ends)
        with ContractProducer(settings, codec) as producer:
            producer.send(action)
        if producer.report.failed:
            raise click.ClickException(f"not sent: {producer.report.errors}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in consumer.consume(100, 0.5):
                value = message.value()
                if message.error() is not None or value is None:
                    continue
                try:
                    status = codec.decode_as(value, OrderStatusChanged)
                except DecodeError:
                    continue
                if isinstance(status, OrderStatusChanged) and status.action_id == action.action_id:
                    return status
        return None
    finally:
        consumer.close()


def _report(answer: OrderStatusChanged | None) -> None:
    if answer is None:
        click.echo("no answer in time: is a worker running? (the action may still apply)", err=True)
        sys.exit(2)
    result = answer.action_result.value if answer.action_result else "?"
    click.echo(f"{result}  {answer.order_id} is {answer.status.value}: {answer.reason}")
    for h in answer.holds:
        click.echo(f"  still held: {h.hold_id} {h.kind.value} {h.reason}")
    if answer.action_result is not ActionResult.APPLIED:
        sys.exit(1)


def _order_page(base: str, order_id: str) -> dict[str, Any]:
    url = f"{base.rstrip('/')}/orders/{urllib.parse.quote(order_id, safe='')}/"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            page: dict[str, Any] = json.load(response)
            return page
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise click.ClickException(f"no order {order_id!r} is known") from None
        raise click.ClickException(f"{url}: HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        raise click.ClickException(f"{url}: {error}; is a worker running?") from None


def render_order(page: dict[str, Any]) -> list[str]:
    """The worker's order page as lines an operator reads."""
    out = [f"{page['order_id']}  {page['status']}  ({page.get('channel', '')})"]
    if page.get("explanation"):
        out.append(f"  why: {page['explanation']}")
    for h in page.get("holds", []):
        who = h.get("placed_by") or h.get("rule_id") or ""
        out.append(f"  hold {h['hold_id']}  {h['kind']}  {who}  {h['reason']}")
    for s in page.get("shipments", []):
        lines = ", ".join(f"{x['sku']} x{x['quantity']}" for x in s["lines"])
        out.append(f"  shipment {s['shipment_id']}  {s['location_id']}  {s['state']}  {lines}")
    for x in page.get("backordered", []):
        out.append(f"  backordered {x['sku']} x{x['quantity']} (line {x['line_id']})")
    out.append("  timeline:")
    for h in page.get("history", []):
        action = ""
        if h.get("action_id"):
            action = f" [{h['action_kind']} by {h['requested_by']}: {h['action_result']}]"
        out.append(f"    {h['at']}  {h['status']}{action}  {h['reason']}")
    return out


from dom.orders_queues import list_orders  # noqa: E402  (the work queues, in their own module)

orders.add_command(list_orders)

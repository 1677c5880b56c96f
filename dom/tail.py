"""``dom tail``: what one warehouse, one order or the dead-letter topic receives, as a person
reads it. Formatting is pure (``describe``); following a topic is a plain consumer outside any
group, so tailing never takes messages away from the pipeline."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import click
from confluent_kafka import Consumer, Message, TopicPartition

from config.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.commands import FulfillmentCommand, PackagingCommand, ReturnLabelCommand
from schemas.common import Address
from schemas.models import Message as Record
from schemas.orders import OrderStatusChanged

TAILS = {
    "fulfillment": (registry.FULFILLMENT_COMMANDS, registry.PACKAGING_COMMANDS),
    "status": (registry.ORDER_STATUS,),
    "labels": (registry.RETURN_LABEL_COMMANDS,),
    "dlq": (registry.DLQ,),
}


def describe(record: Record) -> str:
    """One record as a few readable lines."""
    if isinstance(record, FulfillmentCommand):
        return _fulfilment(record)
    if isinstance(record, PackagingCommand):
        return _packing(record)
    if isinstance(record, OrderStatusChanged):
        where = ", ".join(f"{s.shipment_id}@{s.location_id}" for s in record.shipments)
        rules = f"  rules: {', '.join(record.rules_fired)}" if record.rules_fired else ""
        return (
            f"{record.at:%Y-%m-%d %H:%M:%S}  {record.order_id}  {record.status.value}"
            f"{'  ' + where if where else ''}{rules}\n    {record.reason}"
        )
    if isinstance(record, ReturnLabelCommand):
        return (
            f"{record.created_at:%Y-%m-%d %H:%M:%S}  LABEL {record.rma_number}  order "
            f"{record.order_id}  to {record.return_location_id}  {record.label_format.value} "
            f"({len(record.label)} bytes)\n    from {_address(record.ship_from)}"
        )
    return repr(record)


def _fulfilment(c: FulfillmentCommand) -> str:
    to = (
        f"to {_address(c.ship_to)}"
        if c.ship_to
        else f"transfer to store {c.destination_location_id}"
        if c.destination_location_id
        else "customer collects here"
    )
    lines = "\n".join(f"    {x.quantity} x {x.sku}  (line {x.line_id})" for x in c.lines)
    rules = f"\n    rules: {', '.join(c.rules_fired)}" if c.rules_fired else ""
    return (
        f"{c.created_at:%Y-%m-%d %H:%M:%S}  {c.action.value} {c.shipment_id}  order {c.order_id}  "
        f"{c.kind.value} {c.service_level.value}  {to}\n{lines}{rules}"
    )


def _packing(p: PackagingCommand) -> str:
    cartons = "; ".join(
        f"{c.box_type} [{', '.join(f'{sku} x{n}' for sku, n in sorted(Counter(c.skus).items()))}]"
        for c in p.cartons
    )
    inserts = ", ".join(f"{i.kind.value} {i.value!r}" for i in p.inserts) or "none"
    return (
        f"                     PACK   {p.shipment_id}  {p.packaging}  cartons: {cartons}\n"
        f"    inserts: {inserts}"
    )


def _address(a: Address | None) -> str:
    if a is None:
        return "-"
    return f"{a.name}, {a.line1}, {a.city} {a.region} {a.postal_code} {a.country}"


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def follow(
    settings: Settings,
    topic_names: tuple[str, ...],
    *,
    key: str | None,
    from_start: bool,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[Message]:
    """Messages of the topics (optionally only one key), as they arrive, until ``stop()``."""
    names = [settings.topic(n) for n in topic_names]
    consumer = Consumer(
        settings.librdkafka_config(
            **{
                "group.id": f"dom-tail-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest" if from_start else "latest",
            }
        )
    )
    try:
        metadata = consumer.list_topics(timeout=10).topics
        offset = -2 if from_start else -1  # OFFSET_BEGINNING / OFFSET_END
        consumer.assign(
            [TopicPartition(n, p, offset) for n in names for p in metadata[n].partitions]
        )
        while not stop():
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            if key is None or message.key() == key.encode():
                yield message
    finally:
        consumer.close()


@click.command("tail")
@click.argument("what", type=click.Choice(sorted(TAILS)))
@click.option("--location", help="fulfillment: only this location's commands.")
@click.option("--order", "order_id", help="status, labels: only this order.")
@click.option("--from-start", is_flag=True, help="Start at the beginning, not at new records.")
@click.pass_obj
def tail(
    settings: Settings, what: str, location: str | None, order_id: str | None, from_start: bool
) -> None:
    """Follow what a warehouse (fulfillment), a channel (status) or the labels printer receives,
    or the dead letters, readable by a person. Ctrl-C stops."""
    codec = Codec.from_url(
        settings.schema_registry_url, **(settings.schema_registry_config() or {})
    )
    key = location if what == "fulfillment" else order_id
    names = tuple(t.name for t in TAILS[what])
    try:
        for message in follow(settings, names, key=key, from_start=from_start):
            if what == "dlq":
                headers = {str(h[0]): _text(h[1]) for h in message.headers() or []}
                error, stage = headers.get("dom.error", ""), headers.get("dom.stage", "")
                click.echo(f"DEAD LETTER from {stage}: {error}\n    key {message.key()!r}")
                continue
            try:
                click.echo(describe(codec.decode(message.value() or b"")))
            except DecodeError as exc:
                click.echo(f"(undecodable record: {exc.reason})")
    except KeyboardInterrupt:
        pass

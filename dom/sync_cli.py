"""``dom sync``: tell the sales channels what happened to their orders, and see how that goes.

- ``dom sync``: run the sync service (`connectors.sync.process`).
- ``dom sync status``: calls by channel and state, what is still being tried, what failed
  and why, and how many statuses the service has not read yet.
- ``dom sync retry CALL_ID... | --failed``: ask the running service to make failed calls
  again (a ``RETRY_REQUESTED`` record on ``dom.channel-sync.v1``; the service picks it up).
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import click
from confluent_kafka import Consumer, TopicPartition

from config.settings import Settings
from connectors.producer import ContractProducer
from connectors.sync.journal import OPEN_STATES, by_state, latest_calls
from dom.rules_cli import _operator
from dom.topic_reader import read_to_end
from schemas.channels import ChannelCall
from schemas.codec import Codec
from schemas.enums import ChannelCallState
from schemas.topics import CHANNEL_SYNC, ORDER_STATUS


@click.group("sync", invoke_without_command=True)
@click.option(
    "--loglevel",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
@click.pass_context
def sync(ctx: click.Context, loglevel: str) -> None:
    """Report shipments and cancels to Shopify and the marketplace (DOM_SHOPIFY_SHOP_URL,
    DOM_SPAPI_ENDPOINT and their tokens); `status` and `retry` to see and mend it."""
    if ctx.invoked_subcommand is not None:
        return
    from connectors.sync.process import run_sync  # aiohttp only when the service runs

    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
    try:
        run_sync(settings)
    except ValueError as exc:  # a channel's URL without its token, say
        raise click.ClickException(str(exc)) from exc


def _calls(settings: Settings) -> dict[str, ChannelCall]:
    messages = read_to_end(settings, CHANNEL_SYNC.name)
    codec = Codec.from_url(
        settings.schema_registry_url, **(settings.schema_registry_config() or {})
    )
    return latest_calls(((m.key(), m.value()) for m in messages), codec)


def unread_statuses(settings: Settings) -> int | None:
    """Statuses the sync's consumer group has not committed yet (None: it never ran)."""
    name = settings.topic(ORDER_STATUS.name)
    consumer = Consumer(
        settings.librdkafka_config(
            **{"group.id": f"{settings.topic_prefix}dom-sync", "enable.auto.commit": False}
        )
    )
    try:
        partitions = consumer.list_topics(name, timeout=10).topics[name].partitions
        committed = consumer.committed([TopicPartition(name, p) for p in partitions], timeout=10)
        if all(tp.offset < 0 for tp in committed):
            return None
        behind = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            behind += high - (tp.offset if tp.offset >= 0 else low)
        return behind
    finally:
        consumer.close()


def _row(call: ChannelCall) -> dict[str, Any]:
    return {
        "call_id": call.call_id,
        "order_id": call.order_id,
        "state": call.state.value,
        "attempts": call.attempts,
        "at": call.at.isoformat(),
        "detail": call.detail,
    }


def _running_stock(settings: Settings) -> dict[str, int] | None:
    """The running sync's stock push counts (from its ``/stats``; they are not journalled:
    refused and failed figures are on ``dom.dlq.v1``), or None when no sync answers."""
    from dom.sync_stats import SyncStatsPoller

    host = "127.0.0.1" if settings.sync_host == "0.0.0.0" else settings.sync_host
    poller = SyncStatsPoller(f"http://{host}:{settings.sync_port}/stats")
    poller.fetch_once()
    return poller.stock() if poller.last is not None and poller.last.get("stock") else None


@sync.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """Calls by channel and state; the calls still being made and the ones that failed."""
    calls = _calls(settings).values()
    counts = Counter(f"{c.channel} {c.state.value}" for c in calls)
    pending = by_state(calls, *OPEN_STATES)
    failed = by_state(calls, ChannelCallState.FAILED)
    unread = unread_statuses(settings)
    stock = _running_stock(settings)
    if as_json:
        document = {
            "counts": dict(sorted(counts.items())),
            "pending": [_row(c) for c in pending],
            "failed": [_row(c) for c in failed],
            "unread_statuses": unread,
            "stock": stock,
        }
        click.echo(json.dumps(document, indent=2))
        return
    for name, count in sorted(counts.items()):
        click.echo(f"{name}: {count}")
    click.echo(f"statuses not read yet: {'sync never ran' if unread is None else unread}")
    if stock is not None:
        click.echo("shopify stock figures: " + ", ".join(f"{k} {v}" for k, v in stock.items()))
    for title, rows in (("pending", pending), ("failed", failed)):
        click.echo(f"{title}: {len(rows)}")
        for call in rows:
            click.echo(
                f"  {call.call_id}  {call.attempts} attempts  {call.at:%F %T}  {call.detail}"
            )


@sync.command("retry")
@click.argument("call_ids", nargs=-1)
@click.option("--failed", "all_failed", is_flag=True, help="Every call that FAILED.")
@click.option("--by", "requested_by", default=_operator, show_default="the login name")
@click.pass_obj
def retry(
    settings: Settings, call_ids: tuple[str, ...], all_failed: bool, requested_by: str
) -> None:
    """Ask the sync service to make calls again (those named, or every failed one)."""
    if not call_ids and not all_failed:
        raise click.UsageError("name calls to retry, or pass --failed")
    calls = _calls(settings)
    unknown = [c for c in call_ids if c not in calls]
    if unknown:
        raise click.ClickException(f"no such call: {', '.join(unknown)} (see `dom sync status`)")
    chosen = [calls[c] for c in call_ids]
    if all_failed:
        chosen += [c for c in by_state(calls.values(), ChannelCallState.FAILED) if c not in chosen]
    now = datetime.now(UTC)
    with ContractProducer(settings) as producer:
        for call in chosen:
            update = {"state": ChannelCallState.RETRY_REQUESTED, "requested_by": requested_by}
            producer.send(call.model_copy(update={**update, "at": now, "attempts": 0}))
        report = producer.flush()
    if report.failed:
        click.echo(f"not delivered: {report.errors[-1:]}", err=True)
        sys.exit(1)
    for call in chosen:
        click.echo(f"retry asked: {call.call_id} ({call.state.value} before)")
    if not chosen:
        click.echo("nothing failed")

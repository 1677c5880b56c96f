"""``dom orders list``: the work queues of live orders, which orders wait for an operator or a
location, oldest first.

It reads one worker's ``/orders/`` page; that worker gathers the other workers' orders (each
has only its own partitions) and names those that did not answer, which the table then shows.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

import click

from config.settings import Settings
from streams.core.saga.queues import DEFAULT_LIMIT, MAX_LIMIT, QUEUES

PAGE_TIMEOUT_S = 30.0  # the worker asked waits a few seconds for the others, then answers


@click.command("list")
@click.option("--queue", type=click.Choice(QUEUES), help="One queue (default: all four).")
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIMIT),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="The oldest orders shown per queue.",
)
@click.option("--url", help="A worker's web address (default: this host's DOM_WEB_PORT).")
@click.option("--json", "as_json", is_flag=True, help="Print the worker's page as JSON.")
@click.pass_obj
def list_orders(
    settings: Settings, queue: str | None, limit: int, url: str | None, as_json: bool
) -> None:
    """The orders held, backordered, waiting for a location to accept, or for pickup."""
    page = queues_page(url or f"http://127.0.0.1:{settings.web_port}", queue, limit)
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    click.echo("\n".join(render_queues(page)))


def queues_page(base: str, queue: str | None, limit: int) -> dict[str, Any]:
    query = urllib.parse.urlencode({"limit": limit, **({"queue": queue} if queue else {})})
    url = f"{base.rstrip('/')}/orders/?{query}"
    try:
        with urllib.request.urlopen(url, timeout=PAGE_TIMEOUT_S) as response:
            page: dict[str, Any] = json.load(response)
            return page
    except urllib.error.HTTPError as error:
        raise click.ClickException(f"{url}: HTTP {error.code} {_error_text(error)}") from None
    except (urllib.error.URLError, OSError) as error:
        raise click.ClickException(f"{url}: {error}; is a worker running?") from None


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        body = json.load(error)
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


def render_queues(page: dict[str, Any]) -> list[str]:
    """The page as a table per queue an operator reads: order, status, age, and what it waits
    for or where; then which workers did not answer (their orders are missing)."""
    out: list[str] = []
    for queue, entries in page["queues"].items():
        out.append(f"{queue} ({len(entries)})")
        rows = [
            (e["order_id"], e["status"], human_age(e["age_s"]), WAITS_FOR[queue](e))
            for e in entries
        ]
        out.extend(_table(("ORDER", "STATUS", "AGE", "WAITS FOR / WHERE"), rows))
        out.append("")
    for url in page.get("unanswered", []):
        out.append(f"no answer from {url}: its orders are not listed")
    if page.get("unreadable"):
        out.append(f"{page['unreadable']} stored order states could not be read")
    return out


def human_age(seconds: int) -> str:
    """45s, 5m, 2h, 3d: the largest whole unit, rounded down."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _holds(entry: dict[str, Any]) -> str:
    return "; ".join(
        f"{h['hold_id']} {h['kind']} by {h.get('placed_by') or h.get('rule_id') or '?'}: "
        f"{h['reason']}"
        for h in entry["holds"]
    )


def _waits(entry: dict[str, Any]) -> str:
    return ", ".join(f"{w['sku']} x{w['quantity']}" for w in entry["waits"])


def _acceptance(entry: dict[str, Any]) -> str:
    return ", ".join(f"{s['shipment_id']} at {s['location_id']}" for s in entry["shipments"])


def _pickup(entry: dict[str, Any]) -> str:
    shipments = ", ".join(
        f"{s['shipment_id']} {s['kind']} {s['state']} from {s['location_id']}"
        for s in entry["shipments"]
    )
    return f"at {entry['store']}: {shipments}"


WAITS_FOR: dict[str, Callable[[dict[str, Any]], str]] = {
    "held": _holds,
    "backordered": _waits,
    "acceptance": _acceptance,
    "pickup": _pickup,
}


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    if not rows:
        return ["  (none)"]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    return [
        "  " + "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]])
        for r in (header, *rows)
    ]

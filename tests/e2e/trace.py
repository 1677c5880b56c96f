"""When a burst leaves an order without an outcome, say what the topics know about it."""

from __future__ import annotations

from collections import defaultdict

import schemas.internal  # noqa: F401  (registers the internal records with the codec)
from tests.e2e.harness import Pipeline

TOPICS = (
    "dom.orders.v1",
    "dom.internal.sku-commands.v1",
    "dom.internal.sku-results.v1",
    "dom.order-status.v1",
)


def trace_orders(pipeline: Pipeline, order_ids: set[str], limit: int = 3) -> str:
    """Every record about the first ``limit`` orders, in topic order, one line each."""
    wanted = set(sorted(order_ids)[:limit])
    lines: dict[str, list[str]] = defaultdict(list)
    for topic in TOPICS:
        for message, record in pipeline.read_unpacked(topic, quiet=2.0):
            order_id = getattr(record, "order_id", None)
            if order_id not in wanted:
                continue
            summary = {
                k: v
                for k, v in record.model_dump(mode="json").items()
                if k in ("command_id", "status", "ok", "attempt", "reason", "action", "holds")
            }
            lines[order_id].append(
                f"  {message.timestamp()[1]} {topic}[{message.partition()}]"
                f"@{message.offset()} {type(record).__name__} {summary}"
            )
    changelog = f"{pipeline.settings.app_id}-orders-changelog"
    for message in pipeline.read_changelog_messages_raw(changelog):
        key = message.key().decode(errors="replace")  # a removed order's note: 0xFF
        if key in wanted:
            lines[key].append(
                f"  {message.timestamp()[1]} orders-changelog[{message.partition()}]"
                f"@{message.offset()} {message.value()[:300]!r}"
            )
    return "\n".join(f"{o}:\n" + "\n".join(sorted(lines[o])) for o in sorted(wanted))

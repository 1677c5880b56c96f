"""What must hold after any burst, read only from the topics a user sees (and the inventory
table's changelog, to compare the published availability with the table behind it)."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict

from schemas.enums import ROUTING_OUTCOMES
from schemas.models import Availability, FulfillmentCommand, OrderStatusChanged
from streams.core.inventory import stock as inventory
from tests.e2e.harness import Pipeline
from tests.e2e.trace import trace_orders

WAITING = {"PARTIALLY_ALLOCATED", "BACKORDERED"}
SETTLE_S = 90.0
"""Outcomes after which stock arriving re-promises the order: a new routing outcome."""


def outcomes_by_order(statuses: list[OrderStatusChanged]) -> dict[str, list[OrderStatusChanged]]:
    """Routing outcomes per order, a repeated event id (a redelivery) counted once; an
    action's answer (it repeats the order's status) is not one."""
    seen: dict[str, OrderStatusChanged] = {}
    for status in statuses:
        if status.status in ROUTING_OUTCOMES and status.action_id is None:
            seen.setdefault(status.event_id, status)
    grouped: dict[str, list[OrderStatusChanged]] = defaultdict(list)
    for status in seen.values():
        grouped[status.order_id].append(status)
    return grouped


def wait_for_outcomes(
    pipeline: Pipeline, order_ids: set[str], timeout: float = 240.0
) -> list[OrderStatusChanged]:
    def done(records: list) -> bool:
        return order_ids <= {r.order_id for r in records if r.status in ROUTING_OUTCOMES}

    return pipeline.read("dom.order-status.v1", done, timeout=timeout)  # type: ignore[return-value]


def check_invariants(
    pipeline: Pipeline, order_ids: set[str], statuses: list[OrderStatusChanged]
) -> dict[str, int]:
    """Assert every invariant of a burst; return the outcome counts for the report.

    Stock released late in the burst (a lost race gives units back) re-promises backorders
    after every order had its first outcome, and each re-promise changes the table before the
    topics show it, so the statuses, commands, availability and table are read again until
    they agree or ``SETTLE_S`` runs out (then the last reading is judged)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        grouped, planned, commanded = _outcomes_and_commands(pipeline, order_ids, statuses)
        allocated: Counter[tuple[str, str]] = Counter()
        for _shipment_id, location, lines in planned:
            for sku, qty in lines:
                allocated[(sku, location)] += qty
        latest = latest_availability(pipeline, {sku for sku, _ in allocated})
        figures = {(sku, x.location_id): x for sku, a in latest.items() for x in a.locations}
        wrong = {k: f.reserved for k, f in figures.items() if f.reserved != allocated[k]}
        unlike = table_unlike_topic(pipeline, latest)
        settled = commanded == planned and not wrong and not unlike
        if settled or time.monotonic() > deadline:
            break
        time.sleep(1.0)
        statuses = _all_statuses(pipeline)
    assert commanded == planned, (
        "fulfillment commands do not match the outcomes' shipments: "
        f"{len(planned - commanded)} planned without a command, e.g. "
        f"{sorted(planned - commanded)[:3]}; {len(commanded - planned)} commanded outside any "
        f"outcome, e.g. {sorted(commanded - planned)[:3]}"
    )
    for (sku, location), f in figures.items():  # nothing held that no outcome shows
        qty = allocated[(sku, location)]
        assert f.reserved == qty, f"{sku}@{location}: reserved {f.reserved} != {qty}"
        assert f.reserved <= f.on_hand - f.safety_stock, f"{sku}@{location}"
    assert not unlike, "the inventory table and the availability topic differ: " + "; ".join(
        unlike[:3]
    )
    return dict(Counter(v[0].status.value for v in grouped.values()))


Shipments = set[tuple[str, str, tuple[tuple[str, int], ...]]]


def _outcomes_and_commands(
    pipeline: Pipeline, order_ids: set[str], statuses: list[OrderStatusChanged]
) -> tuple[dict[str, list[OrderStatusChanged]], Shipments, Shipments]:
    """Every order's routing outcomes (checked: one each, a later one only after a wait), the
    shipments they planned and those commanded."""
    grouped = outcomes_by_order(statuses)
    missing = order_ids - set(grouped)
    assert not missing, (
        f"{len(missing)} orders have no routing outcome, e.g. {sorted(missing)[:5]}\n"
        + trace_orders(pipeline, missing)
    )
    # One routing outcome per order; a later one only re-promises what still waited for stock.
    several = {
        o: [s.status.value for s in v]
        for o, v in grouped.items()
        if any(before.status not in WAITING for before in v[:-1])
    }
    assert not several, f"orders with more than one routing outcome: {list(several.items())[:5]}"
    planned = {
        (sh.shipment_id, sh.location_id, tuple((x.sku, x.quantity) for x in sh.lines))
        for outcomes in grouped.values()
        for outcome in outcomes
        for sh in outcome.shipments
    }
    commands = pipeline.read(
        "dom.fulfillment.commands.v1",
        lambda r: len({c.command_id for c in r}) >= len(planned),
        timeout=60,
    )
    commanded = {
        (c.shipment_id, c.location_id, tuple((x.sku, x.quantity) for x in c.lines))
        for c in commands
        if isinstance(c, FulfillmentCommand)
    }
    return grouped, planned, commanded


def _all_statuses(pipeline: Pipeline) -> list[OrderStatusChanged]:
    """Every status on the topic now: read until it stays quiet, however long that takes
    (a timed read of a few seconds missed the last ones on a busy machine)."""
    name = pipeline.settings.topic("dom.order-status.v1")
    return [
        pipeline.codec.decode_as(value, OrderStatusChanged)  # type: ignore[misc]
        for value in pipeline.read_changelog(name)
    ]


def latest_availability(pipeline: Pipeline, skus: set[str]) -> dict[str, Availability]:
    """The last availability of every sku (compaction would keep just that one)."""
    latest: dict[str, Availability] = {}
    for value in pipeline.read_changelog(pipeline.settings.topic("dom.inventory.availability.v1")):
        record = pipeline.codec.decode_as(value, Availability)
        latest[record.sku] = record
    assert skus <= set(latest), f"no availability for {sorted(skus - set(latest))[:5]}"
    return latest


def table_unlike_topic(pipeline: Pipeline, latest: dict[str, Availability]) -> list[str]:
    """Where the inventory table (its changelog) and the availability topic differ."""
    changelog = f"{pipeline.settings.app_id}-inventory-changelog"
    table: dict[str, inventory.SkuInventory] = {}
    for message in pipeline.read_changelog(changelog):
        state = inventory.from_dict(json.loads(message))
        table[state.sku] = state
    unlike = []
    for sku, record in latest.items():
        state = table.get(sku)
        published = {
            x.location_id: (x.on_hand, x.reserved, x.safety_stock) for x in record.locations
        }
        stored = {
            loc: (s.on_hand, s.reserved, s.safety_stock)
            for loc, s in (state.locations.items() if state else ())
        }
        if published != stored:
            unlike.append(f"{sku}: availability topic {published} != table {stored}")
    return unlike

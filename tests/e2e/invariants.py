"""What must hold after any burst, read only from the topics a user sees (and the inventory
table's changelog, to compare the published availability with the table behind it)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from schemas.models import Availability, FulfillmentCommand, OrderStatusChanged
from streams.core import inventory
from tests.e2e.harness import Pipeline
from tests.e2e.trace import trace_orders

ROUTING_OUTCOMES = {"ALLOCATED", "PARTIALLY_ALLOCATED", "BACKORDERED", "ON_HOLD", "REJECTED"}


def outcomes_by_order(statuses: list[OrderStatusChanged]) -> dict[str, list[OrderStatusChanged]]:
    """Routing outcomes per order, a repeated event id (a redelivery) counted once."""
    seen: dict[str, OrderStatusChanged] = {}
    for status in statuses:
        if status.status in ROUTING_OUTCOMES:
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
    """Assert every invariant of a burst; return the outcome counts for the report."""
    grouped = outcomes_by_order(statuses)
    missing = order_ids - set(grouped)
    assert not missing, (
        f"{len(missing)} orders have no routing outcome, e.g. {sorted(missing)[:5]}\n"
        + trace_orders(pipeline, missing)
    )
    several = {o: [s.status for s in v] for o, v in grouped.items() if len(v) != 1}
    assert not several, f"orders with more than one routing outcome: {list(several.items())[:5]}"

    planned = {
        (sh.shipment_id, sh.location_id, tuple((x.sku, x.quantity) for x in sh.lines))
        for outcome in (v[0] for v in grouped.values())
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
    assert commanded == planned, "fulfillment commands do not match the outcomes' shipments"

    allocated: Counter[tuple[str, str]] = Counter()
    for _shipment_id, location, lines in planned:
        for sku, qty in lines:
            allocated[(sku, location)] += qty
    latest = latest_availability(pipeline, {sku for sku, _ in allocated})
    for (sku, location), qty in allocated.items():
        figures = {x.location_id: x for x in latest[sku].locations}[location]
        assert figures.reserved == qty, f"{sku}@{location}: reserved {figures.reserved} != {qty}"
        assert figures.reserved <= figures.on_hand - figures.safety_stock, f"{sku}@{location}"
    check_table_matches_topic(pipeline, latest)
    return dict(Counter(v[0].status.value for v in grouped.values()))


def latest_availability(pipeline: Pipeline, skus: set[str]) -> dict[str, Availability]:
    """The last availability of every sku (compaction would keep just that one)."""
    latest: dict[str, Availability] = {}
    for value in pipeline.read_changelog(pipeline.settings.topic("dom.inventory.availability.v1")):
        record = pipeline.codec.decode_as(value, Availability)
        latest[record.sku] = record
    assert skus <= set(latest), f"no availability for {sorted(skus - set(latest))[:5]}"
    return latest


def check_table_matches_topic(pipeline: Pipeline, latest: dict[str, Availability]) -> None:
    """The inventory table (its changelog) and the availability topic say the same."""
    changelog = f"{pipeline.settings.app_id}-inventory-changelog"
    table: dict[str, inventory.SkuInventory] = {}
    for message in pipeline.read_changelog(changelog):
        state = inventory.from_dict(json.loads(message))
        table[state.sku] = state
    for sku, record in latest.items():
        state = table[sku]
        published = {
            x.location_id: (x.on_hand, x.reserved, x.safety_stock) for x in record.locations
        }
        stored = {
            loc: (s.on_hand, s.reserved, s.safety_stock) for loc, s in state.locations.items()
        }
        assert published == stored, f"{sku}: availability topic {published} != table {stored}"

"""What must hold after any burst, read only from the topics a user sees (and the inventory
table's changelog, to compare the published availability with the table behind it)."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from datetime import datetime

from schemas.enums import ROUTING_OUTCOMES
from schemas.models import (
    Availability,
    FulfillmentCommand,
    OrderActionKind,
    OrderPlaced,
    OrderStatusChanged,
)
from streams.core.inventory import stock as inventory
from streams.core.saga.state import OrderState
from tests.e2e.harness import Pipeline
from tests.e2e.trace import trace_orders
from tests.unit.factories import make_order_action

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


Place = tuple[datetime, str]
CHECK_ROUNDS = 3
"""Rounds of :func:`check_nothing_waits_on_stock`: each looks one place further down the line
of a sku whose first orders could not use its stock."""


def check_nothing_waits_on_stock(pipeline: Pipeline, orders: list[OrderPlaced]) -> None:
    """No backordered order is left waiting while stock that could serve it sits available.

    Whether a unit can serve an order is for the routing to say (a pickup store, a location the
    order may not ship from): so the first order in each sku's line (placed_at, then id) that
    waits for no more than the sku's total available is retried (``RETRY_BACKORDER``, as an
    operator would), once the workers have read every record (nothing is on its way between
    the stages) and no wake is in flight, and the retry must not get it anything: what it
    gets, a wake should have got it. One that could not use the stock has looked now and is
    passed over, so the next round looks at the next order in its line (a later order never
    takes the units an earlier one waits for, so only the first can be judged). A retry that
    comes while the order is being routed (a late wake) waits for that routing: when it served
    the order, the retry finds nothing backordered, and the order's latest outcome must say it
    waits no more; one refused as being routed is looked at again in the next round."""
    place = {o.order_id: (o.placed_at, o.order_id) for o in orders}
    cleared: set[str] = set()  # retried, and could not use the stock
    for round_ in range(CHECK_ROUNDS):
        pipeline.wait_until_idle()  # no place in line, wake or reservation still on its way
        _wait_until_no_wake_in_flight(pipeline)
        before = _latest_outcomes(pipeline, place)
        lines: dict[str, list[tuple[Place, str, int]]] = defaultdict(list)
        for order_id, status in before.items():
            if status.status in WAITING:
                for line in status.backordered:
                    lines[line.sku].append((place[order_id], order_id, line.quantity))
        available = latest_availability(pipeline, set(lines))
        suspects: set[str] = set()
        for sku, waiting in lines.items():
            first = next((w for w in sorted(waiting) if w[1] not in cleared), None)
            if first is not None and first[2] <= available[sku].total_available:
                suspects.add(first[1])
        if not suspects:
            print(f"retried {len(cleared)} first waiting orders in {round_} rounds: none served")
            return
        actions = [
            make_order_action(o, OrderActionKind.RETRY_BACKORDER, action_id=f"check-{round_}-{o}")
            for o in sorted(suspects)
        ]
        pipeline.produce(actions)
        wanted = {a.action_id for a in actions}

        def all_answered(records: list, wanted: set[str] = wanted) -> bool:
            return wanted <= {getattr(a, "action_id", None) for a in records}

        answers = [
            a
            for a in pipeline.read("dom.order-status.v1", all_answered, timeout=60)
            if a.action_id in wanted and a.action_result is not None
        ]
        busy = {a.order_id for a in answers if "being routed right now" in (a.reason or "")}
        busy |= _served_meanwhile(pipeline, place, answers)
        refused = [
            f"{a.order_id}: {a.reason}"
            for a in answers
            if a.action_result.value != "APPLIED" and a.order_id not in busy
        ]
        assert not refused, f"retries of waiting orders refused: {refused[:5]}"
        retried = {a.order_id: a.action_id for a in actions if a.order_id not in busy}
        _wait_until_routed(pipeline, retried)
        after = _latest_outcomes(pipeline, place)
        served = [
            f"{o} waited for {sorted(_waits(before[o]).items())}, then "
            f"{sorted(_waits(after[o]).items())}: {after[o].reason}"
            for o in sorted(retried)
            if (after[o].reason or "").startswith("retried by")
            and any(_waits(after[o]).get(sku, 0) < n for sku, n in _waits(before[o]).items())
        ]
        assert not served, (
            f"{len(served)} backorders waited while stock that could serve them sat available "
            f"(a retry served them): {served[:5]}\n"
            + trace_orders(pipeline, {s.split()[0] for s in served[:3]})
        )
        cleared |= set(retried)


def _served_meanwhile(
    pipeline: Pipeline, place: dict[str, Place], answers: list[OrderStatusChanged]
) -> set[str]:
    """Orders whose retry found nothing backordered: a routing in flight when it came (a late
    wake) served them, and their latest outcome says they wait no more (else: a failure)."""
    served = {a.order_id for a in answers if (a.reason or "").endswith("has nothing backordered")}
    if not served:
        return served
    pipeline.wait_until_idle()
    latest = _latest_outcomes(pipeline, place)
    still = sorted(o for o in served if latest[o].status in WAITING and latest[o].backordered)
    assert not still, f"retries found nothing backordered, yet the orders wait: {still[:5]}"
    return served


def _wait_until_no_wake_in_flight(pipeline: Pipeline, timeout: float = 60.0) -> None:
    """Until no sku has units set aside for a woken order (its routing is under way)."""
    changelog = f"{pipeline.settings.app_id}-inventory-changelog"
    deadline = time.monotonic() + timeout
    while True:
        table: dict[str, inventory.SkuInventory] = {}
        for message in pipeline.read_changelog(changelog, quiet=1.0):
            state = inventory.from_dict(json.loads(message))
            table[state.sku] = state
        promising = sorted(sku for sku, state in table.items() if state.promised)
        if not promising:
            return
        assert time.monotonic() < deadline, f"wakes still under way after {timeout} s: {promising}"
        time.sleep(0.5)


def _wait_until_routed(pipeline: Pipeline, retried: dict[str, str], timeout: float = 60.0) -> None:
    """Until the routing each retry began has ended (the saga's state of the order names the
    action and has no reservation in flight): a retry that gets nothing says nothing more, so
    its end shows only there. The outcome of one that gets something is sent with that state."""
    changelog = f"{pipeline.settings.app_id}-orders-changelog"
    deadline = time.monotonic() + timeout
    while True:
        routing: set[str] = set()
        for message in pipeline.read_changelog_messages_raw(changelog, quiet=1.0):
            order_id = message.key().decode(errors="replace")
            if order_id not in retried:
                continue
            state = OrderState.from_stored(message.value())
            answered = any(h.action_id == retried[order_id] for h in state.history)
            if answered and not state.pending:
                routing.discard(order_id)
            else:
                routing.add(order_id)
        if not routing:
            return
        assert time.monotonic() < deadline, f"retries still routing after {timeout} s: {routing}"
        time.sleep(0.5)


def _latest_outcomes(pipeline: Pipeline, place: dict[str, Place]) -> dict[str, OrderStatusChanged]:
    """Each order's latest routing outcome (an order's statuses are in order on the topic)."""
    latest: dict[str, OrderStatusChanged] = {}
    for status in _all_statuses(pipeline):
        outcome = status.status in ROUTING_OUTCOMES and status.action_id is None
        if outcome and status.order_id in place:
            latest[status.order_id] = status
    return latest


def _waits(status: OrderStatusChanged) -> dict[str, int]:
    waits: Counter[str] = Counter()
    for line in status.backordered:
        waits[line.sku] += line.quantity
    return dict(waits)


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

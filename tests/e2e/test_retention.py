"""Retention on the real broker, with seconds for days: a delivered order leaves the order table
once its return window and the retention have passed (a tombstone of its key in the table's
changelog), and its KPI facts leave theirs as well; a return asked afterwards is refused with
that reason, and an order still on its way stays (it ships, and says so, afterwards)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from schemas.models import OrderStatusChanged
from tests.e2e.harness import Pipeline
from tests.e2e.world import one_dc
from tests.unit.factories import (
    make_fulfillment_update,
    make_order,
    make_return_request,
)

SECOND = 1 / 86400
WINDOW_S, RETENTION_S = 2.0, 12.0


@pytest.fixture
def retained(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[Pipeline]:
    settings = make_settings(
        return_window_days=WINDOW_S * SECOND, order_retention_days=RETENTION_S * SECOND
    )
    pipeline = Pipeline(settings, tmp_path)
    pipeline.overrides["DOM_KPIS"] = "true"  # the KPI facts keep to the same retention
    pipeline.start_worker("w1")
    yield pipeline
    pipeline.stop_all()


def changelog(pipeline: Pipeline, key: bytes, table: str = "orders") -> list[bytes | None]:
    """Every value a table's changelog holds for ``key``, tombstones (None) included."""
    name = f"{pipeline.settings.app_id}-{table}-changelog"
    messages = pipeline.read_changelog_messages_raw(name, quiet=2.0, tombstones=True)
    return [m.value() for m in messages if m.key() == key]


def statuses_of(pipeline: Pipeline, order_id: str, until: Callable[[list[str]], bool]) -> list:
    def mine(records: list) -> list[OrderStatusChanged]:
        return [r for r in records if isinstance(r, OrderStatusChanged) and r.order_id == order_id]

    records = pipeline.read("dom.order-status.v1", lambda r: until([x.reason for x in mine(r)]))
    return mine(records)


def test_a_finished_order_is_tombstoned_and_its_late_return_refused(retained: Pipeline) -> None:
    one_dc(retained, {"SKU-1": 10})
    retained.produce([make_order("ORD-DONE"), make_order("ORD-LIVE")])
    shipments = {}
    for order_id in ("ORD-DONE", "ORD-LIVE"):
        [allocated] = [
            s
            for s in statuses_of(retained, order_id, lambda r: len(r) >= 2)
            if s.status == "ALLOCATED"
        ]
        shipments[order_id] = allocated.shipments[0].shipment_id
    retained.produce([make_fulfillment_update("ORD-DONE", shipments["ORD-DONE"], "DC-EAST")])
    statuses_of(retained, "ORD-DONE", lambda r: any("shipped" in x for x in r))
    shipped_at = time.monotonic()

    deadline = shipped_at + WINDOW_S + RETENTION_S + 60
    while changelog(retained, b"ORD-DONE")[-1:] != [None] and time.monotonic() < deadline:
        time.sleep(1)
    assert changelog(retained, b"ORD-DONE")[-1:] == [None], "ORD-DONE was not tombstoned"
    assert time.monotonic() - shipped_at >= WINDOW_S + RETENTION_S - 1  # not before its time
    while changelog(retained, b"ORD-DONE", "kpi-facts")[-1:] != [None]:
        assert time.monotonic() < deadline, "the KPI facts of ORD-DONE were not tombstoned"
        time.sleep(1)

    retained.produce([make_return_request("ORD-DONE", "RET-LATE")])
    refused = statuses_of(retained, "ORD-DONE", lambda r: any("RET-LATE" in x for x in r))[-1]
    assert refused.status == "COMPLETED"
    assert refused.reason.startswith("return RET-LATE refused: order ORD-DONE was closed")
    assert "after the retention of" in refused.reason
    assert "DOM_ORDER_RETENTION_DAYS" in refused.reason

    assert None not in changelog(retained, b"ORD-LIVE")  # still on its way: kept
    retained.produce([make_fulfillment_update("ORD-LIVE", shipments["ORD-LIVE"], "DC-EAST")])
    live = statuses_of(retained, "ORD-LIVE", lambda r: any("shipped" in x for x in r))
    assert live[-1].status == "COMPLETED"

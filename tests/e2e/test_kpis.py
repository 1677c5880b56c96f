"""KPI reports end to end: a scripted day of traffic through the real pipeline, then
``dom report ... --csv`` prints exactly the expected numbers; redelivered events change none of
them, and neither does a worker restart with its consumer group rewound to the start (every
input, and every delta between the KPI stages, read again).

The console's Reports view shows the same numbers in headless Chromium: split rate by day, by
channel, built in the form; the chart's data points read from the page's chart; saved, found
again after a reload, and downloaded as the very CSV ``dom report`` prints."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from dom.console.app import create_app
from dom.console.assets import fetch_chart_library
from schemas.enums import Capability, Channel, FulfillmentStatus, LocationKind
from schemas.models import Message, OrderStatusChanged
from tests.e2e.conftest import one_worker
from tests.e2e.harness import Pipeline
from tests.e2e.test_console import (
    WAIT_MS,
    ConsoleServer,
    add_users,
    browser,  # noqa: F401  (the fixture)
    shoot,
    sign_in,
)
from tests.e2e.test_rewound_group import behind, rewind_to_start, wait_until
from tests.e2e.test_rules_live import dom
from tests.unit.factories import (
    make_address,
    make_cancel,
    make_fulfillment_update,
    make_location,
    make_order,
    make_pickup_order,
    make_product,
    make_received_line,
    make_return_line,
    make_return_received,
    make_return_request,
    make_stock_event,
)

DAY = datetime.now(UTC).date()
"""The scripted day: today as the test begins (:func:`scripted_day`)."""
MIDNIGHT_MARGIN_S = 300.0
"""The test takes minutes, and ``dom report --period today`` and the times the stages stamp on
what they send are the wall clock's: a run across midnight (UTC) split its day in two, and its
numbers with it. A test that begins this close to midnight waits for the new day."""
NEWARK = make_address(name="Newark store", city="Newark", region="NJ", lat=40.7357, lon=-74.1724)


@pytest.fixture(autouse=True)
def scripted_day() -> None:
    """Script the day the test begins on, once it is far enough from midnight."""
    global DAY
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    if (midnight - now).total_seconds() < MIDNIGHT_MARGIN_S:
        time.sleep((midnight - now).total_seconds() + 1.0)
    DAY = datetime.now(UTC).date()


def at(minutes: float) -> datetime:
    """Minutes after 09:00 of the scripted day (today, UTC)."""
    return datetime(DAY.year, DAY.month, DAY.day, 9, tzinfo=UTC) + timedelta(minutes=minutes)


def network() -> list[Message]:
    """DC-EAST ships SKU-A and SKU-B; STORE-NJ ships from store and hands out pickups, and
    alone holds SKU-C (so an order of SKU-A and SKU-C splits)."""
    store = make_location(
        "STORE-NJ",
        kind=LocationKind.STORE,
        address=NEWARK,
        capabilities=(Capability.SHIP_FROM_STORE, Capability.PICKUP),
    )
    stock = [("SKU-A", "DC-EAST"), ("SKU-B", "DC-EAST"), ("SKU-B", "STORE-NJ")]
    stock += [("SKU-C", "STORE-NJ")]
    return [
        make_location("DC-EAST"),
        store,
        *(make_product(sku) for sku in ("SKU-A", "SKU-B", "SKU-C")),
        *(make_stock_event(sku, where, 100, occurred_at=at(-60)) for sku, where in stock),
    ]


def order(order_id: str, channel: Channel, lines: list[tuple[str, int]], minute: int) -> Message:
    return make_order(order_id, lines=lines, channel=channel, placed_at=at(minute))


def orders() -> list[Message]:
    """The day's orders, placed on the scripted day."""
    return [
        order("O-WEB", Channel.WEB, [("SKU-A", 2)], 0),  # shipped, then one unit returned
        order("O-MKT", Channel.MARKETPLACE, [("SKU-A", 1), ("SKU-C", 1)], 1),  # the split
        order("O-POS", Channel.POS, [("SKU-C", 1)], 2),  # ship from store
        make_pickup_order(
            "O-WHS", "STORE-NJ", lines=[("SKU-C", 2)], channel=Channel.WHOLESALE, placed_at=at(3)
        ),
        order("O-CC", Channel.CALL_CENTER, [("SKU-A", 1)], 4),  # cancelled
        order("O-WEB2", Channel.WEB, [("SKU-B", 1)], 5),  # DC-EAST rejects it, the store ships
        order("O-BAD", Channel.MARKETPLACE, [("SKU-A", 200_000)], 6),  # routing: REJECTED
    ]


def window() -> tuple[str, str]:
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    return start.isoformat(), (start + timedelta(days=1)).isoformat()


def expected() -> dict[tuple[str, ...], str]:
    """The CSV ``dom report`` prints, per command line."""
    start, end = window()

    def csv(kpi: str, unit: str, by: str | None, *rows: str) -> str:
        head = f"kpi,unit,grain,window_start,window_end,{by + ',' if by else ''}"
        lines = [head + "value,numerator,denominator"]
        lines += [f"{kpi},{unit},day,{start},{end},{row}" for row in rows]
        return "\n".join(lines) + "\n"

    return {
        ("orders_placed", "--by", "channel"): csv(
            "orders_placed",
            "count",
            "channel",
            "CALL_CENTER,1,,",
            "MARKETPLACE,2,,",
            "POS,1,,",
            "WEB,2,,",
            "WHOLESALE,1,,",
        ),
        ("routing_outcomes", "--by", "outcome"): csv(
            "routing_outcomes", "count", "outcome", "ALLOCATED,6,,", "REJECTED,1,,"
        ),
        ("split_rate",): csv("split_rate", "ratio", None, "0.1667,1,6"),
        ("split_rate", "--by", "channel"): csv(
            "split_rate",
            "ratio",
            "channel",
            "CALL_CENTER,0.0000,0,1",
            "MARKETPLACE,1.0000,1,1",
            "POS,0.0000,0,1",
            "WEB,0.0000,0,2",
            "WHOLESALE,0.0000,0,1",
        ),
        ("pickup_orders", "--by", "location"): csv(
            "pickup_orders", "count", "location", "STORE-NJ,1,,"
        ),
        ("ship_from_store_share",): csv("ship_from_store_share", "ratio", None, "0.6000,3,5"),
        ("units_shipped", "--by", "location"): csv(
            "units_shipped", "units", "location", "DC-EAST,3,,", "STORE-NJ,5,,"
        ),
        ("units_shipped", "--by", "location_kind"): csv(
            "units_shipped", "units", "location_kind", "DC,3,,", "STORE,5,,"
        ),
        ("fulfillment_rejections", "--by", "location"): csv(
            "fulfillment_rejections", "count", "location", "DC-EAST,1,,"
        ),
        ("cancellations",): csv("cancellations", "count", None, "1,,"),
        ("returns_requested", "--by", "reason"): csv(
            "returns_requested", "units", "reason", "too small,1,,"
        ),
        ("returns_received", "--by", "condition"): csv(
            "returns_received", "units", "condition", "SELLABLE,1,,"
        ),
    }


def report(pipeline: Pipeline, args: tuple[str, ...]) -> str:
    return dom(pipeline.settings, "report", *args, "--period", "today", "--grain", "day", "--csv")


def reports(pipeline: Pipeline) -> dict[tuple[str, ...], str]:
    return {args: report(pipeline, args) for args in expected()}


def settled_reports(pipeline: Pipeline, timeout: float = 60.0) -> dict[tuple[str, ...], str]:
    """The reports once they equal the expected ones (or as they are when time runs out)."""
    deadline = time.monotonic() + timeout
    while True:
        found = reports(pipeline)
        if found == expected() or time.monotonic() > deadline:
            return found
        time.sleep(1.0)


def status_of(
    pipeline: Pipeline, order_id: str, done: Callable[[OrderStatusChanged], bool]
) -> OrderStatusChanged:
    """The first status of ``order_id`` that ``done`` accepts."""

    def found(records: list[Message]) -> OrderStatusChanged | None:
        return next(
            (
                r
                for r in records
                if isinstance(r, OrderStatusChanged) and r.order_id == order_id and done(r)
            ),
            None,
        )

    records = pipeline.read("dom.order-status.v1", lambda r: found(r) is not None)
    status = found(records)
    assert status is not None, f"no such status of {order_id}"
    return status


def shipments(pipeline: Pipeline, order_id: str) -> dict[str, str]:
    """Location -> shipment id of the order's first allocation."""
    allocated = status_of(pipeline, order_id, lambda s: s.status.value == "ALLOCATED")
    return {s.location_id: s.shipment_id for s in allocated.shipments}


def shipped(order_id: str, shipment: str, where: str, minute: int, **more: Any) -> Message:
    return make_fulfillment_update(order_id, shipment, where, occurred_at=at(minute), **more)


@pytest.fixture
def pipeline(settings: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    """One worker, ``w1``, with the KPI stages on (``DOM_KPIS``; off by default)."""
    with one_worker(settings, tmp_path, DOM_KPIS="true") as pipeline:
        yield pipeline


def test_a_day_of_traffic_reports_exact_numbers_through_redelivery_and_restart(
    pipeline: Pipeline,
    browser: Any,  # noqa: F811  (the fixture)
    tmp_path: Path,
) -> None:
    pipeline.produce(network())
    pipeline.availability_where("SKU-C", lambda f: "STORE-NJ" in f)
    pipeline.availability_where("SKU-B", lambda f: {"DC-EAST", "STORE-NJ"} <= set(f))
    placed = orders()
    pipeline.produce(placed)
    status_of(pipeline, "O-BAD", lambda s: s.status.value == "REJECTED")
    web, mkt, pos = (shipments(pipeline, o) for o in ("O-WEB", "O-MKT", "O-POS"))
    whs, _cc, web2 = (shipments(pipeline, o) for o in ("O-WHS", "O-CC", "O-WEB2"))
    assert set(mkt) == {"DC-EAST", "STORE-NJ"} and set(pos) == {"STORE-NJ"}
    assert set(web2) == {"DC-EAST"} and set(whs) == {"STORE-NJ"}
    accepted, picked = FulfillmentStatus.ACCEPTED, FulfillmentStatus.PICKED_UP
    rejected = FulfillmentStatus.REJECTED
    pipeline.produce(
        [
            shipped("O-WEB", web["DC-EAST"], "DC-EAST", 60),
            shipped("O-MKT", mkt["DC-EAST"], "DC-EAST", 61),
            shipped("O-MKT", mkt["STORE-NJ"], "STORE-NJ", 62),
            shipped("O-POS", pos["STORE-NJ"], "STORE-NJ", 63),
            shipped("O-WHS", whs["STORE-NJ"], "STORE-NJ", 64, status=accepted),
            shipped("O-WHS", whs["STORE-NJ"], "STORE-NJ", 90, status=picked),
            shipped("O-WEB2", web2["DC-EAST"], "DC-EAST", 65, status=rejected),
            make_cancel("O-CC", cancelled_at=at(66)),
        ]
    )
    moved = status_of(
        pipeline, "O-WEB2", lambda s: any(x.location_id == "STORE-NJ" for x in s.shipments)
    )
    [again] = [s.shipment_id for s in moved.shipments if s.location_id == "STORE-NJ"]
    status_of(pipeline, "O-WEB", lambda s: s.status.value == "COMPLETED")
    lines = (make_return_line("SKU-A", 1, "too small"),)
    pipeline.produce(
        [
            shipped("O-WEB2", again, "STORE-NJ", 70),
            make_return_request("O-WEB", lines=lines, requested_at=at(120)),
        ]
    )
    status_of(pipeline, "O-WEB", lambda s: s.status.value == "RETURN_AUTHORIZED")
    received = make_return_received(
        "O-WEB", lines=(make_received_line("SKU-A"),), received_at=at(180)
    )
    # Redeliveries: the same events again (same ids) must change no number.
    pipeline.produce([received, placed[0], shipped("O-POS", pos["STORE-NJ"], "STORE-NJ", 63)])
    pipeline.produce([received, shipped("O-WHS", whs["STORE-NJ"], "STORE-NJ", 90, status=picked)])

    before = settled_reports(pipeline)
    assert before == expected()
    split_rate_in_the_console(pipeline, browser, tmp_path)

    # A worker restart, with its consumer group rewound to the start: every input read again.
    wait_until(lambda: behind(pipeline.settings) == {}, "the worker to commit what it read")
    pipeline.workers["w1"].stop()
    rewind_to_start(pipeline.settings)
    pipeline.start_worker("w1")
    pipeline.produce([placed[1], shipped("O-MKT", mkt["DC-EAST"], "DC-EAST", 61)])
    wait_until(lambda: behind(pipeline.settings) == {}, "the worker to read everything again")
    pipeline.wait_until_idle()
    assert reports(pipeline) == before


SPLITS = ("split_rate", "--by", "channel")
SAVED_AS = "Splits by channel, scripted day"


def split_rate_in_the_console(pipeline: Pipeline, chromium: Any, tmp_path: Path) -> None:
    """Build split rate by day, by channel, in the Reports view; the chart, the table and the
    downloaded CSV hold the numbers ``dom report`` prints; saved, it is there after a reload."""
    from playwright.sync_api import expect

    fetch_chart_library(pipeline.settings)  # make test has fetched it: a no-op then
    add_users(pipeline.settings)
    cli = report(pipeline, SPLITS).splitlines()[1:]
    rows = [line.split(",") for line in cli]  # kpi,unit,grain,start,end,channel,value,num,den
    app = create_app(pipeline.settings, [pipeline.url("w1", "")], follow_topics=False)
    with ConsoleServer(app) as console:
        page = chromium.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(page, expect, console.url, "anna")
        page.click("#tab-reports")
        expect(page.locator("#report-kpi option")).not_to_have_count(0, timeout=WAIT_MS)
        page.select_option("#report-kpi", "split_rate")
        page.select_option("#report-period", "today")
        page.select_option("#report-grain", "day")
        page.select_option("#report-by", "channel")
        page.click("#report-show")
        shown_as_dom_report_prints(page, expect, rows)
        shoot(page, "reports")

        page.fill("#report-name", SAVED_AS)
        page.click("#report-save")
        expect(page.locator("#report-message")).to_have_text(f"Saved “{SAVED_AS}” for everyone")
        page.reload()
        saved = page.locator("#saved-reports li", has_text=SAVED_AS)
        expect(saved).to_have_count(1, timeout=WAIT_MS)
        saved.locator("button.open").click()
        expect(page.locator("#report-kpi")).to_have_value("split_rate")
        shown_as_dom_report_prints(page, expect, rows)

        with page.expect_download() as download:
            page.click("#report-csv")
        assert download.value.suggested_filename == "split_rate-today-day-channel.csv"
        saved_csv = tmp_path / "report.csv"
        download.value.save_as(saved_csv)
        assert saved_csv.read_text() == report(pipeline, SPLITS)
        assert errors == [], errors


def shown_as_dom_report_prints(page: Any, expect: Any, rows: list[list[str]]) -> None:
    """The table has the CSV's values; the chart draws one series per channel, whose one
    point (today) is that channel's value."""
    expect(page.locator("#report-result")).to_have_attribute("aria-busy", "false", timeout=WAIT_MS)
    body = page.locator("#report-table tbody tr")
    expect(body).to_have_count(len(rows), timeout=WAIT_MS)
    table = page.eval_on_selector_all(
        "#report-table tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))"
    )
    assert table == [[r[3][:10], r[5], r[6], r[7], r[8]] for r in rows]
    chart = page.evaluate(
        """() => ({labels: state.chart.series.slice(1).map(s => s.label),
                   xs: state.chart.data[0], ys: state.chart.data.slice(1)})"""
    )
    start = datetime.fromisoformat(rows[0][3]).timestamp()
    assert chart == {
        "labels": [r[5] for r in rows],
        "xs": [start],
        "ys": [[float(r[6])] for r in rows],
    }
    label = page.get_attribute("#report-chart", "aria-label")
    assert label == (
        f"Chart of Split rate: first allocations with more than one shipment: {len(rows)} series"
        " over 1 windows; the table below holds the same numbers."
    )

"""The console's Reports API without Kafka: the catalogue, a report's rows with exactly the
strings ``dom report --csv`` writes, the CSV as a download, a question that cannot be answered
refused 400 naming its field, the saved reports (defaults once, saved by who signed in, 422
naming the field, 403 below an operator, 404, replaced by name), and a broker that does not
answer as a 503. The buckets are the KPI core's own, from hand-made events."""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from config.settings import Settings
from dom.console import reports_api
from dom.console.app import create_app
from dom.console.auth import Role
from dom.console.feed import FeedState
from dom.console.reports_store import DEFAULTS, ReportStore
from dom.report_cli import run_report
from schemas.enums import Channel, OrderStatus
from streams.core.kpis import BucketKey, KpiBucket, render_csv
from tests.unit.factories import T0, make_order
from tests.unit.test_console_api import PASSWORD, FakeStore, sign_in, users_in
from tests.unit.test_console_channels import send
from tests.unit.test_kpis_orders import BERLIN, Kpis, allocated, shipment, status

Client = TestClient[Any, Any]
DAY = "2024-05-01"  # T0's day in Berlin
SPLIT_BY_CHANNEL = f"/api/reports/run?kpi=split_rate&period={DAY}..{DAY}&grain=day&by=channel"
SAVED = "/api/reports/saved"
FORM = {"kpi": "split_rate", "period": "7d", "grain": "day", "by": ["channel"]}


def buckets() -> dict[BucketKey, KpiBucket]:
    """Three WEB orders (one split) and a split MARKETPLACE one, on T0's day."""
    kpis = Kpis().feed(
        *allocated("A"),
        *allocated("B"),
        *allocated("C", shipment("C-1"), shipment("C-2", "STORE-1")),
        make_order("M", channel=Channel.MARKETPLACE),
        status("M", OrderStatus.ALLOCATED, 1, T0, shipment("M-1"), shipment("M-2", "STORE-1")),
    )
    return kpis.buckets


class Topic:
    """``dom.kpis.v1`` as the reports read it: its buckets, or a broker that does not answer."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.reads = 0

    def read(self) -> dict[BucketKey, KpiBucket]:
        self.reads += 1
        if self.down:
            raise RuntimeError("topic dom.kpis.v1: unknown; run `dom topics create`")
        return buckets()


def run(
    scenario: Callable[[Client, Topic, ReportStore], Awaitable[None]],
    user: str | None,
    topic: Topic | None = None,
) -> None:
    async def main(directory: Path) -> None:
        users = users_in(directory)
        users.add("olga", Role.OPERATOR, PASSWORD)
        store = ReportStore(directory / "reports.sqlite")
        settings = Settings(console_cookie_secure=False, timezone="Europe/Berlin")
        app = create_app(
            settings,
            ["http://127.0.0.1:9"],
            store=FakeStore(),
            feed=FeedState(),
            follow_topics=False,
            users=users,
            reports=store,
        )
        fake = topic or Topic()
        app[reports_api.REPORTS].read = fake.read
        async with TestClient(TestServer(app)) as client:
            if user is not None:
                await sign_in(client, user)
            await scenario(client, fake, store)
        store.close()
        users.close()

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(main(Path(directory)))


async def get(client: Client, path: str) -> tuple[int, Any]:
    response = await client.get(path)
    return response.status, await response.json()


def expected_csv(by: tuple[str, ...] = ("channel",)) -> str:
    now = datetime(2024, 5, 2, tzinfo=BERLIN)
    report = run_report(
        buckets(), "split_rate", period=f"{DAY}..{DAY}", grain="day", by=by, tz=BERLIN, now=now
    )
    return render_csv(report)


# ---- reading -------------------------------------------------------------------------------


def test_the_catalogue_lists_every_kpi_with_its_breakdowns() -> None:
    async def scenario(client: Client, topic: Topic, store: ReportStore) -> None:
        status, body = await get(client, "/api/reports/catalogue")
        assert status == 200
        kpis = {k["name"]: k for k in body["kpis"]}
        assert kpis["split_rate"]["by"] == ["channel"]
        assert kpis["units_shipped"]["by"] == ["location", "location_kind"]
        assert kpis["value_shipped"] == {
            "name": "value_shipped",
            "title": "Value that left a location (order line prices)",
            "unit": "money",
            "by": ["location", "location_kind"],
            "kept": ["currency"],
            "gauge": False,
        }
        assert kpis["backorder_backlog"]["gauge"] is True
        assert (body["periods"], body["grains"]) == (["today", "7d", "30d"], ["hour", "day"])
        assert body["timezone"] == "Europe/Berlin"

    run(scenario, "vera")


def test_a_report_has_the_rows_and_the_very_strings_of_its_csv() -> None:
    async def scenario(client: Client, topic: Topic, store: ReportStore) -> None:
        status, body = await get(client, SPLIT_BY_CHANNEL)
        assert status == 200, body
        assert (body["kpi"], body["unit"], body["breakdown"]) == (
            "split_rate",
            "ratio",
            ["channel"],
        )
        assert (body["start"], body["end"]) == (
            "2024-05-01T00:00:00+02:00",
            "2024-05-02T00:00:00+02:00",
        )
        day = {
            "window_start": "2024-05-01T00:00:00+02:00",
            "window_end": "2024-05-02T00:00:00+02:00",
        }
        assert body["rows"] == [
            {**day, "dimension": ["MARKETPLACE"], "value": "1.0000", "numerator": "1"}
            | {"denominator": 1},
            {**day, "dimension": ["WEB"], "value": "0.3333", "numerator": "1", "denominator": 3},
        ]
        lines = list(csv.reader(io.StringIO(expected_csv())))
        assert [row[-3:] for row in lines[1:]] == [
            [r["value"], r["numerator"], str(r["denominator"])] for r in body["rows"]
        ]

    run(scenario, "vera")


def test_the_csv_is_a_download_of_what_dom_report_prints() -> None:
    async def scenario(client: Client, topic: Topic, store: ReportStore) -> None:
        response = await client.get(SPLIT_BY_CHANNEL.replace("/run?", "/csv?"))
        assert response.status == 200
        assert response.content_type == "text/csv"
        assert response.headers["Content-Disposition"] == (
            f'attachment; filename="split_rate-{DAY}..{DAY}-day-channel.csv"'
        )
        assert await response.text() == expected_csv()
        whole = await client.get(f"/api/reports/csv?kpi=split_rate&period={DAY}..{DAY}")
        assert await whole.text() == expected_csv(by=())

    run(scenario, "vera")


def test_a_question_that_cannot_be_answered_is_a_400_naming_its_field() -> None:
    async def scenario(client: Client, topic: Topic, store: ReportStore) -> None:
        cases = {
            "kpi=splits": ("kpi", "no KPI 'splits'; the catalogue lists them"),
            "kpi=split_rate&grain=week": ("grain", "a grain is hour or day, not 'week'"),
            "kpi=split_rate&period=yesterday": (
                "period",
                "a period is today, 7d, 30d or FROM..TO, not 'yesterday'",
            ),
            "kpi=split_rate&period=2024-05-02..2024-05-01": (
                "period",
                "the period '2024-05-02..2024-05-01' ends before it starts",
            ),
            "kpi=split_rate&period=2000-01-01..2024-01-01&grain=hour": (
                "period",
                "the period spans more than 10000 windows",
            ),
            "kpi=split_rate&by=location": (
                "by",
                "split_rate breaks down by channel, not 'location'",
            ),
            "kpi=" + "x" * 65: ("kpi", "kpi is longer than 64 characters"),
        }
        for query, (field, message) in cases.items():
            for kind in ("run", "csv"):
                status, body = await get(client, f"/api/reports/{kind}?{query}")
                assert (status, body["errors"]) == (400, [{"field": field, "message": message}])
        assert topic.reads == 0  # refused before the topic is read

    run(scenario, "vera")


def test_reports_read_the_topic_at_most_every_few_seconds() -> None:
    async def scenario(client: Client, topic: Topic, store: ReportStore) -> None:
        for _ in range(3):
            assert (await get(client, SPLIT_BY_CHANNEL))[0] == 200
        assert topic.reads == 1

    run(scenario, "vera")


def test_a_broker_that_does_not_answer_is_a_503_with_the_reason() -> None:
    async def scenario(client: Client, topic: Topic, store: ReportStore) -> None:
        status, body = await get(client, SPLIT_BY_CHANNEL)
        assert status == 503
        assert body["error"] == (
            "the KPIs could not be read: topic dom.kpis.v1: unknown; run `dom topics create`"
        )

    run(scenario, "vera", Topic(down=True))


def test_signed_out_nothing_is_read_or_saved() -> None:
    async def scenario(client: Client, topic: Topic, store: ReportStore) -> None:
        for path in ("/api/reports/catalogue", SPLIT_BY_CHANNEL, SAVED):
            assert (await get(client, path)) == (
                401,
                {"ok": False, "error": "sign in first", "errors": []},
            )
        status, _ = await send(client, "PUT", f"{SAVED}/mine", FORM)
        assert status == 401
        assert topic.reads == 0 and len(store.reports()) == len(DEFAULTS)

    run(scenario, None)


# ---- saved reports -------------------------------------------------------------------------


def test_the_defaults_are_there_once_and_a_deleted_one_stays_deleted() -> None:
    async def scenario(client: Client, topic: Topic, store: ReportStore) -> None:
        status, body = await get(client, SAVED)
        assert status == 200
        assert sorted(r["name"] for r in body["reports"]) == sorted(d.name for d in DEFAULTS)
        split = next(r for r in body["reports"] if r["kpi"] == "split_rate")
        assert (split["period"], split["grain"], split["by"]) == ("7d", "day", ["channel"])
        status, body = await send(client, "DELETE", f"{SAVED}/{DEFAULTS[0].name}")
        assert (status, body["message"]) == (200, f"deleted {DEFAULTS[0].name!r}")
        again = ReportStore(store.path)  # a console started again on the file
        assert DEFAULTS[0].name not in [r.name for r in again.reports()]
        again.close()
        status, body = await send(client, "DELETE", f"{SAVED}/{DEFAULTS[0].name}")
        assert (status, body["error"]) == (404, f"there is no saved report {DEFAULTS[0].name!r}")

    run(scenario, "olga")


def test_an_operator_saves_a_report_for_everyone_as_who_signed_in() -> None:
    async def scenario(client: Client, topic: Topic, store: ReportStore) -> None:
        form = {**FORM, "saved_by": "mallory"}
        status, body = await send(client, "PUT", f"{SAVED}/Splits%20by%20channel", form)
        assert status == 200, body
        assert body["message"] == "saved 'Splits by channel' for everyone"
        report = body["report"]
        assert (report["name"], report["saved_by"]) == ("Splits by channel", "olga")
        assert (report["kpi"], report["period"], report["grain"], report["by"]) == (
            "split_rate",
            "7d",
            "day",
            ["channel"],
        )
        # the same name in other letters: the one report, replaced
        monthly = {**FORM, "period": "30d"}
        status, body = await send(client, "PUT", f"{SAVED}/SPLITS%20BY%20CHANNEL", monthly)
        assert status == 200
        status, body = await get(client, SAVED)
        mine = [r for r in body["reports"] if r["name"].lower() == "splits by channel"]
        assert [(r["name"], r["period"]) for r in mine] == [("SPLITS BY CHANNEL", "30d")]

    run(scenario, "olga")


def test_a_report_that_cannot_be_saved_is_a_422_naming_its_field() -> None:
    async def scenario(client: Client, topic: Topic, store: ReportStore) -> None:
        unknown_by = "split_rate breaks down by channel, not 'reason'"
        no_date = "'1' is neither a date (YYYY-MM-DD) nor an ISO time"
        no_grain = "grain is missing: a string, as in the report's form"
        bad_name = "a report's name is 1 to 80 printable characters"
        cases = [
            ("ok", {**FORM, "kpi": "splits"}, "kpi", "no KPI 'splits'; the catalogue lists them"),
            ("ok", {**FORM, "by": ["reason"]}, "by", unknown_by),
            ("ok", {**FORM, "period": "1..2"}, "period", no_date),
            ("ok", {**FORM, "grain": None}, "grain", no_grain),
            ("ok", {**FORM, "by": [1]}, "by", "by is a list of dimension names"),
            ("x" * 81, FORM, "name", bad_name),
            ("a%09b", FORM, "name", bad_name),
        ]
        for name, form, field, message in cases:
            status, body = await send(client, "PUT", f"{SAVED}/{name}", form)
            assert (status, body["errors"][0]) == (422, {"field": field, "message": message})
        assert len(store.reports()) == len(DEFAULTS)

    run(scenario, "olga")


def test_a_viewer_may_read_the_saved_reports_but_not_change_them() -> None:
    async def scenario(client: Client, topic: Topic, store: ReportStore) -> None:
        assert (await get(client, SAVED))[0] == 200
        for method in ("PUT", "DELETE"):
            status, body = await send(client, method, f"{SAVED}/{DEFAULTS[0].name}", FORM)
            assert status == 403, body
        assert [r.name for r in store.reports()] == sorted(d.name for d in DEFAULTS)

    run(scenario, "vera")

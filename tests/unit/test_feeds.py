"""File feeds, parsing only: every feed's good and bad rows, line numbers, reasons, ids."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connectors.feed_cli import feed
from connectors.feeds import FeedKind, FeedReport, read_feed
from connectors.feeds_masters import parse_locations, parse_products
from connectors.feeds_orders import parse_marketplace, parse_pickup, parse_wholesale
from connectors.feeds_parse import Parsed, Problem, read_csv
from connectors.feeds_stock import parse_pos_sales, parse_stock
from connectors.feeds_watch import file_away, pending_files
from schemas.models import (
    Address,
    Capability,
    Channel,
    Customer,
    FulfillmentMethod,
    Location,
    LocationKind,
    OrderLine,
    OrderPlaced,
    Product,
    ServiceLevel,
    StockEvent,
    StockEventKind,
)

SAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "feeds" / "samples"
NOW = datetime(2024, 5, 3, 8, 0, tzinfo=UTC)

WHS_HEADER = (
    "po_number,po_date,partner_id,ship_to_name,ship_to_address1,ship_to_city,ship_to_state,"
    "ship_to_postal,ship_to_country,line_number,sku,quantity,unit_price,currency,requested_service"
)
SHIP_TO = "Acme DC,1 Dock Rd,Edison,NJ,08817,US"


def whs(*rows: str) -> str:
    return "\n".join([WHS_HEADER, *rows]) + "\n"


def problems_at(parsed: Parsed) -> dict[int, str]:
    return {p.line: p.reason for p in parsed.problems}


# ---- wholesale --------------------------------------------------------------------------------


def test_wholesale_groups_rows_into_one_order_per_po() -> None:
    text = whs(
        f"PO1,2024-05-01,ACME,{SHIP_TO},1,SKU-1,48,6.50,usd,GROUND",
        f"PO2,2024-05-01T14:30:00-05:00,ACME,{SHIP_TO},1,SKU-3,1,129.99,USD,overnight",
        f"PO1,2024-05-01,ACME,{SHIP_TO},2,SKU-2,24,11.25,usd,GROUND",
    )
    records, problems = parse_wholesale(text, "po.csv")

    assert problems == []
    first, second = records
    assert isinstance(first, OrderPlaced) and isinstance(second, OrderPlaced)
    assert first.order_id == "WHS-ACME-PO1" and first.channel is Channel.WHOLESALE
    assert first.channel_order_ref == "PO1"
    assert first.customer == Customer(customer_id="ACME")
    assert first.fulfillment_method is FulfillmentMethod.SHIP
    assert first.ship_to == Address(
        name="Acme DC", line1="1 Dock Rd", city="Edison", region="NJ", postal_code="08817",
        country="US",
    )  # fmt: skip
    assert first.lines == (
        OrderLine(line_id="1", sku="SKU-1", quantity=48, unit_price=Decimal("6.50")),
        OrderLine(line_id="2", sku="SKU-2", quantity=24, unit_price=Decimal("11.25")),
    )
    assert first.order_total == Decimal("582.00") and first.currency == "USD"
    # A date alone is midnight, and a time without a zone is UTC.
    assert first.placed_at == datetime(2024, 5, 1, tzinfo=UTC)
    assert first.service_level is ServiceLevel.STANDARD
    assert second.placed_at == datetime(2024, 5, 1, 19, 30, tzinfo=UTC)
    assert second.service_level is ServiceLevel.NEXT_DAY


def test_wholesale_po_with_a_bad_row_is_rejected_whole_and_others_go_through() -> None:
    text = whs(
        f"PO1,2024-05-01,ACME,{SHIP_TO},1,SKU-1,48,6.50,USD,",
        f"PO1,2024-05-01,ACME,{SHIP_TO},2,SKU-2,abc,11.25,USD,",
        f"PO2,2024-05-01,ACME,{SHIP_TO},1,SKU-3,2,1.00,USD,",
        f"PO1,2024-05-01,ACME,{SHIP_TO},3,SKU-4,1,9.805,USD,",
    )
    parsed = parse_wholesale(text, "po.csv")

    assert [r.order_id for r in parsed.records] == ["WHS-ACME-PO2"]  # type: ignore[attr-defined]
    assert problems_at(parsed) == {
        2: "not sent: PO ACME/PO1 has bad rows (lines 3, 5)",
        3: "quantity 'abc' is not a whole number",
        5: "unit_price '9.805' has more than two decimal places",
    }
    bad = parsed.problems[1]
    assert (
        bad.file == "po.csv" and bad.raw == f"PO1,2024-05-01,ACME,{SHIP_TO},2,SKU-2,abc,11.25,USD,"
    )
    assert bad.message == "line 3: quantity 'abc' is not a whole number"
    assert str(bad) == "po.csv:3: quantity 'abc' is not a whole number"


def test_wholesale_rows_of_one_po_must_agree_and_not_repeat_a_line_number() -> None:
    text = whs(
        f"PO1,2024-05-01,ACME,{SHIP_TO},1,SKU-1,1,1.00,USD,",
        f"PO1,2024-05-02,ACME,{SHIP_TO},2,SKU-2,1,1.00,EUR,",
        f"PO1,2024-05-01,ACME,{SHIP_TO},1,SKU-3,1,1.00,USD,",
    )
    reasons = problems_at(parse_wholesale(text, "po.csv"))

    assert "po_date '2024-05-02 00:00:00+00:00' differs" in reasons[3]
    assert "currency 'EUR' differs from 'USD' (line 2 of this order)" in reasons[3]
    assert reasons[4] == "line_number 1 already given at line 2"
    assert reasons[2].startswith("not sent:")


def test_wholesale_reports_every_problem_of_a_row_at_once() -> None:
    text = whs("PO1,05/02/2024,ACME,Acme DC,1 Dock Rd,Edison,NJ,08817,USA,0,,-1,x,US Dollar,slow")
    reasons = problems_at(parse_wholesale(text, "po.csv"))[2].split("; ")

    assert reasons == [
        "po_date '05/02/2024' is not an ISO 8601 date or time",
        "ship_to_country 'USA' is not an ISO 3166-1 alpha-2 country code like 'US'",
        "currency 'US DOLLAR' is not an ISO 4217 currency code like 'USD'",
        reasons[3],
        "line_number 0 must be at least 1",
        "sku is missing",
        "quantity -1 must be at least 1",
        "unit_price 'x' is not an amount of money",
    ]
    assert reasons[3].startswith("requested_service 'slow' is not one of STANDARD, EXPRESS")


def test_wholesale_ids_are_deterministic() -> None:
    text = (SAMPLES / "wholesale.csv").read_text()
    assert parse_wholesale(text, "a.csv").records == parse_wholesale(text, "b.csv").records
    assert [r.event_id for r in parse_wholesale(text, "a.csv").records] == [  # type: ignore[attr-defined]
        "evt-WHS-ACME-4500012345",
        "evt-WHS-BIGBOX-PO-77821",
    ]


# ---- CSV reading --------------------------------------------------------------------------------


def test_csv_line_numbers_count_physical_lines_and_skip_blank_ones() -> None:
    text = 'a,b\r\n1,"two\nlines"\r\n\r\n3,4\r\n5\r\n'
    rows, problems = read_csv(text, "f.csv", ("a", "b"))

    assert [(r.line, r.raw, dict(r.cells)) for r in rows] == [
        (2, '1,"two\nlines"', {"a": "1", "b": "two\nlines"}),
        (5, "3,4", {"a": "3", "b": "4"}),
    ]
    assert problems == [Problem("f.csv", 6, "the row has 1 cells, the header has 2", "5")]


def test_csv_header_match_ignores_case_spaces_bom_and_unknown_columns() -> None:
    rows, problems = read_csv("\ufeffA , B-c,extra\n1,2,3\n", "f.csv", ("a", "b_c"))
    assert problems == [] and [dict(r.cells) for r in rows] == [{"a": "1", "b_c": "2"}]


def test_a_header_without_a_required_column_makes_every_row_a_problem() -> None:
    parsed = parse_stock("location_id,sku,counted_at\nDC-1,SKU-1,2024-05-01\n", "s.csv")

    assert parsed.records == []
    assert problems_at(parsed) == {
        1: "the header lacks column(s) on_hand",
        2: "not read: the header lacks column(s) on_hand",
    }
    assert parsed.problems[1].raw == "DC-1,SKU-1,2024-05-01"


def test_an_empty_file_is_a_file_problem_at_line_zero() -> None:
    assert parse_pos_sales("", "e.csv").problems == [
        Problem("e.csv", 0, "the file is empty: no header row", "")
    ]


# ---- POS sales and pickup orders -------------------------------------------------------------


def test_pos_sales_are_negative_adjustments_with_ids_from_receipt_and_sku() -> None:
    text = (
        "store_id,sku,quantity,sold_at,receipt_id\n"
        "ST-1,SKU-1,2,2024-05-01T10:15:03-04:00,R-1\n"
        "ST-1,SKU-1,1,2024-05-01T10:15:03-04:00,R-1\n"
        "ST-1,SKU-2,1,2024-05-01 15:42:10,R-2\n"
    )
    records, problems = parse_pos_sales(text, "pos.csv")

    assert problems == []
    assert all(isinstance(r, StockEvent) for r in records)
    events: list[StockEvent] = records  # type: ignore[assignment]
    assert [(e.sku, e.location_id, e.kind, e.quantity) for e in events] == [
        ("SKU-1", "ST-1", StockEventKind.ADJUSTMENT, -2),
        ("SKU-1", "ST-1", StockEventKind.ADJUSTMENT, -1),
        ("SKU-2", "ST-1", StockEventKind.ADJUSTMENT, -1),
    ]
    assert events[0].occurred_at == datetime(2024, 5, 1, 14, 15, 3, tzinfo=UTC)
    assert events[2].occurred_at == datetime(2024, 5, 1, 15, 42, 10, tzinfo=UTC)  # naive: UTC
    assert events[0].reason == "POS sale, receipt R-1"
    # Scanned twice on one receipt: two sales, two ids; the same file again: the same ids.
    assert len({e.event_id for e in events}) == 3
    assert parse_pos_sales(text, "other.csv").records == records


def test_pos_sales_bad_rows_are_reported_and_the_rest_goes_through() -> None:
    parsed = parse_pos_sales((SAMPLES / "pos_sales_with_errors.csv").read_text(), "p.csv")

    assert len(parsed.records) == 2
    assert problems_at(parsed) == {
        3: "quantity 'abc' is not a whole number",
        4: "store_id is missing",
        5: "quantity 0 must be at least 1; sold_at 'yesterday' is not an ISO 8601 date or time",
    }


def test_pickup_orders_are_pos_pickups_at_the_store() -> None:
    records, problems = parse_pickup((SAMPLES / "pickup.csv").read_text(), "pickup.csv")

    assert problems == []
    first, second = records
    assert isinstance(first, OrderPlaced) and isinstance(second, OrderPlaced)
    assert (first.order_id, first.channel, first.fulfillment_method) == (
        "POS-BOPIS-10001",
        Channel.POS,
        FulfillmentMethod.PICKUP,
    )
    assert first.pickup_location_id == "ST-NYC" and first.ship_to is None
    assert first.customer == Customer(customer_id="CUST-1001", email="ada@example.com")
    assert [(li.line_id, li.sku, li.quantity) for li in first.lines] == [
        ("1", "APP-00001", 1),
        ("2", "HOM-00003", 2),
    ]
    assert first.order_total == Decimal("48.99")
    assert second.customer.email is None and second.pickup_location_id == "ST-CHI"


def test_pickup_order_with_rows_at_two_stores_is_rejected_whole() -> None:
    parsed = parse_pickup((SAMPLES / "pickup_with_errors.csv").read_text(), "p.csv")

    assert [r.order_id for r in parsed.records] == ["POS-BOPIS-10005"]  # type: ignore[attr-defined]
    assert problems_at(parsed) == {
        2: "not sent: order BOPIS-10003 has bad rows (line 3)",
        3: "store_id 'ST-LAX' differs from 'ST-NYC' (line 2 of this order)",
        4: "unit_price '-24.00' must not be negative",
    }


# ---- stock --------------------------------------------------------------------------------------


def test_stock_counts_become_snapshots_and_safety_stock_when_given() -> None:
    text = (
        "location_id,sku,on_hand,counted_at,safety_stock\n"
        "DC-1,SKU-1,1200,2024-05-01T05:00:00Z,50\n"
        "DC-1,SKU-2,0,2024-05-01T05:00:00Z,\n"
    )
    records, problems = parse_stock(text, "s.csv")

    assert problems == []
    events: list[StockEvent] = records  # type: ignore[assignment]
    assert [(e.sku, e.kind, e.quantity) for e in events] == [
        ("SKU-1", StockEventKind.SNAPSHOT, 1200),
        ("SKU-1", StockEventKind.SAFETY_STOCK, 50),
        ("SKU-2", StockEventKind.SNAPSHOT, 0),
    ]
    assert len({e.event_id for e in events}) == 3
    assert parse_stock(text, "s.csv").records == records
    # A later count of the same sku is a new event.
    later = parse_stock(text.replace("05:00:00Z", "06:00:00Z"), "s.csv").records
    assert not {e.event_id for e in events} & {e.event_id for e in later}  # type: ignore[attr-defined]


def test_stock_bad_rows() -> None:
    parsed = parse_stock((SAMPLES / "stock_with_errors.csv").read_text(), "s.csv")

    assert len(parsed.records) == 4  # two good rows, each with safety stock
    assert problems_at(parsed) == {
        3: "on_hand -4 must be at least 0",
        4: "safety_stock 'lots' is not a whole number",
        5: "the row has 4 cells, the header has 5",
    }


# ---- marketplace --------------------------------------------------------------------------------


def placeholder_marketplace_order(doc: dict[str, Any]) -> OrderPlaced:
    """A stand-in for the marketplace mapping: {"id", "sku", "qty"} documents."""
    if doc["qty"] < 1:
        raise ValueError(f"qty: {doc['qty']} is not a positive quantity")
    return OrderPlaced(
        event_id=f"evt-MKT-{doc['id']}",
        order_id=f"MKT-{doc['id']}",
        channel=Channel.MARKETPLACE,
        channel_order_ref=doc["id"],
        placed_at=NOW,
        customer=Customer(customer_id="C"),
        fulfillment_method=FulfillmentMethod.SHIP,
        lines=(OrderLine(line_id="1", sku=doc["sku"], quantity=doc["qty"], unit_price=Decimal(1)),),
        currency="USD",
        order_total=doc["qty"],
        service_level=ServiceLevel.STANDARD,
    )


def test_marketplace_json_lines_one_document_per_line() -> None:
    text = (
        '{"id": "A1", "sku": "SKU-1", "qty": 2}\n'
        "\n"
        '{"id": "A2", "sku": "SKU-1", "qty": 0}\n'
        '{"id": "A3", "sku": "SKU-2"}\n'
        "[1, 2]\n"
        '{"id": "A4", "sku": \n'
        '{"id": "A5", "sku": "SKU-3", "qty": 1}\n'
    )
    parsed = parse_marketplace(text, "m.jsonl", placeholder_marketplace_order, json_lines=True)

    assert [r.order_id for r in parsed.records] == ["MKT-A1", "MKT-A5"]  # type: ignore[attr-defined]
    reasons = problems_at(parsed)
    assert reasons[3] == "not a valid order: qty: 0 is not a positive quantity"
    assert reasons[4] == "not a valid order: KeyError: 'qty'"
    assert reasons[5] == "expected a JSON object, got list"
    assert reasons[6].startswith("not valid JSON: ")
    assert parsed.problems[0].raw == '{"id": "A2", "sku": "SKU-1", "qty": 0}'


def test_marketplace_json_file_is_one_document(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"id": "A1", "sku": "SKU-1", "qty": 1}')
    (tmp_path / "b.json").write_text('{"id": "B1", "sku": "SKU-1", "qty": 0}')
    (tmp_path / "notes.txt").write_text("not a document")

    results = read_feed(
        FeedKind.MARKETPLACE, tmp_path, marketplace_parse=placeholder_marketplace_order
    )

    assert [(f.name, len(p.records), [pr.line for pr in p.problems]) for f, p in results] == [
        ("a.json", 1, []),
        ("b.json", 0, [1]),
    ]


def test_marketplace_samples_with_the_real_mapping() -> None:
    pytest.importorskip("connectors.marketplace")
    ((_, good),) = read_feed(FeedKind.MARKETPLACE, SAMPLES / "marketplace.jsonl")
    ((_, bad),) = read_feed(FeedKind.MARKETPLACE, SAMPLES / "marketplace_with_errors.jsonl")

    assert good.problems == [] and len(good.records) == 2
    assert len(bad.records) == 1 and [p.line for p in bad.problems] == [2, 3]


# ---- masters ------------------------------------------------------------------------------------


def test_locations_from_csv() -> None:
    text = (SAMPLES / "locations.csv").read_text()
    records, problems = parse_locations(text, "locations.csv", NOW)

    assert problems == []
    by_id = {r.location_id: r for r in records if isinstance(r, Location)}
    store = by_id["ST-NYC"]
    assert store.kind is LocationKind.STORE and store.name == "New York Herald Sq"
    assert store.capabilities == (Capability.PICKUP, Capability.SHIP_FROM_STORE, Capability.RETURNS)
    assert (store.priority, store.daily_order_capacity, store.active) == (50, 400, True)
    assert store.address.name == "New York Herald Sq" and store.address.lat == 40.7506
    assert store.updated_at == NOW  # no updated_at column: the time the caller gives
    assert by_id["ST-CHI"].daily_order_capacity is None


def test_locations_from_yaml_with_nested_address() -> None:
    records, problems = parse_locations((SAMPLES / "locations.yaml").read_text(), "l.yaml", NOW)

    assert problems == []
    dc, store = records
    assert isinstance(dc, Location) and isinstance(store, Location)
    assert dc.location_id == "DC-GA" and dc.kind is LocationKind.DC
    assert dc.address.postal_code == "30253" and dc.address.lon == -84.1469
    assert dc.priority == 10 and dc.active is True
    assert store.capabilities[0] is Capability.PICKUP


def test_location_bad_rows_in_csv_and_yaml() -> None:
    csv_parsed = parse_locations((SAMPLES / "locations_with_errors.csv").read_text(), "l.csv", NOW)
    assert len(csv_parsed.records) == 1
    assert problems_at(csv_parsed) == {
        3: "kind 'SHOP' is not one of DC, STORE; "
        "capability 'CURBSIDE' is not one of SHIP, PICKUP, SHIP_FROM_STORE, RETURNS",
        4: "country 'USA' is not an ISO 3166-1 alpha-2 country code like 'US'; "
        "lat 133.5 is not between -90 and 90; active 'maybe' is not true or false",
    }

    yaml_parsed = parse_locations(
        (SAMPLES / "locations_with_errors.yaml").read_text(), "l.yaml", NOW
    )
    assert len(yaml_parsed.records) == 1
    reasons = problems_at(yaml_parsed)
    assert sorted(reasons) == [12, 22]  # the line each list item starts on
    assert reasons[12].startswith("unknown field(s) capabilites;")
    assert (
        reasons[22]
        == "kind 'WAREHOUSE' is not one of DC, STORE; priority 'high' is not a whole number"
    )
    assert yaml_parsed.problems[1].raw.startswith("location_id: ST-HOU\n")


def test_location_updated_at_column_wins_over_the_default() -> None:
    text = (
        "location_id,name,kind,line1,city,region,postal_code,country,updated_at\n"
        "DC-1,One,dc,1 Rd,Town,NJ,08817,us,2024-04-01T00:00:00\n"
    )
    (location,), _ = parse_locations(text, "l.csv", NOW)
    assert location.updated_at == datetime(2024, 4, 1, tzinfo=UTC)  # type: ignore[attr-defined]
    assert location.address.country == "US" and location.kind is LocationKind.DC  # type: ignore[attr-defined]


def test_products_from_csv_and_yaml() -> None:
    csv_records, csv_problems = parse_products((SAMPLES / "products.csv").read_text(), "p.csv", NOW)
    yaml_records, yaml_problems = parse_products(
        (SAMPLES / "products.yaml").read_text(), "p.yaml", NOW
    )

    assert csv_problems == [] and yaml_problems == []
    mug = next(p for p in csv_records if p.sku == "HOM-00003")  # type: ignore[attr-defined]
    assert mug == Product(
        sku="HOM-00003", name="Stoneware Ceramic Mug", category="home",
        unit_price=Decimal("14.50"), weight_grams=420, length_mm=120, width_mm=120,
        height_mm=110, fragile=True, hazmat=False, tags=("gift-idea",),
    )  # fmt: skip
    assert csv_records[0].tags == ("bestseller", "eco")  # type: ignore[attr-defined]
    propane = yaml_records[1]
    assert isinstance(propane, Product)
    assert propane.hazmat and propane.unit_price == Decimal("7.49") and propane.length_mm is None


def test_product_bad_rows() -> None:
    parsed = parse_products((SAMPLES / "products_with_errors.csv").read_text(), "p.csv", NOW)

    assert len(parsed.records) == 1
    assert problems_at(parsed) == {
        3: "unit_price '$59.00' is not an amount of money",
        4: "category is missing; weight_grams '350.5' is not a whole number",
        5: "fragile 'sometimes' is not true or false",
    }


def test_yaml_that_does_not_parse_is_one_problem() -> None:
    parsed = parse_products("products:\n  - sku: [unclosed\n", "p.yaml", NOW)
    assert parsed.records == [] and len(parsed.problems) == 1
    assert parsed.problems[0].reason.startswith("not valid YAML")


# ---- every sample -----------------------------------------------------------------------------

SAMPLE_KINDS = {
    "wholesale": FeedKind.WHOLESALE,
    "marketplace": FeedKind.MARKETPLACE,
    "pos_sales": FeedKind.POS_SALES,
    "pickup": FeedKind.PICKUP,
    "stock": FeedKind.STOCK,
    "locations": FeedKind.LOCATIONS,
    "products": FeedKind.PRODUCTS,
}


@pytest.mark.parametrize("path", sorted(SAMPLES.iterdir()), ids=lambda p: p.name)
def test_samples_good_files_are_clean_and_error_files_are_not(path: Path) -> None:
    if path.name.startswith("marketplace"):
        pytest.importorskip("connectors.marketplace")
    stem = path.stem.removesuffix("_with_errors")
    ((_, parsed),) = read_feed(SAMPLE_KINDS[stem], path)

    assert parsed.records
    if path.stem.endswith("_with_errors"):
        assert parsed.problems and all(p.line > 0 for p in parsed.problems)
    else:
        assert parsed.problems == []


# ---- report, watcher folders, command line ------------------------------------------------


def test_report_summary_lists_every_problem_as_path_line_reason() -> None:
    report = FeedReport(FeedKind.STOCK, "in/s.csv", dead_lettered=1, delivered=3)
    report.produced["dom.stock.v1"] = 2
    report.problems.append(Problem("in/s.csv", 7, "quantity 'abc' is not a whole number", "x"))

    assert report.summary().splitlines() == [
        "in/s.csv (stock): produced 2 to dom.stock.v1; 1 problem(s), 1 dead-lettered; "
        "broker confirmed 3, failed 0",
        "in/s.csv:7: quantity 'abc' is not a whole number",
    ]
    assert not report.ok


def test_watch_folders_pick_settled_files_and_file_them_away(tmp_path: Path) -> None:
    (tmp_path / "stock").mkdir()
    (tmp_path / "pickup").mkdir()
    old, new = tmp_path / "stock" / "a.csv", tmp_path / "pickup" / "b.csv"
    old.write_text("x")
    new.write_text("y")
    (tmp_path / "stock" / "c.csv.part").write_text("half")
    past = time.time() - 60
    os.utime(old, (past, past))

    assert pending_files(tmp_path, settle_seconds=5) == [(FeedKind.STOCK, old)]

    clean = FeedReport(FeedKind.STOCK, str(old))
    assert file_away(tmp_path, FeedKind.STOCK, old, clean) == tmp_path / "done" / "stock" / "a.csv"
    bad = FeedReport(FeedKind.PICKUP, str(new))
    bad.problems.append(Problem(str(new), 2, "sku is missing", "y"))
    target = file_away(tmp_path, FeedKind.PICKUP, new, bad)
    assert target == tmp_path / "failed" / "pickup" / "b.csv"
    errors = (tmp_path / "failed" / "pickup" / "b.csv.errors.txt").read_text()
    assert f"{target}:2: sku is missing" in errors

    # A second file of the same name does not overwrite the first.
    old.write_text("again")
    second = file_away(tmp_path, FeedKind.STOCK, old, clean)
    assert second != tmp_path / "done" / "stock" / "a.csv" and second.read_text() == "again"


def test_cli_offers_one_command_per_kind_and_watch() -> None:
    result = CliRunner().invoke(feed, ["--help"])
    assert result.exit_code == 0
    for name in [*(k.value for k in FeedKind), "watch"]:
        assert name in result.output
    missing = CliRunner().invoke(feed, ["stock", "/no/such/file.csv"])
    assert missing.exit_code == 2 and "does not exist" in missing.output

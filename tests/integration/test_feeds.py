"""File feeds on a real broker: good rows on their topics, bad rows on the dead-letter topic."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer

from config.settings import Settings
from connectors.feed_cli import feed
from connectors.feeds import FeedKind, feed_file
from connectors.feeds_stock import parse_stock
from connectors.feeds_watch import watch
from dom.admin import create_topics
from schemas.codec import Codec
from schemas.models import OrderPlaced, StockEvent
from schemas.packing import partition_for
from schemas.topics import DLQ, ORDERS, STOCK
from tests.integration.kafka_io import consume

pytestmark = pytest.mark.broker

STOCK_CSV = (
    "location_id,sku,on_hand,counted_at,safety_stock\n"
    "DC-1,SKU-1,120,2024-05-01T05:00:00Z,10\n"
    "DC-1,SKU-2,abc,2024-05-01T05:00:00Z,\n"
    "DC-1,SKU-3,7,2024-05-01T05:00:00Z,\n"
    "DC-1,SKU-4,5,not a time,\n"
    "ST-1,SKU-1,3,2024-05-01 05:00:00,\n"
)


def test_stock_file_good_rows_produced_and_bad_rows_dead_lettered(
    settings: Settings, tmp_path: Path
) -> None:
    create_topics(settings, [STOCK, DLQ])
    path = tmp_path / "wms-count.csv"
    path.write_text(STOCK_CSV)

    report = feed_file(settings, "stock", path)

    assert [(p.line, p.reason) for p in report.problems] == [
        (3, "on_hand 'abc' is not a whole number"),
        (5, "counted_at 'not a time' is not an ISO 8601 date or time"),
    ]
    assert report.produced == {"dom.stock.v1": 4} and report.dead_lettered == 2
    assert (report.delivered, report.failed) == (6, 0)
    assert f"{path}:3: on_hand 'abc' is not a whole number" in report.summary()

    codec = Codec()
    # A count goes packed (DOM_PACK_STOCK): a RecordBatch per partition, each record in it in
    # the partition of its key, in the file's order.
    messages = stock_messages(settings, records=4)
    assert len(messages) == len({partition for partition, _, _ in messages})
    carried = [
        (partition, key, codec.decode_as(value, StockEvent))
        for partition, _, batch in messages
        for key, value in codec.unpack(batch) or []
    ]
    assert sorted((e for _, _, e in carried), key=str) == sorted(
        parse_stock(STOCK_CSV, str(path)).records, key=str
    )
    assert {k for _, k, _ in carried} == {b"SKU-1", b"SKU-3"}  # keyed by sku, as the contract says
    for partition, key, event in carried:
        assert key == event.sku.encode()
        assert partition == partition_for(key, settings.topic_partitions)
    assert [e.location_id for _, k, e in carried if k == b"SKU-1"] == ["DC-1", "DC-1", "ST-1"]

    letters = consume(settings, settings.topic(DLQ.name), expected=2)
    by_line = {dict(h)["dom.source.offset"]: (k, v, dict(h)) for k, v, h in letters}
    assert sorted(by_line) == [b"3", b"5"]
    key, value, headers = by_line[b"3"]
    assert key == b"wms-count.csv"
    assert value == b"DC-1,SKU-2,abc,2024-05-01T05:00:00Z,"
    assert headers == {
        "dom.error": b"line 3: on_hand 'abc' is not a whole number",
        "dom.stage": b"feed:stock",
        "dom.source.topic": f"file:{os.path.abspath(path)}".encode(),
        "dom.source.partition": b"-1",
        "dom.source.offset": b"3",
    }


def stock_messages(settings: Settings, records: int) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of every message on the stock topic, once the RecordBatch
    messages among them carry ``records`` records (or time ran out)."""
    codec = Codec()
    consumer = Consumer(
        settings.librdkafka_config(
            **{"group.id": f"test-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest"}
        )
    )
    consumer.subscribe([settings.topic(STOCK.name)])
    got: list[tuple[int, bytes, bytes]] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            if sum(len(codec.unpack(v) or [v]) for _, _, v in got) >= records:
                break
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append((msg.partition() or 0, msg.key() or b"", msg.value() or b""))
    finally:
        consumer.close()
    return got


def test_a_count_goes_a_record_each_when_stock_is_not_packed(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(pack_stock=False)  # for consumers that read StockEvent only
    create_topics(settings, [STOCK, DLQ])
    path = tmp_path / "wms-count.csv"
    path.write_text(STOCK_CSV)

    report = feed_file(settings, "stock", path)

    assert (report.delivered, report.failed) == (6, 0)
    messages = stock_messages(settings, records=4)
    assert [Codec().unpack(value) for _, _, value in messages] == [None] * 4
    events = sorted((Codec().decode_as(v, StockEvent) for _, _, v in messages), key=str)
    assert events == sorted(parse_stock(STOCK_CSV, str(path)).records, key=str)


def test_sending_a_file_again_repeats_the_same_event_ids(
    settings: Settings, tmp_path: Path
) -> None:
    create_topics(settings, [ORDERS, DLQ])
    samples = Path(__file__).resolve().parents[2] / "deploy" / "feeds" / "samples"
    path = tmp_path / "po.csv"
    path.write_text((samples / "wholesale_with_errors.csv").read_text())

    first = feed_file(settings, FeedKind.WHOLESALE, path)
    second = feed_file(settings, FeedKind.WHOLESALE, path)

    assert first.produced == second.produced == {"dom.orders.v1": 1}
    assert [p.line for p in first.problems] == [2, 3, 4, 6]
    orders = consume(settings, settings.topic(ORDERS.name), expected=2)
    decoded = [Codec().decode_as(v or b"", OrderPlaced) for _, v, _ in orders]
    assert [o.event_id for o in decoded] == ["evt-WHS-BIGBOX-PO-77822"] * 2
    assert {k for k, _, _ in orders} == {b"WHS-BIGBOX-PO-77822"}
    letters = consume(settings, settings.topic(DLQ.name), expected=8)
    assert len(letters) == 8  # every row of the rejected PO, both times: nothing is lost


def test_cli_exits_1_after_producing_the_good_rows(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings, [STOCK, DLQ])
    path = tmp_path / "count.csv"
    path.write_text(STOCK_CSV)

    result = CliRunner().invoke(feed, ["stock", str(path)], obj=settings)

    assert result.exit_code == 1, result.output
    assert "produced 4 to dom.stock.v1; 2 problem(s), 2 dead-lettered" in result.output
    assert f"{path}:5: counted_at 'not a time'" in result.output
    clean = tmp_path / "clean.csv"
    clean.write_text(STOCK_CSV.splitlines()[0] + "\n" + STOCK_CSV.splitlines()[1] + "\n")
    assert CliRunner().invoke(feed, ["stock", str(clean)], obj=settings).exit_code == 0


def test_watch_feeds_dropped_files_and_files_them_away(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings, [STOCK, DLQ])
    drop = tmp_path / "drop"
    (drop / "stock").mkdir(parents=True)
    (drop / "stock" / "bad.csv").write_text(STOCK_CSV)
    (drop / "stock" / "good.csv").write_text("\n".join(STOCK_CSV.splitlines()[:2]) + "\n")

    reports = watch(settings, drop, settle_seconds=0, once=True)

    assert sorted((Path(r.path).name, r.ok) for r in reports) == [
        ("bad.csv", False),
        ("good.csv", True),
    ]
    assert (drop / "done" / "stock" / "good.csv").exists()
    assert (drop / "failed" / "stock" / "bad.csv").exists()
    errors = (drop / "failed" / "stock" / "bad.csv.errors.txt").read_text()
    assert "bad.csv:3: on_hand 'abc' is not a whole number" in errors
    assert list((drop / "stock").iterdir()) == []
    codec = Codec()
    carried = [r for _, _, v in stock_messages(settings, records=6) for r in codec.unpack(v) or []]
    assert len(carried) == 6  # both files' good rows, each file's packed

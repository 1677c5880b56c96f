"""The KPI stages without a broker: each event counts once through redeliveries, a replay
after a crash sends again exactly what it sent, buckets drop repeats, retention retires.

The stages are driven as the outbox drives them (tests/unit/batch_fakes.py); a "restart" is
a fresh outbox (new producer, new sequencer) over the same table.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from config.settings import Settings
from schemas.kpis import KpiDelta, KpiForget, KpiRetire, KpiValue
from schemas.models import Message
from streams import kpi_stage
from streams.core.kpis import BucketKey, Grain, Increment, KpiBucket, OrderFacts, Series
from streams.kpi_records import (
    OrderKpis,
    Pending,
    StoredBucket,
    apply_delta,
    batch_records,
    bucket_of,
    delta_buckets,
    published_key,
    remember,
    value_record,
)
from streams.kpi_stage import (
    BUCKETS,
    FACTS,
    BucketStage,
    FactStage,
    expired_families,
    facts_keep,
    facts_to_forget,
)
from streams.metrics import PipelineMetrics
from streams.runtime.batch_table import BatchTable
from streams.views import NetworkView
from tests.unit.batch_fakes import FakeEvent, FakeMessage, FakeTable, Run
from tests.unit.factories import T0, make_order

ORDERS = "dom.orders.v1"
STATUS = "dom.order-status.v1"


def facts_table() -> BatchTable[OrderKpis]:
    return BatchTable(
        FakeTable(),
        OrderKpis.model_validate_json,
        lambda v: v.model_dump_json().encode(),
    )


def bucket_table(raw: FakeTable | None = None) -> BatchTable[StoredBucket]:
    return BatchTable(
        raw if raw is not None else FakeTable(),
        StoredBucket.model_validate_json,
        lambda v: v.model_dump_json().encode(),
    )


def fact_stage(table: BatchTable[OrderKpis]) -> FactStage:
    return FactStage(table, Run().codec, NetworkView(), Settings(), PipelineMetrics())


def facts_of(table: BatchTable[OrderKpis]) -> tuple[Any, BatchTable[OrderKpis], Any]:
    """The facts stage's handler, table and finish, for ``Run.batch``."""
    stage = fact_stage(table)
    return stage.handle, table, stage.finish


def event(run: Run, topic: str, record: Message, offset: int, partition: int = 0) -> FakeEvent:
    key = record.order_id.encode()  # type: ignore[attr-defined]
    value = run.codec.encode(record)
    return FakeEvent(FakeMessage(run.settings.topic(topic), partition, offset, key, value))


def deltas_of(run: Run) -> list[KpiDelta]:
    return [r for r in run.records() if isinstance(r, KpiDelta)]


def test_a_placement_sends_one_delta_per_bucket_named_by_its_input() -> None:
    table, run = facts_table(), Run(FACTS)
    stage = fact_stage(table)
    run.batch([event(run, ORDERS, make_order("O-1"), 7)], stage.handle, table, stage.finish)

    sent = deltas_of(run)
    assert {BucketKey.parse(d.bucket).grain for d in sent} == {Grain.HOUR, Grain.DAY}
    assert {BucketKey.parse(d.bucket).series for d in sent} == {"orders_placed"}
    assert {(d.source, d.offset) for d in sent} == {(run.settings.topic(ORDERS) + ":0", 7)}


def test_a_replay_after_a_crash_sends_the_same_deltas_and_a_repeat_counts_once() -> None:
    table = facts_table()
    first, placed = Run(FACTS), make_order("O-1")
    first.batch([event(first, ORDERS, placed, 0)], *facts_of(table))
    # The worker died after the facts were stored, before (or after) its deltas went out:
    # the restarted stage reads the input again.
    again = Run(FACTS)
    again.batch([event(again, ORDERS, placed, 0)], *facts_of(table))
    assert deltas_of(again) == deltas_of(first)
    # The same event at another offset (a producer's retry upstream) counts nothing.
    later = Run(FACTS)
    later.batch([event(later, ORDERS, placed, 1)], *facts_of(table))
    assert deltas_of(later) == []

    buckets = bucket_table()
    stage, run = (
        BucketStage(buckets, buckets.table, Run().codec, Settings(), PipelineMetrics()),
        Run(BUCKETS),
    )
    inputs = [event_of_delta(run, d, i) for i, d in enumerate(deltas_of(first) + deltas_of(again))]
    run.batch(inputs, stage.handle, buckets, stage.publish)
    published = {r.key: r for r in run.records() if isinstance(r, KpiValue)}
    assert {r.count for r in published.values()} == {1}
    assert len(published) == 2  # an hour and a day


def event_of_delta(run: Run, delta: KpiDelta, offset: int) -> FakeEvent:
    topic = run.settings.topic("dom.internal.kpi-deltas.v1")
    return FakeEvent(FakeMessage(topic, 0, offset, delta.family.encode(), run.codec.encode(delta)))


def test_a_done_input_replayed_from_far_back_is_skipped_whole() -> None:
    table, placed = facts_table(), make_order("O-1")
    run = Run(FACTS)
    run.batch([event(run, ORDERS, placed, 0)], *facts_of(table))
    run.batch(
        [event(run, ORDERS, placed.model_copy(update={"event_id": "x"}), 1)], *facts_of(table)
    )
    rewound = Run(FACTS)
    rewound.batch([event(rewound, ORDERS, placed, 0)], *facts_of(table))
    assert deltas_of(rewound) == []  # neither counted again nor sent again


def test_remember_keeps_only_what_is_not_known_done() -> None:
    stored = OrderKpis(facts=OrderFacts(order_id="O-1"))
    one = [(BucketKey("s", Grain.DAY, T0).text(), KpiBucket(count=1))]
    stored = remember(stored, stored.facts, ("t:0", 3, 1000), {"t:0": 3}, one)
    assert stored.sent_by("t:0", 3) is not None
    stored = remember(stored, stored.facts, ("t:0", 9, 2000), {"t:0": 9}, [])
    assert stored.sent == ()  # offset 3 was before the batch that read 9 began: it went out


def delta(series: str, *, source: str = "t:0", offset: int = 0, count: int = 1) -> KpiDelta:
    key = BucketKey(series, Grain.DAY, datetime(2024, 5, 1, tzinfo=UTC))
    return KpiDelta(
        family="f",
        bucket=key.text(),
        source=source,
        offset=offset,
        delta=KpiBucket(count=count).model_dump_json(),
        at=T0,
    )


def test_a_bucket_applies_each_source_offset_once() -> None:
    stored = apply_delta(None, delta("s", offset=5))
    assert stored is not None
    assert apply_delta(stored, delta("s", offset=5)) is None
    assert apply_delta(stored, delta("s", offset=4)) is None
    other = apply_delta(stored, delta("s", source="t:1", offset=0, count=2))
    assert other is not None and other.bucket.count == 3


def test_increments_of_windows_past_the_retention_are_not_sent() -> None:
    old = Increment(Series.ORDERS_PLACED, T0 - timedelta(days=500), ("WEB",), 1)
    new = Increment(Series.ORDERS_PLACED, T0, ("WEB",), 1)
    sent = delta_buckets([old, new], UTC, at=T0, retention_days=400)
    assert {BucketKey.parse(key).start.date() for key, _ in sent} == {T0.date()}


def test_published_keys_never_collide_and_values_read_back() -> None:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    a = BucketKey("returns_requested", Grain.DAY, start, ("a|b",))
    b = BucketKey("returns_requested", Grain.DAY, start, ("a", "b"))
    assert published_key(a) != published_key(b)
    assert published_key(a) == "returns_requested|day|2024-05-01T00:00:00+00:00|a%7Cb"
    bucket = KpiBucket(count=2, total=Decimal("3.500"), histogram={4: 1}, waiting_since={9: -1})
    record = value_record(a, bucket, UTC, T0)
    assert record.window_end == "2024-05-02T00:00:00+00:00"
    assert bucket_of(Run().codec.decode_as(Run().codec.encode(record), KpiValue)) == (a, bucket)


def test_retention_deletes_expired_windows_with_a_tombstone() -> None:
    raw = FakeTable()
    buckets = bucket_table(raw)
    old = BucketKey("orders_placed", Grain.DAY, datetime(2020, 1, 1, tzinfo=UTC), ("WEB",))
    new = BucketKey("orders_placed", Grain.DAY, datetime(2024, 5, 1, tzinfo=UTC), ("WEB",))
    for key in (old, new):
        raw[key.text().encode()] = (
            StoredBucket(bucket=KpiBucket(count=1)).model_dump_json().encode()
        )
    family = '["orders_placed", "day", "WEB"]'
    assert expired_families(raw.keys(), T0, UTC, 400) == [family]

    stage, run = BucketStage(buckets, raw, Run().codec, Settings(), PipelineMetrics()), Run(BUCKETS)
    command = KpiRetire(family=family, issued_at=T0)
    topic = run.settings.topic("dom.internal.kpi-deltas.v1")
    retire = FakeEvent(FakeMessage(topic, 0, 0, family.encode(), run.codec.encode(command)))
    run.batch([retire], stage.handle, buckets, stage.publish)
    assert old.text().encode() not in raw and new.text().encode() in raw
    tombstones = [m for m in run.messages() if m[2] is None]
    assert [m[1] for m in tombstones] == [published_key(old).encode()]


def test_fresh_deltas_of_a_batch_merge_but_never_with_or_across_one_sent_again() -> None:
    key = BucketKey("orders_placed", Grain.DAY, T0).text()
    one = [(key, KpiBucket(count=1))]
    pending = [
        Pending("t:0", 1, T0, True, one),
        Pending("t:0", 2, T0, True, one),
        Pending("t:0", 3, T0, False, one),  # sent before: maybe in the bucket already
        Pending("t:0", 4, T0, True, one),
        Pending("t:1", 0, T0, True, one),  # another source partition: its own run
    ]
    records = batch_records(pending)
    named = [(r.source, r.offset, KpiBucket.model_validate_json(r.delta).count) for r in records]
    assert named == [("t:0", 2, 2), ("t:0", 3, 1), ("t:0", 4, 1), ("t:1", 0, 1)]

    stored = None
    for record in records + records:  # all of it twice: counted once
        stored = apply_delta(stored, record) or stored
    assert stored is not None and stored.bucket.count == 5


def test_a_batch_of_orders_sends_one_delta_per_bucket_and_source() -> None:
    table, run = facts_table(), Run(FACTS)
    orders = [event(run, ORDERS, make_order(f"O-{i}"), i) for i in range(5)]
    run.batch(orders, *facts_of(table))
    sent = deltas_of(run)
    assert len(sent) == 2  # the hour and the day of orders_placed, WEB
    assert {(d.offset, KpiBucket.model_validate_json(d.delta).count) for d in sent} == {(4, 5)}


def test_a_gauge_keeps_its_level_through_two_retirements() -> None:
    raw = FakeTable()
    buckets = bucket_table(raw)
    stage = BucketStage(buckets, raw, Run().codec, Settings(), PipelineMetrics())
    days = [datetime(2020, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    for day in days:  # one more order waiting each day
        key = BucketKey("backorder_backlog", Grain.DAY, day)
        stored = StoredBucket(bucket=KpiBucket(count=1, waiting_since={int(day.timestamp()): 1}))
        raw[key.text().encode()] = stored.model_dump_json().encode()
    family = '["backorder_backlog", "day"]'
    for issued in (days[1] + timedelta(days=400, hours=12), days[2] + timedelta(days=401)):
        run = Run(BUCKETS)
        command = KpiRetire(family=family, issued_at=issued)
        topic = run.settings.topic("dom.internal.kpi-deltas.v1")
        retire = FakeEvent(FakeMessage(topic, 0, 0, family.encode(), run.codec.encode(command)))
        run.batch([retire], stage.handle, buckets, stage.publish)
    left = {
        BucketKey.parse(k.decode()): StoredBucket.model_validate_json(v) for k, v in raw.items()
    }
    [(carried, stored)] = left.items()
    assert carried.series == "backorder_backlog.carried"
    assert stored.bucket.count == 3  # every order that started waiting, none lost


# ---- facts retention ---------------------------------------------------------------------------

READ_AT = datetime.fromtimestamp(FakeMessage("t", 0, 0, b"", b"").timestamp, UTC)
"""When an input at offset 0 was written, as the fakes stamp it (offset n: n seconds later)."""


def forget(run: Run, order_id: str, offset: int, seconds_after_read: int) -> FakeEvent:
    """A retention command for ``order_id``, written that long after the input at offset 0."""
    topic = run.settings.topic("dom.internal.kpi-forget.v1")
    value = run.codec.encode(KpiForget(order_id=order_id, issued_at=T0))
    message = FakeMessage(topic, 0, offset, order_id.encode(), value)
    message.timestamp = READ_AT.timestamp() + seconds_after_read
    return FakeEvent(message)


def test_facts_that_read_nothing_for_longer_than_kept_are_dropped_by_their_owner() -> None:
    table, run = facts_table(), Run(FACTS)
    stage = fact_stage(table)
    run.batch([event(run, ORDERS, make_order("O-1"), 0)], stage.handle, table, stage.finish)
    keep = facts_keep(Settings())
    assert keep == timedelta(days=30 + 90)  # the return window and the order retention
    stored = list(table.table.items())
    assert facts_to_forget(stored, READ_AT + keep, keep) == []
    assert facts_to_forget(stored, READ_AT + keep + timedelta(seconds=1), keep) == ["O-1"]

    kept_s = int(keep.total_seconds())
    # The owner decides again at the command's own time: sent early (or the order read
    # something since), the facts stay; due, they go; a repeat finds nothing.
    run.batch([forget(run, "O-1", 0, kept_s - 5)], stage.handle, table, stage.finish)
    assert table.get(b"O-1") is not None
    for offset in (1, 2):
        run.batch([forget(run, "O-1", offset, kept_s + 5)], stage.handle, table, stage.finish)
        assert table.get(b"O-1") is None and b"O-1" not in table.table
    assert deltas_of(run) != [] and not any(isinstance(r, KpiForget) for r in run.records())


def test_facts_of_an_order_placed_within_the_time_kept_are_not_even_decoded() -> None:
    keep = facts_keep(Settings())
    recent = b'{"facts":{"order_id":"O-1","placed":{"placed_at":"2024-05-01T12:00:00Z"}} cut'
    assert facts_to_forget([(b"O-1", recent), (b"O-2", None)], T0 + keep, keep) == []


def test_a_retention_command_the_stage_cannot_apply_is_dead_lettered_and_drops_nothing() -> None:
    table, run = facts_table(), Run(FACTS)
    stage = fact_stage(table)
    run.batch([event(run, ORDERS, make_order("O-1"), 0)], stage.handle, table, stage.finish)
    kept_s = int(facts_keep(Settings()).total_seconds())
    garbled = forget(run, "O-1", 0, kept_s + 5)
    garbled.value = garbled.message.value = b"\xc3\x01not a record"
    wrong_key = forget(run, "O-1", 1, kept_s + 5)
    wrong_key.key = wrong_key.message.key = b"O-2"
    run.batch([garbled, wrong_key], stage.handle, table, stage.finish)

    letters = run.letters()
    assert [(letter.key, letter.stage) for letter in letters] == [(b"O-1", FACTS), (b"O-2", FACTS)]
    assert letters[1].error == "key must be the order_id 'O-1'"
    assert table.get(b"O-1") is not None  # neither command removed anything


def test_an_older_worker_reads_the_facts_and_buckets_a_newer_one_stored() -> None:
    """Rolling upgrades: fields a newer release added, at any depth, are dropped on reading."""
    table, run = facts_table(), Run(FACTS)
    stage = fact_stage(table)
    run.batch([event(run, ORDERS, make_order("O-1"), 0)], stage.handle, table, stage.finish)
    stored = json.loads(table.table[b"O-1"])
    newer = {**stored, "since_v9": 1, "facts": {**stored["facts"], "risk": "low"}}
    newer["facts"]["placed"] = {**newer["facts"]["placed"], "region": "EU"}
    assert kpi_stage._decode_order(json.dumps(newer).encode()) == kpi_stage._decode_order(
        table.table[b"O-1"]
    )
    bucket = StoredBucket(bucket=KpiBucket(count=2), applied={"p:0": 7})
    newer_bucket = {**json.loads(bucket.model_dump_json()), "mark_v9": 3}
    newer_bucket["bucket"]["sketch"] = [1, 2]
    assert kpi_stage._decode_bucket(json.dumps(newer_bucket).encode()) == bucket

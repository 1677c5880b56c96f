"""A bulk load of stock, packed, through a worker on the real broker.

A count sent with ``ContractProducer.send_bulk`` (what ``dom feed stock`` does) travels as a
``RecordBatch`` per partition of ``dom.stock.v1``: the worker applies every record of it as if
it had come alone, in order with the records sent alone, and publishes each sku's figures. A
record packed in another partition than its key's is dead-lettered with the reason (its sku's
owner reads another partition), and an undecodable one alone; the others of the message apply.
And a worker SIGKILLed in the middle of a packed load of sales applies each sale once after its
restart, a hot sku's too, whose sales are more than one batch may apply of a sku.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Producer

from connectors.producer import ContractProducer
from schemas.enums import StockEventKind
from schemas.models import Availability, Message, StockEvent
from schemas.packing import partition_for
from tests.e2e.harness import Pipeline
from tests.unit.factories import make_location, make_order, make_product, make_stock_event

SKUS = [f"SKU-{n:02d}" for n in range(40)]


def latest_figures(
    pipeline: Pipeline, done: Callable[[dict[str, dict[str, int]]], bool]
) -> dict[str, dict[str, int]]:
    """Each sku's on-hand per location in its latest availability, once ``done`` holds."""
    latest: dict[str, dict[str, int]] = {}

    def until(records: list[Message]) -> bool:
        latest.clear()
        for record in records:
            if isinstance(record, Availability):
                latest[record.sku] = {x.location_id: x.on_hand for x in record.locations}
        return done(latest)

    pipeline.read("dom.inventory.availability.v1", until, timeout=90)
    return latest


def letters(pipeline: Pipeline, count: int, timeout: float = 60.0) -> list[tuple[bytes, dict]]:
    """(value, headers) of the dead letters, once there are ``count`` (or time ran out)."""
    deadline = time.monotonic() + timeout
    while True:
        found = pipeline.read_raw("dom.dlq.v1", expected=count, timeout=1.0)
        if len(found) >= count or time.monotonic() > deadline:
            return [(m.value(), dict(m.headers())) for m in found]


def test_a_packed_count_applies_every_record_in_order_with_those_sent_alone(
    pipeline: Pipeline,
) -> None:
    pipeline.produce([make_location("LOC-A"), make_location("LOC-B")])
    pipeline.produce([make_product(sku) for sku in SKUS])
    count = [make_stock_event(sku, "LOC-A", 10 + n) for n, sku in enumerate(SKUS)]
    count += [make_stock_event(sku, "LOC-B", 1) for sku in SKUS]
    with ContractProducer(pipeline.settings, pipeline.codec) as producer:
        producer.send_bulk(count)
    assert (producer.report.delivered, producer.report.failed) == (80, 0)
    # after the count, a sale at LOC-A, sent alone
    pipeline.produce([make_stock_event("SKU-00", "LOC-A", -3, kind=StockEventKind.ADJUSTMENT)])

    stock = pipeline.read_raw("dom.stock.v1", expected=4)
    packed = [pipeline.codec.unpack(m.value()) for m in stock]
    # one message a partition, and the sale alone
    assert len([p for p in packed if p is not None]) == pipeline.settings.topic_partitions
    assert packed.count(None) == 1
    assert sum(len(p) for p in packed if p is not None) == 80

    want = {sku: {"LOC-A": 10 + n, "LOC-B": 1} for n, sku in enumerate(SKUS)}
    want["SKU-00"]["LOC-A"] = 7
    latest = latest_figures(pipeline, lambda now: all(now.get(s) == f for s, f in want.items()))
    assert {sku: latest.get(sku) for sku in SKUS} == want, pipeline.workers["w1"].log_tail()

    # and the worker routes on it
    pipeline.produce([make_order("ORD-PACKED", lines=[("SKU-39", 40)])])
    [outcome] = [s for s in pipeline.statuses(2) if s.status != "RECEIVED"]
    assert outcome.status == "ALLOCATED"
    assert [shipment.location_id for shipment in outcome.shipments] == ["LOC-A"]


def test_a_worker_killed_mid_load_applies_every_packed_sale_once(pipeline: Pipeline) -> None:
    """Sales are deltas: one applied twice after the SIGKILL's replay would show in the figures.
    A hot sku's 1,500 sales, more than a batch may apply of one sku, go through in parts."""
    skus = [f"SKU-{n:04d}" for n in range(4000)]
    pipeline.produce([make_location("LOC-A")])
    pipeline.produce([make_product(sku) for sku in [*skus, "HOT"]])
    with ContractProducer(pipeline.settings, pipeline.codec) as producer:
        producer.send_bulk(
            [make_stock_event(sku, "LOC-A", 1000) for sku in skus]
            + [make_stock_event("HOT", "LOC-A", 5000)]
        )
    opening = {sku: {"LOC-A": 1000} for sku in skus} | {"HOT": {"LOC-A": 5000}}
    latest_figures(pipeline, lambda now: all(now.get(s) == f for s, f in opening.items()))

    def sale(sku: str, n: int) -> StockEvent:
        return make_stock_event(
            sku, "LOC-A", -1, kind=StockEventKind.ADJUSTMENT, event_id=f"sale-{sku}-{n}"
        )

    sales = [sale(sku, n) for n in range(30) for sku in skus]
    sales += [sale("HOT", n) for n in range(1500)]
    with ContractProducer(pipeline.settings, pipeline.codec) as producer:
        producer.send_bulk(sales)
    assert producer.report.delivered == len(sales)
    # SIGKILL once the first sales show, restart on the same data directory
    sold = latest_figures(
        pipeline, lambda now: any(f.get("LOC-A", 1000) < 1000 for f in now.values())
    )
    pipeline.workers["w1"].kill()
    pipeline.start_worker("w1")

    want = {sku: {"LOC-A": 970} for sku in skus} | {"HOT": {"LOC-A": 3500}}
    assert sum(sold.get(sku) == want[sku] for sku in want) < len(want)  # it struck mid-load
    latest = latest_figures(pipeline, lambda now: all(now.get(s) == f for s, f in want.items()))
    assert {sku: latest.get(sku) for sku in want} == want, pipeline.workers["w1"].log_tail()
    pipeline.wait_until_idle()
    again: dict[str, dict[str, int]] = {}
    for _, record in pipeline.read_unpacked("dom.inventory.availability.v1"):
        if isinstance(record, Availability):
            again[record.sku] = {x.location_id: x.on_hand for x in record.locations}
    assert {sku: again.get(sku) for sku in want} == want  # and nothing came after


def test_a_misplaced_or_undecodable_packed_record_is_dead_lettered_and_the_others_apply(
    pipeline: Pipeline,
) -> None:
    pipeline.produce([make_location("LOC-A")])
    partitions = pipeline.settings.topic_partitions
    here = [sku for sku in SKUS if partition_for(sku.encode(), partitions) == 0]
    away = next(sku for sku in SKUS if partition_for(sku.encode(), partitions) == 1)
    pipeline.produce([make_product(sku) for sku in [*here[:2], away]])
    codec = pipeline.codec
    misplaced = codec.encode(make_stock_event(away, "LOC-A", 9))
    batch = codec.encode_batch(
        [
            (here[0].encode(), codec.encode(make_stock_event(here[0], "LOC-A", 5))),
            (away.encode(), misplaced),
            (here[1].encode(), b"\xc3\x01not avro"),
            (here[1].encode(), codec.encode(make_stock_event(here[1], "LOC-A", 6))),
        ]
    )
    topic = pipeline.settings.topic("dom.stock.v1")
    producer = Producer(pipeline.settings.producer_config())
    producer.produce(topic, key=here[0].encode(), value=batch, partition=0)
    assert producer.flush(30) == 0

    got = dict(letters(pipeline, 2))
    assert set(got) == {misplaced, b"\xc3\x01not avro"}, pipeline.workers["w1"].log_tail()
    assert (
        got[misplaced]["dom.error"]
        == (
            f"packed in partition 0 of {topic}, but its key belongs in partition 1: pack each "
            "record in its key's partition (murmur2, as Kafka's Java client places a keyed record)"
        ).encode()
    )
    assert got[misplaced]["dom.stage"] == b"inventory"
    assert got[misplaced]["dom.source.partition"] == b"0"
    assert got[b"\xc3\x01not avro"]["dom.stage"] == b"inventory"

    latest = latest_figures(
        pipeline, lambda now: now.get(here[0]) == {"LOC-A": 5} and now.get(here[1]) == {"LOC-A": 6}
    )
    assert (latest.get(here[0]), latest.get(here[1])) == ({"LOC-A": 5}, {"LOC-A": 6})
    # the misplaced count was applied by nobody: the other partition's owner never read it
    assert latest.get(away, {}).get("LOC-A", 0) == 0

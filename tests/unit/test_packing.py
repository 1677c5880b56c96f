"""Where a keyed record belongs, and how records are cut into RecordBatch messages."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

from connectors.producer import BULK_BATCH_RECORDS
from schemas.packing import batches, partition_for
from streams.runtime.outbox import BATCH_MAX


@pytest.mark.parametrize(
    ("key", "java_murmur2"),
    [
        # Kafka's own vectors (clients UtilsTest.testMurmur2): what the Java client computes.
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_a_key_lands_where_the_java_client_puts_it(key: bytes, java_murmur2: int) -> None:
    # Utils.toPositive(murmur2(key)) % numPartitions
    for partitions in (1, 3, 6, 7, 64):
        assert partition_for(key, partitions) == (java_murmur2 & 0x7FFFFFFF) % partitions


def test_a_key_lands_where_the_workers_producer_puts_it() -> None:
    partitioner = DefaultPartitioner()
    every = list(range(6))
    keys = [f"SKU-{n:05d}".encode() for n in range(2000)]
    keys += [bytes(range(200, 200 - n, -1)) for n in range(1, 41)]  # every length of tail
    for key in keys:
        assert partition_for(key, 6) == partitioner(key, every, every)


def test_runs_are_cut_by_size_and_keep_order() -> None:
    records = [(b"k%d" % n, b"x" * 100) for n in range(10)]
    runs = list(batches(records, max_bytes=310))
    assert [len(run) for run in runs] == [3, 3, 3, 1]
    assert [r for run in runs for r in run] == records
    assert list(batches([(b"big", b"y" * 1000)], max_bytes=10)) == [[(b"big", b"y" * 1000)]]
    assert list(batches([])) == []
    assert [len(run) for run in batches(records, max_bytes=310, max_records=2)] == [2] * 5


def test_the_projects_packer_never_makes_a_message_a_worker_refuses() -> None:
    # A worker dead-letters a packed message with more than a batch's records of one key.
    assert BULK_BATCH_RECORDS <= BATCH_MAX

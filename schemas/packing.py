"""Many records of one partition in one message: where a keyed record belongs, and how
records are cut into ``RecordBatch`` messages.

A record costs a produce, a fetch, a Faust event and an offset to track however small it is.
The pipeline packs its internal records per partition (streams/runtime/envelopes.py), and a
producer of a bulk load packs the stock (connectors/producer.py, ``ContractProducer.send_bulk``).
Either way each record must land in the partition it would have landed in alone, so that every
key keeps one owner: the partition Kafka's Java client, aiokafka and librdkafka's
``murmur2_random`` give a keyed record, which :func:`partition_for` computes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

MAX_BATCH_BYTES = 256 * 1024
"""Most key and value bytes one ``RecordBatch`` carries: a quarter of the broker's and the
producer's 1 MiB default, so a batch never meets either limit (a record alone larger than
this goes in a batch of its own)."""


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of ``key`` in a topic of ``partitions`` partitions: murmur2 made positive,
    modulo the count, as the Java client's default partitioner places a keyed record."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


_MASK = 0xFFFFFFFF
_M = 0x5BD1E995


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` (``org.apache.kafka.common.utils.Utils.murmur2``), as an
    unsigned 32-bit number. Written out here because only the stage runtime may import the
    clients that carry one (aiokafka's is the same function)."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = data[whole:]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def batches(
    records: Sequence[tuple[bytes, bytes]],
    max_bytes: int = MAX_BATCH_BYTES,
    max_records: int | None = None,
) -> Iterator[list[tuple[bytes, bytes]]]:
    """``records`` in order, cut into runs of at most ``max_bytes`` of keys and values (a
    record larger than that alone) and, given, of at most ``max_records`` records."""
    run: list[tuple[bytes, bytes]] = []
    size = 0
    for key, value in records:
        length = len(key) + len(value)
        if run and (size + length > max_bytes or len(run) == max_records):
            yield run
            run, size = [], 0
        run.append((key, value))
        size += length
    if run:
        yield run

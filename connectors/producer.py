"""Producing contract events the way every connector must: confluent-kafka, idempotent,
``acks=all``, delivery failures counted, the topic and key taken from the registry, and a flush
before the process goes away. A bulk load of stock goes packed, a ``RecordBatch`` per run of a
partition (``send_bulk``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from config.settings import Settings
from schemas import packing
from schemas import topics as registry
from schemas.codec import Codec
from schemas.models import Message as Record

log = logging.getLogger(__name__)

BULK_BATCH_BYTES = 64 * 1024
"""Most bytes of records one packed message of a bulk load carries. Larger messages loaded the
bench's world no faster (two runs a side: 16,439 and 15,985 records a second at 64 KB, 18,190
and 12,265 at 256 KB), and a worker holds what it has fetched and not applied yet in whole
messages."""
BULK_BATCH_RECORDS = 500
"""Most records one packed message carries: a worker applies at most 500 inputs of one key
at once and dead-letters a message with more of one (streams/runtime/outbox.py)."""

DeliveryCallback = Callable[[KafkaError | None], None]
"""Told the outcome of one message (None: the broker confirmed it), from poll() or flush()."""


@dataclass
class DeliveryReport:
    """What the broker confirmed, and what it refused (with the last error)."""

    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class ContractProducer:
    """Send contract records to their registry topic, keyed as the contract says."""

    def __init__(self, settings: Settings, codec: Codec | None = None) -> None:
        self.settings = settings
        self.codec = codec or Codec.from_url(
            settings.schema_registry_url, **(settings.schema_registry_config() or {})
        )
        self.report = DeliveryReport()
        self._producer = Producer(settings.producer_config())
        self._closed = False
        self._partitions: dict[str, int | None] = {}  # topic -> its partitions, when packed

    def send(self, record: Record, *, on_delivery: DeliveryCallback | None = None) -> None:
        topic = registry.topic_for(record.avro_name)
        key = str(getattr(record, topic.key))
        self.send_raw(topic.name, key.encode(), self.codec.encode(record), on_delivery=on_delivery)

    def send_raw(
        self,
        topic_name: str,
        key: bytes | None,
        value: bytes | None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        """Bytes as they are, to a registry topic (by unprefixed name), with optional headers.

        ``on_delivery``, if given, is told this message's outcome after the report counted it.
        """
        callback = self._delivered if on_delivery is None else partial(self._told, on_delivery)
        self._produce(topic_name, key, value, headers=headers, callback=callback)

    def _produce(
        self,
        topic_name: str,
        key: bytes | None,
        value: bytes | None,
        *,
        callback: Callable[[KafkaError | None, Message], None],
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    self.settings.topic(topic_name),
                    value=value,
                    key=key,
                    headers=headers,  # type: ignore[arg-type]  # the stubs want str|bytes|None
                    on_delivery=callback,
                    # -1: librdkafka's partitioner places it by its key
                    partition=-1 if partition is None else partition,
                )
                break
            except BufferError:  # the local queue is full: let deliveries drain, then retry
                self._producer.poll(0.1)
        self._producer.poll(0)

    def send_all(self, records: Iterable[Record]) -> None:
        for record in records:
            self.send(record)

    def send_bulk(self, records: Iterable[Record]) -> None:
        """Send the records of a bulk load (a count file, a demo world).

        With ``settings.pack_stock``, the records of a topic an upstream producer may pack
        (``Topic.packable``: the stock) go in ``RecordBatch`` messages, each of them put in the
        partition of its key (schemas/packing.py), in their order, after this call's other
        records; a packed message's delivery counts each record it carries. Every other record
        goes alone, as :meth:`send` sends it, and so does the stock when the topic's partitions
        cannot be learnt (a topic not created yet)."""
        packed: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        for record in records:
            topic = registry.topic_for(record.avro_name)
            partitions = self._packed_partitions(topic)
            if partitions is None:
                self.send(record)
                continue
            key = str(getattr(record, topic.key)).encode()
            where = (topic.name, packing.partition_for(key, partitions))
            packed.setdefault(where, []).append((key, self.codec.encode(record)))
        for (topic_name, partition), entries in packed.items():
            for run in packing.batches(entries, BULK_BATCH_BYTES, BULK_BATCH_RECORDS):
                self._produce(
                    topic_name,
                    run[0][0],  # keyed by its first record's key, for whoever reads by hand
                    self.codec.encode_batch(run),
                    partition=partition,
                    callback=partial(self._delivered_many, len(run)),
                )

    def _packed_partitions(self, topic: registry.Topic) -> int | None:
        """How many partitions ``topic`` has if :meth:`send_bulk` packs its records; None if
        it sends them alone."""
        if not (topic.packable and self.settings.pack_stock):
            return None
        if topic.name not in self._partitions:
            name = self.settings.topic(topic.name)
            try:
                found = self._producer.list_topics(name, timeout=10.0).topics.get(name)
            except KafkaException as exc:  # no metadata now: the records go alone
                log.warning("cannot learn %s's partitions (%s): its records go alone", name, exc)
                found = None
            partitions = found.partitions if found is not None and found.error is None else {}
            self._partitions[topic.name] = len(partitions) or None
        return self._partitions[topic.name]

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery callbacks for up to ``timeout`` seconds; how many were served."""
        return int(self._producer.poll(timeout))

    def flush(self, timeout: float = 30.0) -> DeliveryReport:
        if self._closed:
            return self.report
        remaining = self._producer.flush(timeout)
        if remaining:
            self.report.failed += remaining
            self.report.errors.append(f"{remaining} messages still undelivered after flush")
        return self.report

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.report.delivered += 1
            return
        self.report.failed += 1
        self.report.errors = [*self.report.errors[-9:], str(err)]
        log.error("delivery failed: %s", err)

    def _delivered_many(self, count: int, err: KafkaError | None, msg: Message) -> None:
        """A packed message's outcome, counted for each record it carries."""
        if err is None:
            self.report.delivered += count
            return
        self.report.failed += count
        self.report.errors = [*self.report.errors[-9:], f"{count} packed records: {err}"]
        log.error("delivery of %d packed records failed: %s", count, err)

    def _told(self, then: DeliveryCallback, err: KafkaError | None, msg: Message) -> None:
        self._delivered(err, msg)
        then(err)

    def __enter__(self) -> ContractProducer:
        return self

    def close(self, timeout: float = 30.0) -> DeliveryReport:
        """Flush, then let go of the client: librdkafka's threads would otherwise go on
        (reconnecting to a broker that is gone) until the garbage collector finds it."""
        if self._closed:
            return self.report
        report = self.flush(timeout)
        self._closed = True
        closer = getattr(self._producer, "close", None)  # confluent-kafka >= 2.12
        if closer is not None:
            closer()
        return report

    def __exit__(self, *exc: object) -> None:
        self.close()

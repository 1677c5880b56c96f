"""Producing contract events the way every connector must: confluent-kafka, idempotent,
``acks=all``, delivery failures counted, the topic and key taken from the registry, and a flush
before the process goes away."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from confluent_kafka import KafkaError, Message, Producer

from config.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec
from schemas.models import Message as Record

log = logging.getLogger(__name__)

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
        while True:
            try:
                self._producer.produce(
                    self.settings.topic(topic_name),
                    value=value,
                    key=key,
                    headers=headers,  # type: ignore[arg-type]  # the stubs want str|bytes|None
                    on_delivery=callback,
                )
                break
            except BufferError:  # the local queue is full: let deliveries drain, then retry
                self._producer.poll(0.1)
        self._producer.poll(0)

    def send_all(self, records: Iterable[Record]) -> None:
        for record in records:
            self.send(record)

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

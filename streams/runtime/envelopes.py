"""Internal records in batches: what one stage batch sends to one partition of an internal
topic travels in one message, a ``RecordBatch`` of (key, value) pairs.

The order stage sends a reservation per sku of every order, and each sku's owner answers
each one: one Kafka record apiece was about four of the fifteen messages an order cost, and a
record costs a produce, a fetch, a Faust event and an offset to track however small it is.
Packed per partition, a batch of a hundred orders sends six messages where it sent two
hundred.

Only topics the registry marks ``batched`` are packed (the sku commands and results). The
sender computes each record's partition with the producer's own partitioner, so a record lands
where it would have landed alone and every sku (every order) still has one owner. The reader
unpacks a ``RecordBatch`` into one event per record, in order, each with its own key and value
and the message's place (topic, partition, offset, time): the stage's handler, its table's
changelog partition, the dead-letter topic (an undecodable record inside a batch goes there
alone, with its own key and value) and the replay marks of :mod:`streams.core.replays` see
what they saw of a record that came alone. All of a batch's records share its offset, and all
are applied in the one stage batch that reads it, so what the marks say of an offset holds
for each of them. Single records are read as before: a record sent outside any batch (a
timer's) and the records of a worker of an earlier release stay valid input.

The reader unpacks the topics the registry marks ``packable`` too: the stock, which a bulk
load's producer packs the same way (``ContractProducer.send_bulk``). Those records were placed
by someone else, so the outbox checks each one's partition, and cuts a stage batch so that no
sku gets more of them between two writes than its memory of applied ids covers
(``Outbox._parts``).

Rolling upgrade: a worker of a release before batching cannot read a ``RecordBatch`` (it
would dead-letter it). Upgrading to this release stops every worker of the older one first
(README, "Upgrading").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class BatchedMessage:
    """One record of a ``RecordBatch`` as a stage sees a message: its own key and value, and
    everything else (topic, partition, offset, timestamp, generation) of the message that
    carried it."""

    __slots__ = ("_carrier", "key", "value")

    def __init__(self, carrier: Any, key: bytes, value: bytes) -> None:
        self.key = key
        self.value = value
        self._carrier = carrier

    def __getattr__(self, name: str) -> Any:
        return getattr(self._carrier, name)


class BatchedEvent:
    """One record of a ``RecordBatch`` as a stage sees an event (key, value, headers,
    message)."""

    __slots__ = ("__weakref__", "headers", "key", "message", "value")

    def __init__(self, carrier: Any, key: bytes, value: bytes) -> None:
        self.key = key
        self.value = value
        self.headers = carrier.headers
        self.message = BatchedMessage(carrier.message, key, value)


def unpacked(event: Any, records: Sequence[tuple[bytes, bytes]]) -> list[BatchedEvent]:
    """The events of the records a ``RecordBatch`` event carries, in their order."""
    return [BatchedEvent(event, key, value) for key, value in records]

"""A stage's batches without a broker: events as Faust hands them over, a table, a producer
that records what it was asked to send and when the batch flushed, and the outbox over them."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from config.settings import Settings
from schemas.codec import Codec
from schemas.dlq import HEADER_ERROR, HEADER_STAGE
from schemas.models import Message
from streams.metrics import PipelineMetrics
from streams.runtime.acks import HeldAcks
from streams.runtime.batch_table import BatchTable
from streams.runtime.outbox import Finish, Handler, Outbox, _Batch
from streams.runtime.sequencer import Sequencer
from tests.unit.test_batch_table import FakeTable

__all__ = ["FakeTable", "Letter", "Run"]


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, key: bytes, value: bytes) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestamp = 1_714_564_800.0 + offset  # 2024-05-01 12:00 UTC, a second apart
        self.generation_id = 1


class FakeEvent:
    def __init__(self, message: FakeMessage) -> None:
        self.message = message
        self.key = message.key
        self.value = message.value
        self.headers: list[tuple[str, bytes]] = []


class Letter:
    """A dead letter as a reader of the DLQ sees it."""

    def __init__(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.key = key
        self.value = value
        self.headers = {name: text.decode() for name, text in headers}

    @property
    def error(self) -> str:
        return self.headers[HEADER_ERROR]

    @property
    def stage(self) -> str:
        return self.headers[HEADER_STAGE]


class _EmptyBuffer:
    async def flush(self) -> None:
        return None


class FakeProducer:
    """Records every send and flush, in the order the outbox made them; partitions keys as
    the real producer does, over ``partitions``."""

    def __init__(self, log: list[str], partitions: int = 6) -> None:
        self.log = log
        self.sent: list[tuple[str, bytes, bytes, Any]] = []
        self.partitions: list[Any] = []
        self._partitions = list(range(partitions))
        self.buffer = _EmptyBuffer()  # Faust's buffer of table writes: this fake queues none
        self._producer = None  # no client whose batches send_now could close

    def _ensure_producer(self) -> FakeProducer:
        return self

    def _partition(self, topic: str, p: Any, k: Any, v: Any, key: bytes, sv: Any) -> int:
        partition: int = DefaultPartitioner()(key, self._partitions, self._partitions)
        return partition

    async def send(
        self, topic: str, key: bytes, value: bytes, partition: Any, timestamp: Any, headers: Any
    ) -> asyncio.Future[None]:
        self.log.append(f"send {topic}")
        self.sent.append((topic, key, value, headers))
        self.partitions.append(partition)
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)  # the broker took it
        return delivered

    async def flush(self) -> None:
        self.log.append("flush")


class FakeApp:
    def __init__(self, log: list[str]) -> None:
        self.producer = FakeProducer(log)
        self.consumer = FakeConsumer()


class FakeConsumer:
    _committed_offset: dict[Any, int] = {}  # nothing committed: stages start where seeks put them

    def __init__(self) -> None:
        self._unacked_messages: set[Any] = set()  # what Faust waits for before a rebalance


class LoggedTable(FakeTable):
    """A table whose writes go in the same log as the producer's sends and flushes."""

    def __init__(self, log: list[str], *args: Any) -> None:
        super().__init__(*args)
        self.log = log

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.log.append(f"write {key.decode()}")
        super().__setitem__(key, value)


class Run:
    """One stage's outbox, fed batches of (topic, key, value) inputs."""

    def __init__(self, stage: str = "test") -> None:
        self.stage = stage
        self.log: list[str] = []
        self.settings = Settings()
        self.codec = Codec()
        self.app = FakeApp(self.log)
        self.outbox = Outbox(self.app, self.settings, self.codec, PipelineMetrics())  # type: ignore[arg-type]
        self.sequencer = Sequencer(stage)
        self.acks = HeldAcks()
        self.acked: list[FakeEvent] = []
        """The inputs acknowledged so far, in the order the stage acknowledged them."""
        self._offsets: dict[tuple[str, int], int] = {}

    def table(self, *args: Any) -> LoggedTable:
        return LoggedTable(self.log, *args)

    def event(self, topic: str, key: str, value: bytes, partition: int = 0) -> FakeEvent:
        """The next input of ``topic``'s partition."""
        offset = self._offsets.get((topic, partition), 0)
        self._offsets[(topic, partition)] = offset + 1
        return FakeEvent(FakeMessage(topic, partition, offset, key.encode(), value))

    def batch(
        self,
        events: list[FakeEvent],
        handle: Handler,
        table: BatchTable[Any] | None = None,
        finish: Finish | None = None,
    ) -> None:
        """Apply one batch, as ``Outbox.process`` does for every batch it takes, and
        acknowledge what may be now."""
        batch = _Batch(handle, self.stage, self.sequencer, None, table, finish, self.acks)  # type: ignore[arg-type]
        asyncio.run(self.outbox._batch(list(events), batch))
        self.acked += self.acks.done(list(events))

    def records(self) -> list[Message]:
        """Every record sent but dead letters, decoded, in order (those of a ``RecordBatch``
        in its order)."""
        dlq = self.settings.topic("dom.dlq.v1")
        return [self.codec.decode(v) for t, _, v, _ in self.messages() if t != dlq]

    def messages(self) -> list[tuple[str, bytes, bytes, Any]]:
        """(topic, key, value, headers) of every record sent, a ``RecordBatch``'s unpacked."""
        out = []
        for topic, key, value, headers in self.app.producer.sent:
            packed = self.codec.unpack(value) if value is not None else None
            if packed is None:
                out.append((topic, key, value, headers))
            else:
                out += [(topic, k, v, headers) for k, v in packed]
        return out

    def letters(self) -> list[Letter]:
        dlq = self.settings.topic("dom.dlq.v1")
        return [Letter(k, v, h) for t, k, v, h in self.app.producer.sent if t == dlq]

"""The state behind the HTTP connector's endpoints, and its delivery discipline: records are
produced, the broker's confirmation awaited, and only then is the delivery remembered.

Two ways in. `Connector.publish` produces one event (an order placed or cancelled), deduplicated
by its delivery key. `Connector.apply` is for changes to a live order: with the order's
`OrderMemory` loaded, a pure planner (`connectors.order_memory`) says what to produce and
what to remember; the memory is saved and the delivery key remembered only once the broker
confirmed every record (a retry after a 503 plans the same records with the same ids). Changes
to one order are applied one at a time: two webhooks planning from the same memory would both
ask to cancel the same units.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from pydantic import ValidationError

from config.settings import Settings
from connectors.dedup import OrderNotes, SeenIds
from connectors.order_memory import OrderMemory, Plan, on_order_placed
from connectors.producer import ContractProducer
from schemas.models import Message
from schemas.orders import OrderPlaced

log = logging.getLogger(__name__)

DEFAULT_DELIVERY_TIMEOUT = 10.0
POLL_INTERVAL = 0.2


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Outcome:
    """What became of a delivery: on the broker now, before, not confirmed, refused before it
    left (a record does not encode, or is larger than a topic takes), or nothing to produce."""

    status: str  # "accepted" | "duplicate" | "unchanged" | "unavailable" | "too_large" | ...
    detail: str = ""


class Connector:
    """Producer, seen delivery ids, order memories, answer counts, in-flight deliveries."""

    def __init__(
        self,
        settings: Settings,
        producer: ContractProducer,
        seen: SeenIds,
        notes: OrderNotes,
        delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.seen = seen
        self.notes = notes
        self.delivery_timeout = delivery_timeout
        self.clock = clock
        self.answers: Counter[str] = Counter()
        # A repeat arriving while the first delivery is still unconfirmed (the sender timed out
        # and retried) waits for that first outcome instead of producing a second time.
        self._in_flight: dict[str, asyncio.Future[Outcome]] = {}
        self._order_locks: dict[str, asyncio.Lock] = {}
        self._lock_users: Counter[str] = Counter()

    async def publish(self, key: str, record: Message) -> Outcome:
        """Produce ``record`` unless ``key`` was delivered before; wait for the broker's word."""
        if key in self.seen:
            return Outcome("duplicate")
        if (first := self._in_flight.get(key)) is not None:
            earlier = await asyncio.shield(first)
            return Outcome("duplicate") if earlier.status == "accepted" else earlier
        first = asyncio.get_running_loop().create_future()
        self._in_flight[key] = first
        try:
            outcome = await self._deliver([record])
            if outcome.status == "accepted":
                self.seen.remember(key, str(getattr(record, "order_id", "")))
            first.set_result(outcome)
            return outcome
        finally:
            del self._in_flight[key]
            if not first.done():
                first.set_result(Outcome("unavailable", "retry"))

    async def apply(
        self, key: str, order_id: str, plan: Callable[[OrderMemory], Plan]
    ) -> tuple[Outcome, Plan | None]:
        """Plan a change of ``order_id`` from its memory, produce what the plan says, and keep
        the plan's memory once the broker confirmed it. ``plan`` may raise `PayloadError`."""
        if key in self.seen:
            return Outcome("duplicate"), None
        async with self._one_at_a_time(order_id):
            if key in self.seen:  # the first delivery finished while this one waited
                return Outcome("duplicate"), None
            planned = plan(self.memory(order_id))
            if planned.actions:
                outcome = await self._deliver(planned.actions)
            else:
                outcome = Outcome("unchanged", planned.said)
            if outcome.status in ("accepted", "unchanged"):
                self.notes.put(order_id, planned.memory.model_dump_json())
                self.seen.remember(key, order_id)
            return outcome, planned

    async def remember_placed(self, order: OrderPlaced) -> None:
        """The pipeline has ``order``: its address is the one later changes are judged by."""
        async with self._one_at_a_time(order.order_id):
            memory = on_order_placed(self.memory(order.order_id), order)
            self.notes.put(order.order_id, memory.model_dump_json())

    def memory(self, order_id: str) -> OrderMemory:
        """What is remembered of ``order_id`` (nothing, for an order never seen)."""
        note = self.notes.get(order_id)
        if note is not None:
            try:
                return OrderMemory.model_validate_json(note)
            except ValidationError:
                log.error("the memory of %s is unreadable; starting it afresh", order_id)
        return OrderMemory(order_id=order_id)

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, order_id: str) -> AsyncIterator[None]:
        lock = self._order_locks.setdefault(order_id, asyncio.Lock())
        self._lock_users[order_id] += 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[order_id] -= 1
            if not self._lock_users[order_id]:
                del self._lock_users[order_id], self._order_locks[order_id]

    async def _deliver(self, records: Sequence[Message]) -> Outcome:
        loop = asyncio.get_running_loop()
        reports: list[asyncio.Future[KafkaError | None]] = [loop.create_future() for _ in records]

        def send_all() -> None:  # in the executor: encoding may ask a schema registry over HTTP
            for record, report in zip(records, reports, strict=True):
                self.producer.send(record, on_delivery=partial(_tell, loop, report))

        try:
            await loop.run_in_executor(None, send_all)
        except KafkaException as exc:
            return _not_produced(records, exc.args[0] if exc.args else None, str(exc))
        except ValueError as exc:  # the codec refused a record: the sender's fault, not Kafka's
            return Outcome("unencodable", f"the record cannot be encoded: {exc}")
        except Exception as exc:  # the schema registry's client (its errors share no public type)
            log.exception("could not produce for %s", _order_ids(records))
            detail = f"could not produce the record ({type(exc).__name__}); see the connector's log"
            return Outcome("unavailable", detail)
        try:
            errors = await asyncio.wait_for(asyncio.gather(*reports), self.delivery_timeout)
        except TimeoutError:
            return Outcome("unavailable", f"no delivery report in {self.delivery_timeout:g}s")
        failed = [err for err in errors if err is not None]
        return Outcome("unavailable", str(failed[0])) if failed else Outcome("accepted")

    async def poll_forever(self) -> None:
        """Serve delivery reports (off the event loop) for as long as the app runs."""
        loop = asyncio.get_running_loop()
        while True:
            await loop.run_in_executor(None, self.producer.poll, POLL_INTERVAL)

    def stats(self) -> dict[str, Any]:
        report = self.producer.report
        return {
            "delivery": {
                "delivered": report.delivered,
                "failed": report.failed,
                "errors": list(report.errors),
            },
            "answers": dict(sorted(self.answers.items())),
            "seen_ids": len(self.seen),
            "orders_remembered": len(self.notes),
            "in_flight": len(self._in_flight),
        }


def _not_produced(records: Sequence[Message], err: Any, detail: str) -> Outcome:
    """Why ``produce`` refused a record: too large for any topic (the sender must change it),
    or the client is in trouble (the sender should retry)."""
    if isinstance(err, KafkaError) and err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
        return Outcome("too_large", "the order's record is larger than a Kafka message may be")
    log.error("could not produce for %s: %s", _order_ids(records), detail)
    return Outcome("unavailable", detail)


def _order_ids(records: Sequence[Message]) -> str:
    return ", ".join(sorted({str(getattr(r, "order_id", "?")) for r in records}))


def _tell(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[KafkaError | None],
    err: KafkaError | None,
) -> None:
    """A delivery report, from a poll in whatever thread ran it, to the waiting request."""
    loop.call_soon_threadsafe(_settle, future, err)


def _settle(future: asyncio.Future[KafkaError | None], err: KafkaError | None) -> None:
    if not future.done():  # a timed-out wait has cancelled it already
        future.set_result(err)

"""The KPI stages: fulfilment KPIs per hour and day window, published on ``dom.kpis.v1``.

Two stages, the same shape as the order saga and the sku owners (a table per key, records
between them through a batched internal topic, each applied once):

1. **Facts** (table ``kpi-facts``, keyed by order_id). It reads the contract's own topics that
   are keyed by order_id: ``dom.orders.v1``, ``dom.order-status.v1``,
   ``dom.fulfillment.events.v1``, ``dom.returns.v1``, so every event of an order lands on the
   worker owning the order's partition; it feeds each to the pure core
   (:func:`streams.core.kpis.observe`) and stores the order's facts. Once the batch is
   applied, what its inputs add goes to ``dom.internal.kpi-deltas.v1`` as ``KpiDelta`` s, one
   per input partition and bucket (consecutive inputs merged, see below), keyed by the
   bucket's *family* (series, grain, dimension: all its windows on one partition).
2. **Buckets** (table ``kpi-buckets``, keyed by the bucket: series, grain, window, dimension).
   The owner of a family adds each delta to its bucket and publishes, once per batch, every
   bucket the batch changed, as it now stands, on the compacted ``dom.kpis.v1`` (keyed
   ``series|grain|window_start|dimension``): a BI tool reads the latest record per key, and
   ``dom report`` sums them (:mod:`dom.report_cli`). A timer retires windows past
   ``DOM_REPORT_RETENTION_DAYS`` through the owner (``KpiRetire``): deleted with a tombstone,
   a gauge's folded into its carried bucket first (:func:`streams.core.kpis.retire`, which
   needs every window of a family: hence the family key).

Why nothing is counted twice (redelivery, a worker killed or restarted, partitions moving):

- The runtime's order holds (streams/runtime/outbox.py): a batch's table writes are durable
  before its records go out, and its inputs are acknowledged only once those are delivered.
- An event counts once in its order's facts: the core remembers the ids it applied and what it
  counted (a shipment counted as shipped stays so), and the value is one changelog record.
- Each delta is named by an input that caused it (its partition of the facts stage, and its
  offset). The facts stage reads a partition in offset order and sends a batch's records only
  after the last batch's were delivered, so a bucket receives the deltas of one source
  partition in offset order: the bucket keeps, per source partition, the last offset it
  applied, inside the value it protects, and drops any delta at or before it.
- An input replayed after its facts were stored but before its deltas went out (a crash
  between the two) finds its event applied, so the core adds nothing; the facts value keeps
  the deltas of its inputs not yet known done (``OrderKpis.sent``, pruned with the marks of
  :mod:`streams.core.replays`), and the replay sends exactly those again, same names: the
  buckets that had them drop them, the others take them. An input whose facts were not
  stored sent nothing (state before records), and counts afresh.
- Merging: consecutive *fresh* deltas of one source partition and bucket in a batch travel as
  one, named by the last offset. Nothing fresh was ever sent, so a bucket has none or all of
  it; a delta sent again travels alone and nothing is merged across it
  (:func:`~streams.kpi_records.batch_records`). Under load a batch's hundreds of orders add to
  a few dozen buckets: the bucket stage reads a few dozen records, not some 20 per order.
- A replay far back (a rewound group) is skipped whole by the facts' read marks, as in the
  order stage. A repeated delta is still written and published again: the first time, the
  bucket's record on ``dom.kpis.v1`` may have been lost with its batch.

The facts stage keeps buckets out of its own table on purpose: a write of the order's facts
and of a bucket are two changelog records, and a crash between them would count or lose.

Cost (``DOM_KPIS=false`` turns both stages off). Per order: one ``kpi-facts`` changelog record
per batch that touched the order (its placement, its statuses, what its locations report;
typically 3 when only routed, 5 to 7 once shipped); the deltas, the bucket changelog and
``dom.kpis.v1`` are per batch and bucket, shared by every order of the batch. ``dom bench``
(3,000 orders routed, 2 workers, 2 shared cores): 10.7 to 14.2 messages per order, worker CPU
3.9 to 6.3 ms per order; every event of the four topics is also read and decoded once more.

Retention: an order's facts are dropped (a tombstone in the table's changelog) once they read
nothing for ``DOM_RETURN_WINDOW_DAYS`` + ``DOM_ORDER_RETENTION_DAYS``: by then the order stage
has removed the order. A timer finds them among the worker's own and sends a ``KpiForget`` to
the order's partition of ``dom.internal.kpi-forget.v1``; the owner applies it like any input,
checking again. What still comes for such an order starts empty facts (its statuses wait for
an ``OrderPlaced`` that is not coming, and count nothing); a replay of inputs from before is
dropped by the buckets' marks (each delta is named by its input).

What it does not do: the dedup needs a partition's deltas to arrive in offset order, which one
case breaks: a message the broker refuses after the producer's retries while a later one to the
same partition is taken (the stage then stops, as every stage does, and the replayed delta is
dropped as a repeat), or a facts value that cannot be encoded (the runtime re-applies that
key's inputs after the others).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from config.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.kpis import KpiDelta, KpiForget, KpiRetire
from schemas.models import (
    FulfillmentUpdate,
    OrderCancelled,
    OrderPlaced,
    OrderStatusChanged,
    ReturnReceived,
    ReturnRequested,
)
from streams.core import replays
from streams.core.kpis import GRAINS, BucketKey, OrderFacts, observe, retire
from streams.core.kpis.buckets import CARRIED
from streams.core.kpis.windows import retention_cutoff
from streams.core.stored import from_stored
from streams.kpi_records import (
    OrderKpis,
    Pending,
    StoredBucket,
    apply_delta,
    batch_records,
    delta_buckets,
    family_of,
    published_key,
    remember,
    value_record,
)
from streams.metrics import PipelineMetrics
from streams.runtime import BatchTable, Runtime, Sends, Tombstone
from streams.views import NetworkView

log = logging.getLogger(__name__)
FACTS = "kpi-facts"
BUCKETS = "kpi-buckets"
KEEP_ORDERS = 2000
KEEP_BUCKETS = 5000
FACT_INPUTS = (
    OrderPlaced,
    OrderCancelled,
    OrderStatusChanged,
    FulfillmentUpdate,
    ReturnRequested,
    ReturnReceived,
)
FactInput = (
    OrderPlaced
    | OrderCancelled
    | OrderStatusChanged
    | FulfillmentUpdate
    | ReturnRequested
    | ReturnReceived
)
RETIRE_SCAN_S = 3600.0
"""How often the retention timer looks for expired windows: hourly, as hour windows expire."""
DAY_S = 24 * 3600.0
_PLACED_AT = re.compile(rb'"placed_at":"([^"]+)"')


def facts_keep(settings: Settings) -> timedelta:
    """How long an order's facts are kept after the last input they took: its return window
    and the order retention (``DOM_RETURN_WINDOW_DAYS`` + ``DOM_ORDER_RETENTION_DAYS``). By then
    the order stage has removed the order, and refuses what still comes for it."""
    return timedelta(seconds=(settings.return_window_days + settings.order_retention_days) * DAY_S)


def facts_scan_interval(keep: timedelta) -> float:
    """A 24th of the time kept, between 1 s and an hour (as the order stage's retention)."""
    return min(3600.0, max(1.0, keep.total_seconds() / 24))


def build_kpi_stages(runtime: Runtime, settings: Settings, codec: Codec, view: NetworkView) -> None:
    """Register the KPI facts and bucket stages, their tables and the retention timer."""
    raw_facts = runtime.table(FACTS)
    facts = BatchTable(raw_facts, _decode_order, _encode_order, keep=KEEP_ORDERS)
    raw_buckets = runtime.table(BUCKETS)
    buckets = BatchTable(raw_buckets, _decode_bucket, _encode_bucket, keep=KEEP_BUCKETS)
    fact_stage = FactStage(facts, codec, view, settings, runtime.metrics)
    bucket_stage = BucketStage(buckets, raw_buckets, codec, settings, runtime.metrics)

    @contextlib.asynccontextmanager
    async def ready() -> AsyncIterator[None]:
        await view.ready.wait()  # the locations' kinds and places, for ship-from-store and km
        yield

    runtime.stage(
        FACTS,
        [
            registry.ORDERS.name,
            registry.ORDER_STATUS.name,
            registry.FULFILLMENT_EVENTS.name,
            registry.RETURNS.name,
            registry.KPI_FORGET.name,
        ],
        fact_stage.handle,
        table=facts,
        finish=fact_stage.finish,
        ready=ready,
    )
    runtime.stage(
        BUCKETS,
        [registry.KPI_DELTAS.name],
        bucket_stage.handle,
        table=buckets,
        finish=bucket_stage.publish,
    )

    @runtime.every(RETIRE_SCAN_S)
    async def kpi_retention() -> None:
        """Ask the owner of each family with windows past the retention to retire them: the
        timer only reads, the owner applies."""
        now = datetime.now(UTC)
        keys = list(raw_buckets.keys())
        for family in expired_families(keys, now, settings.tz, settings.report_retention_days):
            await runtime.send(KpiRetire(family=family, issued_at=now))

    keep = facts_keep(settings)

    @runtime.every(facts_scan_interval(keep))
    async def kpi_facts_retention() -> None:
        """Ask the owner to drop the facts of this worker's orders that read nothing for longer
        than they are kept: the timer only reads, the owner applies."""
        now = datetime.now(UTC)
        async for stored in runtime.scan(raw_facts.items()):
            for order_id in facts_to_forget(stored, now, keep):
                await runtime.send(KpiForget(order_id=order_id, issued_at=now))


class FactStage:
    """What the facts agent does with each event of an order."""

    def __init__(
        self,
        orders: BatchTable[OrderKpis],
        codec: Codec,
        view: NetworkView,
        settings: Settings,
        metrics: PipelineMetrics,
    ) -> None:
        self.orders = orders
        self.codec = codec
        self.view = view
        self.tz = settings.tz
        self.retention_days = settings.report_retention_days
        self.keep = facts_keep(settings)
        self.forget_topic = settings.topic(registry.KPI_FORGET.name)
        self.metrics = metrics
        self.pending: list[Pending] = []
        """What the batch's inputs add, in input order, until the batch finishes."""

    async def handle(self, event: Any, sends: Sends) -> None:
        if event.message.topic == self.forget_topic:
            self.forget(event, sends)
            return
        try:
            record: FactInput = self.codec.decode_as(  # type: ignore[assignment]
                event.value, *FACT_INPUTS
            )
        except DecodeError:
            return  # the order stage dead-letters what cannot be read; it counts nothing
        if event.key != record.order_id.encode():
            return  # refused by the order stage (bad key): never part of an order
        stored = self.orders.get(event.key) or OrderKpis(facts=OrderFacts(order_id=record.order_id))
        where = sends.where(event)
        if replays.done_before(stored.read_to, *where):
            self.metrics.replays_skipped.labels(FACTS).inc()  # its deltas all went out
            return
        now = _time_of(event)
        earlier = stored.sent_by(where[0], where[1])
        if earlier is not None:  # applied, and maybe never sent: the same again, and the
            self.orders.put(event.key, stored, event)  # value written so the batch finishes
            self.pending.append(Pending.again(earlier, now))
            return
        facts, increments = observe(stored.facts, record, location=self.view.locations.get)
        if facts == stored.facts and not increments:
            return  # nothing to count and nothing to remember (a cancel: its status counts)
        buckets = delta_buckets(increments, self.tz, at=now, retention_days=self.retention_days)
        self.orders.put(
            event.key, remember(stored, facts, where, sends.read_from(), buckets), event
        )
        if buckets:
            self.pending.append(Pending(where[0], where[1], now, True, buckets))

    def forget(self, event: Any, sends: Sends) -> None:
        """Drop the order's facts if they still read nothing for longer than they are kept
        (checked again here: an order that read something since stays). The stage alone reads
        this topic, so it dead-letters what it cannot apply there."""
        try:
            command: KpiForget = self.codec.decode_as(event.value, KpiForget)
        except DecodeError as exc:
            sends.dead_letter(event, exc.reason, FACTS, "undecodable")
            return
        if event.key != command.order_id.encode():
            reason = f"key must be the order_id {command.order_id!r}"
            sends.dead_letter(event, reason, FACTS, "bad_key")
            return
        stored = self.orders.get(event.key)
        if stored is not None and forget_due(stored, _time_of(event), self.keep):
            self.orders.remove(event.key, event)

    def finish(self, changed: dict[bytes, OrderKpis], sends: Sends) -> None:
        """The batch's deltas, once its facts are settled (sent after they are stored)."""
        pending, self.pending = self.pending, []
        sends.add(batch_records(pending))


class BucketStage:
    """What the bucket agent does with each delta and retention command, and each batch."""

    def __init__(
        self,
        buckets: BatchTable[StoredBucket],
        raw: Any,
        codec: Codec,
        settings: Settings,
        metrics: PipelineMetrics,
    ) -> None:
        self.buckets = buckets
        self.raw = raw
        self.codec = codec
        self.tz = settings.tz
        self.retention_days = settings.report_retention_days
        self.metrics = metrics
        self._index: tuple[Sends, dict[str, list[bytes]]] | None = None

    async def handle(self, event: Any, sends: Sends) -> None:
        try:
            record: KpiDelta | KpiRetire = self.codec.decode_as(  # type: ignore[assignment]
                event.value, KpiDelta, KpiRetire
            )
        except DecodeError as exc:
            sends.dead_letter(event, exc.reason, BUCKETS, "undecodable")
            return
        if isinstance(record, KpiRetire):
            self.retire(record, event, sends)
            return
        key = record.bucket.encode()
        stored = self.buckets.get(key)
        added = apply_delta(stored, record)
        if added is None:  # a repeat: written and published again all the same (the first
            self.metrics.replays_skipped.labels(BUCKETS).inc()  # time's may be lost)
            assert stored is not None
            self.buckets.put(key, stored, event)
            return
        self.buckets.put(key, added, event)

    def retire(self, command: KpiRetire, event: Any, sends: Sends) -> None:
        """Retire the family's windows past the retention at the command's time."""
        family = self.family(command.family, sends)
        found = {key: stored.bucket for key, stored in family.items()}
        retirement = retire(
            found, now=command.issued_at, tz=self.tz, retention_days=self.retention_days
        )
        for key, bucket in retirement.writes.items():
            self.buckets.put(key.text().encode(), StoredBucket(bucket=bucket), event)
        for key in retirement.deletes:
            self.buckets.remove(key.text().encode(), event)
            sends.add([Tombstone(registry.KPIS.name, published_key(key).encode())])
        if retirement.deletes:
            log.info("retired %d KPI windows of %s", len(retirement.deletes), command.family)

    def family(self, family: str, sends: Sends) -> dict[BucketKey, StoredBucket]:
        """Every bucket of ``family`` this worker holds, as the batch has them so far (the
        table's keys are read once per batch, for all of its retention commands)."""
        if self._index is None or self._index[0] is not sends:
            index: dict[str, list[bytes]] = defaultdict(list)
            for raw_key in self.raw:
                index[family_of(BucketKey.parse(raw_key.decode()))].append(raw_key)
            self._index = (sends, index)
        out: dict[BucketKey, StoredBucket] = {}
        for raw_key in self._index[1].get(family, []):
            stored = self.buckets.get(raw_key)
            if stored is not None:
                out[BucketKey.parse(raw_key.decode())] = stored
        return out

    def publish(self, changed: dict[bytes, StoredBucket], sends: Sends) -> None:
        """Every bucket the batch changed, as it stands now, on ``dom.kpis.v1``."""
        now = datetime.now(UTC)
        sends.add(
            value_record(BucketKey.parse(key.decode()), stored.bucket, self.tz, now)
            for key, stored in changed.items()
        )


def expired_families(
    keys: Iterable[bytes], now: datetime, tz: tzinfo, retention_days: float
) -> list[str]:
    """The families of ``keys`` (stored buckets' keys) holding a window past the retention at
    ``now``: decided from the keys alone (a gauge's carried bucket is no window of its own)."""
    cutoffs = {g: retention_cutoff(now, g, tz, retention_days) for g in GRAINS}
    due: set[str] = set()
    for raw_key in keys:
        key = BucketKey.parse(raw_key.decode())
        if not key.series.endswith(CARRIED) and key.start < cutoffs[key.grain]:
            due.add(family_of(key))
    return sorted(due)


def forget_due(stored: OrderKpis, now: datetime, keep: timedelta) -> bool:
    """Whether the order's facts read nothing for longer than ``keep`` at ``now``."""
    last_ms = stored.last_read_ms()
    return last_ms is not None and now - datetime.fromtimestamp(last_ms / 1000, UTC) > keep


def facts_to_forget(
    items: Iterable[tuple[bytes, bytes | None]], now: datetime, keep: timedelta
) -> list[str]:
    """The orders among stored facts ``items`` whose facts are due to go at ``now``. Facts of
    an order placed less than ``keep`` ago cannot be (their inputs came after it was placed),
    and are skipped without decoding: the common case."""
    due = []
    for _key, raw in items:
        if raw is None:
            continue
        placed = _PLACED_AT.search(raw)
        if placed is not None and now - datetime.fromisoformat(placed[1].decode()) <= keep:
            continue
        stored = _decode_order(raw)
        if forget_due(stored, now, keep):
            due.append(stored.facts.order_id)
    return due


def _time_of(event: Any) -> datetime:
    """When an input happened, as its records say: the broker's timestamp of it."""
    return datetime.fromtimestamp(event.message.timestamp, UTC)


def _decode_order(raw: bytes) -> OrderKpis:
    return from_stored(OrderKpis, raw)  # a newer release's fields dropped (rolling upgrades)


def _encode_order(value: OrderKpis) -> bytes:
    return value.model_dump_json().encode()


def _decode_bucket(raw: bytes) -> StoredBucket:
    return from_stored(StoredBucket, raw)


def _encode_bucket(value: StoredBucket) -> bytes:
    return value.model_dump_json().encode()

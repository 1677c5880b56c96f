"""What the KPI stages store and send, as pure functions (no Faust, no Kafka client).

- :class:`OrderKpis`: the facts stage's value per order: the core's
  :class:`~streams.core.kpis.OrderFacts`, what the order has read per input partition
  (:mod:`streams.core.replays`), and the deltas its inputs not yet known done caused
  (``sent``), so that a redelivered input sends again exactly what it sent the first time.
- :func:`delta_buckets` and :func:`batch_records`: what an input adds per bucket, and a
  batch's :class:`~schemas.kpis.KpiDelta` s, named by the input partition and offset and keyed
  by the bucket's family, consecutive fresh deltas of one partition and bucket merged.
- :class:`StoredBucket` and :func:`apply_delta`: the bucket stage's value per bucket: the sums,
  and per source partition the last offset applied. Deltas from one source partition reach a
  bucket in offset order, so one number per source tells a repeat.
- :func:`value_record` / :func:`bucket_of`: a bucket as published on ``dom.kpis.v1`` and back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo

from pydantic import BaseModel, ConfigDict, Field

from schemas.kpis import KpiDelta, KpiValue
from streams.core import replays
from streams.core.kpis import BucketKey, Grain, Increment, KpiBucket, OrderFacts, deltas, merge
from streams.core.kpis.buckets import CARRIED
from streams.core.kpis.windows import GRAINS, retention_cutoff, window_end

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Sent(BaseModel):
    """The deltas one input caused: (bucket key text, delta JSON) pairs."""

    model_config = _FROZEN

    source: str
    offset: int
    at_ms: int
    deltas: tuple[tuple[str, str], ...]


class OrderKpis(BaseModel):
    """The KPI facts stage's memory of one order."""

    model_config = _FROZEN

    facts: OrderFacts
    read_to: dict[str, tuple[int, int, int]] = Field(default_factory=dict)
    sent: tuple[Sent, ...] = ()

    def last_read_ms(self) -> int | None:
        """When the latest input the order's facts took was written (ms), if any was."""
        return max((time_ms for _, _, time_ms in self.read_to.values()), default=None)

    def sent_by(self, source: str, offset: int) -> Sent | None:
        """What the input at ``offset`` of ``source`` sent, if it is remembered."""
        return next((s for s in self.sent if s.source == source and s.offset == offset), None)


def remember(
    stored: OrderKpis,
    facts: OrderFacts,
    where: tuple[str, int, int],
    batch_from: Mapping[str, int],
    buckets: list[tuple[str, KpiBucket]],
) -> OrderKpis:
    """The order's value after the input at ``where`` (partition, offset, time in ms) gave
    ``facts`` and the bucket deltas ``buckets``: what it read noted, and of what was sent only
    the inputs not known done kept (a replay of a done input is skipped whole, never sent
    again)."""
    source, offset, at_ms = where
    read_to = dict(replays.note_read(stored.read_to, source, offset, at_ms, batch_from))
    kept = tuple(
        s for s in stored.sent if not replays.done_before(read_to, s.source, s.offset, s.at_ms)
    )
    if buckets:
        pairs = tuple((key, bucket.model_dump_json()) for key, bucket in buckets)
        kept = (*kept, Sent(source=source, offset=offset, at_ms=at_ms, deltas=pairs))
    return OrderKpis(facts=facts, read_to=read_to, sent=kept)


def family_of(key: BucketKey) -> str:
    """Every window of a series, grain and dimension: one family, one partition, so the
    retention can fold a gauge's windows where they all are (its carried bucket with them)."""
    return json.dumps([key.series.removesuffix(CARRIED), key.grain.value, *key.dimension])


def delta_buckets(
    increments: Iterable[Increment], tz: tzinfo, *, at: datetime, retention_days: float
) -> list[tuple[str, KpiBucket]]:
    """What the increments add, per bucket (by key text, sorted); windows already past the
    retention at ``at`` get nothing (they are dropped or folded)."""
    cutoffs = {grain: retention_cutoff(at, grain, tz, retention_days) for grain in GRAINS}
    return sorted(
        (key.text(), bucket)
        for key, bucket in deltas(increments, tz).items()
        if key.start >= cutoffs[key.grain]
    )


@dataclass(frozen=True)
class Pending:
    """What one input of a batch adds: ``fresh`` deltas it just counted, or (a replay) the
    deltas it sent before, sent again as they were."""

    source: str
    offset: int
    at: datetime
    fresh: bool
    buckets: list[tuple[str, KpiBucket]]

    @classmethod
    def again(cls, sent: Sent, at: datetime) -> Pending:
        buckets = [(key, KpiBucket.model_validate_json(raw)) for key, raw in sent.deltas]
        return cls(sent.source, sent.offset, at, False, buckets)


def batch_records(pending: Iterable[Pending]) -> list[KpiDelta]:
    """A batch's deltas, in input order, per source partition and bucket: consecutive fresh
    deltas merged into one named by the last of their offsets, and each sent again alone.

    Merging is safe because nothing fresh was ever sent (an input is fresh only when its facts
    were not stored, and a batch sends only once all its facts are), so the bucket either has
    none of a merged delta or, past its offset, all of it; a delta sent again may have reached
    the bucket or not, so none is merged with it, and none merged across it (a merged delta
    named by a later offset, taken first, would have the bucket drop it)."""
    runs: dict[tuple[str, str], list[tuple[Pending, KpiBucket]]] = {}
    for item in pending:
        for key, bucket in item.buckets:
            run = runs.setdefault((item.source, key), [])
            if item.fresh and run and run[-1][0].fresh:
                bucket = merge(run.pop()[1], bucket)
            run.append((item, bucket))
    families: dict[str, str] = {}
    out = []
    for (_, key), run in runs.items():
        family = families.get(key)
        if family is None:
            family = families[key] = family_of(BucketKey.parse(key))
        out += [
            KpiDelta(
                family=family,
                bucket=key,
                source=item.source,
                offset=item.offset,
                delta=bucket.model_dump_json(),
                at=item.at,
            )
            for item, bucket in run
        ]
    return out


class StoredBucket(BaseModel):
    """The bucket stage's value per bucket: the sums, and per source partition the offset of
    the last input whose delta is in them."""

    model_config = _FROZEN

    bucket: KpiBucket = Field(default_factory=KpiBucket)
    applied: dict[str, int] = Field(default_factory=dict)


def apply_delta(stored: StoredBucket | None, delta: KpiDelta) -> StoredBucket | None:
    """The bucket with ``delta`` added; None when it holds it already (a repeat)."""
    stored = stored or StoredBucket()
    last = stored.applied.get(delta.source)
    if last is not None and delta.offset <= last:
        return None
    added = merge(stored.bucket, KpiBucket.model_validate_json(delta.delta))
    return StoredBucket(bucket=added, applied={**stored.applied, delta.source: delta.offset})


def published_key(key: BucketKey) -> str:
    """``series|grain|window_start|dimension...``, each part with ``%`` and ``|`` encoded, so
    two buckets never share a key whatever their free-text dimensions hold."""
    parts = [key.series, key.grain.value, key.start.isoformat(), *key.dimension]
    return "|".join(p.replace("%", "%25").replace("|", "%7C") for p in parts)


def value_record(key: BucketKey, bucket: KpiBucket, tz: tzinfo, now: datetime) -> KpiValue:
    """The bucket as published on ``dom.kpis.v1``."""
    return KpiValue(
        key=published_key(key),
        series=key.series,
        grain=key.grain.value,
        window_start=key.start.isoformat(),
        window_end=window_end(key.start, key.grain, tz).isoformat(),
        dimension=key.dimension,
        count=bucket.count,
        total=str(bucket.total),
        histogram={str(k): v for k, v in bucket.histogram.items()},
        waiting_since={str(k): v for k, v in bucket.waiting_since.items()},
        updated_at=now,
    )


def bucket_of(record: KpiValue) -> tuple[BucketKey, KpiBucket]:
    """A published bucket, back as the core's key and sums."""
    key = BucketKey(
        record.series,
        Grain(record.grain),
        datetime.fromisoformat(record.window_start),
        tuple(record.dimension),
    )
    bucket = KpiBucket.model_validate(
        {
            "count": record.count,
            "total": record.total,
            "histogram": {int(k): v for k, v in record.histogram.items()},
            "waiting_since": {int(k): v for k, v in record.waiting_since.items()},
        }
    )
    return key, bucket

"""Records of the KPI report: the published buckets (``dom.kpis.v1``) and the KPI stages'
internal deltas and retention commands (``dom.internal.kpi-deltas.v1``).

Avro like the rest of the contract. A bucket's sums travel as they are stored by
``streams/core/kpis/buckets.py``: ``total`` as exact decimal text, the histogram and the
gauge's waiting orders as maps keyed by the bin or the epoch second (Avro map keys are text).
"""

from __future__ import annotations

from typing import ClassVar

from schemas.common import Id, Message, Timestamp


class KpiValue(Message):
    """The sums of one KPI bucket as they stand: one series, grain, window and dimension."""

    avro_name: ClassVar[str] = "dom.v1.KpiValue"

    key: Id
    series: Id
    grain: Id
    window_start: Id
    window_end: Id
    dimension: tuple[str, ...] = ()
    count: int
    total: str
    histogram: dict[str, int] = {}
    waiting_since: dict[str, int] = {}
    updated_at: Timestamp


class KpiDelta(Message):
    """What one input of the KPI facts stage adds to one bucket, for the bucket's owner."""

    avro_name: ClassVar[str] = "dom.v1.KpiDelta"

    family: Id
    bucket: Id
    source: Id
    offset: int
    delta: str
    at: Timestamp


class KpiRetire(Message):
    """Asks the owner of a bucket family to retire its windows past the retention."""

    avro_name: ClassVar[str] = "dom.v1.KpiRetire"

    family: Id
    issued_at: Timestamp


class KpiForget(Message):
    """Asks the owner of an order's KPI facts to drop them: the order read nothing for longer
    than the facts are kept (streams/kpi_stage.py)."""

    avro_name: ClassVar[str] = "dom.v1.KpiForget"

    order_id: Id
    issued_at: Timestamp

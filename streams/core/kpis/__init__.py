"""Fulfilment KPIs, the pure core of the KPI report (no Kafka, no Faust, no clock).

The stage keeps, per order, :class:`~.facts.OrderFacts` and feeds each event to
:func:`~.observe.observe`, which returns new facts and :class:`~.buckets.Increment` s; it
turns those into bucket deltas per hour and day window in ``DOM_TIMEZONE``
(:func:`~.buckets.deltas`), merges them into its table by addition (:func:`~.buckets.merge`)
and drops expired windows (:func:`~.buckets.retire`). The console and the command line list
:data:`~.catalogue.CATALOGUE` and read :func:`~.report.build_report` /
:func:`~.report.render_csv`.
"""

from streams.core.kpis.buckets import (
    BucketKey,
    Increment,
    KpiBucket,
    Retirement,
    deltas,
    merge,
    retire,
)
from streams.core.kpis.catalogue import CATALOGUE, Dimension, Kpi, Measure, Series, Unit, kpi
from streams.core.kpis.facts import LocationLookup, OrderFacts
from streams.core.kpis.observe import observe
from streams.core.kpis.report import Report, Row, build_report, render_csv
from streams.core.kpis.windows import GRAINS, Grain, is_expired, window_end, window_start

__all__ = [
    "CATALOGUE",
    "GRAINS",
    "BucketKey",
    "Dimension",
    "Grain",
    "Increment",
    "Kpi",
    "KpiBucket",
    "LocationLookup",
    "Measure",
    "OrderFacts",
    "Report",
    "Retirement",
    "Row",
    "Series",
    "Unit",
    "build_report",
    "deltas",
    "is_expired",
    "kpi",
    "merge",
    "observe",
    "render_csv",
    "retire",
    "window_end",
    "window_start",
]

"""The KPI catalogue: every fulfilment KPI the report knows, one registry.

Two names meet here. A *series* is what the stage stores: the increments of
:mod:`streams.core.kpis.observe` add into buckets of a series (counts, sums, a histogram, the
backlog's waiting orders). A *KPI* is what a person reads: a series and a *measure* that turns
its summed buckets into one number (a count, a ratio of summed parts, a percentile, a level).
Several KPIs may read one series (``pickup_time_p50`` and ``pickup_time_p90``).

The console and the command line list :data:`CATALOGUE`; :func:`kpi` finds one by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Series(StrEnum):
    """What the stage stores: one family of buckets per series and grain."""

    ORDERS_PLACED = "orders_placed"
    PICKUP_ORDERS = "pickup_orders"
    FIRST_OUTCOME = "first_outcome"
    FILL = "fill"
    SPLIT = "split"
    SHIPMENTS_PER_ORDER = "shipments_per_order"
    PLACED_TO_ALLOCATED = "placed_to_allocated"
    ALLOCATED_TO_SHIPPED = "allocated_to_shipped"
    SHIP_FROM_STORE = "ship_from_store"
    UNITS_SHIPPED = "units_shipped"
    VALUE_SHIPPED = "value_shipped"
    DISTANCE = "distance"
    PICKUP_TIME = "pickup_time"
    CANCELLATIONS = "cancellations"
    REJECTIONS = "rejections"
    ACCEPT_TIMEOUTS = "accept_timeouts"
    BACKLOG = "backorder_backlog"
    RETURNS_REQUESTED = "returns_requested"
    RETURNS_RECEIVED = "returns_received"


GAUGES = frozenset({Series.BACKLOG})
"""Series whose increments are changes of a level (+1 an order starts waiting, -1 it stops):
the level at a window's end is the sum of every change before it, so their expired windows are
folded into a carried bucket instead of being dropped (:func:`~.buckets.retire`)."""


class Dimension(StrEnum):
    """A part of a bucket's dimension: what a KPI can be broken down by."""

    CHANNEL = "channel"
    OUTCOME = "outcome"
    LOCATION = "location"
    LOCATION_KIND = "location_kind"
    REASON = "reason"
    CONDITION = "condition"
    CURRENCY = "currency"


class Unit(StrEnum):
    """What a KPI's value counts or measures."""

    COUNT = "count"
    RATIO = "ratio"
    SECONDS = "seconds"
    KM = "km"
    UNITS = "units"
    MONEY = "money"


class Measure(StrEnum):
    """How a KPI's value comes from its summed buckets (``count``, ``total``, histogram)."""

    COUNT = "count"  # the summed count
    SUM = "sum"  # the summed total
    RATIO = "ratio"  # summed total / summed count: a share of the counted
    MEAN = "mean"  # summed total / summed count: an average per counted thing
    P50 = "p50"  # the median of the histogram's samples
    P90 = "p90"
    LEVEL = "level"  # a gauge: how many wait at the window's end
    OLDEST_AGE = "oldest_age"  # a gauge: the age of the oldest waiting at the window's end
    MEDIAN_AGE = "median_age"


QUANTILES = {Measure.P50: 0.5, Measure.P90: 0.9}
GAUGE_MEASURES = frozenset({Measure.LEVEL, Measure.OLDEST_AGE, Measure.MEDIAN_AGE})


@dataclass(frozen=True)
class Kpi:
    """One KPI: its name, what a person reads as its title, and how it is computed.

    ``breakdowns`` are the parts of the series' dimension, in the order the increments write
    them; a report may group by any of them. ``kept`` parts are never summed across (money of
    different currencies does not add up), so every report groups by them too.
    """

    name: str
    title: str
    unit: Unit
    series: Series
    measure: Measure
    breakdowns: tuple[Dimension, ...] = ()
    kept: tuple[Dimension, ...] = ()
    decimals: int = 0


_KPIS = (
    Kpi(
        "orders_placed",
        "Orders placed",
        Unit.COUNT,
        Series.ORDERS_PLACED,
        Measure.COUNT,
        (Dimension.CHANNEL,),
    ),
    Kpi(
        "pickup_orders",
        "Pickup orders placed",
        Unit.COUNT,
        Series.PICKUP_ORDERS,
        Measure.COUNT,
        (Dimension.LOCATION,),
    ),
    Kpi(
        "routing_outcomes",
        "First routing outcome of each order",
        Unit.COUNT,
        Series.FIRST_OUTCOME,
        Measure.COUNT,
        (Dimension.OUTCOME,),
    ),
    Kpi(
        "fill_rate",
        "Fill rate: orders allocated whole at their first routing",
        Unit.RATIO,
        Series.FILL,
        Measure.RATIO,
        (Dimension.CHANNEL,),
        decimals=4,
    ),
    Kpi(
        "split_rate",
        "Split rate: first allocations with more than one shipment",
        Unit.RATIO,
        Series.SPLIT,
        Measure.RATIO,
        (Dimension.CHANNEL,),
        decimals=4,
    ),
    Kpi(
        "shipments_per_order",
        "Shipments per order at its first allocation",
        Unit.COUNT,
        Series.SHIPMENTS_PER_ORDER,
        Measure.MEAN,
        (Dimension.CHANNEL,),
        decimals=2,
    ),
    Kpi(
        "placed_to_allocated_p50",
        "Placed to allocated, median",
        Unit.SECONDS,
        Series.PLACED_TO_ALLOCATED,
        Measure.P50,
        (Dimension.CHANNEL,),
        decimals=1,
    ),
    Kpi(
        "placed_to_allocated_p90",
        "Placed to allocated, 90th percentile",
        Unit.SECONDS,
        Series.PLACED_TO_ALLOCATED,
        Measure.P90,
        (Dimension.CHANNEL,),
        decimals=1,
    ),
    Kpi(
        "allocated_to_shipped_p50",
        "Allocated to shipped, median (per shipment)",
        Unit.SECONDS,
        Series.ALLOCATED_TO_SHIPPED,
        Measure.P50,
        (Dimension.LOCATION, Dimension.LOCATION_KIND),
        decimals=1,
    ),
    Kpi(
        "allocated_to_shipped_p90",
        "Allocated to shipped, 90th percentile (per shipment)",
        Unit.SECONDS,
        Series.ALLOCATED_TO_SHIPPED,
        Measure.P90,
        (Dimension.LOCATION, Dimension.LOCATION_KIND),
        decimals=1,
    ),
    Kpi(
        "ship_from_store_share",
        "Share of shipments sent from stores",
        Unit.RATIO,
        Series.SHIP_FROM_STORE,
        Measure.RATIO,
        (Dimension.CHANNEL,),
        decimals=4,
    ),
    Kpi(
        "units_shipped",
        "Units that left a location (shipped or picked up)",
        Unit.UNITS,
        Series.UNITS_SHIPPED,
        Measure.SUM,
        (Dimension.LOCATION, Dimension.LOCATION_KIND),
    ),
    Kpi(
        "value_shipped",
        "Value that left a location (order line prices)",
        Unit.MONEY,
        Series.VALUE_SHIPPED,
        Measure.SUM,
        (Dimension.LOCATION, Dimension.LOCATION_KIND, Dimension.CURRENCY),
        (Dimension.CURRENCY,),
        decimals=2,
    ),
    Kpi(
        "distance_per_order",
        "Distance shipped per order (km as the crow flies)",
        Unit.KM,
        Series.DISTANCE,
        Measure.MEAN,
        (Dimension.CHANNEL,),
        decimals=1,
    ),
    Kpi(
        "pickup_time_p50",
        "Pickup ready to picked up, median",
        Unit.SECONDS,
        Series.PICKUP_TIME,
        Measure.P50,
        (Dimension.LOCATION,),
        decimals=1,
    ),
    Kpi(
        "pickup_time_p90",
        "Pickup ready to picked up, 90th percentile",
        Unit.SECONDS,
        Series.PICKUP_TIME,
        Measure.P90,
        (Dimension.LOCATION,),
        decimals=1,
    ),
    Kpi(
        "cancellations",
        "Orders cancelled",
        Unit.COUNT,
        Series.CANCELLATIONS,
        Measure.COUNT,
        (Dimension.REASON, Dimension.CHANNEL),
    ),
    Kpi(
        "fulfillment_rejections",
        "Shipments a location rejected",
        Unit.COUNT,
        Series.REJECTIONS,
        Measure.COUNT,
        (Dimension.LOCATION, Dimension.LOCATION_KIND),
    ),
    Kpi(
        "acceptance_timeouts",
        "Shipments moved away: not accepted in time",
        Unit.COUNT,
        Series.ACCEPT_TIMEOUTS,
        Measure.COUNT,
        (Dimension.LOCATION, Dimension.LOCATION_KIND),
    ),
    Kpi(
        "backorder_backlog",
        "Orders waiting for stock at the window's end",
        Unit.COUNT,
        Series.BACKLOG,
        Measure.LEVEL,
    ),
    Kpi(
        "backorder_age_oldest",
        "Age of the oldest backorder at the window's end",
        Unit.SECONDS,
        Series.BACKLOG,
        Measure.OLDEST_AGE,
    ),
    Kpi(
        "backorder_age_median",
        "Median age of the backorders at the window's end",
        Unit.SECONDS,
        Series.BACKLOG,
        Measure.MEDIAN_AGE,
    ),
    Kpi(
        "returns_requested",
        "Units customers asked to return",
        Unit.UNITS,
        Series.RETURNS_REQUESTED,
        Measure.SUM,
        (Dimension.REASON,),
    ),
    Kpi(
        "returns_received",
        "Units received back, by condition and the customer's reason",
        Unit.UNITS,
        Series.RETURNS_RECEIVED,
        Measure.SUM,
        (Dimension.CONDITION, Dimension.REASON),
    ),
)

CATALOGUE: Mapping[str, Kpi] = MappingProxyType({k.name: k for k in _KPIS})
"""Every KPI by name, in the order the console lists them."""


def kpi(name: str) -> Kpi:
    """The KPI called ``name``; ValueError naming the known ones if there is none."""
    found = CATALOGUE.get(name)
    if found is None:
        raise ValueError(f"no KPI {name!r}; known: {', '.join(CATALOGUE)}")
    return found

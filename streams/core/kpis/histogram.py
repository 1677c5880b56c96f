"""A mergeable log-scale histogram for percentiles (p50, p90) of durations.

The mapping is DDSketch's (Masson, Rim, Lee, VLDB 2019): bin ``i`` holds the values in
``(gamma**(i-1), gamma**i]`` with ``gamma = (1 + a) / (1 - a)``, and reads back as
``2 * gamma**i / (gamma + 1)``, which is within a relative error ``a`` of every value in it.
With :data:`RELATIVE_ERROR` ``a = 1 %``: a reported p90 of 3600 s means the exact p90 of the
samples lies between about 3564 s and 3636 s. Values below :data:`SMALLEST` (a millisecond,
the contract's time precision) read back as 0: there the error is absolute, at most that.

A histogram is a plain ``{bin: count}`` map, so merging two is adding counts bin by bin:
order-independent, exact, and JSON-ready. Seconds from a millisecond to a year need at most
about 1,300 bins; a real window fills a few dozen.

Not a dependency (``ddsketch`` on PyPI has this mapping): the buckets must merge by addition
inside our own stored record, and this is the 30 lines of it we use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

RELATIVE_ERROR = 0.01
SMALLEST = 0.001
ZERO_BIN = -(2**31)
"""The bin of every value below :data:`SMALLEST` (and of negative ones: clocks disagree)."""

_GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(_GAMMA)

Histogram = Mapping[int, int]


def bin_of(value: float) -> int:
    """The bin a sample falls in."""
    if value < SMALLEST:
        return ZERO_BIN
    return math.ceil(math.log(value) / _LOG_GAMMA)


def value_of(bin_: int) -> float:
    """What a bin reads back as: within :data:`RELATIVE_ERROR` of every value in it."""
    if bin_ == ZERO_BIN:
        return 0.0
    return 2 * _GAMMA**bin_ / (_GAMMA + 1)


def add(histogram: Histogram, other: Histogram) -> dict[int, int]:
    """Both histograms as one: counts added bin by bin."""
    merged = dict(histogram)
    for bin_, count in other.items():
        merged[bin_] = merged.get(bin_, 0) + count
    return merged


def quantile(histogram: Histogram, q: float) -> float | None:
    """The nearest-rank ``q``-quantile (the ``ceil(q * n)``-th smallest sample, at least the
    first), within :data:`RELATIVE_ERROR`; None when there are no samples."""
    n = sum(histogram.values())
    if n <= 0:
        return None
    rank = max(1, math.ceil(round(q * n, 9)))  # 0.9 * 10 is 9.000000000000002
    seen = 0
    for bin_ in sorted(histogram):
        seen += histogram[bin_]
        if seen >= rank:
            return value_of(bin_)
    raise AssertionError("unreachable: the ranks add up to n")

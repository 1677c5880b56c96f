"""Percentiles from the log-scale histogram: within the documented 1 % of the exact
nearest-rank percentile, and the same whichever way histograms are merged."""

from __future__ import annotations

import math
import random

import pytest

from streams.core.kpis.histogram import RELATIVE_ERROR, add, bin_of, quantile, value_of


def histogram(samples: list[float]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for sample in samples:
        counts = add(counts, {bin_of(sample): 1})
    return counts


def nearest_rank(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered) - 1e-9)) - 1]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_p50_and_p90_are_within_the_documented_relative_error(seed: int) -> None:
    rng = random.Random(seed)
    # pick-to-ship times: a few minutes to a few days, heavily skewed
    samples = [rng.lognormvariate(math.log(3600), 1.5) for _ in range(2_000)]
    counts = histogram(samples)
    for q in (0.5, 0.9):
        exact = nearest_rank(samples, q)
        estimate = quantile(counts, q)
        assert estimate is not None
        assert abs(estimate - exact) <= RELATIVE_ERROR * exact * (1 + 1e-9)


def test_every_value_reads_back_within_the_error_of_its_bin() -> None:
    for value in (0.001, 0.5, 1.0, 59.999, 60.0, 3600.0, 86_400.0 * 30, 123_456.789):
        assert abs(value_of(bin_of(value)) - value) <= RELATIVE_ERROR * value * (1 + 1e-9)


def test_small_and_negative_values_read_back_as_zero() -> None:
    assert quantile(histogram([0.0, 0.0004, -2.0]), 0.9) == 0.0


def test_nearest_rank_on_a_handful_of_samples() -> None:
    samples = [60.0 * n for n in range(1, 11)]  # 1 to 10 minutes
    counts = histogram(samples)
    assert quantile(counts, 0.5) == pytest.approx(300, rel=RELATIVE_ERROR)  # the 5th
    assert quantile(counts, 0.9) == pytest.approx(540, rel=RELATIVE_ERROR)  # the 9th
    assert quantile(counts, 0.9) != pytest.approx(600, rel=RELATIVE_ERROR)
    assert quantile({}, 0.5) is None


def test_merging_is_adding_and_order_does_not_matter() -> None:
    rng = random.Random(7)
    parts = [[rng.uniform(1, 10_000) for _ in range(50)] for _ in range(4)]
    one_way: dict[int, int] = {}
    for part in parts:
        one_way = add(one_way, histogram(part))
    other_way: dict[int, int] = {}
    for part in reversed(parts):
        other_way = add(histogram(part), other_way)
    assert one_way == other_way == histogram([s for part in parts for s in part])

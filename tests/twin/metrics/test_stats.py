"""Percentiles (numpy's linear rule) and descriptive statistics."""

from __future__ import annotations

import math

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.twin.metrics import describe, mean, percentile


def test_percentile_interpolates_linearly_between_closest_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # sorted 1, 2, 3, 4; rank h = 3 * q / 100
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == pytest.approx(2.5)  # h = 1.5
    assert percentile(values, 95) == pytest.approx(3.85)  # h = 2.85: 3 + 0.85 * (4 - 3)
    assert percentile(values, 99) == pytest.approx(3.97)  # h = 2.97
    assert percentile(values, 100) == 4.0


def test_percentile_of_one_value_is_that_value_and_of_none_is_nan() -> None:
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_percentile_outside_0_to_100_is_refused() -> None:
    with pytest.raises(InvalidInput):
        percentile([1.0], 101)


def test_describe_gives_count_mean_median_tails_and_max() -> None:
    stats = describe([10.0, 20.0, 30.0, 40.0, 100.0])
    assert stats.count == 5
    assert stats.mean == pytest.approx(40.0)
    assert stats.median == 30.0  # h = 2
    assert stats.p95 == pytest.approx(88.0)  # h = 3.8: 40 + 0.8 * 60
    assert stats.p99 == pytest.approx(97.6)  # h = 3.96: 40 + 0.96 * 60
    assert stats.max == 100.0


def test_describe_of_nothing_is_zero_count_and_nan() -> None:
    stats = describe([])
    assert stats.count == 0
    assert all(math.isnan(v) for v in (stats.mean, stats.median, stats.p95, stats.p99, stats.max))
    assert math.isnan(mean([]))

"""The policy's wall time per scheduling cycle, in milliseconds."""

from __future__ import annotations

import math

import pytest

from aifactories.twin.metrics import cycle_stats


def test_cycle_stats_in_milliseconds() -> None:
    stats = cycle_stats([0.003, 0.001, 0.010, 0.002])  # 1, 2, 3, 10 ms
    assert stats.cycles == 4
    assert stats.mean_ms == pytest.approx(4.0)
    assert stats.p50_ms == pytest.approx(2.5)
    assert stats.p99_ms == pytest.approx(9.79)  # h = 2.97: 3 + 0.97 * 7
    assert stats.max_ms == pytest.approx(10.0)


def test_no_cycles_give_nan() -> None:
    stats = cycle_stats([])
    assert stats.cycles == 0
    assert math.isnan(stats.p99_ms)

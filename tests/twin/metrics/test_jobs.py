"""Completion time, wait, bounded slowdown, makespan and the measurement window."""

from __future__ import annotations

import math

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.twin.metrics import (
    bounded_slowdown,
    in_window,
    jct_stats,
    makespan,
    slowdown_stats,
    wait_stats,
)

from .builders import job

# A runs at once; B queues behind A; C is a 5 s job queued behind both; D never starts.
A = job("a", submit=0, start=0, end=100)
B = job("b", submit=10, start=100, end=130)
C = job("c", submit=20, start=130, end=135)
D = job("d", submit=30, start=None, end=None)
RUN = [D, C, B, A]  # deliberately not in submission order


def test_jct_is_end_minus_submit_over_completed_jobs() -> None:
    stats = jct_stats(RUN)  # JCTs 100, 120, 115; D is left out
    assert stats.count == 3
    assert stats.mean == pytest.approx(335 / 3)
    assert stats.median == 115.0
    assert stats.p95 == pytest.approx(119.5)  # sorted 100, 115, 120; h = 1.9: 115 + 0.9 * 5
    assert stats.p99 == pytest.approx(119.9)  # h = 1.98
    assert stats.max == 120.0


def test_wait_is_start_minus_submit_over_completed_jobs() -> None:
    stats = wait_stats(RUN)  # waits 0, 90, 110
    assert stats.count == 3
    assert stats.mean == pytest.approx(200 / 3)
    assert stats.median == 90.0
    assert stats.p95 == pytest.approx(108.0)  # h = 1.9: 90 + 0.9 * 20
    assert stats.p99 == pytest.approx(109.6)


def test_bounded_slowdown_uses_tau_for_short_jobs_and_never_goes_below_one() -> None:
    assert bounded_slowdown(A) == 1.0  # 100 / 100
    assert bounded_slowdown(B) == pytest.approx(4.0)  # 120 / 30
    assert bounded_slowdown(C) == pytest.approx(11.5)  # 115 / max(5, 10), not 115 / 5 = 23
    quick = job("q", submit=0, start=0, end=5)
    assert bounded_slowdown(quick) == 1.0  # 5 / 10 = 0.5, bounded below by 1
    assert bounded_slowdown(C, tau_s=1.0) == pytest.approx(23.0)


def test_bounded_slowdown_counts_time_lost_to_restarts() -> None:
    # Ran 50 s in all, but a restart stretched start..end to 80 s.
    restarted = job("r", submit=0, start=20, end=100, runtime=50, restarts=1)
    assert bounded_slowdown(restarted) == pytest.approx(2.0)  # (100 - 0) / 50


def test_bounded_slowdown_of_an_unfinished_job_or_with_bad_tau_is_refused() -> None:
    with pytest.raises(InvalidInput):
        bounded_slowdown(D)
    with pytest.raises(InvalidInput):
        bounded_slowdown(A, tau_s=0)


def test_slowdown_stats_over_completed_jobs() -> None:
    stats = slowdown_stats(RUN)  # 1, 4, 11.5
    assert stats.count == 3
    assert stats.mean == pytest.approx(16.5 / 3)
    assert stats.median == pytest.approx(4.0)


def test_makespan_is_last_end_minus_first_submit() -> None:
    assert makespan(RUN) == 135.0
    assert math.isnan(makespan([D]))
    assert math.isnan(makespan([]))


def test_window_ranks_jobs_by_submission_half_open() -> None:
    assert [r.job_id for r in in_window(RUN, None)] == ["a", "b", "c", "d"]
    assert [r.job_id for r in in_window(RUN, (1, 3))] == ["b", "c"]
    assert [r.job_id for r in in_window(RUN, (2, 100))] == ["c", "d"]
    assert in_window(RUN, (4, 4)) == []


def test_window_breaks_submission_ties_by_job_id() -> None:
    tied = [job("y", 5, 5, 6), job("x", 5, 5, 6), job("w", 0, 0, 1)]
    assert [r.job_id for r in in_window(tied, (1, 2))] == ["x"]


def test_window_restricts_the_statistics() -> None:
    assert jct_stats(RUN, (1, 3)).mean == pytest.approx(117.5)  # B 120, C 115
    assert wait_stats(RUN, (3, 4)).count == 0  # only D, which never ran
    assert math.isnan(wait_stats(RUN, (3, 4)).mean)


def test_a_reversed_window_is_refused() -> None:
    with pytest.raises(InvalidInput):
        in_window(RUN, (3, 1))
    with pytest.raises(InvalidInput):
        in_window(RUN, (-1, 2))


def test_no_jobs_gives_nan_statistics() -> None:
    assert jct_stats([]).count == 0
    assert math.isnan(jct_stats([]).p99)
    assert math.isnan(slowdown_stats([D]).mean)

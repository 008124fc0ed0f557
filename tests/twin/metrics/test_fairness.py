"""Finish-time fairness (Themis/Gavel), contention, and Jain's index over projects."""

from __future__ import annotations

import math

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.twin.metrics import (
    finish_time_fairness,
    jain_index,
    mean_contention,
    per_share,
    project_gpu_seconds,
    project_mean_slowdown,
)

from .builders import job

# Two 10 s jobs submitted together on a one-GPU cluster: A runs first, B waits for it.
A = job("a", submit=0, start=0, end=10)
B = job("b", submit=0, start=10, end=20)


def test_jain_is_one_for_equal_shares_and_one_over_n_when_one_takes_all() -> None:
    assert jain_index([3.0, 3.0, 3.0]) == pytest.approx(1.0)
    assert jain_index([5.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert jain_index([1.0, 3.0]) == pytest.approx(0.8)  # 4^2 / (2 * (1 + 9))
    assert jain_index([2.0]) == pytest.approx(1.0)


def test_jain_of_nothing_or_all_zero_is_nan_and_negative_is_refused() -> None:
    assert math.isnan(jain_index([]))
    assert math.isnan(jain_index([0.0, 0.0]))
    with pytest.raises(InvalidInput):
        jain_index([1.0, -1.0])


def test_contention_averages_jobs_in_system_over_each_lifetime() -> None:
    # Two jobs in the system on [0, 10), one on [10, 20).
    contention = mean_contention([A, B])
    assert contention["a"] == pytest.approx(2.0)  # 2 * 10 / 10
    assert contention["b"] == pytest.approx(1.5)  # (2 * 10 + 1 * 10) / 20


def test_a_job_that_never_ends_contends_for_ever() -> None:
    stuck = job("c", submit=5, start=None, end=None)
    contention = mean_contention([A, B, stuck])
    assert "c" not in contention  # not completed, so not measured
    assert contention["a"] == pytest.approx(2.5)  # (2 * 5 + 3 * 5) / 10
    assert contention["b"] == pytest.approx(2.25)  # (2 * 5 + 3 * 5 + 2 * 10) / 20


def test_rho_is_jct_over_isolated_time_times_contention() -> None:
    ftf = finish_time_fairness([A, B])
    assert ftf.rho == pytest.approx({"a": 0.5, "b": 4 / 3})  # 10/(10*2), 20/(10*1.5)
    assert ftf.worst == pytest.approx(4 / 3)
    assert ftf.share_unfair == 0.5


def test_rho_uses_the_runtime_at_reference_speed() -> None:
    # Ran 10 s on a fast GPU, but needs 20 s at reference speed: alone, it would be fair at once.
    fast = job("f", submit=0, start=0, end=10, runtime=10, requested=20)
    assert finish_time_fairness([fast]).rho == pytest.approx({"f": 0.5})


def test_rho_takes_given_isolated_times() -> None:
    ftf = finish_time_fairness([A, B], isolated_jct={"a": 5.0, "b": 40.0})
    assert ftf.rho == pytest.approx({"a": 2.0, "b": 0.5})
    with pytest.raises(InvalidInput):
        finish_time_fairness([A, B], isolated_jct={"a": 5.0})


def test_rho_in_a_window_still_counts_contention_from_all_jobs() -> None:
    ftf = finish_time_fairness([A, B], window=(1, 2))
    assert ftf.rho == pytest.approx({"b": 4 / 3})


def test_rho_with_nothing_measurable_is_nan() -> None:
    ftf = finish_time_fairness([job("z", submit=0, start=None, end=None)])
    assert ftf.rho == {}
    assert math.isnan(ftf.worst)
    assert math.isnan(ftf.share_unfair)
    zero = job("0", submit=0, start=0, end=1, runtime=1, requested=0)
    assert finish_time_fairness([zero]).rho == {}


def test_per_project_quantities() -> None:
    jobs = [
        job("a", 0, 0, 100, project="p1", gpu_seconds=100.0),
        job("b", 0, 100, 130, project="p2", gpu_seconds=30.0),  # slowdown 130 / 30
        job("c", 0, 0, 50, project="p1", gpu_seconds=50.0),
        job("d", 0, None, None, project="p3"),
    ]
    assert project_gpu_seconds(jobs) == {"p1": 150.0, "p2": 30.0, "p3": 0.0}
    slowdown = project_mean_slowdown(jobs)
    assert slowdown == pytest.approx({"p1": 1.0, "p2": 130 / 30})  # p3 completed nothing


def test_per_share_divides_by_share_over_projects_with_demand() -> None:
    received = {"p1": 150.0, "p2": 30.0, "p3": 0.0}
    shares = {"p1": 3.0, "p2": 1.0, "p3": 1.0, "idle": 5.0}
    assert per_share(received, shares) == {"p1": 50.0, "p2": 30.0, "p3": 0.0}
    with pytest.raises(InvalidInput):
        per_share(received, {"p1": 0.0})

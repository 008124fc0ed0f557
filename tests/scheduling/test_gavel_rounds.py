"""Gavel's round mechanism: priorities, the greedy selection and the time book-keeping."""

from __future__ import annotations

import random

import numpy as np
import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.scheduling.gavel import (
    TimeShares,
    add_jobs,
    column_order,
    drop_jobs,
    max_min_fairness,
    new_time_shares,
    priorities,
    record_round,
    reset_time_shares,
    select_round,
    should_reset,
)


def ones(jobs: int, columns: int) -> np.ndarray:
    return np.ones((jobs, columns))


def test_new_shares_start_at_half_a_round() -> None:
    shares = new_time_shares(3, 2)
    assert (shares.job_time_s == 180.0).all()
    assert shares.column_time_s.tolist() == [540.0, 540.0]
    assert (shares.deficits_s == 0).all()


def test_priority_is_allocation_over_the_fraction_received() -> None:
    shares = TimeShares(
        job_time_s=np.array([[180.0], [540.0], [180.0]]),
        column_time_s=np.array([900.0]),
        deficits_s=np.zeros((3, 1)),
    )
    alloc = np.array([[0.5], [0.5], [0.0]])
    score = priorities(alloc, shares, ones(3, 1))
    assert score[:, 0] == pytest.approx([0.5 / 0.2, 0.5 / 0.6, 0.0])
    # No time on the column yet: allocation x 1e9; zero throughput or not allocated: 0.
    fresh = TimeShares(np.zeros((2, 1)), np.zeros(1), np.zeros((2, 1)))
    score = priorities([[0.3], [0.3]], fresh, [[1.0], [0.0]])
    assert score[:, 0].tolist() == [0.3e9, 0.0]
    score = priorities([[0.3], [0.3]], fresh, ones(2, 1), in_allocation=[True, False])
    assert score[:, 0].tolist() == [0.3e9, 0.0]


def test_highest_priority_runs_first() -> None:
    shares = new_time_shares(3, 1)
    plan = select_round([[0.2], [0.5], [0.3]], shares, ones(3, 1), [1, 1, 1], [1])
    assert plan.column.tolist() == [-1, 0, -1]
    plan = select_round([[0.2], [0.5], [0.3]], shares, ones(3, 1), [1, 1, 1], [2])
    assert plan.column.tolist() == [-1, 0, 0]
    assert plan.free_gpus.tolist() == [0]


def test_a_job_that_received_more_than_its_share_yields() -> None:
    shares = record_round(new_time_shares(2, 1), [0, -1], [360.0, 0.0])
    plan = select_round([[0.5], [0.5]], shares, ones(2, 1), [1, 1], [1])
    assert plan.column.tolist() == [-1, 0]


def test_ties_go_to_the_deficit_then_the_allocation_then_the_earlier_job() -> None:
    shares = new_time_shares(3, 1)
    plan = select_round([[0.4], [0.4], [0.4]], shares, ones(3, 1), [1, 1, 1], [1])
    assert plan.column.tolist() == [0, -1, -1]
    owed = TimeShares(shares.job_time_s, shares.column_time_s, np.array([[0.0], [5.0], [0.0]]))
    plan = select_round([[0.4], [0.4], [0.4]], owed, ones(3, 1), [1, 1, 1], [1])
    assert plan.column.tolist() == [-1, 0, -1]


def test_zero_throughput_skips_a_column_and_columns_fill_in_order() -> None:
    shares = new_time_shares(2, 2)
    tput = np.array([[0.0, 1.0], [1.0, 1.0]])
    alloc = np.array([[0.0, 1.0], [0.9, 0.1]])
    plan = select_round(alloc, shares, tput, [1, 1], [1, 1])
    assert plan.column.tolist() == [1, 0]
    # Filling column 1 first: job 0 has the larger priority there (1.0 / 0.5 against 0.1 / 0.5).
    plan = select_round(alloc, shares, tput, [1, 1], [1, 1], order=[1, 0])
    assert plan.column.tolist() == [1, 0]


def test_a_job_too_big_for_what_is_left_is_passed_over() -> None:
    shares = new_time_shares(3, 1)
    alloc = np.array([[0.5], [0.4], [0.1]])
    plan = select_round(alloc, shares, ones(3, 1), [2, 4, 1], [4])
    # Job 0 takes 2 GPUs, job 1 (4 GPUs) no longer fits, job 2 takes one more.
    assert plan.column.tolist() == [0, -1, 0]
    assert plan.free_gpus.tolist() == [1]


def test_jobs_with_priority_zero_still_fill_left_over_gpus() -> None:
    shares = new_time_shares(2, 1)
    plan = select_round([[1.0], [0.0]], shares, ones(2, 1), [1, 1], [4])
    assert plan.column.tolist() == [0, 0]


def test_a_job_not_in_the_allocation_holds_its_gpus_idle() -> None:
    shares = new_time_shares(3, 1)
    alloc = np.array([[0.5], [0.0], [0.0]])
    plan = select_round(
        alloc, shares, ones(3, 1), [1, 1, 1], [2], in_allocation=[True, False, True]
    )
    # Job 1 (new, priority 0, deficit 0) comes before job 2 in job order: picked, not run.
    assert plan.column.tolist() == [0, -1, -1]
    assert plan.held.tolist() == [False, True, False]
    assert plan.free_gpus.tolist() == [0]


@pytest.mark.parametrize("seed", range(5))
def test_rounds_never_exceed_capacity(seed: int) -> None:
    rng = np.random.default_rng(seed)
    jobs = 60
    tput = rng.uniform(0.0, 2.0, size=(jobs, 3)) * (rng.random((jobs, 3)) > 0.1)
    scale = rng.choice([1, 2, 4, 8], size=jobs, p=[0.7, 0.1, 0.15, 0.05])
    caps = np.array([16, 12, 8])
    alloc = max_min_fairness(tput, scale, caps).fractions
    shares = new_time_shares(jobs, 3)
    for _ in range(5):
        plan = select_round(alloc, shares, tput, scale, caps, order=[2, 0, 1])
        used = np.zeros(3, dtype=int)
        np.add.at(used, plan.column[plan.column >= 0], scale[plan.column >= 0])
        assert (used <= caps).all()
        assert (used + plan.free_gpus == caps).all()
        assert (tput[plan.column >= 0, plan.column[plan.column >= 0]] > 0).all()
        shares = record_round(shares, plan.column, np.where(plan.column >= 0, 360.0, 0.0))


def test_time_shares_follow_the_allocation_over_rounds() -> None:
    # Three equal jobs, one GPU: round robin, each about a third of the time.
    shares = new_time_shares(3, 1)
    alloc = np.full((3, 1), 1 / 3)
    ran = np.zeros(3)
    previous = np.full(3, -1)
    for _ in range(30):
        plan = select_round(alloc, shares, ones(3, 1), [1, 1, 1], [1], previous=previous)
        ran += plan.column >= 0
        shares = record_round(shares, plan.column, np.where(plan.column >= 0, 360.0, 0.0))
        previous = plan.column
    assert ran.tolist() == [10, 10, 10]


def test_continued_marks_jobs_staying_on_their_column() -> None:
    shares = new_time_shares(2, 2)
    plan = select_round(
        [[1.0, 0.0], [0.0, 1.0]], shares, ones(2, 2), [1, 1], [1, 1], previous=[0, 0]
    )
    assert plan.column.tolist() == [0, 1]
    assert plan.continued.tolist() == [True, False]


def test_reset_moves_the_difference_into_the_deficit() -> None:
    shares = record_round(new_time_shares(2, 1), [0, -1], [720.0, 0.0])
    reset = reset_time_shares(shares, [[0.5], [0.5]], elapsed_s=1000.0)
    # Should have had 500 s each; had 720 and 0.
    assert reset.deficits_s[:, 0].tolist() == [500.0 - 720.0, 500.0]
    assert (reset.job_time_s == 180.0).all()
    assert reset.column_time_s.tolist() == [360.0]


def test_added_and_dropped_jobs() -> None:
    shares = record_round(new_time_shares(2, 1), [0, -1], [100.0, 0.0])
    grown = add_jobs(shares, 1)
    assert grown.job_time_s[:, 0].tolist() == [280.0, 180.0, 180.0]
    assert grown.column_time_s.tolist() == [460.0]  # unchanged until the next reset
    shrunk = drop_jobs(grown, [False, True, True])
    assert shrunk.jobs == 2 and shrunk.column_time_s.tolist() == [460.0]


def test_should_reset_follows_gavels_rule() -> None:
    assert should_reset(100.0, 0.0, jobs_changed=True)  # never reset yet
    assert not should_reset(100.0, 0.0, jobs_changed=False)
    assert not should_reset(2000.0, 1000.0, jobs_changed=True)
    assert should_reset(2920.0, 1000.0, jobs_changed=True)


def test_column_order_is_fixed_or_shuffled_by_the_seeded_rng() -> None:
    assert column_order(3) == [0, 1, 2]
    first = column_order(3, random.Random(5))
    assert first == column_order(3, random.Random(5))
    assert sorted(first) == [0, 1, 2]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"allocation": [[1.0, 0.0]]}, "allocation"),
        ({"scale_factors": [0]}, "scale_factors"),
        ({"capacities": [-1]}, "capacities"),
        ({"order": [0, 0]}, "order"),
        ({"throughputs": [[1.0, 1.0]]}, "throughputs"),
    ],
)
def test_invalid_round_inputs_name_the_field(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {
        "allocation": [[1.0]],
        "shares": new_time_shares(1, 1),
        "throughputs": [[1.0]],
        "scale_factors": [1],
        "capacities": [1],
    }
    arguments.update(kwargs)
    with pytest.raises(InvalidInput, match=f"^{field}: "):
        select_round(**arguments)  # type: ignore[arg-type]

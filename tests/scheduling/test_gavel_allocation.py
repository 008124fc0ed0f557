"""Gavel's allocation LPs: LAS (aware and agnostic) and finish-time fairness, by hand-checked
cases and invariants."""

from __future__ import annotations

import numpy as np
import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.scheduling.gavel import (
    advance_isolated_time,
    finish_time_fairness,
    isolated_throughputs,
    max_min_fairness,
    proportional_throughputs,
)
from aifactories.scheduling.gavel._lp import max_min_lp

EPS = 1e-6
V100, K80 = 0, 1


def random_instance(seed: int, jobs: int = 40, columns: int = 3):
    rng = np.random.default_rng(seed)
    speed = np.array([1.0, 0.6, 0.25])[:columns]
    tput = speed[None, :] * rng.uniform(0.5, 1.5, size=(jobs, columns))
    scale = rng.choice([1.0, 2.0, 4.0], size=jobs, p=[0.7, 0.2, 0.1])
    caps = np.array([8.0, 8.0, 8.0])[:columns]
    weights = rng.choice([1.0, 2.0], size=jobs)
    return tput, scale, caps, weights


def normalised(tput, scale, caps, weights, x):
    prop = proportional_throughputs(tput, caps)
    return (tput * x).sum(axis=1) * scale / (weights * prop)


def test_aware_gives_the_v100_to_the_job_that_gains_from_it() -> None:
    # Job 0 runs 4x faster on the V100; job 1 does not care. One GPU of each.
    tput = np.array([[4.0, 1.0], [1.0, 1.0]])
    x = max_min_fairness(tput, [1, 1], [1, 1]).fractions
    assert x[0, V100] > x[1, V100]
    assert x[1, K80] > x[0, K80]
    assert x[0, V100] > x[0, K80]
    assert x[1, K80] > x[1, V100]


def test_agnostic_gives_equal_time_shares_whatever_the_speeds() -> None:
    tput = np.array([[4.0, 1.0], [1.0, 1.0], [2.0, 0.5], [9.0, 3.0]])
    allocation = max_min_fairness(tput, [1] * 4, [1, 1], heterogeneity_aware=False)
    assert allocation.fractions.sum(axis=1) == pytest.approx([0.5] * 4, abs=EPS)
    assert allocation.value == pytest.approx(0.5, abs=EPS)


def test_hand_checked_weights_on_one_column() -> None:
    # max t: x_i >= t w_i... with weight w the share is w / sum(w): 1/4, 1/4, 1/2.
    allocation = max_min_fairness([[1.0], [1.0], [1.0]], [1, 1, 1], [1], [1.0, 1.0, 2.0])
    assert allocation.fractions[:, 0] == pytest.approx([0.25, 0.25, 0.5], abs=EPS)
    assert allocation.value == pytest.approx(0.25, abs=EPS)


def test_hand_checked_scale_factors_equalise_gpu_time() -> None:
    # A 1-GPU and a 2-GPU job on 2 GPUs: s x equalised, x1 + 2 x2 <= 2 -> x1 = 1, x2 = 0.5.
    allocation = max_min_fairness([[1.0], [1.0]], [1, 2], [2])
    assert allocation.fractions[:, 0] == pytest.approx([1.0, 0.5], abs=EPS)
    assert allocation.value == pytest.approx(1.0, abs=EPS)


def test_hand_checked_two_by_two_optimum() -> None:
    # Proportional throughputs 2.5 and 1: job 1 is bounded by its own time (value <= 1) and
    # job 0 reaches 1 too, so t* = 1 with job 1 busy all the time and both GPUs shared.
    tput = np.array([[4.0, 1.0], [1.0, 1.0]])
    assert proportional_throughputs(tput, [1, 1]) == pytest.approx([2.5, 1.0])
    allocation = max_min_fairness(tput, [1, 1], [1, 1])
    assert allocation.value == pytest.approx(1.0, abs=EPS)
    assert allocation.fractions[1].sum() == pytest.approx(1.0, abs=EPS)
    assert (tput[0] * allocation.fractions[0]).sum() / 2.5 >= 1.0 - EPS


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("aware", [True, False])
def test_allocations_respect_capacity_and_time(seed: int, aware: bool) -> None:
    tput, scale, caps, weights = random_instance(seed)
    x = max_min_fairness(tput, scale, caps, weights, heterogeneity_aware=aware).fractions
    assert (x >= 0).all() and (x <= 1).all()
    assert (x.sum(axis=1) <= 1 + EPS).all()
    assert ((scale[:, None] * x).sum(axis=0) <= caps + EPS).all()


@pytest.mark.parametrize("seed", range(3))
def test_every_job_gets_at_least_the_max_min_value(seed: int) -> None:
    tput, scale, caps, weights = random_instance(seed)
    allocation = max_min_fairness(tput, scale, caps, weights)
    values = normalised(tput, scale, caps, weights, allocation.fractions)
    assert values.min() == pytest.approx(allocation.value, rel=1e-5)


def test_identical_jobs_under_contention_get_equal_values() -> None:
    tput = np.tile([[3.0, 1.0]], (6, 1))
    allocation = max_min_fairness(tput, [1] * 6, [2, 2])
    values = (tput * allocation.fractions).sum(axis=1)
    assert values == pytest.approx([values.mean()] * 6, rel=1e-5)
    # The cluster is full: 4 GPUs for 6 jobs.
    assert allocation.fractions.sum() == pytest.approx(4.0, abs=1e-5)


def test_simplex_reaches_the_same_optimum_as_the_interior_point_method() -> None:
    tput, scale, caps, weights = random_instance(11)
    ipm = max_min_fairness(tput, scale, caps, weights)
    simplex = max_min_fairness(tput, scale, caps, weights, method="simplex")
    assert simplex.value == pytest.approx(ipm.value, rel=1e-6)


def test_same_inputs_same_allocation() -> None:
    tput, scale, caps, weights = random_instance(3)
    a = max_min_fairness(tput, scale, caps, weights).fractions
    b = max_min_fairness(tput, scale, caps, weights).fractions
    assert np.array_equal(a, b)


def test_ftf_favours_the_job_that_has_waited() -> None:
    # One GPU, equal jobs (R = 1000 steps at 1 step/s), one arrived 5000 s ago: rho equal at
    # 1/a = 5 + 1/(1 - a), so a = (7 - sqrt(29)) / 10 and rho = 1/a.
    allocation = finish_time_fairness([[1.0], [1.0]], [1, 1], [1], [1000, 1000], [0, 5000])
    a = (7 - np.sqrt(29)) / 10
    assert allocation.fractions[:, 0] == pytest.approx([a, 1 - a], abs=2e-3)
    assert allocation.value == pytest.approx(1 / a, rel=1e-3)


def test_ftf_gives_equal_rho_to_equal_jobs_and_uses_heterogeneity() -> None:
    tput = np.array([[4.0, 1.0], [1.0, 1.0]])
    allocation = finish_time_fairness(tput, [1, 1], [1, 1], [1000, 1000], [0, 0])
    x = allocation.fractions
    assert x[0, V100] > x[1, V100] and x[1, K80] > x[0, K80]
    # Isolated throughputs 2.5 and 1; job 1 cannot beat rho = 1 (value <= 1 step/s).
    assert allocation.value == pytest.approx(1.0, rel=1e-3)


def test_ftf_agnostic_uses_the_reference_column_everywhere() -> None:
    tput = np.array([[4.0, 1.0], [1.0, 1.0]])
    allocation = finish_time_fairness(
        tput, [1, 1], [1, 1], [1000, 1000], [0, 0], heterogeneity_aware=False
    )
    assert allocation.fractions.sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-3)


@pytest.mark.parametrize("seed", range(3))
def test_ftf_respects_capacity_and_time(seed: int) -> None:
    tput, scale, caps, _ = random_instance(seed)
    rng = np.random.default_rng(seed)
    remaining = rng.uniform(100, 10_000, size=len(scale))
    waited = rng.uniform(0, 50_000, size=len(scale))
    allocation = finish_time_fairness(tput, scale, caps, remaining, waited)
    x = allocation.fractions
    assert (x.sum(axis=1) <= 1 + EPS).all()
    assert ((scale[:, None] * x).sum(axis=0) <= caps + EPS).all()
    assert 1 <= allocation.lp_solves <= 30


def test_isolated_and_proportional_throughputs_follow_gavel() -> None:
    tput = np.array([[4.0, 1.0], [2.0, 2.0]])
    assert proportional_throughputs(tput, [1, 3]) == pytest.approx([7 / 4, 2.0])
    # IsolatedPolicy: cap_j / (m s_i), rows scaled so the largest sums to 1.
    assert isolated_throughputs(tput, [1, 2], [1, 3]) == pytest.approx([7 / 4, 1.0])
    assert advance_isolated_time([10.0, 0.0], [100.0, 50.0], [60.0, 50.0], [2.0, 1.0]) == (
        pytest.approx([30.0, 0.0])
    )


def test_no_jobs_gives_an_empty_allocation() -> None:
    allocation = max_min_fairness(np.zeros((0, 3)), [], [1, 2, 3])
    assert allocation.fractions.shape == (0, 3) and allocation.value is None
    ftf = finish_time_fairness(np.zeros((0, 2)), [], [1, 1], [], [])
    assert ftf.fractions.shape == (0, 2) and ftf.value is None


def test_a_job_that_cannot_run_anywhere_gets_nothing_and_leaves_the_objective() -> None:
    tput = np.array([[1.0, 1.0], [0.0, 0.0], [2.0, 0.0]])
    allocation = max_min_fairness(tput, [1, 1, 8], [1, 1])
    assert allocation.runnable.tolist() == [True, False, False]  # job 2 needs 8 GPUs
    assert allocation.fractions[1:].sum() == 0.0
    assert allocation.fractions[0].sum() == pytest.approx(1.0, abs=EPS)


def test_zero_capacity_everywhere_gives_no_allocation() -> None:
    allocation = max_min_fairness([[1.0, 2.0]], [1], [0, 0])
    assert allocation.value is None and not allocation.runnable.any()
    assert allocation.fractions.sum() == 0.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"throughputs": [1.0, 2.0]}, "throughputs"),
        ({"throughputs": [[-1.0]]}, "throughputs"),
        ({"throughputs": [[float("nan")]]}, "throughputs"),
        ({"scale_factors": [0]}, "scale_factors"),
        ({"scale_factors": [1, 1]}, "scale_factors"),
        ({"capacities": [-1]}, "capacities"),
        ({"weights": [0.0]}, "weights"),
        ({"throughputs": np.zeros((1, 0)), "capacities": []}, "capacities"),
    ],
)
def test_invalid_inputs_name_the_field(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {
        "throughputs": [[1.0]],
        "scale_factors": [1],
        "capacities": [1],
        "weights": [1.0],
    }
    arguments.update(kwargs)
    with pytest.raises(InvalidInput, match=f"^{field}: "):
        max_min_fairness(**arguments)  # type: ignore[arg-type]


def test_ftf_needs_remaining_work() -> None:
    with pytest.raises(InvalidInput, match="remaining_work"):
        finish_time_fairness([[1.0]], [1], [1], [0.0], [0.0])
    with pytest.raises(InvalidInput, match="reference_column"):
        finish_time_fairness(
            [[1.0]], [1], [1], [1.0], [0.0], heterogeneity_aware=False, reference_column=3
        )


def test_identical_columns_are_pooled_and_split_by_capacity() -> None:
    # Columns 0 and 1 are the same GPU model (same throughput for every job): exact pooling.
    tput = np.array([[2.0, 2.0, 1.0], [1.0, 1.0, 1.0], [3.0, 3.0, 0.5]])
    caps = np.array([1.0, 3.0, 2.0])
    allocation = max_min_fairness(tput, [1, 1, 1], caps)
    x = allocation.fractions
    assert x[:, 1] == pytest.approx(3 * x[:, 0], abs=EPS)
    unpooled = max_min_fairness(tput[:, [0, 2]], [1, 1, 1], caps[[0, 2]] + [3.0, 0.0])
    assert allocation.value == pytest.approx(unpooled.value, rel=1e-6)


def test_ftf_matches_a_fine_bisection_on_a_contended_instance() -> None:
    tput, scale, caps, _ = random_instance(5, jobs=30)
    rng = np.random.default_rng(5)
    remaining = rng.uniform(1_000, 10_000, size=30)
    waited = rng.uniform(0, 20_000, size=30)
    allocation = finish_time_fairness(tput, scale, caps, remaining, waited)
    iso = isolated_throughputs(tput, scale, caps)
    denominator = remaining / iso

    def reachable(c: float) -> bool:
        # rho_i <= c for all i iff the max-min LP with needed_i(c) reaches ratio >= 1.
        needed = remaining / (c * denominator - waited)
        coefficients = tput / iso[:, None]
        _, ratio, _, _ = max_min_lp(
            coefficients, needed / iso, scale, caps, np.ones(30, dtype=bool), "ipm"
        )
        return ratio is not None and ratio >= 1.0

    assert allocation.value is not None
    assert reachable(allocation.value * (1 + 1e-6))
    assert not reachable(allocation.value * (1 - 1e-3))

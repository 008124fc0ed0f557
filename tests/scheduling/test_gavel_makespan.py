"""Gavel's makespan allocation (min_total_duration): the least time in which every job can
finish, checked by hand and against the bound that total work over capacity gives."""

from __future__ import annotations

import numpy as np
import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.scheduling.gavel.makespan import min_total_duration


def test_one_gpu_shared_in_proportion_to_the_work_left() -> None:
    # 400 s of work on one GPU: nothing finishes both before 400 s.
    allocation = min_total_duration([[1.0], [1.0]], [1, 1], [1], [100.0, 300.0])
    assert allocation.value == pytest.approx(400.0, rel=1e-4)
    assert allocation.fractions[:, 0] == pytest.approx([0.25, 0.75], abs=1e-3)


def test_the_fast_gpu_goes_to_the_job_that_gains_most_from_it() -> None:
    # A runs 10x slower on the K80, B only 1.25x. Hand-solved: A has the V100 for 1 - e of
    # the time and B for e, B the K80 otherwise; both finish together when
    # 1 - 0.9 e = 0.8 + 0.2 e, e = 0.2 / 1.1, so T = 100 / (1 - 0.9 e).
    tput = [[1.0, 0.1], [1.0, 0.8]]
    aware = min_total_duration(tput, [1, 1], [1, 1], [100.0, 100.0])
    e = 0.2 / 1.1
    assert aware.value == pytest.approx(100 / (1 - 0.9 * e), rel=1e-4)
    assert aware.fractions[0, 0] == pytest.approx(1 - e, abs=1e-3)
    assert aware.fractions[1, 1] == pytest.approx(1 - e, abs=1e-3)
    # The agnostic policy sees two equal GPUs: its plan's promise (100 s) is not what the
    # GPUs deliver, and the allocation it makes does worse than the aware one in truth.
    agnostic = min_total_duration(tput, [1, 1], [1, 1], [100.0, 100.0], heterogeneity_aware=False)
    assert agnostic.value == pytest.approx(100.0, rel=1e-4)
    delivered = (np.asarray(tput) * agnostic.fractions).sum(axis=1)
    assert (100.0 / delivered).max() > aware.value


def test_gang_jobs_take_their_scale_factor_of_a_column() -> None:
    # A 2-GPU job and a 1-GPU job on 2 GPUs: 2 x 100 + 100 = 300 GPU-seconds on 2 GPUs. The LP
    # is Gavel's fluid model (time fractions, capacity in GPUs): T = 150, with the 2-GPU job
    # charged 2 GPUs for each of its time units.
    allocation = min_total_duration([[1.0], [1.0]], [2, 1], [2], [100.0, 100.0])
    assert allocation.value == pytest.approx(150.0, rel=1e-4)
    assert allocation.fractions[:, 0] == pytest.approx([2 / 3, 2 / 3], abs=1e-3)


def test_jobs_that_cannot_run_or_are_done_get_no_time() -> None:
    allocation = min_total_duration(
        [[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]], [1, 1, 1], [1, 1], [100.0, 100.0, 0.0]
    )
    assert allocation.runnable.tolist() == [True, False, False]
    assert allocation.fractions[1:].sum() == pytest.approx(0.0, abs=1e-9)
    assert allocation.value == pytest.approx(100.0, rel=1e-4)
    empty = min_total_duration(np.zeros((0, 2)), np.zeros(0), [1, 1], np.zeros(0))
    assert empty.value is None


def test_never_above_capacity_and_never_faster_than_the_work_allows() -> None:
    rng = np.random.default_rng(3)
    tput = np.array([1.0, 0.6, 0.25])[None, :] * rng.uniform(0.5, 1.5, size=(30, 3))
    scale = rng.choice([1.0, 2.0, 4.0], size=30)
    caps = np.array([8.0, 8.0, 8.0])
    remaining = rng.uniform(100, 1000, size=30)
    allocation = min_total_duration(tput, scale, caps, remaining)
    x = allocation.fractions
    assert (scale @ x <= caps + 1e-6).all() and (x.sum(axis=1) <= 1 + 1e-6).all()
    assert allocation.value is not None
    # every job finishes by T under x ...
    assert ((tput * x).sum(axis=1) * allocation.value >= remaining * (1 - 1e-4)).all()
    # ... and no schedule beats the work over the fastest capacity
    assert allocation.value >= (scale * remaining / tput.max(axis=1)).sum() / caps.sum()


def test_remaining_work_is_checked() -> None:
    with pytest.raises(InvalidInput, match="remaining_work"):
        min_total_duration([[1.0]], [1], [1], [-1.0])

"""Gavel's makespan policy (``min_total_duration.py``: MinTotalDurationPolicyWithPerf, and the
agnostic MinTotalDurationPolicy), as one linear program solved by HiGHS.

Gavel looks for the least time ``T`` in which every active job can finish::

    minimise   T
    subject to sum_j T[i,j] x[i,j] >= R[i] / T     for every job i
               x >= 0,  sum_j x[i,j] <= 1,  sum_i s[i] x[i,j] <= cap[j]

with ``R[i]`` the job's remaining work (steps) and ``T[i,j]`` its throughput on column ``j``
(see :mod:`.allocation` for the columns and the other inputs). The agnostic policy uses the
job's throughput on the reference worker type (the V100) for every column.

Gavel bisects ``T`` with a feasibility problem per step (cvxpy, ``1.05 * min_T < max_T``: an
answer within 5% of the least ``T``, any feasible ``x``). Here the same problem is solved
exactly in one LP: with ``t = 1 / T`` the constraints are ``sum_j T[i,j] x[i,j] >= R[i] t``,
and maximising ``t`` is the max-min LP every Gavel policy here shares
(:func:`~aifactories.scheduling.gavel._lp.max_min_lp`), so ``T* = 1 / t*``. HiGHS's interior
point (no crossover) returns a point inside the optimal face, as ECOS would; Gavel's 5% of
slack in ``T`` is not reproduced (its allocation may leave each job up to 5% short of what
the least ``T`` needs).
"""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import ArrayLike

from aifactories.scheduling.gavel._lp import Method, max_min_lp
from aifactories.scheduling.gavel.allocation import (
    Allocation,
    _inputs,
    _runnable,
    _since,
    _vector,
)


def min_total_duration(
    throughputs: ArrayLike,
    scale_factors: ArrayLike,
    capacities: ArrayLike,
    remaining_work: ArrayLike,
    *,
    heterogeneity_aware: bool = True,
    method: Method = "ipm",
) -> Allocation:
    """Gavel's makespan allocation (see the module docstring). ``remaining_work`` is in the
    unit of work the throughputs are per second of (steps, or seconds at reference speed with
    relative speeds); :attr:`Allocation.value` is the least time ``T`` in seconds in which
    every runnable job can finish under the allocation (None when none is runnable)."""
    started = time.perf_counter()
    tput, scale, caps = _inputs(throughputs, scale_factors, capacities)
    m = tput.shape[0]
    remaining = _vector("remaining_work", remaining_work, m)
    if not heterogeneity_aware:
        # Gavel's agnostic policy: every column at the reference speed, where the job can run.
        tput = (tput > 0).astype(np.float64)
    runnable = _runnable(tput, scale, caps) & (remaining > 0)
    x, value, _, _ = max_min_lp(tput, remaining, scale, caps, runnable, method)
    makespan = None if value is None or value <= 0 else 1.0 / value
    return Allocation(x, makespan, runnable, 1 if value is not None else 0, _since(started))

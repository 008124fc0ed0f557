"""Gavel's allocation policies as linear programs over (site, partition) columns, solved by HiGHS.

Gavel (Narayanan et al., OSDI'20; stanford-futuredata/gavel, ``scheduler/policies/``) computes,
for every active job ``i`` and worker type ``j``, the fraction of time ``x[i, j]`` the job should
run there. Here the worker types (v100, p100, k80) are this project's columns, one per
(site, partition), and a column's capacity is its GPU count. Inputs are dense arrays, ``m``
jobs by ``n`` columns: ``T[i, j]`` the job's throughput on the column (any unit, 0 where it
cannot run), ``s[i]`` its scale factor (GPUs), ``w[i]`` its priority weight, ``cap[j]``.

Reproduced (``max_min_fairness.py``, ``proportional.py``, ``finish_time_fairness.py``,
``isolated.py``, ``policy.py``), with ``C = sum_j cap[j]``::

    LAS, aware (MaxMinFairnessPolicyWithPerf)
        maximise   min_i  sum_j  T[i,j] * s[i] / (w[i] * P[i]) * x[i,j]
        subject to x >= 0,  sum_j x[i,j] <= 1,  sum_i s[i] * x[i,j] <= cap[j]
        where P[i] = sum_j T[i,j] * cap[j] / C   (ProportionalPolicy: time spread as capacity)
    LAS, agnostic (MaxMinFairnessPolicy): the same LP with every throughput replaced by 1,
        so it equalises s[i] / w[i] times the job's total time share.
    FTF (FinishTimeFairnessPolicyWithPerf)
        minimise   max_i  rho_i(x)
        rho_i(x) = (t[i] + R[i] / sum_j T[i,j] x[i,j]) / (I[i] + R[i] / iso[i])
        subject to the same constraints; t = time since arrival, R = remaining work (steps),
        I = the isolated time already accumulated (see :func:`advance_isolated_time`) and
        iso[i] = sum_j T[i,j] * cap[j] * min_k s[k] / (C * s[i])   (IsolatedPolicy, after its
        row normalisation; the 1/m share cancels there, as in Gavel's code).
        Gavel ignores priority weights in FTF (a TODO in its code); ``weights`` here divide rho.

Simplified or different, on purpose:

- Gavel's cvxpy model is solved by ECOS, an interior-point method whose answer lies inside the
  optimal face. HiGHS's interior-point solver without crossover gives the same kind of answer
  (``method="ipm"``, the default); ``method="simplex"`` returns a vertex instead (and is slower).
- FTF is a convex but not linear program. It is solved as a sequence of max-min LPs: for a
  bound c, ``rho_i <= c`` is ``sum_j T[i,j] x[i,j] >= R[i] / (c D[i] - t[i])`` (D the
  denominator), so the LP maximising the least ratio of achieved to needed throughput tells
  whether c is reachable; c then becomes the allocation's own worst rho (a Dinkelbach-type
  iteration). It stops when the worst rho is within :data:`FTF_TOLERANCE` of a lower bound
  that the LP's duals certify (usually after 2 LPs).
- Columns whose throughputs are equal for every job (partitions of one GPU model) are pooled
  into one LP column and the pool's time is split in proportion to capacity: an exact
  reduction (Gavel's worker types are always distinct).
- Where ``T[i, j] = 0`` there is no variable: Gavel's LP keeps one (it can hold wasted time on
  a GPU the job cannot use; its rounds never run it there). In the agnostic LPs the throughput
  becomes 1 where it is positive and stays 0 elsewhere (a job the twin cannot place on a column).
- A job that cannot run anywhere (no column with positive throughput and capacity >= its scale
  factor) gets no time and leaves the objective, instead of dragging the max-min value to 0
  (Gavel divides by zero there); :attr:`Allocation.runnable` says which.
- Gavel's space-sharing ("packed") and water-filling variants are not reproduced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aifactories.domain.errors import InvalidInput
from aifactories.scheduling.gavel._lp import AllocationError, Method, max_min_lp

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
__all__ = [
    "Allocation",
    "AllocationError",
    "Method",
    "advance_isolated_time",
    "finish_time_fairness",
    "isolated_throughputs",
    "max_min_fairness",
    "proportional_throughputs",
]

FTF_MAX_ITERATIONS = 30
FTF_TOLERANCE = 1e-4
"""The FTF iteration stops once the worst rho is within this fraction of a lower bound on the
optimum that the last LP's duals certify."""


@dataclass(frozen=True, slots=True, eq=False)
class Allocation:
    """The time fraction ``fractions[i, j]`` job ``i`` should spend on column ``j``.

    ``value`` is the LP's optimum: for LAS the least normalised throughput ``t*``; for FTF the
    largest rho (divided by the weight). None when no job is runnable. ``lp_solves`` counts the
    LPs (1 for LAS), ``solve_s`` their wall-clock time, model building included.
    """

    fractions: FloatArray
    value: float | None
    runnable: BoolArray
    lp_solves: int
    solve_s: float


def proportional_throughputs(throughputs: ArrayLike, capacities: ArrayLike) -> FloatArray:
    """Gavel's ProportionalPolicy throughput: ``sum_j T[i,j] * cap[j] / sum_j cap[j]``."""
    tput = _matrix("throughputs", throughputs)
    caps = _vector("capacities", capacities, tput.shape[1])
    total = float(caps.sum())
    if total <= 0:
        return np.zeros(tput.shape[0])
    return np.asarray(tput @ caps / total, dtype=np.float64)


def isolated_throughputs(
    throughputs: ArrayLike, scale_factors: ArrayLike, capacities: ArrayLike
) -> FloatArray:
    """Gavel's IsolatedPolicy throughput, FTF's reference: ``x[i,j] = cap[j] / (m s[i])``
    normalised so the largest row sums to 1, i.e. ``sum_j T[i,j] cap[j] min(s) / (C s[i])``."""
    tput = _matrix("throughputs", throughputs)
    m = tput.shape[0]
    scale = _vector("scale_factors", scale_factors, m, positive=True)
    if m == 0:
        return np.zeros(0)
    share = proportional_throughputs(tput, capacities) * (scale.min() / scale)
    return np.asarray(share, dtype=np.float64)


def advance_isolated_time(
    isolated_time_s: ArrayLike,
    previous_remaining: ArrayLike,
    remaining: ArrayLike,
    previous_isolated_throughputs: ArrayLike,
) -> FloatArray:
    """Gavel's FTF bookkeeping between two allocations: the time the work done since the last
    one would have taken at the isolated throughput then, added to each job's account.
    (A new job's account starts at 0 and is advanced from its second allocation on.)"""
    done = np.asarray(previous_remaining, dtype=np.float64) - np.asarray(remaining, np.float64)
    iso = np.asarray(previous_isolated_throughputs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        gained = np.where(iso > 0, done / iso, 0.0)
    return np.asarray(isolated_time_s, dtype=np.float64) + gained


def max_min_fairness(
    throughputs: ArrayLike,
    scale_factors: ArrayLike,
    capacities: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    heterogeneity_aware: bool = True,
    method: Method = "ipm",
) -> Allocation:
    """Gavel's LAS: heterogeneity-aware (``max_min_fairness_perf``) or agnostic
    (``max_min_fairness``) weighted max-min fairness; see the module docstring."""
    started = time.perf_counter()
    tput, scale, caps = _inputs(throughputs, scale_factors, capacities)
    m = tput.shape[0]
    weight = np.ones(m) if weights is None else _vector("weights", weights, m, positive=True)
    if not heterogeneity_aware:
        tput = (tput > 0).astype(np.float64)
    runnable = _runnable(tput, scale, caps)
    proportional = proportional_throughputs(tput, caps)
    coefficients = np.zeros_like(tput)
    rows = np.flatnonzero(runnable)
    coefficients[rows] = tput[rows] * (scale[rows] / (weight[rows] * proportional[rows]))[:, None]
    x, value, _, _ = max_min_lp(coefficients, np.ones(m), scale, caps, runnable, method)
    return Allocation(x, value, runnable, 1 if value is not None else 0, _since(started))


def finish_time_fairness(
    throughputs: ArrayLike,
    scale_factors: ArrayLike,
    capacities: ArrayLike,
    remaining_work: ArrayLike,
    time_since_arrival_s: ArrayLike,
    isolated_time_s: ArrayLike | None = None,
    *,
    isolated_throughput: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    heterogeneity_aware: bool = True,
    reference_column: int = 0,
    method: Method = "ipm",
) -> Allocation:
    """Gavel's finish-time fairness (``finish_time_fairness_perf``; the agnostic
    ``finish_time_fairness`` with ``heterogeneity_aware=False``, which, as Gavel does with
    'v100', gives every usable column the job's throughput on ``reference_column``).

    ``remaining_work`` is in the throughputs' unit times seconds (steps); ``isolated_time_s``
    is Gavel's cumulative isolated time (0 for a new job); ``isolated_throughput`` overrides
    the reference :func:`isolated_throughputs`.
    """
    started = time.perf_counter()
    tput, scale, caps = _inputs(throughputs, scale_factors, capacities)
    m, n = tput.shape
    remaining = _vector("remaining_work", remaining_work, m, positive=True)
    waited = _vector("time_since_arrival_s", time_since_arrival_s, m)
    banked = (
        np.zeros(m) if isolated_time_s is None else _vector("isolated_time_s", isolated_time_s, m)
    )
    weight = np.ones(m) if weights is None else _vector("weights", weights, m, positive=True)
    if not heterogeneity_aware:
        if not 0 <= reference_column < n:
            raise InvalidInput("reference_column", f"must be a column index below {n}")
        tput = np.where(tput > 0, tput[:, [reference_column]], 0.0)
    iso = (
        isolated_throughputs(tput, scale, caps)
        if isolated_throughput is None
        else _vector("isolated_throughput", isolated_throughput, m)
    )
    runnable = _runnable(tput, scale, caps) & (iso > 0)
    if not runnable.any():
        return Allocation(np.zeros((m, n)), None, runnable, 0, _since(started))
    iso_safe = np.where(iso > 0, iso, 1.0)
    denominator = banked + remaining / iso_safe
    # Rows are divided by the isolated throughput so both sides are dimensionless.
    coefficients = np.where(runnable[:, None], tput / iso_safe[:, None], 0.0)

    def worst(x: FloatArray) -> float:
        achieved = (tput * x).sum(axis=1)[runnable]
        if (achieved <= 0).any():
            return float("inf")
        rho = (waited[runnable] + remaining[runnable] / achieved) / denominator[runnable]
        return float((rho / weight[runnable]).max())

    def lower_bound(job_duals: FloatArray, column_duals: FloatArray) -> float:
        """A bound no allocation beats, from any y, v >= 0 (LP duality): with u_i the least
        value making u_i + s_i v_j >= y_i a_ij wherever x_ij exists, every feasible x has
        sum_i y_i a_i.x_i <= K = sum u + sum v cap, so rho_i / w_i <= c for all i needs
        g(c) = sum_i y_i needed_i(c) <= K; g falls with c, so bisect for the least such c."""
        usable = (coefficients > 0) & (caps > 0)[None, :]
        reduced = job_duals[:, None] * coefficients - scale[:, None] * column_duals[None, :]
        u = np.where(usable, reduced, 0.0).max(axis=1).clip(min=0.0)
        budget = float(u.sum() + column_duals @ caps)
        support = runnable & (job_duals > 0)
        if not support.any():
            return 0.0
        y, wd, t, r = (a[support] for a in (job_duals, weight * denominator, waited, remaining))
        r = r / iso_safe[support]
        low, high = float((t / wd).max()), best
        if float((y * r / np.maximum(high * wd - t, 1e-300)).sum()) > budget:
            return low  # rounding: no useful bound
        for _ in range(60):
            middle = 0.5 * (low + high)
            if float((y * r / np.maximum(middle * wd - t, 1e-300)).sum()) <= budget:
                high = middle
            else:
                low = middle
        return low

    # First LP: the limit of large c, throughput needed in proportion to R / (w D).
    needed = remaining / iso_safe / (weight * denominator)
    best_x, _, job_duals, column_duals = max_min_lp(
        coefficients, needed, scale, caps, runnable, method
    )
    best = worst(best_x)
    solves = 1
    while solves < FTF_MAX_ITERATIONS and np.isfinite(best):
        if best - lower_bound(job_duals, column_duals) <= FTF_TOLERANCE * best:
            break
        # rho_i / w_i <= c  <=>  achieved_i >= R_i / (c w_i D_i - t_i)  (positive: c >= rho_i/w_i)
        slack = np.maximum(best * weight * denominator - waited, 1e-12 * denominator)
        x, ratio, job_duals, column_duals = max_min_lp(
            coefficients, remaining / iso_safe / slack, scale, caps, runnable, method
        )
        solves += 1
        value = worst(x)
        if value < best:
            best_x, best = x, value
        if ratio is None or ratio <= 1.0 + 1e-9:
            break
    return Allocation(best_x, best, runnable, solves, _since(started))


def _inputs(
    throughputs: ArrayLike, scale_factors: ArrayLike, capacities: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    tput = _matrix("throughputs", throughputs)
    m, n = tput.shape
    if n == 0:
        raise InvalidInput("capacities", "must list at least one column")
    return (
        tput,
        _vector("scale_factors", scale_factors, m, positive=True),
        _vector("capacities", capacities, n),
    )


def _runnable(tput: FloatArray, scale: FloatArray, caps: FloatArray) -> BoolArray:
    fits = (tput > 0) & (caps[None, :] >= scale[:, None])
    return np.asarray(fits.any(axis=1), dtype=np.bool_)


def _matrix(field: str, value: ArrayLike) -> FloatArray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2:
        raise InvalidInput(field, f"must be a jobs x columns matrix, got shape {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any():
        raise InvalidInput(field, "every entry must be finite and >= 0")
    return array


def _vector(field: str, value: ArrayLike, size: int, *, positive: bool = False) -> FloatArray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (size,):
        raise InvalidInput(field, f"must have {size} entries, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InvalidInput(field, "every entry must be finite")
    if positive and (array <= 0).any():
        raise InvalidInput(field, "every entry must be > 0")
    if not positive and (array < 0).any():
        raise InvalidInput(field, "every entry must be >= 0")
    return array


def _since(started: float) -> float:
    return time.perf_counter() - started

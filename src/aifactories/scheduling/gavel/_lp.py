"""The max-min LP under every Gavel allocation, built column-wise with numpy and solved by HiGHS
(see :mod:`.allocation` for the policies and what differs from Gavel's cvxpy models)."""

from __future__ import annotations

from typing import Any, Literal

import highspy
import numpy as np
from numpy.typing import NDArray

from aifactories.domain.errors import AifError
from aifactories.scheduling.lp_solver import new_highs

Method = Literal["ipm", "simplex"]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


class AllocationError(AifError):
    """HiGHS could not solve an allocation LP (it says why); the inputs were valid."""

    code = "allocation_error"


def max_min_lp(
    coefficients: FloatArray,
    needed: FloatArray,
    scale: FloatArray,
    caps: FloatArray,
    runnable: BoolArray,
    method: Method,
) -> tuple[FloatArray, float | None, FloatArray, FloatArray]:
    """:func:`_pooled_lp` after pooling the columns whose coefficients are the same for every
    job (partitions of one GPU model, say): an exact reduction, the pool's time then split
    in proportion to capacity. Columns without capacity are left out."""
    m, n = coefficients.shape
    x = np.zeros((m, n))
    columns = np.flatnonzero(caps > 0)
    if columns.size == 0:
        return x, None, np.zeros(m), np.zeros(n)
    _, first, group = np.unique(
        coefficients[:, columns].T, axis=0, return_index=True, return_inverse=True
    )
    group = group.reshape(-1)
    pooled_caps = np.asarray(np.bincount(group, weights=caps[columns]), dtype=np.float64)
    pooled, value, job_duals, pool_duals = _pooled_lp(
        coefficients[:, columns[first]], needed, scale, pooled_caps, runnable, method
    )
    x[:, columns] = pooled[:, group] * (caps[columns] / pooled_caps[group])[None, :]
    column_duals = np.zeros(n)
    column_duals[columns] = pool_duals[group]
    return x, value, job_duals, column_duals


def _pooled_lp(
    coefficients: FloatArray,
    needed: FloatArray,
    scale: FloatArray,
    caps: FloatArray,
    runnable: BoolArray,
    method: Method,
) -> tuple[FloatArray, float | None, FloatArray, FloatArray]:
    """Maximise t subject to ``sum_j a[i,j] x[i,j] >= needed[i] t`` for runnable jobs, each
    job's time ``<= 1`` and each column's GPUs ``<= cap``; returns x (clipped to [0, 1]), t and
    the magnitudes of the duals of the objective rows (per job) and capacity rows (per column).

    Rows: m job-time rows, n capacity rows, one objective row per runnable job. Columns: one
    per (job, column) pair with a positive coefficient, then t. Built column-wise with numpy.
    """
    m, n = coefficients.shape
    x = np.zeros((m, n))
    usable = (coefficients > 0) & runnable[:, None] & (caps > 0)[None, :]
    jobs, cols = np.nonzero(usable)
    k = jobs.size
    if k == 0:
        return x, None, np.zeros(m), np.zeros(n)
    objective_row = np.full(m, -1, dtype=np.int64)
    objective_row[runnable] = np.arange(int(runnable.sum()))
    r = int(runnable.sum())
    num_rows = m + n + r
    index = np.empty(3 * k + r, dtype=np.int32)
    value = np.empty(3 * k + r)
    index[0 : 3 * k : 3] = jobs
    index[1 : 3 * k : 3] = m + cols
    index[2 : 3 * k : 3] = m + n + objective_row[jobs]
    value[0 : 3 * k : 3] = 1.0
    value[1 : 3 * k : 3] = scale[jobs]
    value[2 : 3 * k : 3] = coefficients[jobs, cols]
    index[3 * k :] = m + n + np.arange(r)
    value[3 * k :] = -needed[runnable]
    start = np.append(np.arange(0, 3 * k + 1, 3), 3 * k + r).astype(np.int32)
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_ = k + 1
    lp.num_row_ = num_rows
    lp.col_cost_ = np.append(np.zeros(k), 1.0)
    lp.col_lower_ = np.zeros(k + 1)
    lp.col_upper_ = np.append(np.ones(k), inf)
    lp.row_lower_ = np.concatenate([np.full(m + n, -inf), np.zeros(r)])
    lp.row_upper_ = np.concatenate([np.ones(m), caps, np.full(r, inf)])
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    solution, duals = _solve(lp, method)
    x[jobs, cols] = np.clip(solution[:k], 0.0, 1.0)
    job_duals = np.zeros(m)
    job_duals[runnable] = np.abs(duals[m + n :])
    return x, float(solution[k]), job_duals, np.abs(duals[m : m + n])


def _solve(lp: Any, method: Method) -> tuple[FloatArray, FloatArray]:
    highs = new_highs(solver=method)
    if method == "ipm":
        # Keep the interior solution (as ECOS gives) and the problem exactly as formulated.
        highs.setOptionValue("run_crossover", "off")
        highs.setOptionValue("presolve", "off")
    highs.passModel(lp)
    highs.run()
    status = highs.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal and method == "ipm":
        return _solve(lp, "simplex")  # rare numerical trouble: a vertex is still an optimum
    if status != highspy.HighsModelStatus.kOptimal:
        raise AllocationError(
            f"HiGHS could not solve the allocation LP ({lp.num_row_} rows, {lp.num_col_} "
            f"columns): {highs.modelStatusToString(status)}"
        )
    solution = highs.getSolution()
    duals = solution.row_dual if solution.dual_valid else np.zeros(lp.num_row_)
    return (
        np.asarray(solution.col_value, dtype=np.float64),
        np.asarray(duals, dtype=np.float64),
    )

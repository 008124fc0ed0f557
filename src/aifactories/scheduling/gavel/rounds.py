"""Gavel's round-based mechanism, pure: which jobs run on which column in the next round.

Gavel (stanford-futuredata/gavel, ``scheduler/scheduler.py``) runs jobs in rounds of
``time_per_iteration`` = 360 s. Reproduced, as its simulator does it:

- Book-keeping per column since the last *reset* (:class:`TimeShares`): ``job_time[i, j]``
  starts at half a round (180 s) for every job and column, ``column_time[j]`` at the sum of
  those starts; after a round each job that ran adds its execution time (once, not once per
  GPU) to both (``_done_callback``). A job that ends leaves its row, not its share of
  ``column_time``. :func:`record_round`, :func:`add_jobs`, :func:`drop_jobs`.
- Reset (``_reset_time_run_so_far``): ``deficit += allocation * elapsed - (job_time - 180)``,
  then every ``job_time`` back to 180 s. Gavel resets, and only then recomputes the allocation,
  when jobs arrived or ended since the last allocation *and* at least
  ``minimum_time_between_allocation_resets`` = 1920 s passed since the last reset (or no reset
  ever moved the clock: its ``last_reset_time == 0`` test). :func:`should_reset`,
  :func:`reset_time_shares`; the reset uses the *old* allocation.
- Priority (``_update_priorities``): ``fraction = job_time / column_time`` (0 when the column
  has no time yet); priority = 0 where the allocation is 0 or the throughput is 0 or the job is
  not in the current allocation (it arrived after it was computed), else ``allocation /
  fraction``, or ``allocation * 1e9`` when the fraction is 0. :func:`priorities`.
- Selection (``_schedule_jobs_on_workers_helper``): columns in a fixed order (Gavel: v100, p100,
  k80, fastest first; shuffled every round for the heterogeneity-agnostic policies, see
  :func:`column_order`); within a column the jobs sorted by (priority, deficit, allocation),
  highest first, ties in job order (Gavel's stable sort over arrival order). Each job in turn
  takes ``scale_factor`` GPUs there if it has not been picked yet, its throughput there is
  positive and enough GPUs are left; otherwise the next job is tried. Jobs with priority 0 still
  fill GPUs left over. :func:`select_round`.
- A job picked this way that is not in the current allocation is not dispatched (Gavel's
  placement step skips it) but its GPUs stay unused for the round: :attr:`RoundPlan.held`.

Not reproduced: worker ids and servers. Gavel keeps a job on the very same GPUs when it runs on
the same type again (lease extension) and places multi-GPU jobs largest first, packed by server;
its selection never prefers a job's previous type. The twin places a job on a column (a
partition), so :attr:`RoundPlan.continued` only reports which jobs stay where they were.
Space sharing (job pairs) and Gavel's global-queue option are not reproduced either.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aifactories.domain.errors import InvalidInput

TIME_PER_ROUND_S = 360.0
"""Gavel's ``time_per_iteration`` in its simulations."""
MIN_TIME_BETWEEN_RESETS_S = 1920.0
"""Gavel's ``minimum_time_between_allocation_resets`` (its Scheduler's default)."""
UNSEEN_PRIORITY_FACTOR = 1e9
"""Gavel: a job with allocation but no time yet gets ``allocation * 1e9``, not infinity."""

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class TimeShares:
    """Per-column time since Gavel's last reset: ``job_time_s`` (jobs x columns, with the
    half-round start), ``column_time_s`` (columns) and ``deficits_s`` (jobs x columns)."""

    job_time_s: FloatArray
    column_time_s: FloatArray
    deficits_s: FloatArray

    @property
    def jobs(self) -> int:
        return int(self.job_time_s.shape[0])


@dataclass(frozen=True, slots=True, eq=False)
class RoundPlan:
    """The next round: ``column[i]`` the column job ``i`` runs on, -1 if it does not run.

    ``held[i]``: picked by the selection but not dispatched, its GPUs idle this round (Gavel,
    for a job not in the current allocation). ``continued[i]``: runs on the same column as in
    the previous round. ``free_gpus[j]``: GPUs of column ``j`` nobody uses this round.
    """

    column: IntArray
    held: BoolArray
    continued: BoolArray
    free_gpus: IntArray


def new_time_shares(
    jobs: int, columns: int, time_per_round_s: float = TIME_PER_ROUND_S
) -> TimeShares:
    """The book-keeping at the first reset: every job starts with half a round everywhere."""
    half = time_per_round_s / 2.0
    return TimeShares(
        np.full((jobs, columns), half), np.full(columns, half * jobs), np.zeros((jobs, columns))
    )


def add_jobs(
    shares: TimeShares, count: int, time_per_round_s: float = TIME_PER_ROUND_S
) -> TimeShares:
    """Jobs that arrived: new rows at the end (half a round each, no deficit); the columns'
    time does not grow until the next reset (Gavel's ``add_job``)."""
    columns = shares.column_time_s.shape[0]
    return TimeShares(
        np.vstack([shares.job_time_s, np.full((count, columns), time_per_round_s / 2.0)]),
        shares.column_time_s.copy(),
        np.vstack([shares.deficits_s, np.zeros((count, columns))]),
    )


def drop_jobs(shares: TimeShares, keep: ArrayLike) -> TimeShares:
    """Jobs that ended leave their rows (``keep`` is a mask over jobs); their time stays in
    ``column_time`` until the next reset, as in Gavel."""
    mask = np.asarray(keep, dtype=np.bool_)
    if mask.shape != (shares.jobs,):
        raise InvalidInput("keep", f"must have {shares.jobs} entries, got shape {mask.shape}")
    return TimeShares(shares.job_time_s[mask], shares.column_time_s.copy(), shares.deficits_s[mask])


def record_round(shares: TimeShares, column: ArrayLike, execution_s: ArrayLike) -> TimeShares:
    """After a round: each job that ran (``column[i] >= 0``) adds its execution time, once, to
    its own and its column's time."""
    cols = np.asarray(column, dtype=np.int64)
    spent = np.asarray(execution_s, dtype=np.float64)
    _check_jobs(shares, cols, "column")
    _check_jobs(shares, spent, "execution_s")
    ran = np.flatnonzero(cols >= 0)
    job_time = shares.job_time_s.copy()
    job_time[ran, cols[ran]] += spent[ran]
    column_time = shares.column_time_s.copy()
    np.add.at(column_time, cols[ran], spent[ran])
    return TimeShares(job_time, column_time, shares.deficits_s.copy())


def should_reset(
    now_s: float,
    last_reset_s: float,
    jobs_changed: bool,
    minimum_interval_s: float = MIN_TIME_BETWEEN_RESETS_S,
) -> bool:
    """Gavel's simulator rule for resetting the time shares and recomputing the allocation."""
    return jobs_changed and (now_s - last_reset_s >= minimum_interval_s or last_reset_s == 0)


def reset_time_shares(
    shares: TimeShares,
    allocation: ArrayLike,
    elapsed_s: float,
    time_per_round_s: float = TIME_PER_ROUND_S,
) -> TimeShares:
    """Gavel's reset: the time each job should have had under ``allocation`` (the one in force
    until now; zero rows for jobs not in it) over ``elapsed_s`` minus the time it had, added
    to its deficit; every job's time back to half a round."""
    alloc = _allocation(shares, allocation)
    half = time_per_round_s / 2.0
    received = shares.job_time_s - half
    deficits = shares.deficits_s + alloc * elapsed_s - received
    job_time = np.full_like(shares.job_time_s, half)
    return TimeShares(job_time, np.full_like(shares.column_time_s, half * shares.jobs), deficits)


def priorities(
    allocation: ArrayLike,
    shares: TimeShares,
    throughputs: ArrayLike,
    in_allocation: ArrayLike | None = None,
) -> FloatArray:
    """Gavel's per-column priority of each job (see the module docstring)."""
    alloc = _allocation(shares, allocation)
    tput = np.asarray(throughputs, dtype=np.float64)
    if tput.shape != alloc.shape:
        raise InvalidInput("throughputs", f"must have shape {alloc.shape}, got {tput.shape}")
    column_time = shares.column_time_s[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(column_time > 0, shares.job_time_s / column_time, 0.0)
        value = np.where(fraction > 0, alloc / fraction, alloc * UNSEEN_PRIORITY_FACTOR)
    value = np.where((alloc == 0) | (tput == 0), 0.0, value)
    if in_allocation is not None:
        member = np.asarray(in_allocation, dtype=np.bool_)
        _check_jobs(shares, member, "in_allocation")
        value = np.where(member[:, None], value, 0.0)
    return np.asarray(value, dtype=np.float64)


def column_order(columns: int, rng: random.Random | None = None) -> list[int]:
    """Columns in the given order, or shuffled by ``rng`` as Gavel does every round for its
    heterogeneity-agnostic policies (``random.Random(seed + 5).shuffle``, list order first)."""
    order = list(range(columns))
    if rng is not None:
        rng.shuffle(order)
    return order


def select_round(
    allocation: ArrayLike,
    shares: TimeShares,
    throughputs: ArrayLike,
    scale_factors: ArrayLike,
    capacities: ArrayLike,
    *,
    order: Sequence[int] | None = None,
    in_allocation: ArrayLike | None = None,
    previous: ArrayLike | None = None,
) -> RoundPlan:
    """Gavel's selection for the next round (see the module docstring).

    Jobs are rows in arrival order (Gavel's tie order). ``order`` lists the columns in the order
    they are filled (default: as given); ``in_allocation`` marks the jobs the allocation was
    computed for (default: all); ``previous`` is each job's column in the last round (-1: none).
    """
    alloc = _allocation(shares, allocation)
    m, n = alloc.shape
    tput = np.asarray(throughputs, dtype=np.float64)
    score = priorities(alloc, shares, tput, in_allocation)
    scale = np.asarray(scale_factors, dtype=np.int64)
    _check_jobs(shares, scale, "scale_factors")
    if (scale < 1).any():
        raise InvalidInput("scale_factors", "every entry must be a whole number >= 1")
    left = np.asarray(capacities, dtype=np.int64).copy()
    if left.shape != (n,) or (left < 0).any():
        raise InvalidInput("capacities", f"must be {n} whole numbers >= 0")
    sequence = list(range(n)) if order is None else [int(j) for j in order]
    if sorted(sequence) != list(range(n)):
        raise InvalidInput("order", f"must list each of the {n} columns once")
    member = (
        np.ones(m, dtype=np.bool_)
        if in_allocation is None
        else np.asarray(in_allocation, dtype=np.bool_)
    )
    column = np.full(m, -1, dtype=np.int64)
    held = np.zeros(m, dtype=np.bool_)
    picked = np.zeros(m, dtype=np.bool_)
    for j in sequence:
        if left[j] == 0:
            continue
        # Highest (priority, deficit, allocation) first; lexsort is stable, so ties keep the
        # job order, as Python's sorted(..., reverse=True) does in Gavel.
        ranked = np.lexsort((-alloc[:, j], -shares.deficits_s[:, j], -score[:, j]))
        for i in ranked[tput[ranked, j] > 0].tolist():
            if picked[i] or scale[i] > left[j]:
                continue
            picked[i] = True
            left[j] -= scale[i]
            if member[i]:
                column[i] = j
            else:
                held[i] = True
            if left[j] == 0:
                break
    before = np.full(m, -1, dtype=np.int64) if previous is None else np.asarray(previous)
    _check_jobs(shares, before, "previous")
    continued = (column >= 0) & (column == before)
    return RoundPlan(column, held, continued, left)


def _allocation(shares: TimeShares, allocation: ArrayLike) -> FloatArray:
    alloc = np.asarray(allocation, dtype=np.float64)
    if alloc.shape != shares.job_time_s.shape:
        raise InvalidInput(
            "allocation", f"must have shape {shares.job_time_s.shape}, got {alloc.shape}"
        )
    return alloc


def _check_jobs(shares: TimeShares, values: NDArray[np.generic], field: str) -> None:
    if values.shape != (shares.jobs,):
        raise InvalidInput(field, f"must have {shares.jobs} entries, got shape {values.shape}")

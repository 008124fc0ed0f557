"""The allocation optimiser: GPU-hours per proposal, partition and month that maximise the
programme's weighted objective (:meth:`ProgrammeWeights.describe`), solved with HiGHS.

The model is aggregated without loss. Proposals with the same eligible partitions and the
same preferred sites form a class; for capacity and for the preferred-site bonus only the
class's hours per partition and month matter, so partitions enter through pool variables:

- f[p, m]: share of p's request awarded in month m, 0 .. u[p, m] (a bound: its monthly cap,
  or less where its partitions have less free);
- a[p]: share of p's request awarded: 0, or its minimum fraction .. 1 (semi-continuous);
- z[c, k, m]: hours of class c on partition k in month m; t: the round's total;
  e[c]: hours of country c above its balance limit.

Rows: capacity per (k, m); pool per (class, m): sum_k z = sum_p request_p f[p, m]; award per
p: sum_m f = a; total: sum request a = t; balance per country: hours - limit_c t - e_c <= 0;
budget per call budget line: its partitions' z over all months <= the line's hours.
Shares, and hours in units of the average request, keep coefficients near 1. The per-hour
model (x[p, k, m]: 150,000 columns for 5,000 proposals) took HiGHS 10 to 450 s, degenerate
and badly scaled; this one has a quarter of the columns and solves in under a second. Each
pool's hours are then split among its proposals in rank order, preferred partitions first
(a north-west-corner fill), which keeps each proposal on few partitions.

Solving (see docs/allocation-optimiser.md): HiGHS' own branch and cut on this MIP takes
3-15 s a pass for 5,000 proposals with integrality only where the LP breaks a minimum (over
100 s with all of them semi-continuous), most of it in cuts at the root, because hundreds
of large proposals tie on value per GPU-hour. So: (1) the LP relaxation, strengthened by
the cuts f[p, m] <= u[p, m]/min_p a[p] (with f <= u and sum f = a they give the convex
hull of each proposal's own choices), added where violated; it bounds the optimum from
above, typically within 2e-6 of it.
(2) If some award is inside (0, minimum), feasible plans from the same LP with those and the
unfunded proposals held at zero, then trying each of those awards at its minimum instead.
(3) Stop when the plan is within ``mip_rel_gap`` of the bound; otherwise HiGHS' MIP with
every proposal semi-continuous, started from the best plan, closes the gap (small rounds,
such as the tests', end here, exactly).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np

from aifactories.domain.errors import AifError
from aifactories.programme.award_model import (
    EPS_HOURS,
    AwardPlan,
    BoolArray,
    BudgetLine,
    FloatArray,
    IntArray,
    PartitionCapacity,
    ProgrammeWeights,
    ProposalDemand,
    RoundArrays,
)
from aifactories.scheduling.lp_solver import new_highs

MIP_REL_GAP = 1e-4
"""Proven relative gap at which the search stops: 0.01% of the round's value, about one
point in a round of 5,000 proposals (HiGHS' own default). Plans on the synthetic rounds
come out within 1e-6 to 8e-5; proving 1e-6 takes 10 to 70 s there (the ties)."""

_SHARE_TOL = 1e-9  # award shares within this of the minimum count as at the minimum
_CUT_TOL = 1e-7
_NEAR_POINTS = 0.5  # unfunded proposals this close (in points) to worth funding get cuts early


class AwardSolverError(AifError):
    """HiGHS could not solve the award model (it says why); the inputs were valid."""

    code = "award_solver_error"


@dataclass(frozen=True, slots=True)
class _Model:
    lp: Any
    unit: float  # GPU-hours per model unit (the average request)
    fp: IntArray  # f columns: proposal and month
    fm: IntArray
    fundable: IntArray  # a columns: proposal
    pool_c: IntArray  # pool rows: class and month
    pool_m: IntArray
    zp: IntArray  # z columns: pool and partition
    zk: IntArray
    cls: IntArray  # class of each proposal
    cls_preferred: BoolArray  # [class, K]

    @property
    def n_f(self) -> int:
        return int(self.fp.size)

    @property
    def n_a(self) -> int:
        return int(self.fundable.size)


def _columns(lengths: IntArray) -> tuple[IntArray, IntArray, FloatArray]:
    start = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=start[1:])
    return start, np.empty(int(start[-1]), dtype=np.int64), np.empty(int(start[-1]))


def _build(r: RoundArrays, weights: ProgrammeWeights) -> _Model:
    n_k, n_t = r.capacity.shape
    unit = float(r.request.mean())
    share_of_unit = r.request / unit
    # A proposal that cannot reach its minimum even alone gets no columns at all.
    fundable_mask = r.fundable
    free = r.eligible.astype(np.float64) @ r.capacity  # [P, T]
    fp, fm = np.nonzero(r.in_period & (free > 0) & fundable_mask[:, None])
    fp, fm = fp.astype(np.int64), fm.astype(np.int64)
    fundable = np.flatnonzero(fundable_mask).astype(np.int64)
    a_of = np.full(len(r.demands), -1, dtype=np.int64)
    a_of[fundable] = np.arange(fundable.size)

    key = np.concatenate([r.eligible, r.preferred], axis=1)
    classes, cls = np.unique(key, axis=0, return_inverse=True)
    cls = cls.reshape(-1).astype(np.int64)
    cls_eligible, cls_preferred = classes[:, :n_k], classes[:, n_k:]
    pool_ids, f_pool = np.unique(cls[fp] * n_t + fm, return_inverse=True)
    f_pool = f_pool.reshape(-1)
    pool_c, pool_m = pool_ids // n_t, pool_ids % n_t
    zp, zk = np.nonzero(cls_eligible[pool_c] & (r.capacity[:, pool_m].T > 0))
    zp, zk = zp.astype(np.int64), zk.astype(np.int64)

    limits = r.country_limits(weights)
    penalised = np.flatnonzero(limits < 1.0) if weights.country_balance > 0 else np.zeros(0)
    penalised = penalised.astype(np.int64)
    n_c = penalised.size
    c_row = np.full(len(r.countries), -1, dtype=np.int64)
    c_row[penalised] = np.arange(n_c)

    n_f, n_a, n_z, n_pool = fp.size, fundable.size, zp.size, pool_ids.size
    n_lines = r.line_budget.size
    cap_at, pool_at, award_at = 0, n_k * n_t, n_k * n_t + n_pool
    total_at = award_at + n_a
    country_at = total_at + 1
    line_at = country_at + n_c
    a_country = c_row[r.country[fundable]]
    z_line = r.line_of[zk]
    lengths = np.concatenate(
        [
            np.full(n_f, 2),  # f: pool row, award row
            2 + (a_country >= 0).astype(np.int64),  # a: award, total, its country
            2 + (z_line >= 0).astype(np.int64),  # z: capacity row, pool row, its budget line
            [1 + n_c],  # t: total and every country row
            np.ones(n_c, dtype=np.int64),  # e: its country row
        ]
    ).astype(np.int64)
    start, index, value = _columns(lengths)
    s = start[:n_f]
    index[s], value[s] = pool_at + f_pool, -share_of_unit[fp]
    index[s + 1], value[s + 1] = award_at + a_of[fp], 1.0
    s = start[n_f : n_f + n_a]
    index[s], value[s] = award_at + np.arange(n_a), -1.0
    index[s + 1], value[s + 1] = total_at, share_of_unit[fundable]
    in_c = a_country >= 0
    index[s[in_c] + 2], value[s[in_c] + 2] = (
        country_at + a_country[in_c],
        share_of_unit[fundable][in_c],
    )
    s = start[n_f + n_a : n_f + n_a + n_z]
    index[s], value[s] = cap_at + zk * n_t + pool_m[zp], 1.0
    index[s + 1], value[s + 1] = pool_at + zp, 1.0
    in_line = z_line >= 0
    index[s[in_line] + 2], value[s[in_line] + 2] = line_at + z_line[in_line], 1.0
    s0 = int(start[n_f + n_a + n_z])
    index[s0], value[s0] = total_at, -1.0
    index[s0 + 1 : s0 + 1 + n_c] = country_at + np.arange(n_c)
    value[s0 + 1 : s0 + 1 + n_c] = -limits[penalised]
    s = start[n_f + n_a + n_z + 1 : -1]
    index[s], value[s] = country_at + np.arange(n_c), -1.0

    worst = max((d.rank for d in r.demands), default=1)
    points = np.array([weights.proposal_value(d, worst) for d in r.demands])
    # Points per share of the request: the value itself, or scaled by size (exponent < 1).
    a_cost = (points * share_of_unit ** (1.0 - weights.request_exponent))[fundable]
    inf = highspy.kHighsInf
    n_cols = lengths.size
    lp = highspy.HighsLp()
    lp.num_col_ = n_cols
    lp.num_row_ = line_at + n_lines
    lp.col_cost_ = np.concatenate(
        [
            np.zeros(n_f),
            a_cost,
            weights.preferred_site * cls_preferred[pool_c[zp], zk],
            [0.0],
            np.full(n_c, -weights.country_balance),
        ]
    )
    lp.col_lower_ = np.zeros(n_cols)
    lp.col_upper_ = np.concatenate(
        [
            np.minimum(r.month_cap[fp], free[fp, fm]) / r.request[fp],
            r.alone_limit[fundable] / r.request[fundable],
            r.capacity[zk, pool_m[zp]] / unit,
            np.full(1 + n_c, inf),
        ]
    )
    lp.row_lower_ = np.concatenate(
        [np.full(n_k * n_t, -inf), np.zeros(n_pool + n_a + 1), np.full(n_c + n_lines, -inf)]
    )
    lp.row_upper_ = np.concatenate(
        [r.capacity.reshape(-1) / unit, np.zeros(n_pool + n_a + 1 + n_c), r.line_budget / unit]
    )
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start.astype(np.int32)
    lp.a_matrix_.index_ = index.astype(np.int32)
    lp.a_matrix_.value_ = value
    return _Model(lp, unit, fp, fm, fundable, pool_c, pool_m, zp, zk, cls, cls_preferred)


def _split(r: RoundArrays, model: _Model, f_hours: FloatArray, z_hours: FloatArray) -> FloatArray:
    """Each pool's partition hours among its proposals: proposals in rank order, partitions
    preferred first, filled like a north-west corner, so that each proposal spans few
    partitions. Returns GPU-hours [proposal, partition, month]."""
    ranks = np.array([d.rank for d in r.demands], dtype=np.int64)
    f_pool = np.searchsorted(
        model.pool_c * r.months + model.pool_m, model.cls[model.fp] * r.months + model.fm
    )
    f_order = np.lexsort((ranks[model.fp], f_pool))
    z_order = np.lexsort(
        (model.zk, ~model.cls_preferred[model.pool_c[model.zp], model.zk], model.zp)
    )
    f_bounds = np.searchsorted(f_pool[f_order], np.arange(model.pool_c.size + 1))
    z_bounds = np.searchsorted(model.zp[z_order], np.arange(model.pool_c.size + 1))
    out_p: list[IntArray] = []
    out_k: list[IntArray] = []
    out_m: list[IntArray] = []
    out_h: list[FloatArray] = []
    for pool in range(model.pool_c.size):
        fs = f_order[f_bounds[pool] : f_bounds[pool + 1]]
        zs = z_order[z_bounds[pool] : z_bounds[pool + 1]]
        demand = np.concatenate([[0.0], np.cumsum(f_hours[fs])])
        supply = np.concatenate([[0.0], np.cumsum(z_hours[zs])])
        # Equal up to the solver's tolerance: fill up to the smaller, so that no partition
        # gives more than its pool's hours.
        total = min(demand[-1], supply[-1])
        if total <= EPS_HOURS:
            continue
        cuts = np.union1d(np.minimum(demand, total), np.minimum(supply, total))
        mid = (cuts[:-1] + cuts[1:]) / 2
        who = np.searchsorted(demand, mid, side="right") - 1
        where = np.searchsorted(supply, mid, side="right") - 1
        out_p.append(model.fp[fs[who]])
        out_k.append(model.zk[zs[where]])
        out_m.append(np.full(mid.size, model.pool_m[pool], dtype=np.int64))
        out_h.append(np.diff(cuts))
    x = np.zeros((len(r.demands), len(r.partitions), r.months))
    if out_p:
        pieces = tuple(np.concatenate(a) for a in (out_p, out_k, out_m))
        np.add.at(x, pieces, np.concatenate(out_h))
    return x


def _within_limits(r: RoundArrays, x: FloatArray) -> FloatArray:
    """Scale away the solver's tolerances (1e-7 of a share or of a capacity): no partition
    month above its free hours, no month above a proposal's cap, no award above its request,
    exactly, as the ledger will hold them to it."""
    used = x.sum(axis=0)
    x = x * np.minimum(1.0, r.capacity / np.maximum(used, 1e-300))[None, :, :]
    if r.line_budget.size:
        line_scale = np.minimum(1.0, r.line_budget / np.maximum(r.line_used(x), 1e-300))
        x = x * np.where(r.line_of >= 0, line_scale[r.line_of], 1.0)[None, :, None]
    month = x.sum(axis=1)
    x = x * np.minimum(1.0, r.month_cap[:, None] / np.maximum(month, 1e-300))[:, None, :]
    total = x.sum(axis=(1, 2))
    scaled: FloatArray = x * np.minimum(1.0, r.request / np.maximum(total, 1e-300))[:, None, None]
    return scaled


def _highs() -> Any:
    # Presolve would rebuild the model on every re-solve; the model is already small.
    return new_highs(presolve="off")


class _Search:
    """One HiGHS instance: the LP with cuts, feasible plans from it, the MIP if needed."""

    def __init__(self, r: RoundArrays, model: _Model, deadline: float | None) -> None:
        self.model, self.deadline = model, deadline
        self.h = _highs()
        self.h.passModel(model.lp)
        self.a_cols = (model.n_f + np.arange(model.n_a)).astype(np.int32)
        self.minimum = r.min_fraction[model.fundable]
        self.a_upper = np.asarray(model.lp.col_upper_)[self.a_cols]
        self.request = r.request[model.fundable]
        a_of = np.full(len(r.demands), -1, dtype=np.int64)
        a_of[model.fundable] = np.arange(model.n_a)
        self.f_a = a_of[model.fp]  # the a column of each f column's proposal
        self.cut_coef = np.asarray(model.lp.col_upper_)[: model.n_f] / r.min_fraction[model.fp]
        self.cut_added = np.zeros(model.n_a, dtype=np.bool_)
        self.root_basis: Any = None
        self.lp_solves = 0

    def time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.perf_counter()

    def _solve(self, widen: bool = False) -> FloatArray | None:
        """Run, add the violated hull cuts, run again until none is violated. ``widen``
        also cuts, after the first run, the proposals at the margin (partly funded, or
        unfunded but nearly worth their price): the next rounds' violators, in one round."""
        while True:
            self.h.run()
            self.lp_solves += 1
            if self.h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                return None
            solution = self.h.getSolution()
            sol = np.asarray(solution.col_value, dtype=np.float64)
            f, a = sol[: self.model.n_f], sol[self.model.n_f + self.f_a]
            hit = np.unique(self.f_a[f > self.cut_coef * a + _CUT_TOL])
            if widen:
                award = sol[self.a_cols]
                price = np.abs(np.asarray(solution.col_dual)[self.a_cols]) * self.minimum
                margin = (award > _SHARE_TOL) & (award < self.a_upper - _SHARE_TOL)
                near = (award <= _SHARE_TOL) & (price < _NEAR_POINTS)
                hit, widen = np.union1d(hit, np.flatnonzero(margin | near)), False
            hit = hit[~self.cut_added[hit]]
            if hit.size == 0:
                return sol
            # Every month of a proposal at once: its next violation is usually a neighbour.
            cols = np.flatnonzero(np.isin(self.f_a, hit)).astype(np.int32)
            n = cols.size
            index = np.empty(2 * n, dtype=np.int32)
            value = np.empty(2 * n)
            index[0::2], value[0::2] = cols, 1.0
            index[1::2], value[1::2] = self.a_cols[self.f_a[cols]], -self.cut_coef[cols]
            starts = np.arange(0, 2 * n, 2, dtype=np.int32)
            self.h.addRows(
                n, np.full(n, -highspy.kHighsInf), np.zeros(n), 2 * n, starts, index, value
            )
            self.cut_added[hit] = True

    def short(self, sol: FloatArray) -> IntArray:
        """a indices of awards inside (0, minimum)."""
        a = sol[self.a_cols]
        return np.flatnonzero((a * self.request > EPS_HOURS) & (a < self.minimum - _SHARE_TOL))

    def objective(self) -> float:
        return float(self.h.getInfo().objective_function_value)

    def root(self) -> FloatArray:
        sol = self._solve(widen=True)
        if sol is None:
            raise self.error()
        self.root_basis = self.h.getBasis()
        return sol

    def restricted(self, off: IntArray, on: IntArray) -> tuple[float, FloatArray] | None:
        """A feasible plan: awards ``off`` held at zero, ``on`` at least at their minimum,
        and any other award that falls inside (0, minimum) held at zero in turn. Starts
        from the root basis, so that each call is a few simplex iterations."""
        h, n_a = self.h, self.model.n_a
        lower, upper = np.zeros(n_a), self.a_upper.copy()
        upper[off] = 0.0
        lower[on] = self.minimum[on]
        h.changeColsBounds(n_a, self.a_cols, lower, upper)
        basis = self.root_basis
        missing = h.getNumRow() - len(basis.row_status)
        if missing:  # rows (cuts) added since: their slacks join the basis
            basis.row_status = [*basis.row_status, *[highspy.HighsBasisStatus.kBasic] * missing]
        h.setBasis(basis)
        while (sol := self._solve()) is not None:
            short = self.short(sol)
            if short.size == 0:
                return self.objective(), sol
            h.changeColsBounds(
                short.size, self.a_cols[short], np.zeros(short.size), np.zeros(short.size)
            )
        return None

    def mip(self, start: FloatArray, gap: float) -> tuple[str, FloatArray, float]:
        """HiGHS' MIP with every award semi-continuous, started from ``start``: the plan,
        the status and the proven gap."""
        h, n_a = self.h, self.model.n_a
        h.changeColsBounds(n_a, self.a_cols, self.minimum, self.a_upper)
        h.changeColsIntegrality(
            n_a, self.a_cols, np.full(n_a, highspy.HighsVarType.kSemiContinuous)
        )
        h.setOptionValue("presolve", "choose")
        h.setOptionValue("mip_rel_gap", gap)
        left = self.time_left()
        if left is not None:
            h.setOptionValue("time_limit", max(left, 0.01))
        solution = highspy.HighsSolution()
        solution.col_value = list(start)
        solution.value_valid = True
        h.setSolution(solution)
        h.run()
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kOptimal:
            state = "optimal"
        elif status == highspy.HighsModelStatus.kTimeLimit:
            state = "time_limit"
        else:
            raise self.error()
        sol = np.asarray(h.getSolution().col_value, dtype=np.float64)
        return state, sol, float(h.getInfo().mip_gap)

    def error(self) -> AwardSolverError:
        return AwardSolverError(
            f"HiGHS could not solve the award model ({self.h.getNumRow()} rows, "
            f"{self.h.getNumCol()} columns): "
            f"{self.h.modelStatusToString(self.h.getModelStatus())}"
        )


def _search(s: _Search, gap: float) -> tuple[str, FloatArray, float]:
    """The plan, its status and proven gap (see the module docstring)."""
    sol = s.root()
    bound = s.objective()
    short = s.short(sol)
    if short.size == 0:
        return "optimal", sol, 0.0
    unfunded = np.flatnonzero(sol[s.a_cols] * s.request <= EPS_HOURS)
    base = s.restricted(np.union1d(unfunded, short), np.zeros(0, dtype=np.int64))
    if base is None:  # cannot happen: all of those at zero is the root plan, less awards
        raise s.error()
    best, plan = base
    on: list[int] = []

    def proven() -> float:
        return max(0.0, bound - best) / max(abs(best), 1e-9)

    # Closest to their minimum first: the likeliest to be worth funding at it.
    for i in short[np.argsort(-sol[s.a_cols][short] / s.minimum[short])]:
        left = s.time_left()
        if proven() <= gap or (left is not None and left <= 0):
            break
        trial_on = np.array([*on, int(i)], dtype=np.int64)
        trial = s.restricted(np.union1d(unfunded, np.setdiff1d(short, trial_on)), trial_on)
        if trial is not None and trial[0] > best:
            (best, plan), on = trial, [*on, int(i)]
    if proven() <= gap:
        return "optimal", plan, proven()
    left = s.time_left()
    if left is not None and left <= 0:
        return "time_limit", plan, proven()
    state, mip_plan, mip_gap = s.mip(plan, gap)
    return state, mip_plan, mip_gap


def optimise_awards(
    demands: tuple[ProposalDemand, ...] | list[ProposalDemand],
    partitions: tuple[PartitionCapacity, ...] | list[PartitionCapacity],
    weights: ProgrammeWeights | None = None,
    *,
    months: int,
    time_limit_s: float | None = None,
    mip_rel_gap: float = MIP_REL_GAP,
    budget_lines: tuple[BudgetLine, ...] | list[BudgetLine] = (),
) -> AwardPlan:
    """The optimal award plan for one round (see the module docstring for the model).

    Status ``optimal``: proven within ``mip_rel_gap`` (``AwardPlan.mip_gap`` has the gap
    proven). With ``time_limit_s``, the best plan found by then, status ``time_limit``; it
    is always feasible (every award 0 or within its minimum and its request)."""
    started = time.perf_counter()
    weights = weights or ProgrammeWeights()
    r = RoundArrays.build(
        demands,
        partitions,
        months=months,
        spread_factor=weights.spread_factor,
        budget_lines=budget_lines,
    )
    x = np.zeros((len(r.demands), len(r.partitions), months))
    status, gap, solver = "optimal", 0.0, "nothing to solve: no proposal can be funded"
    if r.fundable.any():
        model = _build(r, weights)
        search = _Search(r, model, None if time_limit_s is None else started + time_limit_s)
        status, sol, gap = _search(search, mip_rel_gap)
        f_hours = np.maximum(sol[: model.n_f], 0.0) * r.request[model.fp]
        z_start = model.n_f + model.n_a
        z_hours = np.maximum(sol[z_start : z_start + model.zp.size], 0.0) * model.unit
        x = r.clean(_within_limits(r, _split(r, model, f_hours, z_hours)))
        solver = (
            f"HiGHS {search.h.version()} LP + hull cuts ({search.lp_solves} solves, "
            f"{int(search.cut_added.sum())} proposals cut)"
        )
    value, balance = r.evaluate(weights, x)
    return AwardPlan(
        lines=r.lines(x),
        outcomes=r.explain(
            x,
            displaced_by="proposals worth more per GPU-hour under the weights",
            over_balance=r.held_by_balance(weights, balance),
        ),
        objective_value=value,
        objective_text=weights.describe() + r.describe_lines(),
        solver=solver,
        solve_seconds=time.perf_counter() - started,
        status=status,
        mip_gap=gap,
    )

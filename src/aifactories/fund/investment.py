"""The investment optimiser: which candidates to build, and how many modules of each, so that
the plan serves the most priority-weighted demand within the budget and the caps. A MIP solved
with HiGHS.

Sets: candidates c (figures per module, :class:`~aifactories.fund.investment_model.Candidate`);
supply countries k (where today's capacity or a candidate is); demands d (a country, a priority
class of weight w_d, a residency rule); years t of the horizon.

Variables:

- n[c]: modules of c built, integer 0 .. max_modules (1 for an all-or-nothing candidate);
- x[k, d, t] >= 0: GPU-hours of d served from country k's capacity in year t, only where d's
  residency allows k (``any``: every country; ``eu``: EU member states; ``country``: its own);
- y[k] in {0, 1}: k gets new capacity (only with ``min_countries``).

Capacity is pooled per country: which site of k serves d does not change the value, so the
model needs no per-site flows (30 sites x 4 models x 5 years stays a few thousand columns).

Objective: maximise sum over k, d, t of w_d (1 - away_penalty [k != country of d]) x[k, d, t]:
the priority-weighted GPU-hours served over the horizon.

Constraints:

- capacity (k, t): sum_d x[k, d, t] <= today's GPU-hours of k in t + sum over c in k that
  serve in t of gpu_hours_per_year[c] n[c];
- demand (d, t): sum_k x[k, d, t] <= d's GPU-hours in t (grown by the growth rate);
- budget: sum_c capital[c] n[c] <= budget; per year, if given: the capital of candidates
  starting by year t <= the budget of the years up to t (unspent money carries forward);
- energy and carbon caps (t): the new capacity serving in t draws at most the cap (MWh/yr,
  t CO2/yr);
- country share (k): new accelerators in k <= share x all new accelerators;
- at least K countries: y[k] <= sum_{c in k} n[c], sum_k y[k] >= K;
- site power (s): sum over c at site s of kW[c] n[c] <= the site's grid connection.

Among the plans that serve as much, the one with the least capital: a second pass holds the
served value (less 1e-9 of it) and minimises the capital, started from the first plan.

Then the why (investment_explain.py): the MIP's integers are fixed and the LP solved again for
the duals of the capacity rows, the value of one more GPU-hour in country k and year t; the
same LP with nothing built gives today's capacity alone (the baseline).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt

from aifactories.domain.errors import AifError, InvalidInput
from aifactories.fund.investment_explain import Solution, explain
from aifactories.fund.investment_model import InvestmentPlan, InvestmentProblem, Residency
from aifactories.scheduling.lp_solver import new_highs

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MIP_REL_GAP = 1e-6
"""Relative gap at which HiGHS stops: a millionth of the plan's value, tighter than HiGHS'
default (1e-4), so that the why of each candidate is not an artefact of the tolerance."""


class InvestmentSolverError(AifError):
    """HiGHS could not solve the investment model (it says why); the inputs were valid."""

    code = "investment_solver_error"


@dataclass(frozen=True, slots=True)
class Model:
    """The LP/MIP and what each column and row stands for."""

    lp: Any
    unit: float  # GPU-hours per model unit of x
    countries: tuple[str, ...]
    n_candidates: int
    y_countries: IntArray  # country index of each y column
    arc_k: IntArray  # x columns: supply country, demand, year
    arc_d: IntArray
    arc_t: IntArray
    arc_value: FloatArray  # weight per GPU-hour of each arc
    cap_row: IntArray  # [k, t] -> capacity row, -1 if none
    existing: FloatArray  # [k, t] today's GPU-hours
    min_countries_row: int  # -1 if none

    @property
    def x_start(self) -> int:
        return self.n_candidates + int(self.y_countries.size)


class _Rows:
    """Rows gathered as (row, column, value) triplets, turned into HiGHS' column-wise matrix."""

    def __init__(self) -> None:
        self.r: list[IntArray] = []
        self.c: list[IntArray] = []
        self.v: list[FloatArray] = []
        self.lower: list[float] = []
        self.upper: list[float] = []

    def add(self, cols: Any, vals: Any, lower: float, upper: float) -> int:
        row = len(self.lower)
        cols = np.asarray(cols, dtype=np.int64)
        self.r.append(np.full(cols.size, row, dtype=np.int64))
        self.c.append(cols)
        self.v.append(np.broadcast_to(np.asarray(vals, dtype=np.float64), cols.shape).copy())
        self.lower.append(lower)
        self.upper.append(upper)
        return row

    def matrix(self, n_cols: int) -> tuple[IntArray, IntArray, FloatArray]:
        rows = np.concatenate(self.r) if self.r else np.zeros(0, dtype=np.int64)
        cols = np.concatenate(self.c) if self.c else np.zeros(0, dtype=np.int64)
        vals = np.concatenate(self.v) if self.v else np.zeros(0)
        keep = vals != 0
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
        order = np.lexsort((rows, cols))
        start = np.zeros(n_cols + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=n_cols), out=start[1:])
        return start, rows[order], vals[order]


def _build(p: InvestmentProblem) -> Model:
    inf = highspy.kHighsInf
    cands = p.candidates
    n_c, n_t = len(cands), len(p.years)
    countries = tuple(sorted({c.country for c in cands} | {e.country for e in p.existing}))
    k_of = {k: i for i, k in enumerate(countries)}
    n_k = len(countries)
    existing = np.zeros((n_k, n_t))
    for e in p.existing:
        for t, year in enumerate(p.years):
            if e.until_year is None or year <= e.until_year:
                existing[k_of[e.country], t] += e.gpu_hours_per_year
    serves = np.array([[c.serves(y) for y in p.years] for c in cands], dtype=bool).reshape(n_c, n_t)
    cand_k = np.array([k_of[c.country] for c in cands], dtype=np.int64)
    has_supply = existing > 0
    for i in range(n_c):
        has_supply[cand_k[i]] |= serves[i]

    base = np.array([d.gpu_hours_per_year for d in p.demand])
    unit = max(float(base.mean()) if base.size else 1.0, 1.0)
    growth = (1.0 + p.growth_rate) ** np.arange(n_t)
    demand_dt = base[:, None] * growth[None, :]  # [d, t]
    weights = np.array([p.priority_weights[d.priority] for d in p.demand])

    arcs: list[tuple[int, int, int]] = []
    for di, dem in enumerate(p.demand):
        for ki, country in enumerate(countries):
            if dem.residency is Residency.COUNTRY and country != dem.country:
                continue
            if dem.residency is Residency.EU and country not in p.eu_countries:
                continue
            arcs.extend(
                (ki, di, t) for t in range(n_t) if has_supply[ki, t] and demand_dt[di, t] > 0
            )
    arc = np.array(arcs, dtype=np.int64).reshape(-1, 3)
    arc_k, arc_d, arc_t = arc[:, 0], arc[:, 1], arc[:, 2]
    away = np.array(
        [countries[k] != p.demand[d].country for k, d in zip(arc_k, arc_d, strict=True)]
    )
    arc_value = weights[arc_d] * (1.0 - p.away_penalty * away) if arc.size else np.zeros(0)

    y_countries = np.zeros(0, dtype=np.int64)
    if p.min_countries:
        y_countries = np.unique(cand_k)
    n_y = y_countries.size
    x0 = n_c + n_y
    n_cols = x0 + arc_k.size
    rows = _Rows()

    cap_row = np.full((n_k, n_t), -1, dtype=np.int64)
    arc_ids = np.arange(arc_k.size)
    by_kt = arc_k * n_t + arc_t
    order = np.argsort(by_kt, kind="stable")
    bounds = np.searchsorted(by_kt[order], np.arange(n_k * n_t + 1))
    for k in range(n_k):
        for t in range(n_t):
            if not has_supply[k, t]:
                continue
            xs = x0 + arc_ids[order[bounds[k * n_t + t] : bounds[k * n_t + t + 1]]]
            cs = np.flatnonzero((cand_k == k) & serves[:, t])
            hours = np.array([cands[i].gpu_hours_per_year for i in cs]) / unit
            cap_row[k, t] = rows.add(
                np.concatenate([xs, cs]), np.concatenate([np.ones(xs.size), -hours]),
                -inf, float(existing[k, t]) / unit,
            )  # fmt: skip
    by_dt = arc_d * n_t + arc_t
    order = np.argsort(by_dt, kind="stable")
    bounds = np.searchsorted(by_dt[order], np.arange(len(p.demand) * n_t + 1))
    for d in range(len(p.demand)):
        for t in range(n_t):
            xs = x0 + arc_ids[order[bounds[d * n_t + t] : bounds[d * n_t + t + 1]]]
            if xs.size:
                rows.add(xs, 1.0, -inf, float(demand_dt[d, t]) / unit)

    all_c = np.arange(n_c)
    capital = np.array([c.capital_eur for c in cands])
    scale = max(p.budget_eur, 1.0)
    rows.add(all_c, capital / scale, -inf, p.budget_eur / scale)
    if p.budget_by_year_eur is not None:
        cumulative = np.cumsum(p.budget_by_year_eur)
        start = np.array([max(c.from_year, p.years[0]) for c in cands])
        for t, year in enumerate(p.years):
            rows.add(all_c, capital * (start <= year) / scale, -inf, cumulative[t] / scale)
    for cap, figure in (
        (p.energy_cap_mwh_per_year, np.array([c.mwh_per_year for c in cands])),
        (p.carbon_cap_t_per_year, np.array([c.carbon_t_per_year for c in cands])),
    ):
        if cap is not None:
            s = max(cap, 1.0)
            for t in range(n_t):
                rows.add(all_c, figure * serves[:, t] / s, -inf, cap / s)
    if p.country_max_share is not None and n_c:
        acc = np.array([c.accelerators_per_module for c in cands], dtype=np.float64)
        acc /= acc.mean()
        for share_k in np.unique(cand_k):
            rows.add(all_c, acc * (cand_k == share_k) - p.country_max_share * acc, -inf, 0.0)
    min_row = -1
    for j, yk in enumerate(y_countries):
        members = np.flatnonzero(cand_k == yk)
        rows.add(np.concatenate([[n_c + j], members]), np.r_[1.0, -np.ones(members.size)], -inf, 0)
    if n_y:
        min_row = rows.add(n_c + np.arange(n_y), 1.0, float(p.min_countries or 0), inf)
    for site, kw_limit in sorted(p.site_power_kw.items()):
        at = np.flatnonzero([c.site == site for c in cands])
        if at.size:
            s = max(kw_limit, 1.0)
            rows.add(at, np.array([cands[i].kw for i in at]) / s, -inf, kw_limit / s)

    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_cols, len(rows.lower)
    lp.col_cost_ = np.concatenate([np.zeros(x0), arc_value])
    lp.col_lower_ = np.zeros(n_cols)
    lp.col_upper_ = np.concatenate(
        [[c.max_modules for c in cands], np.ones(n_y), np.full(arc_k.size, inf)]
    )
    lp.row_lower_, lp.row_upper_ = np.array(rows.lower), np.array(rows.upper)
    lp.sense_ = highspy.ObjSense.kMaximize
    start_, index, value = rows.matrix(n_cols)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start_.astype(np.int32)
    lp.a_matrix_.index_ = index.astype(np.int32)
    lp.a_matrix_.value_ = value
    lp.integrality_ = [highspy.HighsVarType.kInteger] * x0 + [
        highspy.HighsVarType.kContinuous
    ] * int(arc_k.size)
    return Model(
        lp, unit, countries, n_c, y_countries, arc_k, arc_d, arc_t, arc_value, cap_row,
        existing, min_row,
    )  # fmt: skip


def _fixed(h: Any, m: Model, fixed: FloatArray) -> tuple[FloatArray, FloatArray, float]:
    """The LP with n and y held at ``fixed``: its x (GPU-hours), the capacity duals
    (weighted GPU-hours per GPU-hour, [k, t]) and its objective (weighted GPU-hours)."""
    cols = np.arange(m.x_start, dtype=np.int32)
    if cols.size:
        h.changeColsIntegrality(
            cols.size, cols, np.full(cols.size, highspy.HighsVarType.kContinuous)
        )
        h.changeColsBounds(cols.size, cols, fixed, fixed)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise _error(h)
    solution = h.getSolution()
    x = np.maximum(np.asarray(solution.col_value)[m.x_start :], 0.0) * m.unit
    row_dual = np.abs(np.asarray(solution.row_dual))
    duals = np.where(m.cap_row >= 0, row_dual[np.maximum(m.cap_row, 0)], 0.0)
    return x, duals, float(h.getInfo().objective_function_value) * m.unit


def _cheapest(h: Any, m: Model, p: InvestmentProblem) -> None:
    """Second pass: among the plans that serve as much as the one found, the one with the
    least capital (otherwise capacity that serves nothing more is as good as none while the
    budget lasts). The served value is held by a row, the objective becomes the capital; then
    both go back, so that the duals that follow are those of the served value."""
    served = float(h.getInfo().objective_function_value)
    n_x = m.arc_k.size
    x_cols = (m.x_start + np.arange(n_x)).astype(np.int32)
    h.addRow(served - 1e-9 * max(abs(served), 1.0), highspy.kHighsInf, n_x, x_cols, m.arc_value)
    held = h.getNumRow() - 1
    start = highspy.HighsSolution()
    start.col_value = list(h.getSolution().col_value)
    start.value_valid = True
    scale = max(p.budget_eur, 1.0)
    capital = np.array([-c.capital_eur / scale for c in p.candidates])
    n_cols = np.arange(m.n_candidates, dtype=np.int32)
    h.changeColsCost(n_x, x_cols, np.zeros(n_x))
    h.changeColsCost(m.n_candidates, n_cols, capital)
    h.setSolution(start)
    h.run()
    if (
        h.getModelStatus()
        not in (
            highspy.HighsModelStatus.kOptimal,
            highspy.HighsModelStatus.kTimeLimit,
        )
        or h.getInfo().primal_solution_status != 2
    ):
        raise _error(h)
    h.changeRowBounds(held, -highspy.kHighsInf, highspy.kHighsInf)
    h.changeColsCost(m.n_candidates, n_cols, np.zeros(m.n_candidates))
    h.changeColsCost(n_x, x_cols, m.arc_value)


def _error(h: Any) -> InvestmentSolverError:
    return InvestmentSolverError(
        f"HiGHS could not solve the investment model ({h.getNumRow()} rows, "
        f"{h.getNumCol()} columns): {h.modelStatusToString(h.getModelStatus())}"
    )


def optimise_investments(
    problem: InvestmentProblem,
    *,
    mip_rel_gap: float = MIP_REL_GAP,
    time_limit_s: float | None = None,
) -> InvestmentPlan:
    """The plan that serves the most priority-weighted demand (see the module docstring).

    Status ``optimal``: proven within ``mip_rel_gap``; ``time_limit``: the best plan found in
    ``time_limit_s``. Raises :class:`InvalidInput` when the constraints admit no plan (at least
    K countries that the budget cannot reach)."""
    started = time.perf_counter()
    m = _build(problem)
    options: dict[str, float] = {"mip_rel_gap": mip_rel_gap}
    if time_limit_s is not None:
        options["time_limit"] = time_limit_s
    h = new_highs(**options)
    h.passModel(m.lp)
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        raise InvalidInput(
            "min_countries",
            f"no plan builds in {problem.min_countries} countries within the budget and caps",
            "lower it, or add cheaper candidates in more countries",
        )
    found = h.getInfo().primal_solution_status == 2  # kSolutionStatusFeasible
    if status == highspy.HighsModelStatus.kOptimal:
        state = "optimal"
    elif status == highspy.HighsModelStatus.kTimeLimit and found:
        state = "time_limit"
    else:
        raise _error(h)
    gap = float(h.getInfo().mip_gap) if m.x_start else 0.0
    if m.n_candidates:
        _cheapest(h, m, problem)
    integers = np.round(np.asarray(h.getSolution().col_value)[: m.x_start])
    x, duals, objective = _fixed(h, m, integers)
    if m.min_countries_row >= 0:  # with nothing built, "at least K countries" cannot hold
        h.changeRowBounds(m.min_countries_row, -highspy.kHighsInf, highspy.kHighsInf)
    base_x, _, base_objective = _fixed(h, m, np.zeros(m.x_start))
    solution = Solution(
        modules=integers[: m.n_candidates].astype(np.int64),
        countries=m.countries,
        arc_k=m.arc_k,
        arc_d=m.arc_d,
        arc_t=m.arc_t,
        arc_value=m.arc_value,
        x=x,
        baseline_x=base_x,
        duals=duals,
        existing=m.existing,
        objective=objective,
        baseline_objective=base_objective,
    )
    return explain(
        problem,
        solution,
        status=state,
        mip_gap=gap,
        solver=f"HiGHS {h.version()} MIP ({m.x_start} integer, {m.arc_k.size} continuous "
        f"columns, {h.getNumRow()} rows; mip_rel_gap {mip_rel_gap:g})",
        started=started,
    )

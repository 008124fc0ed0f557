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

Among the plans that serve as much, the cheaper: each euro costs a tie-breaking 1e-6 x
(weighted demand / budget), a millionth of the value at stake for the whole budget; and
modules whose GPU-hours the plan leaves idle in every year are taken back afterwards (within
its gap the solver may keep some).

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

MIP_REL_GAP = 1e-4
"""Relative gap at which HiGHS stops: HiGHS' own default, 0.01% of the plan's value. Small
plans (the tests') end exactly; 30 sites x 4 models takes 5 s to prove 1e-4 and far longer
for 1e-6, as many candidates are nearly as good per euro (docs/benchmarks.md)."""


TIE_BREAK = 1e-6  # the whole budget's worth, as a share of the weighted demand (see above)


class InvestmentSolverError(AifError):
    """HiGHS could not solve the investment model (it says why); the inputs were valid."""

    code = "investment_solver_error"


@dataclass(frozen=True, slots=True)
class Flows:
    """The continuous columns, in order: kind 0 serves demand d at home (its country k),
    1 serves d from its residency pool r, 2 moves capacity of country k into pool r; in
    year t. -1 where a field does not apply."""

    kind: IntArray
    k: IntArray
    d: IntArray
    r: IntArray
    t: IntArray


@dataclass(frozen=True, slots=True)
class Model:
    """The LP/MIP and what each column and row stands for."""

    lp: Any
    unit: float  # GPU-hours per model unit of x
    countries: tuple[str, ...]
    n_candidates: int
    y_countries: IntArray  # country index of each y column
    flows: Flows
    flow_value: FloatArray  # weighted GPU-hours per GPU-hour of each flow column
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

    # Flow columns: home h[d, t] (value w_d), away a[d, t] (w_d less the penalty) and pool
    # flows g[k, r, t] (value 0) from country k to residency pool r (EU, any).
    pools = (Residency.EU, Residency.ANY)
    allowed = np.array([[k in p.eu_countries for k in countries], [True] * n_k])
    columns: list[tuple[int, int, int, int, int]] = []  # kind, k, d, r, t
    takers: set[tuple[int, int]] = set()  # pools and years some demand draws from
    for d, dem in enumerate(p.demand):
        home = k_of.get(dem.country, -1)
        for t in range(n_t):
            if demand_dt[d, t] <= 0:
                continue
            if home >= 0 and has_supply[home, t]:
                columns.append((0, home, d, -1, t))
            if dem.residency is not Residency.COUNTRY:
                r = pools.index(dem.residency)
                columns.append((1, -1, d, r, t))
                takers.add((r, t))
    for r in range(len(pools)):
        for k in range(n_k):
            for t in range(n_t):
                if allowed[r, k] and has_supply[k, t] and (r, t) in takers:
                    columns.append((2, k, -1, r, t))
    table = np.array(columns, dtype=np.int64).reshape(-1, 5)
    flows = Flows(*(table[:, i] for i in range(5)))
    w_of = np.where(flows.d >= 0, weights[np.maximum(flows.d, 0)], 0.0)
    flow_value = np.select(
        [flows.kind == 0, flows.kind == 1], [w_of, w_of * (1.0 - p.away_penalty)], 0.0
    )

    y_countries = np.zeros(0, dtype=np.int64)
    if p.min_countries:
        y_countries = np.unique(cand_k)
    n_y = y_countries.size
    x0 = n_c + n_y
    n_f = flows.kind.size
    n_cols = x0 + n_f
    rows = _Rows()
    fcol = x0 + np.arange(n_f)
    on_k = np.where(flows.kind == 0, flows.k, np.where(flows.kind == 2, flows.k, -1))

    cap_row = np.full((n_k, n_t), -1, dtype=np.int64)
    for k in range(n_k):
        for t in range(n_t):
            if not has_supply[k, t]:
                continue
            xs = fcol[(on_k == k) & (flows.t == t)]
            cs = np.flatnonzero((cand_k == k) & serves[:, t])
            hours = np.array([cands[i].gpu_hours_per_year for i in cs]) / unit
            cap_row[k, t] = rows.add(
                np.concatenate([xs, cs]), np.concatenate([np.ones(xs.size), -hours]),
                -inf, float(existing[k, t]) / unit,
            )  # fmt: skip
    served = flows.kind < 2
    for d in range(len(p.demand)):
        mine = served & (flows.d == d)
        for t in range(n_t):
            xs = fcol[mine & (flows.t == t)]
            if xs.size:
                rows.add(xs, 1.0, -inf, float(demand_dt[d, t]) / unit)
    for r in range(len(pools)):
        for t in range(n_t):
            take = fcol[(flows.kind == 1) & (flows.r == r) & (flows.t == t)]
            give = fcol[(flows.kind == 2) & (flows.r == r) & (flows.t == t)]
            if take.size:
                rows.add(np.concatenate([take, give]),
                         np.r_[np.ones(take.size), -np.ones(give.size)], -inf, 0.0)  # fmt: skip

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
    weighted_demand = float((weights[:, None] * demand_dt).sum()) / unit
    tie = TIE_BREAK * weighted_demand / max(p.budget_eur, 1.0)
    lp.col_cost_ = np.concatenate([-tie * capital, np.zeros(n_y), flow_value])
    lp.col_lower_ = np.zeros(n_cols)
    lp.col_upper_ = np.concatenate(
        [[c.max_modules for c in cands], np.ones(n_y), np.full(n_f, inf)]
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
    ] * n_f
    return Model(
        lp, unit, countries, n_c, y_countries, flows, flow_value, cap_row, existing, min_row
    )


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
    return x, duals, float(x @ m.flow_value)


def _drop_idle(p: InvestmentProblem, m: Model, integers: FloatArray, x: FloatArray) -> bool:
    """Take back modules whose GPU-hours the plan leaves idle in every year they serve (the
    solver stops within its gap and may keep some): dearest first, as long as the country
    share and the number of countries still hold. The served hours stay as they are. Changes
    ``integers`` in place; True if it did."""
    f = m.flows
    used = np.zeros_like(m.existing)
    on = f.kind != 1
    np.add.at(used, (f.k[on], f.t[on]), x[on])
    k_of = {k: i for i, k in enumerate(m.countries)}
    idle = m.existing - used
    serves = [[t for t, y in enumerate(p.years) if c.serves(y)] for c in p.candidates]
    for i, c in enumerate(p.candidates):
        for t in serves[i]:
            idle[k_of[c.country], t] += c.gpu_hours_per_year * integers[i]
    acc = {k: 0.0 for k in m.countries}
    for i, c in enumerate(p.candidates):
        acc[c.country] += c.accelerators_per_module * integers[i]
    dropped = False
    for i in sorted(range(m.n_candidates), key=lambda j: -p.candidates[j].capital_eur):
        c, k = p.candidates[i], k_of[p.candidates[i].country]
        while integers[i] > 0 and all(idle[k, t] >= c.gpu_hours_per_year for t in serves[i]):
            acc[c.country] -= c.accelerators_per_module
            total = sum(acc.values())
            share_ok = p.country_max_share is None or all(
                v <= p.country_max_share * total * (1 + 1e-9) for v in acc.values()
            )
            countries_ok = not p.min_countries or (
                sum(v > 0 for v in acc.values()) >= p.min_countries
            )
            if not (share_ok and countries_ok):
                acc[c.country] += c.accelerators_per_module
                break
            integers[i] -= 1
            for t in serves[i]:
                idle[k, t] -= c.gpu_hours_per_year
            dropped = True
    return dropped


def _decode(p: InvestmentProblem, m: Model, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GPU-hours served per demand and year [d, t], and weighted GPU-hours served from each
    country's capacity [k, t] (a pool's flows at the mean value of what the pool serves)."""
    f, n_t = m.flows, len(p.years)
    served = np.zeros((len(p.demand), n_t))
    mask = f.kind < 2
    np.add.at(served, (f.d[mask], f.t[mask]), x[mask])
    weighted = np.zeros((len(m.countries), n_t))
    home = f.kind == 0
    np.add.at(weighted, (f.k[home], f.t[home]), x[home] * m.flow_value[home])
    away, give = f.kind == 1, f.kind == 2
    value, hours = np.zeros((2, n_t)), np.zeros((2, n_t))
    np.add.at(value, (f.r[away], f.t[away]), x[away] * m.flow_value[away])
    np.add.at(hours, (f.r[away], f.t[away]), x[away])
    mean = value / np.maximum(hours, 1e-300)
    np.add.at(weighted, (f.k[give], f.t[give]), x[give] * mean[f.r[give], f.t[give]])
    return served, weighted


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
    integers = np.round(np.asarray(h.getSolution().col_value)[: m.x_start])
    x, duals, objective = _fixed(h, m, integers)
    if _drop_idle(problem, m, integers, x):
        x, duals, objective = _fixed(h, m, integers)
    if m.min_countries_row >= 0:  # with nothing built, "at least K countries" cannot hold
        h.changeRowBounds(m.min_countries_row, -highspy.kHighsInf, highspy.kHighsInf)
    base_x, _, base_objective = _fixed(h, m, np.zeros(m.x_start))
    served, weighted = _decode(problem, m, x)
    base_served, _ = _decode(problem, m, base_x)
    solution = Solution(
        modules=integers[: m.n_candidates].astype(np.int64),
        countries=m.countries,
        served=served,
        baseline_served=base_served,
        weighted=weighted,
        duals=duals,
        existing=m.existing,
        reachable=frozenset(m.countries[k] for k in np.unique(m.flows.k[m.flows.kind != 1])),
        objective=objective,
        baseline_objective=base_objective,
    )
    return explain(
        problem,
        solution,
        status=state,
        mip_gap=gap,
        solver=f"HiGHS {h.version()} MIP ({m.x_start} integer, {m.flow_value.size} continuous "
        f"columns, {h.getNumRow()} rows; mip_rel_gap {mip_rel_gap:g})",
        started=started,
    )

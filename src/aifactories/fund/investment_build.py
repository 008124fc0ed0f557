"""The investment MIP as HiGHS takes it: columns, rows and what each one stands for.

The model itself (variables, constraints, objective) is described in ``investment.py``; this
module builds it column-wise from the problem, in units that keep coefficients near 1: GPU-hours
in units of the mean demand, money in units of the budget, each cap in units of itself.

With the mean-wait objective (investment_wait.py) each pool (country k, year t) has three more
columns after the flows, its load L, capacity C and wait W, and these rows instead of the
capacity row: C - sum_c H_c n_c = E (the capacity row: its dual is what a GPU-hour of
capacity saves), sum of k's flows - L = 0, L <= MAX_UTILISATION x C, and per tangent
utilisation u, W / alpha(u) - L + beta(u) / alpha(u) C >= 0 (the plane divided by alpha to
keep its coefficients within 0.002..1). HiGHS minimises (sum of demand - served) + S / T x
sum W (+ the tie-break): the total wait in GPU-hours that wait T, the unserved wait, so that
its relative gap is a gap on the mean wait itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt

from aifactories.fund.investment_model import InvestmentProblem, Objective, Residency
from aifactories.fund.investment_wait import MAX_UTILISATION, TANGENTS, tangent, unserved_wait_hours

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TIE_BREAK = 1e-6  # the whole budget's worth, as a share of the weighted demand (investment.py)


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
    objective: Objective
    wait_col: IntArray  # [k, t] -> W column (mean_wait; L and C just before it), -1 if none
    asked: float  # GPU-hours asked over the horizon (the mean wait's denominator)
    job_hours: float  # S: the queue's mean job length (mean_wait)
    unserved_hours: float  # T: hours an unserved GPU-hour counts as waiting (mean_wait)
    cut_rows: IntArray  # the home-flow cuts (valid for whole modules, not for a changed row)
    tie_total: float  # the tie-break on capital for the whole budget, in the model's objective

    @property
    def x_start(self) -> int:
        return self.n_candidates + int(self.y_countries.size)

    @property
    def n_flows(self) -> int:
        return int(self.flow_value.size)


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


def _home_cuts(
    rows: _Rows,
    flows: Flows,
    fcol: IntArray,
    *,
    hours_c: FloatArray,
    cand_k: IntArray,
    serves: npt.NDArray[np.bool_],
    existing: FloatArray,
    demand_dt: FloatArray,
    weights: FloatArray,
) -> None:
    """Mixed-integer rounding cuts on the home flows of each country and year: valid for
    every plan with whole modules, they take from the LP relaxation the value it finds by
    building a fraction of a module to meet the home demand exactly (home is worth more than
    abroad, by the away penalty, so the relaxation fills each country up to its home demand
    and the integers cannot). Without them HiGHS took 9 to 28 s to find seed 5's optimum of
    the bench (docs/benchmarks.md).

    For country k, year t and the home flows h of its demands of weight w or more (D their
    demand, E today's capacity): h <= E + sum_c H_c n_c and h <= D, so with u = D - h >= 0,
    sum_c H_c n_c + u >= D - E = b. Divided by a module's GPU-hours delta (one cut per model
    size in k), with f = frac(b / delta) and f_c = frac(H_c / delta), the MIR inequality
    sum_c (floor(H_c / delta) f + min(f_c, f)) n_c + u / delta >= f ceil(b / delta)
    holds for integer n_c >= 0 (Marchand and Wolsey's mixed-integer rounding)."""
    home = flows.kind == 0
    w_of = weights[np.maximum(flows.d, 0)]
    for k, t in zip(*np.nonzero(existing >= 0), strict=True):
        cs = np.flatnonzero((cand_k == k) & serves[:, t])
        mine = home & (flows.k == k) & (flows.t == t)
        if not cs.size or not mine.any():
            continue
        for w in np.unique(w_of[mine]):
            sel = mine & (w_of >= w)
            demand = float(demand_dt[flows.d[sel], t].sum())
            b = demand - existing[k, t]
            if b <= 0:
                continue
            for delta in np.unique(hours_c[cs]):
                q = b / delta
                f = q - np.floor(q)
                if not 1e-6 < f < 1 - 1e-6:  # a whole number of modules: nothing to cut
                    continue
                a = hours_c[cs] / delta
                coef = np.floor(a) * f + np.minimum(a - np.floor(a), f)
                # with u = D - sum h: sum coef n - sum h / delta >= f ceil(q) - D / delta
                rows.add(
                    np.concatenate([cs, fcol[sel]]),
                    np.concatenate([coef, np.full(int(sel.sum()), -1.0 / delta)]),
                    f * np.ceil(q) - demand / delta,
                    highspy.kHighsInf,
                )


def build_model(p: InvestmentProblem) -> Model:
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
    wait = p.objective is Objective.MEAN_WAIT
    if wait:  # every GPU-hour served counts alike (investment_wait.py)
        flow_value = np.where(flows.kind < 2, 1.0, 0.0)
    else:
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
    wait_col = np.full((n_k, n_t), -1, dtype=np.int64)
    for k in range(n_k):
        for t in range(n_t):
            if not has_supply[k, t]:
                continue
            xs = fcol[(on_k == k) & (flows.t == t)]
            cs = np.flatnonzero((cand_k == k) & serves[:, t])
            hours = np.array([cands[i].gpu_hours_per_year for i in cs]) / unit
            now = float(existing[k, t]) / unit
            if not wait:
                cap_row[k, t] = rows.add(
                    np.concatenate([xs, cs]), np.concatenate([np.ones(xs.size), -hours]), -inf, now
                )
                continue
            load, room, w = n_cols, n_cols + 1, n_cols + 2  # L, C, W of the pool
            n_cols += 3
            wait_col[k, t] = w
            cap_row[k, t] = rows.add(np.r_[room, cs], np.r_[1.0, -hours], now, now)
            rows.add(np.r_[xs, load], np.r_[np.ones(xs.size), -1.0], 0.0, 0.0)
            rows.add([load, room], [1.0, -MAX_UTILISATION], -inf, 0.0)
            for a, b in map(tangent, TANGENTS):
                rows.add([w, load, room], [1.0 / a, -1.0, b / a], 0.0, inf)
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

    # with the mean wait, home flows fill at most MAX_UTILISATION of the capacity
    usable = MAX_UTILISATION / unit if wait else 1.0 / unit
    first_cut = len(rows.lower)
    _home_cuts(rows, flows, fcol, hours_c=np.array([c.gpu_hours_per_year for c in cands]) * usable,
               cand_k=cand_k, serves=serves, existing=existing * usable,
               demand_dt=demand_dt / unit, weights=weights)  # fmt: skip
    cut_rows = np.arange(first_cut, len(rows.lower), dtype=np.int64)
    all_c = np.arange(n_c)
    capital = np.array([c.capital_eur for c in cands])
    # No more modules than the budget buys (exact, and a tighter relaxation); a candidate
    # the budget cannot buy once is fixed at 0 and its capital left out of the rows, which
    # keeps a dear candidate's figure from swamping the budget row's scale.
    affordable = np.full(n_c, np.inf)  # a free candidate: no bound
    priced = capital > 0
    with np.errstate(over="ignore"):  # nearly free: no bound either
        affordable[priced] = np.floor(p.budget_eur / capital[priced] * (1 + 1e-12))
    modules_ub = np.minimum([c.max_modules for c in cands], affordable)
    capital = np.where(modules_ub > 0, capital, 0.0)
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
    n_w = n_cols - x0 - n_f  # the pools' L, C and W columns (mean_wait)
    asked = float(demand_dt.sum())
    job_hours, unserved = p.mean_job_hours, unserved_wait_hours(p.mean_job_hours)
    if wait:  # minimise the total wait, in GPU-hours waiting T (see the module docstring)
        tie = TIE_BREAK * asked / unit / max(p.budget_eur, 1.0)
        w_cost = np.zeros(n_w)
        w_cost[2::3] = job_hours / unserved
        lp.col_cost_ = np.concatenate([tie * capital, np.zeros(n_y), -flow_value, w_cost])
        lp.offset_ = asked / unit
        lp.sense_ = highspy.ObjSense.kMinimize
    else:
        weighted_demand = float((weights[:, None] * demand_dt).sum()) / unit
        tie = TIE_BREAK * weighted_demand / max(p.budget_eur, 1.0)
        lp.col_cost_ = np.concatenate([-tie * capital, np.zeros(n_y), flow_value])
        lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_lower_ = np.zeros(n_cols)
    lp.col_upper_ = np.concatenate([modules_ub, np.ones(n_y), np.full(n_f + n_w, inf)])
    lp.row_lower_, lp.row_upper_ = np.array(rows.lower), np.array(rows.upper)
    start_, index, value = rows.matrix(n_cols)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start_.astype(np.int32)
    lp.a_matrix_.index_ = index.astype(np.int32)
    lp.a_matrix_.value_ = value
    lp.integrality_ = [highspy.HighsVarType.kInteger] * x0 + [highspy.HighsVarType.kContinuous] * (
        n_f + n_w
    )
    return Model(lp, unit, countries, n_c, y_countries, flows, flow_value, cap_row, existing,
                 min_row, p.objective, wait_col, asked, job_hours, unserved, cut_rows,
                 tie * max(p.budget_eur, 0.0))  # fmt: skip

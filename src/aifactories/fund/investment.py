"""The investment optimiser: which candidates to build, and how many modules of each, so that
the plan serves the most priority-weighted demand (or, with ``Objective.MEAN_WAIT``, has the
lowest mean wait: investment_wait.py) within the budget and the caps. A MIP solved with HiGHS
to MIP_REL_GAP; the plan says the gap proved and HiGHS' dual bound.

Sets: candidates c (figures per module, :class:`~aifactories.fund.investment_model.Candidate`);
supply countries k (where today's capacity or a candidate is); demands d (a country, a priority
class of weight w_d, a residency rule); years t of the horizon.

Variables:

- n[c]: modules of c built, integer 0 .. max_modules (1 for an all-or-nothing candidate);
- h[d, t] >= 0: GPU-hours of d served at home, by its own country's capacity in year t;
- a[d, t] >= 0: GPU-hours of d served from its residency pool r (``eu``: the capacity of the
  EU member states; ``any``: of every country); none for residency ``country``;
- g[k, r, t] >= 0: GPU-hours of country k's capacity given to pool r (k in r);
- y[k] in {0, 1}: k gets new capacity (only with ``min_countries``).

Capacity is pooled per country (which site of k serves d does not change the value) and flows
abroad through two pools rather than one flow per pair of countries: any country of a pool may
serve any demand of it, so the pool is exact, and a pool's flow back to a demand's own country
is worth less than the home flow over the same capacity, so it is never chosen instead.

Objective: maximise sum over d, t of w_d h[d, t] + w_d (1 - away_penalty) a[d, t]: the
priority-weighted GPU-hours served over the horizon. With the mean wait instead: minimise the
queueing wait of each pool (k, t), as the largest of tangent planes, plus T hours for each
GPU-hour asked and not served (investment_wait.py; the rows in investment_build.py).

Constraints:

- capacity (k, t): sum_d h[d, t] (d of k) + sum_r g[k, r, t] <= today's GPU-hours of k in t +
  sum over c in k that serve in t of gpu_hours_per_year[c] n[c];
- demand (d, t): h[d, t] + a[d, t] <= d's GPU-hours in t (grown by the growth rate);
- pool (r, t): sum_d a[d, t] (d of r) <= sum_k g[k, r, t];
- budget: sum_c capital[c] n[c] <= budget; per year, if given: the capital of candidates
  starting by year t <= the budget of the years up to t (unspent money carries forward);
- energy and carbon caps (t): the new capacity serving in t draws at most the cap (MWh/yr,
  t CO2/yr);
- country share (k): new accelerators in k <= share x all new accelerators;
- at least K countries: y[k] <= sum_{c in k} n[c], sum_k y[k] >= K;
- site power (s): sum over c at site s of kW[c] n[c] <= the site's grid connection.

Tightening, which no plan with whole modules violates (the optimum is the same, the relaxation
closer to it): n[c] <= the modules the whole budget buys; and, per country k and year t, mixed-
integer rounding cuts on the home flows of k's demands (investment_build._home_cuts): the
relaxation would otherwise build a fraction of a module to meet k's home demand exactly.

The matrix is built in investment_build.py. Among the plans that serve as much, the
cheapest: a second stage minimises the capital among the plans proven within the gap of the
best (investment_cheapest.py: why a second stage and not only the objective's tie-breaking
1e-6 x (weighted demand / budget) per euro, which HiGHS' gap swamps); and modules whose
GPU-hours the plan leaves idle in every year are taken back afterwards.

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

from aifactories.domain.errors import AifError, InvalidInput
from aifactories.fund.investment_build import FloatArray, Model, build_model
from aifactories.fund.investment_cheapest import (
    CAPITAL_REL_GAP,
    TieBreak,
    cheapest,
    time_limit,
)
from aifactories.fund.investment_explain import Solution, explain
from aifactories.fund.investment_model import InvestmentPlan, InvestmentProblem, Objective
from aifactories.fund.investment_wait import WaitFigures, wait_saved, zero_wait_note
from aifactories.scheduling.lp_solver import new_highs

MIP_REL_GAP = 2e-3
"""Relative gap at which HiGHS stops: the plan is proven within 0.2% of the best (its
objective and HiGHS' dual bound are printed beside it). On the bench's 30 sites x 4 models
the LP bound with HiGHS' cuts is already within about 0.1% of the optimum, and many plans are
nearly as good per euro: proving 1e-4 (HiGHS' default) took 4-31 s under load, and 1e-3 up
to 60 s on one of HiGHS' random seeds, the time going into finding the last plans within
0.1%, not into the bound; 2e-3 ends in seconds whatever the seed (docs/benchmarks.md). A
what-if on assumed figures gains nothing from the last 0.2%; small plans end exactly."""


_SOLVED = (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kModelEmpty)
"""An empty model (no candidate and no demand in reach: nothing to choose, nothing to serve)
is solved: its plan builds nothing and serves what today's capacity serves, nothing."""


class InvestmentSolverError(AifError):
    """HiGHS could not solve the investment model (it says why); the inputs were valid."""

    code = "investment_solver_error"


@dataclass(frozen=True, slots=True)
class _Fixed:
    """The LP at a fixed plan: flows x (GPU-hours), the pools' W (GPU-hours x job lengths,
    [k, t]; mean_wait), the capacity duals (weighted GPU-hours, or hours of wait, that one
    more GPU-hour of capacity in k and t serves or saves) and the objective."""

    x: FloatArray
    wait: FloatArray
    duals: FloatArray
    objective: float  # weighted GPU-hours served, or hours of mean wait
    figures: WaitFigures | None


def _trim_pools(m: Model, x: FloatArray) -> FloatArray:
    """The capacity given to each pool (r, t) cut down to what the pool's demands take: a
    GPU-hour given and not taken is worth nothing, so the LP may give any amount of idle
    capacity (its path decides; after the tie-break's MIP it gave all), and the idle-module
    clean-up and the why count given capacity as used."""
    f, n_t = m.flows, m.existing.shape[1]
    take, give = f.kind == 1, f.kind == 2
    taken, given = np.zeros((2, n_t)), np.zeros((2, n_t))
    np.add.at(taken, (f.r[take], f.t[take]), x[take])
    np.add.at(given, (f.r[give], f.t[give]), x[give])
    share = np.minimum(taken / np.maximum(given, 1e-300), 1.0)
    out = x.copy()
    out[give] *= share[f.r[give], f.t[give]]
    return out


def _fixed(h: Any, m: Model, fixed: FloatArray) -> _Fixed:
    """The LP with n and y held at ``fixed``."""
    cols = np.arange(m.x_start, dtype=np.int32)
    if cols.size:
        h.changeColsIntegrality(
            cols.size, cols, np.full(cols.size, highspy.HighsVarType.kContinuous)
        )
        h.changeColsBounds(cols.size, cols, fixed, fixed)
    h.run()
    if h.getModelStatus() not in _SOLVED:
        raise _error(h)
    solution = h.getSolution()
    values = np.asarray(solution.col_value)
    x = _trim_pools(m, np.maximum(values[m.x_start : m.x_start + m.n_flows], 0.0) * m.unit)
    row_dual = np.abs(np.asarray(solution.row_dual))
    duals = np.where(m.cap_row >= 0, row_dual[np.maximum(m.cap_row, 0)], 0.0)
    if m.objective is not Objective.MEAN_WAIT:
        return _Fixed(x, np.zeros_like(m.existing), duals, float(x @ m.flow_value), None)
    wait = np.where(m.wait_col >= 0, values[np.maximum(m.wait_col, 0)], 0.0) * m.unit
    figures = WaitFigures.of(
        wait=float(wait.sum()),
        served=float(x @ m.flow_value),
        asked=m.asked,
        job_hours=m.job_hours,
        unserved_hours=m.unserved_hours,
    )
    # a row's dual is per model unit of the total wait (GPU-hours waiting T): in hours
    return _Fixed(x, wait, duals * m.unserved_hours, figures.mean_wait_h, figures)


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
    # "at least K countries": y[k] <= k's modules, so a country left without any is no
    # longer counted, and each that keeps one is (the MIP may have left a built country's
    # y at 0 when it had K others; taking one of those back must not leave fewer than K
    # counted: the check above kept K countries with modules)
    for j, k in enumerate(m.y_countries):
        integers[m.n_candidates + j] = float(acc[m.countries[k]] > 0)
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


def _empty_pool_duals(
    h: Any, m: Model, p: InvestmentProblem, integers: FloatArray, duals: FloatArray
) -> FloatArray:
    """The capacity duals of the pools the plan leaves without capacity, taken with a sliver
    of capacity in each (a thousandth of the mean demand): at no capacity the LP's duals are
    degenerate (0 is one of them, though a first GPU-hour there would serve demand), and
    the why of a candidate left there needs the value of its first module."""
    capacity = m.existing.copy()
    k_of = {k: i for i, k in enumerate(m.countries)}
    for c, n in zip(p.candidates, integers, strict=False):
        for t, year in enumerate(p.years):
            if n and c.serves(year):
                capacity[k_of[c.country], t] += c.gpu_hours_per_year * n
    empty = (m.cap_row >= 0) & (capacity <= 0)
    if not empty.any():
        return duals
    rows = [int(r) for r in m.cap_row[empty]]
    for r in rows:
        h.changeRowBounds(r, 1e-3, 1e-3)
    for r in m.cut_rows:  # a cut holds for whole modules of the given rows, not the sliver
        h.changeRowBounds(int(r), -highspy.kHighsInf, highspy.kHighsInf)
    sliver = _fixed(h, m, integers)
    for r in rows:
        h.changeRowBounds(r, 0.0, 0.0)
    for r in m.cut_rows:
        h.changeRowBounds(int(r), m.lp.row_lower_[r], m.lp.row_upper_[r])
    return np.where(empty, sliver.duals, duals)


def _bound(m: Model, bound: float) -> float:
    """HiGHS' dual bound in the plan's units: weighted GPU-hours, or hours of mean wait. The
    bound is on the objective with the tie-break on capital, so the tie-break of the whole
    budget (a millionth of the objective's scale) is taken off to bound the plan's figure."""
    if m.objective is Objective.MEAN_WAIT:
        pure = bound - m.tie_total
        # no wait is below 0: HiGHS' bound, less the tie-break, may be a hair under it
        return max(pure * m.unit * m.unserved_hours / m.asked, 0.0) if m.asked > 0 else 0.0
    return (bound + m.tie_total) * m.unit


ABS_GAP = 1e-6  # hours of mean wait or weighted GPU-hours: a plan and a bound this close tie


def _relative_gap(m: Model, objective: float, bound: float) -> float:
    """How far the plan is from HiGHS' bound, relative to the larger of the two (a relative
    gap of two figures at 0 is noise: it was printed as 6e+297)."""
    worse = objective - bound if m.objective is Objective.MEAN_WAIT else bound - objective
    if worse <= ABS_GAP:
        return 0.0
    return worse / max(abs(objective), abs(bound))


def _error(h: Any) -> AifError:
    if h.getModelStatus() == highspy.HighsModelStatus.kUnknown:
        # HiGHS gives up on numerics, not on a bug: figures many orders of magnitude apart
        # (a demand of a thousandth of a GPU-hour against modules of millions)
        return InvalidInput(
            "scenario",
            "the solver cannot compare its figures: demand, modules' GPU-hours, money or caps "
            "are too many orders of magnitude apart",
            "state them in a realistic range",
        )
    return InvestmentSolverError(
        f"HiGHS could not solve the investment model ({h.getNumRow()} rows, "
        f"{h.getNumCol()} columns): {h.modelStatusToString(h.getModelStatus())}"
    )


def _check_countries(p: InvestmentProblem) -> None:
    """ "At least K countries" that the candidates cannot reach, said before solving (the
    model has no row for it when there is no candidate at all)."""
    countries = {c.country for c in p.candidates}
    if p.min_countries and len(countries) < p.min_countries:
        raise InvalidInput(
            "min_countries",
            f"asks for new capacity in {p.min_countries} countries, but the candidates are in "
            f"{len(countries)} ({', '.join(sorted(countries)) or 'none'})",
            "lower it, or add candidates in more countries",
        )


def optimise_investments(
    problem: InvestmentProblem,
    *,
    mip_rel_gap: float = MIP_REL_GAP,
    time_limit_s: float | None = None,
    random_seed: int | None = None,
) -> InvestmentPlan:
    """The plan that serves the most priority-weighted demand (see the module docstring), the
    cheapest of those within ``mip_rel_gap`` of the best.

    Status ``optimal``: proven within ``mip_rel_gap``; ``time_limit``: the best plan found in
    ``time_limit_s`` (a total: the tie-break gets what the first MIP left of it);
    ``feasible``: a plan not proven within the gap (numerics). Raises :class:`InvalidInput`
    when the constraints admit no plan (at least K countries that the budget cannot reach)."""
    started = time.perf_counter()
    _check_countries(problem)
    m = build_model(problem)
    options: dict[str, float] = {"mip_rel_gap": mip_rel_gap}
    if time_limit_s is not None:
        options["time_limit"] = time_limit_s
    if random_seed is not None:  # HiGHS' own; its path (and time) moves with it (the bench)
        options["random_seed"] = random_seed
    h = new_highs(**options)
    if h.passModel(m.lp) == highspy.HighsStatus.kError:
        raise InvalidInput(
            "scenario",
            "its figures are too far apart for the solver (money, GPU-hours or caps many "
            "orders of magnitude from one another)",
            "state them in a realistic range",
        )
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        raise InvalidInput(
            "min_countries",
            f"no plan builds in {problem.min_countries} countries within the budget and caps",
            "lower it, or add cheaper candidates in more countries",
        )
    found = h.getInfo().primal_solution_status == 2  # kSolutionStatusFeasible
    if status in _SOLVED:
        state = "optimal"
    elif status == highspy.HighsModelStatus.kTimeLimit and found:
        state = "time_limit"
    else:
        raise _error(h)
    info = h.getInfo()
    gap = float(info.mip_gap) if m.x_start else 0.0
    bound = _bound(m, float(info.mip_dual_bound)) if m.x_start else None
    capital = np.array([c.capital_eur for c in problem.candidates], dtype=np.float64)
    integers = np.round(np.asarray(h.getSolution().col_value)[: m.x_start])
    first_capital = float(capital @ integers[: m.n_candidates])
    tie_state, tie_s = "optimal", 0.0  # nothing to choose: no candidate
    if m.n_candidates:
        limit = time_limit(time.perf_counter() - started, time_limit_s)
        integers, tie_state, tie_s = cheapest(
            h, m, capital, tolerance=mip_rel_gap, bound=info.mip_dual_bound, time_limit_s=limit
        )
    h.setOptionValue("time_limit", highspy.kHighsInf)  # the LPs after it run to the end
    plan = _fixed(h, m, integers)
    # idle capacity shortens the queue: with the mean wait no module is idle
    if m.objective is Objective.SERVED and _drop_idle(problem, m, integers, plan.x):
        plan = _fixed(h, m, integers)
    if bound is not None and float(capital @ integers[: m.n_candidates]) < first_capital:
        # a cheaper plan may serve less, within the gap: the gap is the kept plan's
        gap = max(gap, _relative_gap(m, plan.objective, bound))
    if bound is not None and abs(plan.objective - bound) <= ABS_GAP:
        gap = 0.0  # HiGHS' own relative gap of two figures at 0 is noise
    if state == "optimal" and gap > mip_rel_gap * (1 + 1e-9):
        state = "feasible"  # a plan, not proven within the gap: never said to be optimal
    note = zero_wait_note(plan.objective) if m.objective is Objective.MEAN_WAIT else ""
    kept = float(capital @ integers[: m.n_candidates])
    tie_break = TieBreak(mip_rel_gap, CAPITAL_REL_GAP, first_capital, kept, tie_state, tie_s, note)
    if m.min_countries_row >= 0:  # with nothing built, "at least K countries" cannot hold
        h.changeRowBounds(m.min_countries_row, -highspy.kHighsInf, highspy.kHighsInf)
    duals = plan.duals
    if m.objective is Objective.MEAN_WAIT:
        duals = _empty_pool_duals(h, m, problem, integers, duals)
    base = _fixed(h, m, np.zeros(m.x_start))
    served, weighted = _decode(problem, m, plan.x)
    base_served, base_weighted = _decode(problem, m, base.x)
    if m.objective is Objective.MEAN_WAIT:  # per pool, its share of the wait saved
        weighted = wait_saved(
            m.unserved_hours * (weighted - base_weighted) - m.job_hours * (plan.wait - base.wait),
            base.objective - plan.objective,
            m.asked,
        )
    solution = Solution(
        modules=integers[: m.n_candidates].astype(np.int64),
        countries=m.countries,
        served=served,
        baseline_served=base_served,
        weighted=weighted,
        duals=duals,
        existing=m.existing,
        reachable=frozenset(m.countries[k] for k in np.unique(m.flows.k[m.flows.kind != 1])),
        objective=plan.objective,
        baseline_objective=base.objective,
        dual_bound=plan.objective if bound is None else bound,
        asked=m.asked,
        wait=plan.figures,
        baseline_wait=base.figures,
    )
    return explain(
        problem,
        solution,
        status=state,
        mip_gap=gap,
        tie_break=tie_break,
        solver=f"HiGHS {h.version()} MIP ({m.x_start} integer, {h.getNumCol() - m.x_start} "
        f"continuous columns, {h.getNumRow()} rows; mip_rel_gap {mip_rel_gap:g})",
        started=started,
    )

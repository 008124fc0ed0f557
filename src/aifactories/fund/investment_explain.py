"""Why each candidate was taken or left, and which constraints hold the plan back.

From the solved model (investment.py): the modules built, the GPU-hours served, and the duals
of the capacity rows at the plan (the integers fixed), pi[k, t]: weighted GPU-hours that one
more GPU-hour of capacity in country k serves in year t.

- A taken candidate is credited with its share of what its country's capacity serves, year by
  year; its capital divided by that is its cost per weighted GPU-hour served. The dearest of
  the taken ones is "the last taken one".
- A left candidate (or the next module of a partly taken one) is valued at the margin: one
  module adds gpu_hours_per_year x pi[k, t] over the years it serves. Zero: the demand in its
  reach is served already, and, left with nothing to serve, what meets its need instead: a
  cheaper candidate taken in its country, or the countries a binding "at least K countries"
  is met in (the plan is the cheapest within the gap, investment_cheapest.py). Otherwise a
  constraint stops it (a plan that could add it for free would have): the budget, a per-year
  budget, the energy or carbon cap, the country share or the site's power; each one that one
  more module would break is named.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aifactories.fund.investment_cheapest import TieBreak
from aifactories.fund.investment_model import (
    Candidate,
    CandidateOutcome,
    ConstraintState,
    InvestmentPlan,
    InvestmentProblem,
    Objective,
    ServedByClass,
)
from aifactories.fund.investment_wait import MAX_UTILISATION, WaitFigures, unserved_wait_hours

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_REL_TOL = 1e-7
_VALUE_EPS = 1e-6  # weighted GPU-hours: below this a module adds nothing


@dataclass(frozen=True, slots=True)
class Solution:
    modules: IntArray  # per candidate
    countries: tuple[str, ...]
    served: FloatArray  # GPU-hours served [demand, year]
    baseline_served: FloatArray  # the same with today's capacity only
    weighted: FloatArray  # weighted GPU-hours served from each country's capacity [k, t]
    duals: FloatArray  # [k, t]
    existing: FloatArray  # [k, t]
    reachable: frozenset[str]  # countries whose capacity some demand may use
    objective: float
    baseline_objective: float
    dual_bound: float
    asked: float  # GPU-hours asked over the horizon
    wait: WaitFigures | None = None  # mean_wait only
    baseline_wait: WaitFigures | None = None


def _eur(value: float) -> str:
    if abs(value) >= 1e9:
        return f"EUR {value / 1e9:.2f} bn"
    if abs(value) >= 1e6:
        return f"EUR {value / 1e6:.1f} m"
    return f"EUR {value:,.0f}"


def _one(c: Candidate) -> str:
    return "it" if c.max_modules == 1 else "a module"


def _per_unit(p: InvestmentProblem) -> str:
    """What a candidate's EUR are per: its share of the objective."""
    if p.objective is Objective.MEAN_WAIT:
        return "hour of mean wait saved"
    return "weighted GPU-hour"


def _per_hour(p: InvestmentProblem, value: float) -> str:
    if p.objective is Objective.MEAN_WAIT:
        money = _eur(value) if abs(value) >= 1e6 else f"EUR {value:.3g}"
        return f"{money} per hour of mean wait saved"
    return f"EUR {value:.3g} per weighted GPU-hour"


class _Usage:
    """What the plan uses of each constraint, and which ones one more module would break."""

    def __init__(self, p: InvestmentProblem, modules: IntArray) -> None:
        self.p, self.n = p, modules
        cands = p.candidates
        self.capital = float(sum(c.capital_eur * m for c, m in zip(cands, modules, strict=True)))
        self.by_year = {
            y: sum(
                c.capital_eur * m
                for c, m in zip(cands, modules, strict=True)
                if max(c.from_year, p.years[0]) <= y
            )
            for y in p.years
        }
        self.energy = {y: self._sum(lambda c: c.mwh_per_year, y) for y in p.years}
        self.carbon = {y: self._sum(lambda c: c.carbon_t_per_year, y) for y in p.years}
        self.accelerators = {
            k: sum(c.accelerators_per_module * m for c, m in zip(cands, modules, strict=True)
                   if c.country == k)
            for k in {c.country for c in cands}
        }  # fmt: skip
        self.site_kw = {
            s: sum(c.kw * m for c, m in zip(cands, modules, strict=True) if c.site == s)
            for s in p.site_power_kw
        }

    def _sum(self, figure: Callable[[Candidate], float], year: int) -> float:
        pairs = zip(self.p.candidates, self.n, strict=True)
        return float(sum(figure(c) * m for c, m in pairs if c.serves(year)))

    def blockers(self, c: Candidate) -> list[tuple[str, str]]:
        """(constraint, words) for each constraint one more module of ``c`` would break."""
        p, out = self.p, []
        over = self.capital + c.capital_eur - p.budget_eur
        if over > _REL_TOL * max(p.budget_eur, 1.0):
            left = max(p.budget_eur - self.capital, 0.0)
            out.append(("budget", f"budget exhausted ({_eur(left)} left, {_one(c)} costs "
                                  f"{_eur(c.capital_eur)})"))  # fmt: skip
        if p.budget_by_year_eur is not None:
            cumulative = dict(zip(p.years, np.cumsum(p.budget_by_year_eur), strict=True))
            for y in p.years:
                if max(c.from_year, p.years[0]) <= y and self.by_year[y] + c.capital_eur > (
                    cumulative[y] * (1 + _REL_TOL)
                ):
                    out.append((f"budget to {y}", f"the budget up to {y} is spent"))
                    break
        for name, cap, used, figure, unit in (
            ("energy cap", p.energy_cap_mwh_per_year, self.energy, c.mwh_per_year, "MWh/yr"),
            ("carbon cap", p.carbon_cap_t_per_year, self.carbon, c.carbon_t_per_year, "t/yr"),
        ):
            if cap is None:
                continue
            years = [y for y in p.years if c.serves(y) and used[y] + figure > cap * (1 + _REL_TOL)]
            if years:
                out.append((name, f"{name} binding ({used[years[0]]:,.0f} of {cap:,.0f} {unit} "
                                  f"in {years[0]}, {_one(c)} adds {figure:,.0f})"))  # fmt: skip
        if p.country_max_share is not None:
            mine = self.accelerators.get(c.country, 0) + c.accelerators_per_module
            total = sum(self.accelerators.values()) + c.accelerators_per_module
            if mine > p.country_max_share * total * (1 + _REL_TOL):
                out.append(("country share", f"country cap binding ({c.country} would hold "
                            f"{mine / total:.0%} of the new accelerators, cap "
                            f"{p.country_max_share:.0%})"))  # fmt: skip
        limit = p.site_power_kw.get(c.site)
        if limit is not None and self.site_kw[c.site] + c.kw > limit * (1 + _REL_TOL):
            out.append((f"power of {c.site}", f"site power binding ({c.site}: "
                        f"{self.site_kw[c.site] + c.kw:,.0f} of {limit:,.0f} kW)"))  # fmt: skip
        return out


def _credit(p: InvestmentProblem, s: Solution) -> FloatArray:
    """Weighted GPU-hours each taken candidate serves over the horizon (or the hours of mean
    wait it saves): its share of its country's capacity, year by year, times what that
    capacity serves (or saves against leaving its load unserved)."""
    served = s.weighted / _scale(p, s)
    k_of = {k: i for i, k in enumerate(s.countries)}
    # the wait a country's pools save against today alone is the new capacity's: shared by it
    mean_wait = p.objective is Objective.MEAN_WAIT
    capacity = np.zeros_like(s.existing) if mean_wait else s.existing.copy()
    for c, m in zip(p.candidates, s.modules, strict=True):
        for t, y in enumerate(p.years):
            if m and c.serves(y):
                capacity[k_of[c.country], t] += c.gpu_hours_per_year * m
    credit = np.zeros(len(p.candidates))
    for i, (c, m) in enumerate(zip(p.candidates, s.modules, strict=True)):
        k = k_of[c.country]
        for t, y in enumerate(p.years):
            if m and c.serves(y) and capacity[k, t] > 0:
                credit[i] += c.gpu_hours_per_year * m / capacity[k, t] * served[k, t]
    return credit


def _scale(p: InvestmentProblem, s: Solution) -> float:
    """Objective units per unit of Solution.weighted and duals: 1 (weighted GPU-hours), or
    the GPU-hours asked (hours of wait summed over GPU-hours, to hours of mean wait)."""
    return max(s.asked, 1e-300) if p.objective is Objective.MEAN_WAIT else 1.0


def _reasons(p: InvestmentProblem, s: Solution, usage: _Usage) -> list[CandidateOutcome]:
    k_of = {k: i for i, k in enumerate(s.countries)}
    credit = _credit(p, s)
    scale = _scale(p, s)
    taken_cost = {
        i: p.candidates[i].capital_eur * int(s.modules[i]) / credit[i]
        for i in range(len(p.candidates))
        if s.modules[i] and credit[i] > _VALUE_EPS
    }
    last = max(taken_cost.values(), default=None)
    reachable = s.reachable
    outcomes = []
    for i, c in enumerate(p.candidates):
        m = int(s.modules[i])
        margin = (
            sum(
                c.gpu_hours_per_year * s.duals[k_of[c.country], t]
                for t, y in enumerate(p.years)
                if c.serves(y)
            )
            / scale
        )
        next_cost = c.capital_eur / margin if margin > _VALUE_EPS else None
        why_not = ""
        if m < c.max_modules:
            why_not = _why_left(p, c, usage, next_cost, last, c.country in reachable)
            if m == 0 and next_cost is None and c.country in reachable:
                why_not += _met_by(p, c, s.modules)
        if m == 0:
            outcomes.append(CandidateOutcome(c, 0, next_cost, "left: " + why_not))
            continue
        cost = taken_cost.get(i)
        words = f"taken: {_per_hour(p, cost)}" if cost is not None else "taken"
        if cost is not None and p.objective is Objective.SERVED:
            words += " served"
        if cost is not None and cost == last and len(taken_cost) > 1:
            words += f" (the last taken one: the dearest per {_per_unit(p)})"
        if p.min_countries and cost is None:
            words += " (to build in at least the required number of countries)"
        if m < c.max_modules:
            words += f"; {m} of {c.max_modules} modules, no more: {why_not}"
        outcomes.append(CandidateOutcome(c, m, cost, words))
    return outcomes


def _met_by(p: InvestmentProblem, c: Candidate, modules: IntArray) -> str:
    """What meets the need a candidate left with nothing to serve would have met: a cheaper
    candidate taken in its country, or the countries "at least K countries" is met in, for
    no more capital (the tie-break keeps the cheapest plan within the gap, investment.py)."""
    taken = [o for o, m in zip(p.candidates, modules, strict=True) if m > 0]
    here = sorted((o for o in taken if o.country == c.country), key=lambda o: o.capital_eur)
    if here and here[0].capital_eur <= c.capital_eur:
        o = here[0]
        each = "" if o.max_modules == 1 else " a module"
        word = "cheaper" if o.capital_eur < c.capital_eur else "as cheap"
        return f"; a {word} candidate, {o.id} ({_eur(o.capital_eur)}{each}), meets the same need"
    if here:
        return f"; the plan builds in {c.country} already ({', '.join(o.id for o in here)})"
    countries = sorted({o.country for o in taken})
    if p.min_countries and len(countries) == p.min_countries:  # the rule binds
        return (f"; the plan meets 'at least {p.min_countries} countries' in "
                f"{', '.join(countries)}, for no more capital")  # fmt: skip
    return ""


def _why_left(
    p: InvestmentProblem,
    c: Candidate,
    usage: _Usage,
    cost: float | None,
    last: float | None,
    reachable: bool,
) -> str:
    if c.capital_eur > p.budget_eur * (1 + _REL_TOL):
        return f"{_one(c)} costs {_eur(c.capital_eur)}, more than the whole budget"
    if not reachable:
        return f"no demand may be served from {c.country} (each demand's residency rule)"
    if cost is None and p.objective is Objective.MEAN_WAIT:
        return (
            "it would shorten no wait: the pools it would join are lightly loaded or serve "
            f"nothing, and the demand in its reach is served within {MAX_UTILISATION:.0%} "
            "utilisation"
        )
    if cost is None:
        return "nothing left in its reach to serve: the demand it may serve is met by the plan"
    blocked = [words for _, words in usage.blockers(c)]
    compare = f"{_per_hour(p, cost)} at the margin"
    if last is not None:
        relation = "above" if cost > last else "below"
        compare += f", {relation} the last taken one ({_per_hour(p, last)})"
    if blocked:
        return "; ".join(blocked) + f"; {compare}"
    return (f"within the solver's gap: the cheapest plan within it leaves {_one(c)} "
            f"({compare})")  # fmt: skip


def _constraints(
    p: InvestmentProblem, usage: _Usage, outcomes: list[CandidateOutcome]
) -> list[ConstraintState]:
    blocked: dict[str, int] = {}
    for o in outcomes:
        if o.modules < o.candidate.max_modules and o.eur_per_weighted_gpu_hour is not None:
            for name, _ in usage.blockers(o.candidate):
                blocked[name] = blocked.get(name, 0) + 1
    out: list[ConstraintState] = []

    def state(name: str, used: float, limit: float, unit: str, text: str) -> None:
        count = blocked.get(name, 0)
        if count:
            gain = "shorten the wait" if p.objective is Objective.MEAN_WAIT else "serve more"
            text += f"; stops {count} candidate(s) that would {gain}"
        out.append(ConstraintState(name, used, limit, unit, count > 0, text))

    state("budget", usage.capital, p.budget_eur, "EUR",
          f"capital {_eur(usage.capital)} of {_eur(p.budget_eur)}")  # fmt: skip
    if p.budget_by_year_eur is not None:
        for y, limit in zip(p.years, np.cumsum(p.budget_by_year_eur), strict=True):
            spent = usage.by_year[y]
            state(f"budget to {y}", spent, float(limit), "EUR",
                  f"capital by {y}: {_eur(spent)} of {_eur(float(limit))}")  # fmt: skip
    for name, cap, used, unit in (
        ("energy cap", p.energy_cap_mwh_per_year, usage.energy, "MWh/yr"),
        ("carbon cap", p.carbon_cap_t_per_year, usage.carbon, "t/yr"),
    ):
        if cap is not None:
            peak = max(p.years, key=lambda y: used[y])
            state(name, used[peak], cap, unit,
                  f"new capacity: {used[peak]:,.0f} of {cap:,.0f} {unit} in {peak}")  # fmt: skip
    if p.country_max_share is not None:
        total = sum(usage.accelerators.values())
        shares = {k: v / total for k, v in usage.accelerators.items() if total and v}
        top = max(shares.values(), default=0.0)
        at_cap = sorted(k for k, v in shares.items() if v >= p.country_max_share * (1 - 1e-6))
        text = f"largest country share {top:.0%} of cap {p.country_max_share:.0%}"
        if at_cap:
            text += f" (at the cap: {', '.join(at_cap)})"
        state("country share", top, p.country_max_share, "share", text)
    if p.min_countries:
        built = sorted({o.candidate.country for o in outcomes if o.taken})
        out.append(
            ConstraintState(
                "min countries",
                len(built),
                p.min_countries,
                "countries",
                len(built) == p.min_countries,
                f"new capacity in {len(built)} countries ({', '.join(built)}), at least "
                f"{p.min_countries} required",
            )
        )
    for site, limit in sorted(p.site_power_kw.items()):
        state(f"power of {site}", usage.site_kw[site], limit, "kW",
              f"{site}: {usage.site_kw[site]:,.0f} of {limit:,.0f} kW")  # fmt: skip
    return out


def _served(p: InvestmentProblem, s: Solution) -> list[ServedByClass]:
    classes = sorted(p.priority_weights)
    c_of = {c: i for i, c in enumerate(classes)}
    shape = (len(classes), len(p.years))
    demand, served, base = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for i, d in enumerate(p.demand):
        for t, y in enumerate(p.years):
            demand[c_of[d.priority], t] += p.demand_in(d, y)
            served[c_of[d.priority], t] += s.served[i, t]
            base[c_of[d.priority], t] += s.baseline_served[i, t]
    return [
        ServedByClass(c, y, float(demand[i, t]), float(served[i, t]), float(base[i, t]))
        for i, c in enumerate(classes)
        for t, y in enumerate(p.years)
        if demand[i, t] > 0
    ]


def describe(p: InvestmentProblem) -> str:
    if p.objective is Objective.MEAN_WAIT:
        return (
            f"Minimise the mean wait per GPU-hour asked over {p.years[0]}-{p.years[-1]}, not "
            f"weighted by priority: each country's capacity a year is one queue of jobs of "
            f"{p.mean_job_hours:g} h (M/M/1, loaded to {MAX_UTILISATION:.0%} at most), each "
            f"GPU-hour left unserved waits {unserved_wait_hours(p.mean_job_hours):,.0f} h; "
            f"demand grows {p.growth_rate:.0%} a year; within {_eur(p.budget_eur)}. The "
            f"model's estimate, not the twin's (--check)."
        )
    weights = ", ".join(f"{k} x{w:g}" for k, w in sorted(p.priority_weights.items()))
    text = (
        f"Maximise the GPU-hours served over {p.years[0]}-{p.years[-1]}, weighted by priority "
        f"({weights})"
    )
    if p.away_penalty:
        text += f", {p.away_penalty:.0%} less when served from another country"
    return text + f"; demand grows {p.growth_rate:.0%} a year; within {_eur(p.budget_eur)}."


def explain(
    p: InvestmentProblem,
    s: Solution,
    *,
    status: str,
    mip_gap: float,
    solver: str,
    started: float,
    tie_break: TieBreak | None = None,
) -> InvestmentPlan:
    usage = _Usage(p, s.modules)
    outcomes = _reasons(p, s, usage)
    weighted_demand = sum(
        (1.0 if p.objective is Objective.MEAN_WAIT else p.priority_weights[d.priority])
        * p.demand_in(d, y)
        for d in p.demand
        for y in p.years
    )
    return InvestmentPlan(
        outcomes=tuple(outcomes),
        constraints=tuple(_constraints(p, usage, outcomes)),
        served=tuple(_served(p, s)),
        objective=s.objective,
        baseline_objective=s.baseline_objective,
        weighted_demand=weighted_demand,
        budget_eur=p.budget_eur,
        objective_text=describe(p),
        status=status,
        mip_gap=mip_gap,
        dual_bound=s.dual_bound,
        solver=solver,
        solve_seconds=time.perf_counter() - started,
        objective_kind=p.objective,
        wait=s.wait,
        baseline_wait=s.baseline_wait,
        tie_break=tie_break,
    )

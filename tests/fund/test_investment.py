"""The investment optimiser on small problems whose best plan is known by hand, and the why it
gives for each candidate."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.fund.investment import _drop_idle, _fixed, optimise_investments
from aifactories.fund.investment_build import build_model
from aifactories.fund.investment_model import (
    Candidate,
    CandidateKind,
    Demand,
    ExistingCapacity,
    InvestmentPlan,
    InvestmentProblem,
    Residency,
)
from aifactories.scheduling.lp_solver import new_highs

WEIGHTS = {"critical_domain": 1.5, "industrial": 1.5, "other": 1.0}


def cand(
    ident: str,
    country: str,
    capital: float,
    hours: float,
    *,
    modules: int = 1,
    mwh: float = 0.0,
    from_year: int = 2027,
    site: str | None = None,
) -> Candidate:
    return Candidate(
        id=ident,
        kind=CandidateKind.NEW_SITE,
        site=site or ident,
        country=country,
        gpu_model="B200",
        accelerators_per_module=1000,
        max_modules=modules,
        from_year=from_year,
        until_year=None,
        capital_eur=capital,
        operating_eur_per_year=0.0,
        energy_eur_per_year=0.0,
        kw=1000.0,
        gpu_hours_per_year=hours,
        mwh_per_year=mwh,
        carbon_t_per_year=mwh * 0.1,
    )


def problem(candidates: list[Candidate], demand: list[Demand], **kw: object) -> InvestmentProblem:
    options: dict[str, object] = {"years": (2027,), "budget_eur": 20.0, **kw}
    return InvestmentProblem(
        candidates=tuple(candidates),
        demand=tuple(demand),
        priority_weights=WEIGHTS,
        **options,  # type: ignore[arg-type]
    )


def by_id(plan: InvestmentPlan) -> dict[str, tuple[int, str]]:
    return {o.candidate.id: (o.modules, o.reason) for o in plan.outcomes}


BIG = [Demand("DE", "other", 1_000.0), Demand("FR", "other", 1_000.0)]
THREE = [cand("a", "DE", 10, 100), cand("b", "FR", 10, 80), cand("c", "DE", 10, 120)]


def test_budget_for_two_takes_the_pair_that_serves_most_per_euro() -> None:
    plan = optimise_investments(problem(THREE, BIG))
    chosen = by_id(plan)
    assert [i for i, (m, _) in chosen.items() if m] == ["a", "c"]
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(220.0)
    assert plan.baseline_objective == pytest.approx(0.0)
    assert plan.capital_eur == pytest.approx(20.0)
    # a is dearer per served hour than c: the last taken one; b is dearer still
    a, b, c = (o for o in plan.outcomes)
    assert a.eur_per_weighted_gpu_hour == pytest.approx(0.1)
    assert c.eur_per_weighted_gpu_hour == pytest.approx(10 / 120)
    assert "the last taken one" in a.reason and a.reason.startswith("taken")
    assert b.reason.startswith("left: budget exhausted (EUR 0 left, it costs EUR 10)")
    assert "above the last taken one (EUR 0.1 per weighted GPU-hour)" in b.reason
    budget = plan.constraints[0]
    assert (budget.name, budget.binding) == ("budget", True)
    assert [a.candidate_id for a in plan.added] == ["a", "c"]
    assert plan.added[0].accelerators == 1000 and plan.added[0].from_year == 2027


def test_a_country_cap_changes_the_answer() -> None:
    plan = optimise_investments(problem(THREE, BIG, country_max_share=0.5))
    chosen = by_id(plan)
    assert {i for i, (m, _) in chosen.items() if m} == {"b", "c"}
    assert plan.objective == pytest.approx(200.0)
    reason = chosen["a"][1]
    assert "country cap binding (DE would hold 67% of the new accelerators, cap 50%)" in reason
    share = next(c for c in plan.constraints if c.name == "country share")
    assert share.binding and "at the cap: DE, FR" in share.text


def test_an_energy_cap_leaves_the_hungry_candidate() -> None:
    hungry = [cand("a", "DE", 10, 100, mwh=50), cand("c", "DE", 10, 120, mwh=80)]
    plan = optimise_investments(problem(hungry, BIG, energy_cap_mwh_per_year=100.0))
    chosen = by_id(plan)
    assert chosen["c"][0] == 1 and chosen["a"][0] == 0
    assert "energy cap binding (80 of 100 MWh/yr in 2027, it adds 50)" in chosen["a"][1]
    energy = next(c for c in plan.constraints if c.name == "energy cap")
    assert energy.binding and energy.used == pytest.approx(80.0)


def test_residency_keeps_a_demand_at_home() -> None:
    # The French demand must stay in France: the cheap German site cannot serve it.
    at_home = [Demand("FR", "critical_domain", 50.0, Residency.COUNTRY)]
    cands = [cand("de", "DE", 1, 1000), cand("fr", "FR", 10, 40)]
    plan = optimise_investments(problem(cands, at_home))
    chosen = by_id(plan)
    assert chosen["fr"][0] == 1 and chosen["de"][0] == 0
    assert "no demand may be served from DE" in chosen["de"][1]
    assert plan.objective == pytest.approx(1.5 * 40)
    # Within the EU, the German site serves it instead (cheaper, more hours)
    eu = optimise_investments(problem(cands, [replace(at_home[0], residency=Residency.EU)]))
    assert by_id(eu)["de"][0] == 1 and eu.objective == pytest.approx(1.5 * 50)


def test_modules_stop_where_demand_is_met_and_existing_capacity_counts() -> None:
    # 250 GPU-hours asked, 100 there already: two of five 100-hour modules suffice.
    cands = [cand("gf", "DE", 1, 100, modules=5)]
    existing = (ExistingCapacity("old", "DE", "A100", 10, 100.0),)
    demand = [Demand("DE", "industrial", 250.0)]
    plan = optimise_investments(problem(cands, demand, existing=existing))
    (outcome,) = plan.outcomes
    assert outcome.modules == 2 and outcome.accelerators == 2000
    assert "2 of 5 modules, no more: nothing left in its reach to serve" in outcome.reason
    assert plan.baseline_objective == pytest.approx(1.5 * 100)
    assert plan.objective == pytest.approx(1.5 * 250)
    (served,) = plan.served
    assert (served.served_gpu_hours, served.baseline_served_gpu_hours) == pytest.approx(
        (250.0, 100.0)
    )


def test_growth_and_years_a_candidate_serves() -> None:
    # Demand doubles each year; a site from 2028 serves two of the three years.
    cands = [cand("late", "DE", 10, 1000, from_year=2028)]
    demand = [Demand("DE", "other", 100.0)]
    plan = optimise_investments(problem(cands, demand, years=(2027, 2028, 2029), growth_rate=1.0))
    assert plan.outcomes[0].modules == 1
    assert plan.objective == pytest.approx(200 + 400)
    assert plan.weighted_demand == pytest.approx(100 + 200 + 400)


def test_per_year_budget_carries_unspent_money_forward() -> None:
    cands = [cand("early", "DE", 10, 100), cand("later", "FR", 10, 100, from_year=2028)]
    demand = [Demand("DE", "other", 1000.0), Demand("FR", "other", 1000.0)]
    years = (2027, 2028)
    # 5 a year: nothing can start in 2027; by 2028 there are 10, enough for one.
    plan = optimise_investments(problem(cands, demand, years=years, budget_by_year_eur=(5.0, 5.0)))
    chosen = by_id(plan)
    assert chosen["later"][0] == 1 and chosen["early"][0] == 0
    assert "the budget up to 2027 is spent" in chosen["early"][1]


def test_at_least_k_countries_and_an_impossible_k() -> None:
    plan = optimise_investments(problem(THREE, BIG, min_countries=2))
    assert {o.candidate.country for o in plan.outcomes if o.taken} == {"DE", "FR"}
    with pytest.raises(
        InvalidInput, match=r"min_countries: .* 3 countries, but the candidates are in 2"
    ):
        optimise_investments(problem(THREE, BIG, min_countries=3))
    with pytest.raises(InvalidInput, match="min_countries: no plan builds in 2 countries"):
        optimise_investments(problem(THREE, BIG, min_countries=2, budget_eur=1.0))


def test_a_candidate_dearer_than_the_whole_budget() -> None:
    plan = optimise_investments(problem([cand("gold", "DE", 50, 10_000)], BIG))
    assert "more than the whole budget" in plan.outcomes[0].reason


def test_invalid_problems_name_the_field() -> None:
    with pytest.raises(InvalidInput, match=r"demand\[0\]\.priority: unknown class 'vip'"):
        problem(THREE, [Demand("DE", "vip", 1.0)])
    with pytest.raises(InvalidInput, match="years: must be consecutive"):
        problem(THREE, BIG, years=(2027, 2029))
    with pytest.raises(InvalidInput, match="candidates: ids must be unique, repeated: a"):
        problem([THREE[0], THREE[0]], BIG)


def test_a_free_candidate_with_no_budget_is_built_as_far_as_demand_asks() -> None:
    """Capital 0 and a budget of 0: the budget bounds no module of it (no 0/0)."""
    free = cand("free", "DE", 0.0, 400.0, modules=8)
    plan = optimise_investments(problem([free], BIG, budget_eur=0.0))
    # 2,000 GPU-hours asked (DE at home, FR from abroad): 5 modules, the rest left idle
    assert by_id(plan)["free"][0] == 5
    assert plan.objective == pytest.approx(2_000.0, rel=1e-9)


def test_idle_modules_taken_back_leave_no_country_counted_without_capacity() -> None:
    """The clean-up after the MIP (investment._drop_idle) takes back ES's idle module: ES
    must no longer count among "at least K countries", or the plan's LP is infeasible."""
    p = problem(
        [cand("de", "DE", 1, 100), cand("fr", "FR", 1, 100), cand("es", "ES", 1, 100)],
        [
            Demand("DE", "other", 100.0, Residency.COUNTRY),
            Demand("FR", "other", 100.0, Residency.COUNTRY),
        ],
        budget_eur=3.0,
        min_countries=2,
    )
    m = build_model(p)
    h = new_highs()
    h.passModel(m.lp)
    integers = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])  # n (DE, FR, ES), y (DE, ES, FR)
    plan = _fixed(h, m, integers.copy())
    assert _drop_idle(p, m, integers, plan.x)
    assert list(integers[:3]) == [1.0, 1.0, 0.0]
    assert integers[3 + m.y_countries.tolist().index(m.countries.index("ES"))] == 0.0
    assert _fixed(h, m, integers).objective == pytest.approx(200.0)


def test_idle_module_taken_back_counts_the_built_countries_the_mip_left_uncounted() -> None:
    """The MIP may build in K+1 countries and count only K (y[k] = 0 beside a module): when
    the clean-up takes back a counted country's module, the uncounted one that keeps its
    module must be counted, or fewer than K remain and the plan's LP is infeasible (found
    with the InvestAI file and the seeded programme's small demand)."""
    p = problem(
        [cand("de", "DE", 1, 100), cand("fr", "FR", 1, 100), cand("es", "ES", 1, 100)],
        [
            Demand("DE", "other", 100.0, Residency.COUNTRY),
            Demand("FR", "other", 100.0, Residency.COUNTRY),
        ],
        budget_eur=3.0,
        min_countries=2,
    )
    m = build_model(p)
    h = new_highs()
    h.passModel(m.lp)
    y = {m.countries[k]: 3 + j for j, k in enumerate(m.y_countries.tolist())}
    integers = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])  # n (DE, FR, ES), then y
    integers[y["DE"]] = integers[y["ES"]] = 1.0  # FR built but not counted
    plan = _fixed(h, m, integers.copy())
    assert _drop_idle(p, m, integers, plan.x)
    assert list(integers[:3]) == [1.0, 1.0, 0.0]
    assert (integers[y["DE"]], integers[y["FR"]], integers[y["ES"]]) == (1.0, 1.0, 0.0)
    assert _fixed(h, m, integers).objective == pytest.approx(200.0)

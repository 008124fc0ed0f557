"""The tie-break between plans that serve as much (fund/investment_cheapest.py): the cheapest
of the plans within the solver's gap of the best, on cases computed by hand."""

from __future__ import annotations

from dataclasses import replace

import highspy
import numpy as np
import pytest

from aifactories.fund.investment import MIP_REL_GAP, optimise_investments
from aifactories.fund.investment_build import build_model
from aifactories.fund.investment_cheapest import (
    CHEAPEST_TIME_LIMIT_S,
    MIN_LEFT_S,
    MIN_TIME_LIMIT_S,
    SOLVE_BUDGET_S,
    TieBreak,
    cheapest,
    time_limit,
)
from aifactories.fund.investment_model import Demand, ExistingCapacity, Objective, Residency
from aifactories.scheduling.lp_solver import new_highs
from tests.fund.test_investment import by_id, cand, problem
from tests.fund.test_investment_bench import _bench

# DE's demand (EU residency) is served by today's capacity there: nothing built serves more
AT_HOME = [Demand("DE", "other", 1_000.0, Residency.EU)]
TODAY = (ExistingCapacity("de-now", "DE", "B200", 100, 2_000.0),)
# "at least 2 countries": FR and PL must both be built; FR has a dear and a cheap candidate
FORCED = [cand("fr-dear", "FR", 10, 500), cand("fr-cheap", "FR", 3, 500), cand("pl", "PL", 5, 500)]


@pytest.mark.parametrize("objective", [Objective.SERVED, Objective.MEAN_WAIT])
def test_of_two_plans_that_serve_the_same_the_cheaper_is_chosen(objective: Objective) -> None:
    """fr-dear + pl and fr-cheap + pl serve the same: today's capacity serves DE at home.
    With the mean wait, DE's demand stays in DE: new capacity abroad shortens no queue, and
    both plans wait the same. The plan costs 8, not 15."""
    demand = AT_HOME
    if objective is Objective.MEAN_WAIT:
        demand = [replace(d, residency=Residency.COUNTRY) for d in AT_HOME]
    p = problem(FORCED, demand, existing=TODAY, min_countries=2, objective=objective)
    plan = optimise_investments(p)
    chosen = by_id(plan)
    assert {i for i, (m, _) in chosen.items() if m} == {"fr-cheap", "pl"}
    assert plan.capital_eur == pytest.approx(8.0)
    assert plan.tie_break is not None and plan.tie_break.capital_eur == pytest.approx(8.0)
    assert plan.tie_break.status == "optimal"
    if objective is Objective.SERVED:
        dear = chosen["fr-dear"][1]
        assert dear.startswith("left: nothing left in its reach to serve")
        assert dear.endswith("; a cheaper candidate, fr-cheap (EUR 3), meets the same need")
    said = "tie-break: the cheapest (within 1%) of the plans within 0.20% of the best: EUR 0.00"
    assert any(line.startswith(said) for line in plan.summary())
    assert plan.as_dict()["tie_break"]["capital_eur"] == pytest.approx(8.0)


def test_a_left_country_says_the_countries_rule_is_met_for_no_more() -> None:
    """Three countries offered, two required: PL (5) is left for FR (3) and IT (4)."""
    it = cand("it", "IT", 4, 500)
    plan = optimise_investments(problem([*FORCED, it], AT_HOME, existing=TODAY, min_countries=2))
    chosen = by_id(plan)
    assert {i for i, (m, _) in chosen.items() if m} == {"fr-cheap", "it"}
    assert chosen["pl"][1].endswith(
        "; the plan meets 'at least 2 countries' in FR, IT, for no more capital"
    )


def test_a_cheaper_plan_within_the_gap_is_chosen_and_its_gap_stated() -> None:
    """a serves all 10,000 GPU-hours for 10; b 9,990 (0.1% less, within the 0.2% gap) for 5:
    b alone. b with 9,970 (0.3% less): a."""
    demand = [Demand("DE", "other", 10_000.0)]
    a, b = cand("a", "DE", 10, 10_000), cand("b", "DE", 5, 9_990)
    plan = optimise_investments(problem([a, b], demand))
    assert plan.capital_eur == pytest.approx(5.0)
    assert plan.objective == pytest.approx(9_990.0)
    # the plan says how far it is from the best (10,000): 0.1%, within the stated gap
    assert plan.mip_gap == pytest.approx(10 / 9_990, rel=1e-3)
    assert plan.mip_gap <= MIP_REL_GAP
    assert plan.tie_break is not None and plan.tie_break.first_capital_eur == pytest.approx(10.0)
    assert by_id(plan)["a"][1].startswith("left: within the solver's gap: the cheapest plan")

    short = replace(b, gpu_hours_per_year=9_970.0)
    plan = optimise_investments(problem([a, short], demand))
    assert {o.candidate.id for o in plan.outcomes if o.taken} == {"a"}
    assert plan.objective == pytest.approx(10_000.0)


def test_the_cheapest_plan_keeps_the_budget_and_the_country_share() -> None:
    """fr-small + pl (6) would be cheapest, but pl would hold 91% of the new accelerators
    (cap 60%): fr-big + pl (19); with a budget of 18 no plan builds in 2 countries."""
    small = replace(cand("fr-small", "FR", 1, 500), accelerators_per_module=100)
    big, pl = cand("fr-big", "FR", 10, 500), cand("pl", "PL", 9, 500)
    p = problem([small, big, pl], AT_HOME, existing=TODAY, min_countries=2,
                country_max_share=0.6, budget_eur=25.0)  # fmt: skip
    plan = optimise_investments(p)
    assert {o.candidate.id for o in plan.outcomes if o.taken} == {"fr-big", "pl"}
    assert plan.capital_eur == pytest.approx(19.0) and plan.capital_eur <= p.budget_eur
    share = next(c for c in plan.constraints if c.name == "country share")
    assert share.used <= 0.6 + 1e-9
    assert "the plan builds in FR already (fr-big)" in by_id(plan)["fr-small"][1]

    with pytest.raises(Exception, match="no plan builds in 2 countries"):
        optimise_investments(replace(p, budget_eur=18.0))


def test_at_its_time_limit_the_tie_break_keeps_a_plan_no_dearer_and_says_so() -> None:
    """On the bench's problem (seed 1) with 1 ms, HiGHS stops with the first plan, given as
    its start: kept; the model is left as it was (rows, sense, options) for the LPs after."""
    p = _bench().bench_problem(30, 1)
    m = build_model(p)
    h = new_highs(mip_rel_gap=MIP_REL_GAP)
    h.passModel(m.lp)
    h.run()
    capital = np.array([c.capital_eur for c in p.candidates])
    first = np.round(np.asarray(h.getSolution().col_value)[: m.x_start])
    chosen, status, _ = cheapest(
        h, m, capital, tolerance=MIP_REL_GAP, bound=h.getInfo().mip_dual_bound, time_limit_s=1e-3
    )
    assert status == "time_limit"
    assert capital @ chosen[: m.n_candidates] <= capital @ first[: m.n_candidates]
    assert h.getNumRow() == m.lp.num_row_
    assert h.getObjectiveSense()[1] == highspy.ObjSense.kMaximize
    assert h.getOptionValue("mip_rel_gap")[1] == MIP_REL_GAP
    assert h.getOptionValue("time_limit")[1] == highspy.kHighsInf
    said = TieBreak(MIP_REL_GAP, 0.01, 20e9, 19.5e9, status, 3.0).text()
    assert said == (
        "tie-break: the cheapest found in 3.0 s (not proven the cheapest) of the plans within "
        "0.20% of the best: EUR 19.50 bn; the first plan found cost EUR 20.00 bn"
    )


def test_the_tie_break_gets_what_the_first_mip_left_of_the_solve_budget() -> None:
    assert time_limit(1.0, None) == CHEAPEST_TIME_LIMIT_S
    assert time_limit(6.0, None) == pytest.approx(SOLVE_BUDGET_S - 6.0)
    assert time_limit(9.5, None) == MIN_TIME_LIMIT_S
    # the caller's limit is on the whole solve: the tie-break gets what is left of it
    assert time_limit(1.0, 2.0) == pytest.approx(1.0)
    assert time_limit(5.0, 5.5) == pytest.approx(0.5)
    assert 0 < time_limit(59.0, 60.0) <= 1.0  # the API's 60 s, after a first MIP of 59 s
    assert 0 < time_limit(61.0, 60.0) <= MIN_LEFT_S  # spent: HiGHS only takes its start plan

"""The lowest-mean-wait objective (fund/investment_wait.py): the tangent planes against
L^2 / (C - L), a small case whose plan differs from the served-demand objective's, by hand,
and that leaving demand unserved never lowers the wait."""

from __future__ import annotations

import numpy as np
import pytest

from aifactories.fund.invest_scenario import build_problem, parse_scenario
from aifactories.fund.investment import MIP_REL_GAP, optimise_investments
from aifactories.fund.investment_model import (
    Demand,
    ExistingCapacity,
    InvestmentPlan,
    Objective,
    Residency,
)
from aifactories.fund.investment_wait import (
    MAX_UTILISATION,
    TANGENT_TOLERANCE,
    TANGENTS,
    linearised_wait,
    queue_wait,
    unserved_wait_hours,
)
from tests.fund.test_invest_demand import _plan_file
from tests.fund.test_investment import by_id, cand, problem


def test_the_planes_touch_the_wait_at_each_tangent_and_stay_within_the_tolerance() -> None:
    for u in TANGENTS:  # homogeneous: any capacity
        for capacity in (1.0, 250.0, 3e9):
            assert linearised_wait(u * capacity, capacity) == pytest.approx(
                queue_wait(u * capacity, capacity), rel=1e-9
            )
    for rho in np.linspace(TANGENTS[0], MAX_UTILISATION, 2001):
        exact, planes = queue_wait(rho * 80.0, 80.0), linearised_wait(rho * 80.0, 80.0)
        assert planes <= exact * (1 + 1e-12)  # from below: a convex function's tangents
        assert planes >= exact * (1 - TANGENT_TOLERANCE)
    assert queue_wait(0.0, 0.0) == 0.0 and queue_wait(1.0, 1.0) == float("inf")


def test_unserved_wait_is_never_below_the_steepest_queueing_it_allows() -> None:
    """Serving one more GPU-hour where the pool has room adds at most T hours of wait: the
    planes' slope in L is at most S x alpha(MAX_UTILISATION) <= T."""
    for job_hours in (0.5, 4.0, 24.0, 200.0):
        t = unserved_wait_hours(job_hours)
        assert t >= 8766.0
        grid = np.linspace(0.0, MAX_UTILISATION - 1e-3, 500)
        for load in grid:
            step = 1e-3
            added = job_hours * (linearised_wait(load + step, 1.0) - linearised_wait(load, 1.0))
            assert added <= t * step * (1 + 1e-9)


# Budget for one module of 100 GPU-hours: in DE (2 GPU-hours of critical demand, nothing
# today) or in FR (95 GPU-hours of other demand on 100 today: 95% busy). Jobs of 24 h, so an
# unserved GPU-hour waits max(8,766, 1.1 x 24 x alpha(0.95) = 10,534) = 10,534 h.
CANDIDATES = [cand("de", "DE", 10, 100), cand("fr", "FR", 10, 100)]
DEMAND = [
    Demand("DE", "critical_domain", 2.0, Residency.COUNTRY),
    Demand("FR", "other", 95.0, Residency.COUNTRY),
]
TODAY = (ExistingCapacity("fr-today", "FR", "A100", 100, 100.0),)


def _plan(objective: Objective, **kw: object) -> InvestmentPlan:
    options: dict[str, object] = {"budget_eur": 10.0, "existing": TODAY, "mean_job_hours": 24.0}
    options.update(kw)
    return optimise_investments(problem(CANDIDATES, DEMAND, objective=objective, **options))


def test_mean_wait_relieves_the_busy_pool_where_served_demand_serves_the_new_demand() -> None:
    """Served demand: DE's module serves 2 x 1.5 weighted GPU-hours, FR's none (FR's 95 fit
    in today's 100). Mean wait: DE's module saves 2 unserved GPU-hours (2 x 10,534 h); FR's
    lowers FR's queue from 95^2 / 5 = 1,805 to 95^2 / 105 = 86 job lengths (24 h each):
    41,256 h against 21,067 h."""
    served = _plan(Objective.SERVED)
    assert [i for i, (m, _) in by_id(served).items() if m] == ["de"]
    assert served.objective == pytest.approx(95.0 + 3.0)
    assert served.dual_bound >= served.objective * (1 - 1e-9) and served.wait is None

    plan = _plan(Objective.MEAN_WAIT)
    chosen = by_id(plan)
    assert [i for i, (m, _) in chosen.items() if m] == ["fr"]
    assert chosen["fr"][1].startswith("taken: EUR") and "hour of mean wait saved" in chosen["fr"][1]
    assert "budget exhausted" in chosen["de"][1]
    asked, t = 97.0, 1.1 * 24 * 0.95 * 1.05 / 0.05**2
    assert unserved_wait_hours(24.0) == pytest.approx(t)
    # today alone: FR at 95% (a tangent: exact), DE's 2 unserved
    assert plan.baseline_objective == pytest.approx((24 * 1805 + 2 * t) / asked, rel=1e-6)
    # the plan: FR at 47.5%, within the planes' tolerance of 95^2 / 105
    exact = (24 * 95**2 / 105 + 2 * t) / asked
    assert exact * (1 - TANGENT_TOLERANCE) <= plan.objective <= exact
    wait = plan.wait
    assert wait.unserved_h == pytest.approx(2 * t / asked) and wait.unserved_share == pytest.approx(
        2 / asked
    )
    # DE's module instead: FR stays at 95%, 24 x 1,805 h of queueing
    assert plan.objective < 24 * 1805 / asked
    assert plan.dual_bound <= plan.objective * (1 + 1e-9)
    assert plan.mip_gap <= MIP_REL_GAP


@pytest.mark.parametrize("asked", [60.0, 90.0, 95.0, 120.0])
def test_demand_within_the_pools_room_is_always_served(asked: float) -> None:
    """Long jobs (200 h: a 95%-busy pool queues each GPU-hour 3,800 h) and nothing to buy:
    the plan still serves all it can, up to 95 of today's 100 GPU-hours."""
    plan = optimise_investments(
        problem(
            [],
            [Demand("DE", "other", asked, Residency.COUNTRY)],
            existing=(ExistingCapacity("today", "DE", "A100", 100, 100.0),),
            objective=Objective.MEAN_WAIT,
            mean_job_hours=200.0,
        )
    )
    served = sum(s.served_gpu_hours for s in plan.served)
    assert served == pytest.approx(min(asked, 95.0), rel=1e-6)
    assert plan.wait is not None
    unserved = max(asked - 95.0, 0.0)
    assert plan.wait.unserved_h == pytest.approx(unserved * unserved_wait_hours(200.0) / asked)


def test_more_money_never_lengthens_the_mean_wait() -> None:
    waits = [_plan(Objective.MEAN_WAIT, budget_eur=b).objective for b in (0.0, 10.0, 20.0)]
    assert waits[0] >= waits[1] >= waits[2] * (1 - 1e-9)
    assert waits[2] < waits[1]  # both modules: DE served and FR relieved


def test_load_moved_between_countries_pools_is_credited_no_wait_saved() -> None:
    """DE's 20 GPU-hours (EU residency) wait 0 h on today's 100 in DE (20% busy) and on
    anything built; "at least 2 countries" builds in DE and FR. Load the plan moves to FR's
    pool is served there and no longer in DE: the plan saves no wait, so no candidate is
    credited with EUR per hour saved; both are taken for the 2 countries."""
    plan = optimise_investments(
        problem(
            [cand("de", "DE", 10, 100), cand("fr", "FR", 10, 100)],
            [Demand("DE", "other", 20.0, Residency.EU)],
            existing=(ExistingCapacity("de-today", "DE", "A100", 100, 100.0),),
            objective=Objective.MEAN_WAIT,
            min_countries=2,
            mean_job_hours=24.0,
        )
    )
    assert plan.objective == pytest.approx(0.0, abs=1e-9)
    assert plan.baseline_objective == pytest.approx(0.0, abs=1e-9)
    for o in plan.outcomes:
        assert o.modules == 1 and o.eur_per_weighted_gpu_hour is None
        assert o.reason == "taken (to build in at least the required number of countries)"
    assert plan.status == "optimal" and plan.mip_gap <= MIP_REL_GAP


def test_the_savings_credited_add_up_to_the_plans_saving() -> None:
    """The case above with FR's 95%-busy pool: what the taken module is credited with is the
    plan's own saving, baseline - objective, hours of mean wait."""
    plan = _plan(Objective.MEAN_WAIT)
    (taken,) = [o for o in plan.outcomes if o.modules]
    assert taken.eur_per_weighted_gpu_hour is not None
    saved = plan.baseline_objective - plan.objective
    assert taken.candidate.capital_eur / taken.eur_per_weighted_gpu_hour == pytest.approx(saved)


def test_a_plan_at_no_wait_has_no_runaway_gap_and_says_the_tie_break_chose() -> None:
    """1 M GPU-hours in DE on 10 accelerators today: a few modules serve it all under 30%
    busy, 0 h of wait, as do the dearer plans; the tie-break keeps a cheaper one. The gap of
    two figures at 0 was printed as 6e+297 ("optimal")."""
    body = _plan_file(objective="mean_wait")
    plan = optimise_investments(build_problem(parse_scenario(body, "small")))
    assert plan.objective == pytest.approx(0.0, abs=1e-9)
    assert plan.dual_bound >= 0.0
    assert plan.status == "optimal" and 0.0 <= plan.mip_gap <= MIP_REL_GAP
    assert plan.tie_break is not None
    assert plan.tie_break.capital_eur < plan.tie_break.first_capital_eur
    assert "the tie-break alone chose this one" in plan.tie_break.text()
    assert "waits 0.0 h" in plan.summary()[-1]

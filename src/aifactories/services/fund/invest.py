"""Where the next euro goes: a plan file (or the packaged InvestAI case) through the investment
optimiser, for ``aif invest`` and ``POST /fund/invest``.

The demand comes from the plan file, not from the database: the programme's proposals ask for
GPU-hours over a project's months, not for a yearly demand by country that grows, and the twin's
workload is not counted in reference GPU-hours; turning either into the file's demand is a
choice for the programme to state (docs/fund.md), not one this use case should make silently.
No transaction: nothing is read from the database or written to it. Costs not in the file come
from the cost model (``AIFACTORIES_COST_MODEL`` laid over the embedded figures); today's
capacity from the platform's catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aifactories.catalogue.loader import Catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.fund.cost_model import load_cost_model
from aifactories.fund.invest_scenario import (
    InvestScenario,
    build_problem,
    load_scenario,
    parse_scenario,
)
from aifactories.fund.investment import optimise_investments
from aifactories.fund.investment_model import InvestmentPlan, InvestmentProblem
from aifactories.services.core.auth import require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext

API_TIME_LIMIT_S = 60.0  # an API worker is not held longer than this by one plan
MAX_CANDIDATES = 2_000  # an API body beyond this is refused: the MIP would hold a worker long


@dataclass(frozen=True, slots=True)
class InvestmentRun:
    scenario: InvestScenario
    problem: InvestmentProblem
    plan: InvestmentPlan

    def as_dict(self) -> dict[str, object]:
        return {"scenario": self.scenario.name, **self.plan.as_dict()}


def plan_investments(
    scenario: InvestScenario,
    catalogue: Catalogue,
    *,
    budget_eur: float | None = None,
    time_limit_s: float | None = None,
) -> InvestmentRun:
    """The plan of ``scenario``, with ``budget_eur`` instead of its budget if given."""
    if budget_eur is not None and budget_eur < 0:
        raise InvalidInput("budget", "must not be negative", ">= 0")
    if len(scenario.candidates) > MAX_CANDIDATES:
        raise InvalidInput("candidates", "too many candidates", f"at most {MAX_CANDIDATES}")
    costs = load_cost_model(catalogue)
    problem = build_problem(scenario, costs=costs, catalogue=catalogue, budget_eur=budget_eur)
    return InvestmentRun(
        scenario, problem, optimise_investments(problem, time_limit_s=time_limit_s)
    )


def plan_from_file(
    path: Path | None, catalogue: Catalogue, *, budget_eur: float | None = None
) -> InvestmentRun:
    """``aif invest``: a plan file, or the packaged InvestAI case when ``path`` is None."""
    return plan_investments(load_scenario(path), catalogue, budget_eur=budget_eur)


def plan_for_operator(
    ctx: ServiceContext, principal: Principal, scenario: InvestScenario | dict[str, object]
) -> InvestmentRun:
    """``POST /fund/invest``: programme operators only; the body is a plan file as JSON. The
    solver stops at API_TIME_LIMIT_S with the best plan found (status ``time_limit``)."""
    require_programme_operator(principal, "plan the fund's investments")
    if not isinstance(scenario, InvestScenario):
        scenario = parse_scenario(scenario, "body")
    return plan_investments(scenario, ctx.catalogue, time_limit_s=API_TIME_LIMIT_S)

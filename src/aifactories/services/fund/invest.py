"""Where the next euro goes: a plan file (or the packaged InvestAI case) through the investment
optimiser, for ``aif invest`` and ``POST /fund/invest``.

The demand comes from the plan file (``demand_from`` ``file``, the default), or is derived from
the programme's proposals in the database or from the twin's workload by the rule that
fund/demand_rules.py states (services/fund/invest_demand.py reads them; the plan says which,
with its figures). Nothing is written to the database; the proposals are read in one read
transaction. Costs not in the file come
from the cost model (``AIFACTORIES_COST_MODEL`` laid over the embedded figures); today's
capacity from the platform's catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aifactories.catalogue.loader import Catalogue
from aifactories.domain.clock import Clock
from aifactories.domain.errors import InvalidInput
from aifactories.fund.cost_model import load_cost_model
from aifactories.fund.demand_rules import DemandSource, DerivedDemand
from aifactories.fund.invest_request import DemandOptions, InvestRequest
from aifactories.fund.invest_scenario import (
    InvestScenario,
    build_problem,
    load_scenario,
    parse_scenario,
)
from aifactories.fund.investment import optimise_investments
from aifactories.fund.investment_model import InvestmentPlan, InvestmentProblem, Objective
from aifactories.services.core.auth import require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.fund.invest_demand import derive_demand

API_TIME_LIMIT_S = 60.0  # an API worker is not held longer than this by one plan
MAX_CANDIDATES = 2_000  # an API body beyond this is refused: the MIP would hold a worker long


@dataclass(frozen=True, slots=True)
class InvestmentRun:
    scenario: InvestScenario
    problem: InvestmentProblem
    plan: InvestmentPlan
    derived: DerivedDemand | None = None  # None: the plan file's demand

    @property
    def demand_text(self) -> str:
        """Where the demand came from, and the rule (fund/demand_rules.py)."""
        if self.derived is not None:
            return self.derived.text
        p = self.problem
        total = sum(d.gpu_hours_per_year for d in p.demand)
        return (
            f"demand: the plan file's {len(p.demand):,} rows, {total / 1e6:,.2f} M GPU-hours a "
            f"year in {p.years[0]}, grown {p.growth_rate:.0%}/year"
        )

    def as_dict(self) -> dict[str, object]:
        demand: dict[str, object] = (
            {"source": DemandSource.FILE.value, "rule": self.demand_text}
            if self.derived is None
            else self.derived.as_dict()
        )
        return {"scenario": self.scenario.name, "demand": demand, **self.plan.as_dict()}


def plan_investments(
    scenario: InvestScenario,
    catalogue: Catalogue,
    *,
    budget_eur: float | None = None,
    time_limit_s: float | None = None,
    derived: DerivedDemand | None = None,
    growth_rate: float | None = None,
) -> InvestmentRun:
    """The plan of ``scenario``, with ``budget_eur`` instead of its budget, ``derived``
    demand instead of its rows and ``growth_rate`` instead of its rate, where given."""
    if budget_eur is not None and budget_eur < 0:
        raise InvalidInput("budget", "must not be negative", ">= 0")
    if len(scenario.candidates) > MAX_CANDIDATES:
        raise InvalidInput("candidates", "too many candidates", f"at most {MAX_CANDIDATES}")
    costs = load_cost_model(catalogue)
    problem = build_problem(
        scenario,
        costs=costs,
        catalogue=catalogue,
        budget_eur=budget_eur,
        demand=None if derived is None else derived.rows,
        growth_rate=growth_rate,
    )
    return InvestmentRun(
        scenario, problem, optimise_investments(problem, time_limit_s=time_limit_s), derived
    )


def plan_from_file(
    path: Path | None,
    catalogue: Catalogue,
    *,
    budget_eur: float | None = None,
    demand: DemandOptions | None = None,
    ctx: ServiceContext | None = None,
    clock: Clock | None = None,
    objective: Objective | None = None,
) -> InvestmentRun:
    """``aif invest``: a plan file, or the packaged InvestAI case when ``path`` is None; its
    demand as ``demand`` says (the programme's needs ``ctx``; services/fund/invest_demand.py);
    ``objective`` instead of the file's."""
    scenario = load_scenario(path)
    if objective is not None:
        scenario = scenario.model_copy(update={"objective": objective})
    options = demand or DemandOptions()
    derived = derive_demand(scenario, options, catalogue, ctx=ctx, clock=clock)
    return plan_investments(
        scenario, catalogue, budget_eur=budget_eur, derived=derived, growth_rate=options.growth
    )


def plan_for_operator(
    ctx: ServiceContext, principal: Principal, scenario: InvestScenario | dict[str, object]
) -> InvestmentRun:
    """``POST /fund/invest``: programme operators only; the body is a plan file as JSON, with
    where its demand comes from beside it (fund/invest_request.py). The solver stops at
    API_TIME_LIMIT_S with the best plan found (status ``time_limit``)."""
    require_programme_operator(principal, "plan the fund's investments")
    if not isinstance(scenario, InvestScenario):
        scenario = parse_scenario(scenario, "body")
    options = scenario.options() if isinstance(scenario, InvestRequest) else DemandOptions()
    derived = derive_demand(scenario, options, ctx.catalogue, ctx=ctx)
    return plan_investments(
        scenario,
        ctx.catalogue,
        time_limit_s=API_TIME_LIMIT_S,
        derived=derived,
        growth_rate=options.growth,
    )

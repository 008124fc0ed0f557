"""REST endpoint: where the next euro goes (the investment optimiser), for programme operators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from aifactories.api.deps import Ctx, Me
from aifactories.fund.invest_request import InvestRequest
from aifactories.services.fund import invest

router = APIRouter(tags=["fund"])


@router.post("/fund/invest", response_model=dict[str, Any])
def plan_investments(context: Ctx, who: Me, body: InvestRequest) -> Any:
    """The plan that serves the most priority-weighted demand (or, with ``objective:
    mean_wait``, that has the lowest mean wait) within the budget and caps of the plan file
    in the body (the format of ``aif invest``'s YAML, as JSON): each candidate
    taken or left and why, the objective, demand served, binding constraints, and the
    partitions the plan adds. Beside the file, ``demand_from`` (``file``, the default;
    ``programme``: the proposals submitted in the ``window_days`` before ``as_of``, their
    requested GPU-hours annualised; ``twin``: a year of the twin's workload, ``seed``), grown
    by ``growth`` a year (default the file's ``growth_rate``); the answer's ``demand`` says
    where it came from and the rule. Programme operators only."""
    return invest.plan_for_operator(context, who, body).as_dict()

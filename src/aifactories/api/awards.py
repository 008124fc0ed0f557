"""REST endpoints: award runs (the allocation optimiser after a cut-off) and applying one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictFloat

from aifactories.api.deps import Ctx, IdempotencyKey, Me
from aifactories.api.params import PathId, PathRef
from aifactories.services.core.input_types import Code, EpochSeconds, Reason
from aifactories.services.programme import award_runs

router = APIRouter(tags=["awards"])

Weight = Annotated[StrictFloat, Field(ge=0, le=1e6, allow_inf_nan=False)]


class AwardRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Annotated[Code, Field(description="optimiser or greedy")] = "optimiser"
    cutoff_at: Annotated[
        EpochSeconds | None, Field(description="only this cut-off's proposals")
    ] = None
    weights: Annotated[
        dict[Code, Weight] | None,
        Field(
            max_length=20,
            description="the programme's weights; defaults in docs/allocation-optimiser.md",
        ),
    ] = None


class ApplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class AwardLineOut(BaseModel):
    site_id: str
    partition_id: str
    month_starts_at: float
    gpu_hours: float


class AwardRunBrief(BaseModel):
    """A run without its lines and both full plans: what a list shows."""

    id: int
    call: str
    cutoff_at: float | None
    method: str
    status: str = Field(description="proposed, applied or discarded")
    objective: str
    weights: dict[str, Any]
    plan: dict[str, Any] = Field(description="the chosen plan: objective, solver, outcomes")
    comparison: list[list[str]] = Field(description="optimiser and greedy side by side")
    month_starts: list[float]
    shares_by_country: dict[str, Any]
    proposals: list[int]
    created_at: float
    applied_at: float | None


class AwardRunOut(AwardRunBrief):
    lines: dict[str, list[AwardLineOut]] = Field(description="proposal id -> its award lines")
    optimiser: dict[str, Any] | None
    greedy: dict[str, Any] | None


@router.post("/calls/{call}/award-runs", response_model=AwardRunOut, status_code=201)
def propose(
    context: Ctx, who: Me, call: PathRef, body: AwardRunIn, key: IdempotencyKey = None
) -> Any:
    return award_runs.run_awards(
        context,
        who,
        call,
        cutoff_at=body.cutoff_at,
        method=body.method,
        weights=body.weights,
        key=key,
    )


@router.get("/calls/{call}/award-runs", response_model=list[AwardRunBrief])
def list_runs(context: Ctx, who: Me, call: PathRef) -> Any:
    return award_runs.list_runs(context, who, call)


@router.get("/award-runs/{run_id}", response_model=AwardRunOut)
def get_run(context: Ctx, who: Me, run_id: PathId) -> Any:
    return award_runs.get_run(context, who, run_id)


@router.post("/award-runs/{run_id}/apply", response_model=AwardRunOut)
def apply(context: Ctx, who: Me, run_id: PathId, body: ApplyIn) -> Any:
    return award_runs.apply_run(context, who, run_id, body.reason)

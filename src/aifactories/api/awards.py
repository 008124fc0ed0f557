"""REST endpoints: award runs (the allocation optimiser after a cut-off) and applying one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from aifactories.api.deps import Ctx, IdempotencyKey, Me
from aifactories.services import award_runs

router = APIRouter(tags=["awards"])


class AwardRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str = Field(default="optimiser", description="optimiser or greedy")
    cutoff_at: float | None = Field(default=None, description="only this cut-off's proposals")
    weights: dict[str, float] | None = Field(
        default=None,
        description="the programme's weights; defaults in docs/allocation-optimiser.md",
    )


class ApplyIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/calls/{call}/award-runs", status_code=201)
def propose(context: Ctx, who: Me, call: str, body: AwardRunIn, key: IdempotencyKey = None) -> Any:
    return award_runs.run_awards(
        context,
        who,
        call,
        cutoff_at=body.cutoff_at,
        method=body.method,
        weights=body.weights,
        key=key,
    )


@router.get("/calls/{call}/award-runs")
def list_runs(context: Ctx, who: Me, call: str) -> Any:
    return award_runs.list_runs(context, who, call)


@router.get("/award-runs/{run_id}")
def get_run(context: Ctx, who: Me, run_id: int) -> Any:
    return award_runs.get_run(context, who, run_id)


@router.post("/award-runs/{run_id}/apply")
def apply(context: Ctx, who: Me, run_id: int, body: ApplyIn) -> Any:
    return award_runs.apply_run(context, who, run_id, body.reason)

"""REST endpoints: proposals (draft, edit, submit, withdraw) and the technical check."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from aifactories.api.deps import Ctx, IdempotencyKey, Me
from aifactories.api.params import PathId, PathRef, RefQ, WordQ
from aifactories.services.core.input_types import Code, LongReason, Reason
from aifactories.services.programme import proposals as proposal_service
from aifactories.services.programme.technical_checks import technical_check

router = APIRouter(tags=["proposals"])


class Withdrawal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class TechnicalCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Annotated[Code, Field(description="accept, reject or revise")]
    reason: LongReason
    site_id: Code | None = None


class ProposalOut(BaseModel):
    """A proposal as the caller may read it: scores and rank only for programme operators,
    and for the applicant once decided (else null)."""

    id: int
    call: str
    mode: str
    status: str
    title: str
    abstract: str
    organisation: str
    organisation_kind: str
    country: str
    pi: str
    domain: str
    critical_domain: bool
    industrial: bool
    requested_gpu_hours: float
    gpu_model: str | None
    min_gpu_memory_gb: int
    largest_job_gpus: int
    preferred_sites: list[str]
    residency: list[str]
    period_months: int
    starts_at: float | None
    members: list[str]
    checks: list[dict[str, Any]] = Field(description="the automatic checks at submission")
    candidate_sites: list[str]
    cutoff_at: float | None
    score: float | None
    rank: int | None
    decision_reason: str | None
    project: str | None = Field(description="the project's code, once awarded")
    created_at: float
    submitted_at: float | None
    decided_at: float | None
    version: int


@router.post("/calls/{call}/proposals", response_model=ProposalOut, status_code=201)
def draft(
    context: Ctx,
    who: Me,
    call: PathRef,
    body: proposal_service.ProposalFields,
    key: IdempotencyKey = None,
) -> Any:
    row = proposal_service.create_draft(context, who, call, body, key)
    return proposal_service.get_proposal(context, who, row.id)


@router.get("/proposals", response_model=list[ProposalOut])
def list_proposals(
    context: Ctx,
    who: Me,
    call: RefQ = None,
    status: WordQ = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> Any:
    return proposal_service.list_proposals(context, who, call=call, status=status, limit=limit)


@router.get("/proposals/{proposal_id}", response_model=ProposalOut)
def get_proposal(context: Ctx, who: Me, proposal_id: PathId) -> Any:
    return proposal_service.get_proposal(context, who, proposal_id)


@router.patch("/proposals/{proposal_id}", response_model=ProposalOut)
def edit(context: Ctx, who: Me, proposal_id: PathId, body: proposal_service.ProposalFields) -> Any:
    proposal_service.update_draft(context, who, proposal_id, body)
    return proposal_service.get_proposal(context, who, proposal_id)


@router.post("/proposals/{proposal_id}/submit", response_model=ProposalOut)
def submit(context: Ctx, who: Me, proposal_id: PathId) -> Any:
    proposal_service.submit(context, who, proposal_id)
    return proposal_service.get_proposal(context, who, proposal_id)


@router.post("/proposals/{proposal_id}/withdraw", response_model=ProposalOut)
def withdraw(context: Ctx, who: Me, proposal_id: PathId, body: Withdrawal) -> Any:
    proposal_service.withdraw(context, who, proposal_id, body.reason)
    return proposal_service.get_proposal(context, who, proposal_id)


@router.post("/proposals/{proposal_id}/technical-check", response_model=ProposalOut)
def check(context: Ctx, who: Me, proposal_id: PathId, body: TechnicalCheckIn) -> Any:
    technical_check(context, who, proposal_id, body.outcome, body.reason, body.site_id)
    return proposal_service.get_proposal(context, who, proposal_id)

"""REST endpoints: proposals (draft, edit, submit, withdraw) and the technical check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from aifactories.api.deps import Ctx, IdempotencyKey, Me
from aifactories.services import proposals as proposal_service
from aifactories.services.technical_checks import technical_check

router = APIRouter(tags=["proposals"])


class Withdrawal(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class TechnicalCheckIn(BaseModel):
    outcome: str = Field(description="accept, reject or revise")
    reason: str = Field(min_length=1, max_length=5000)
    site_id: str | None = None


@router.post("/calls/{call}/proposals", status_code=201)
def draft(
    context: Ctx,
    who: Me,
    call: str,
    body: proposal_service.ProposalFields,
    key: IdempotencyKey = None,
) -> Any:
    row = proposal_service.create_draft(context, who, call, body, key)
    return proposal_service.get_proposal(context, who, row.id)


@router.get("/proposals")
def list_proposals(
    context: Ctx, who: Me, call: str | None = None, status: str | None = None, limit: int = 200
) -> Any:
    return proposal_service.list_proposals(context, who, call=call, status=status, limit=limit)


@router.get("/proposals/{proposal_id}")
def get_proposal(context: Ctx, who: Me, proposal_id: int) -> Any:
    return proposal_service.get_proposal(context, who, proposal_id)


@router.patch("/proposals/{proposal_id}")
def edit(context: Ctx, who: Me, proposal_id: int, body: proposal_service.ProposalFields) -> Any:
    proposal_service.update_draft(context, who, proposal_id, body)
    return proposal_service.get_proposal(context, who, proposal_id)


@router.post("/proposals/{proposal_id}/submit")
def submit(context: Ctx, who: Me, proposal_id: int) -> Any:
    proposal_service.submit(context, who, proposal_id)
    return proposal_service.get_proposal(context, who, proposal_id)


@router.post("/proposals/{proposal_id}/withdraw")
def withdraw(context: Ctx, who: Me, proposal_id: int, body: Withdrawal) -> Any:
    proposal_service.withdraw(context, who, proposal_id, body.reason)
    return proposal_service.get_proposal(context, who, proposal_id)


@router.post("/proposals/{proposal_id}/technical-check")
def check(context: Ctx, who: Me, proposal_id: int, body: TechnicalCheckIn) -> Any:
    technical_check(context, who, proposal_id, body.outcome, body.reason, body.site_id)
    return proposal_service.get_proposal(context, who, proposal_id)

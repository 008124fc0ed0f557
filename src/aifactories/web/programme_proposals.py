"""Proposals by stage, for the programme operator: those waiting for a site's technical
check, under peer review, accepted and waiting for an award run, or any status; each with a
link to where it moves on (its call's ranking or award runs). The API's /proposals list,
with the signed-in principal."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from aifactories.programme.states import ProposalStatus
from aifactories.services.programme.proposals import list_proposals
from aifactories.web.programme_common import operator
from aifactories.web.render import render
from aifactories.web.session import SignedIn

router = APIRouter(include_in_schema=False)
LIMIT = 100  # a page (each proposal is a full view); the API's list goes to 10,000
STATUSES = tuple(s.value for s in ProposalStatus if s is not ProposalStatus.DRAFT)


@router.get("/portal/programme/proposals", response_class=HTMLResponse)
def proposals(
    request: Request, principal: SignedIn, status: str = "under_review", call: str = ""
) -> HTMLResponse:
    ctx = operator(request, principal, "follow the programme's proposals")
    chosen = status if status in STATUSES else "under_review"
    found = list_proposals(
        ctx, principal, call=call.strip() or None, status=chosen, limit=LIMIT + 1
    )
    return render(
        request,
        "programme/proposals.html",
        page="programme",
        proposals=found[:LIMIT],
        more=len(found) > LIMIT,
        status=chosen,
        call=call.strip(),
        statuses=STATUSES,
    )

"""Allocation requests in the portal: the extension and transfer requests of every project,
those waiting first, and a programme operator's decision (approve, applied at once, or refuse)
with a reason the PI reads. The same services as the API's /allocation-requests routes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from aifactories.domain.errors import AifError
from aifactories.services.programme import allocation_decisions, allocation_requests
from aifactories.web.programme_common import field_errors, form_text, operator
from aifactories.web.render import redirect, render
from aifactories.web.session import CsrfChecked, SignedIn

router = APIRouter(include_in_schema=False)
STATUSES = allocation_requests.REQUEST_STATUSES


@router.get("/portal/programme/allocation-requests", response_class=HTMLResponse)
def requests_page(
    request: Request, principal: SignedIn, status: str = allocation_requests.PENDING
) -> HTMLResponse:
    ctx = operator(request, principal, "decide allocation requests")
    chosen = status if status in STATUSES else None  # "all" (or anything else): every one
    found = allocation_requests.list_requests(ctx, principal, chosen)
    return render(
        request,
        "programme/allocation_requests.html",
        page="programme",
        requests=found if chosen == allocation_requests.PENDING else list(reversed(found)),
        status=chosen or "all",
        statuses=STATUSES,
    )


@router.post(
    "/portal/programme/allocation-requests/{request_id}/decision", dependencies=[CsrfChecked]
)
async def decide(request: Request, principal: SignedIn, request_id: int) -> Response:
    ctx = operator(request, principal, "decide allocation requests")
    form = await request.form()
    back = "/portal/programme/allocation-requests"
    try:
        body = allocation_decisions.DecisionIn(
            decision=form_text(form, "decision"), reason=form_text(form, "reason")
        )
        view = await run_in_threadpool(
            allocation_decisions.decide_request, ctx, principal, request_id, body
        )
    except (ValidationError, AifError) as refused:
        words = "; ".join(f"{k}: {v}" if k else v for k, v in field_errors(refused).items())
        return redirect(request, back, f"Request {request_id} is not decided: {words}", "error")
    return redirect(
        request, back, f"Request {view.id} ({view.kind} for {view.project_code}) is {view.status}."
    )

"""The programme operator's overview and calls: what waits for them, the calls (open a new one
with every field of the API's call body, read one with its budget left, close one).

Same services as the API's /calls routes (services.programme.calls), with the signed-in
principal; the role is checked first (programme_common.operator)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from aifactories.domain.errors import AifError
from aifactories.programme.modes import ReviewKind, rules_from_json
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.programme import allocation_requests, award_runs, programme_overview
from aifactories.services.programme import calls as call_service
from aifactories.web.programme_call_form import (
    MODES,
    ORGANISATION_KINDS,
    RULES,
    call_body,
    values_of,
)
from aifactories.web.programme_common import field_errors, form_text, operator, placed, reason
from aifactories.web.render import redirect, render
from aifactories.web.session import CsrfChecked, SignedIn

router = APIRouter(include_in_schema=False)
PAGE = "programme"
WAITING = (
    ("technical_check", "wait for a site's technical check"),
    ("under_review", "are under peer review"),
    ("accepted", "are accepted and wait for an award run"),
)


@dataclass(frozen=True)
class Waiting:
    status: str
    words: str
    count: int


def _overview(ctx: ServiceContext, principal: Principal) -> dict[str, Any]:
    counts = programme_overview.proposal_counts(ctx, principal)
    return {
        "open_calls": call_service.list_calls(ctx, principal, include_closed=False),
        "waiting": [Waiting(status, words, counts.get(status, 0)) for status, words in WAITING],
        "requests": allocation_requests.list_requests(ctx, principal, status="pending"),
        "last_run": programme_overview.latest_run(ctx, principal),
    }


@router.get("/portal/programme", response_class=HTMLResponse)
def overview(request: Request, principal: SignedIn) -> HTMLResponse:
    """What waits for the programme: open calls, proposals by stage, requests, the last run."""
    ctx = operator(request, principal, "see the programme's overview")
    return render(request, "programme/overview.html", page=PAGE, **_overview(ctx, principal))


@router.get("/portal/programme/calls", response_class=HTMLResponse)
def calls(request: Request, principal: SignedIn) -> HTMLResponse:
    ctx = operator(request, principal, "manage calls")
    rows = call_service.list_calls(ctx, principal, include_closed=True)
    return render(request, "programme/calls.html", page=PAGE, calls=list(reversed(rows)))


def _budget_keys(ctx: ServiceContext) -> list[str]:
    return [call_service.POOL] + [s.id for s in ctx.catalogue.sites]


def _input_names(ctx: ServiceContext) -> list[str]:
    fixed = ["code", "title", "mode", "opens_at", "closes_at", "cutoffs", "course_ends_at"]
    rules = [f"rules.{r.name}" for r in RULES]
    rules += ["rules.organisation_kinds", "rules.criteria", "rules.same_country_conflict"]
    budget = ["budget_gpu_hours"] + [f"budget_gpu_hours.{k}" for k in _budget_keys(ctx)]
    return fixed + rules + budget


def _form(
    request: Request,
    ctx: ServiceContext,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "programme/call_form.html",
        page=PAGE,
        status_code=status_code,
        values=values,
        errors=placed(errors, _input_names(ctx)),
        modes=MODES,
        kinds=ORGANISATION_KINDS,
        rules=RULES,
        sites=ctx.catalogue.sites,
        pool=call_service.POOL,
    )


@router.get("/portal/programme/calls/new", response_class=HTMLResponse)
def new_call(request: Request, principal: SignedIn) -> HTMLResponse:
    ctx = operator(request, principal, "open a call")
    return _form(request, ctx, {"rules.organisation_kinds": []}, {})


@router.post("/portal/programme/calls", dependencies=[CsrfChecked])
async def create_call(request: Request, principal: SignedIn) -> Response:
    ctx = operator(request, principal, "open a call")
    form = await request.form()
    kinds = [k for k in form.getlist("rules.organisation_kinds") if isinstance(k, str)]
    values = values_of(form, kinds)
    body, errors = call_body(values, _budget_keys(ctx))
    if not errors:
        try:
            parsed = call_service.CallIn.model_validate(body)
            row = await run_in_threadpool(call_service.open_call, ctx, principal, parsed)
        except (ValidationError, AifError) as refused:
            errors = field_errors(refused)
        else:
            return redirect(
                request, f"/portal/programme/calls/{row.code}", f"Call {row.code} is open."
            )
    return _form(request, ctx, values, errors, status_code=422)


@dataclass(frozen=True)
class BudgetLine:
    key: str
    label: str
    gpu_hours: float | None
    left_gpu_hours: float | None


def _budget(ctx: ServiceContext, row: Any, left: dict[str, int]) -> list[BudgetLine]:
    lines = []
    for key, hours in row.budget_gpu_hours.items():
        site = ctx.catalogue.site(key)
        label = "any site (pool)" if key == call_service.POOL else (site.name if site else key)
        seconds = left.get(key)
        lines.append(BudgetLine(key, label, hours, seconds / 3600 if seconds is not None else None))
    return lines


@router.get("/portal/programme/calls/{code}", response_class=HTMLResponse)
def call_page(request: Request, principal: SignedIn, code: str) -> HTMLResponse:
    ctx = operator(request, principal, "manage calls")
    row, left = call_service.get_call(ctx, principal, code)
    rules = rules_from_json(row.rules)
    return render(
        request,
        "programme/call.html",
        page=PAGE,
        call=row,
        rules=rules,
        peer=rules.review is ReviewKind.PEER,
        budget=_budget(ctx, row, left),
        runs=list(reversed(award_runs.list_runs(ctx, principal, row.code))),
        now=ctx.clock.now(),
    )


@router.post("/portal/programme/calls/{code}/close", dependencies=[CsrfChecked])
async def close_call(request: Request, principal: SignedIn, code: str) -> Response:
    ctx = operator(request, principal, "close a call")
    raw = form_text(await request.form(), "reason")
    back = f"/portal/programme/calls/{code}"
    try:
        why = reason(raw)
        row = await run_in_threadpool(call_service.close_call, ctx, principal, code, why)
    except AifError as refused:
        return redirect(request, back, refused.message, "error")
    return redirect(request, back, f"Call {row.code} is closed.")

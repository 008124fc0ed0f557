"""Editing an open call in the portal: title, closing date, cut-offs, budget and a course's
end, with a reason for the audit log (services.programme.call_edits holds what may change and
what must stay). The form shows the call's values; a refused field keeps what was typed and
says why next to it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from aifactories.domain.errors import AifError
from aifactories.programme.modes import AccessMode
from aifactories.services.core.context import ServiceContext
from aifactories.services.programme import call_edits
from aifactories.services.programme import calls as call_service
from aifactories.web.programme_call_form import call_budget
from aifactories.web.programme_common import field_errors, operator, placed
from aifactories.web.render import redirect, render
from aifactories.web.session import CsrfChecked, SignedIn

router = APIRouter(include_in_schema=False)


def _iso(epoch: float | None) -> str:
    """A stored time as the form shows it: UTC, to the second (what datetime-local reads)."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _values(row: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": row.title,
        "closes_at": _iso(row.closes_at),
        "cutoffs": "\n".join(_iso(c) for c in row.cutoffs),
        "course_ends_at": _iso(row.course_ends_at),
    }
    for key, hours in row.budget_gpu_hours.items():
        values[f"budget_gpu_hours.{key}"] = f"{hours:g}"
    return values


def _keys(ctx: ServiceContext) -> list[str]:
    return [call_service.POOL] + [s.id for s in ctx.catalogue.sites]


def _form(
    request: Request,
    ctx: ServiceContext,
    row: Any,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    names = ["title", "closes_at", "cutoffs", "course_ends_at", "reason", "budget_gpu_hours"]
    names += [f"budget_gpu_hours.{k}" for k in _keys(ctx)]
    return render(
        request,
        "programme/call_edit.html",
        page="programme",
        status_code=status_code,
        call=row,
        education=row.mode == AccessMode.EDUCATION.value,
        values=values,
        errors=placed(errors, names),
        sites=ctx.catalogue.sites,
        pool=call_service.POOL,
    )


@router.get("/portal/programme/calls/{code}/edit", response_class=HTMLResponse)
def edit_form(request: Request, principal: SignedIn, code: str) -> HTMLResponse:
    ctx = operator(request, principal, "edit a call")
    row, _left = call_service.get_call(ctx, principal, code)
    return _form(request, ctx, row, _values(row), {})


@router.post("/portal/programme/calls/{code}/edit", dependencies=[CsrfChecked])
async def edit(request: Request, principal: SignedIn, code: str) -> Response:
    ctx = operator(request, principal, "edit a call")
    row, _left = call_service.get_call(ctx, principal, code)
    form = await request.form()
    values = {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf"}
    budget, errors = call_budget(values, _keys(ctx))
    body: dict[str, Any] = {
        "title": values.get("title") or None,
        "closes_at": values.get("closes_at") or None,
        "cutoffs": [c.strip() for c in values.get("cutoffs", "").splitlines() if c.strip()],
        "budget_gpu_hours": budget,
        "reason": values.get("reason", ""),
    }
    if not body["reason"]:
        errors["reason"] = "give a reason: it is recorded in the audit log"
    if values.get("course_ends_at"):
        body["course_ends_at"] = values["course_ends_at"]
    if not errors:
        try:
            parsed = call_edits.CallEdit.model_validate(body)
            await run_in_threadpool(call_edits.edit_call, ctx, principal, row.code, parsed)
        except (ValidationError, AifError) as refused:
            errors = field_errors(refused)
        else:
            return redirect(
                request, f"/portal/programme/calls/{row.code}", f"Call {row.code} is saved."
            )
    return _form(request, ctx, row, values, errors, status_code=422)

"""Award runs in the portal: start one for a call's accepted proposals (the optimiser and the
committee's greedy rule are both solved, side by side, as the API and ``aif awards propose``
do), read it with the HTML report of ``aif awards report`` embedded, and apply it after a
confirmation.

The report (programme.award_report) draws its figures with Plotly, whose script is inline in
the page; the portal's pages allow scripts from the platform only. So the report is served by
its own route with its own policy (inline scripts, nothing from elsewhere, no network at all)
and shown in a sandboxed frame: its scripts run without the portal's origin, cookies or forms.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, fields
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from aifactories.domain.errors import AifError, InvalidInput
from aifactories.programme.award_model import ProgrammeWeights
from aifactories.programme.award_report import award_run_html, comparison_header
from aifactories.services.programme import award_runs
from aifactories.services.programme import calls as call_service
from aifactories.web.programme_common import form_text, operator, reason
from aifactories.web.render import redirect, render
from aifactories.web.session import CsrfChecked, SignedIn

router = APIRouter(include_in_schema=False)
PAGE = "programme"
MAX_WEIGHT = 1e6  # the API's bound on a weight
REPORT_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; font-src data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
WEIGHTS = tuple(f.name for f in fields(ProgrammeWeights))


def _weights(form: Any) -> dict[str, float]:
    """The weights the operator changed from the defaults, checked as the API checks them."""
    defaults = ProgrammeWeights()
    chosen: dict[str, float] = {}
    for name in WEIGHTS:
        raw = form_text(form, f"weights.{name}")
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            raise InvalidInput(f"weights.{name}", f"{raw!r} is not a number") from None
        if not math.isfinite(value) or not 0 <= value <= MAX_WEIGHT:
            raise InvalidInput(f"weights.{name}", f"must be 0 to {MAX_WEIGHT:,.0f}")
        if value != getattr(defaults, name):
            chosen[name] = value
    return chosen


@router.get("/portal/programme/calls/{code}/award-runs", response_class=HTMLResponse)
def runs(request: Request, principal: SignedIn, code: str) -> HTMLResponse:
    ctx = operator(request, principal, "read award runs")
    row, _left = call_service.get_call(ctx, principal, code)
    listed = award_runs.list_runs(ctx, principal, row.code)
    return render(
        request,
        "programme/award_runs.html",
        page=PAGE,
        call=row,
        runs=list(reversed(listed)),
        weights=[(name, getattr(ProgrammeWeights(), name)) for name in WEIGHTS],
    )


@router.post("/portal/programme/calls/{code}/award-runs", dependencies=[CsrfChecked])
async def start_run(request: Request, principal: SignedIn, code: str) -> Response:
    ctx = operator(request, principal, "run the allocation optimiser")
    form = await request.form()
    back = f"/portal/programme/calls/{code}/award-runs"
    raw_cutoff = form_text(form, "cutoff_at")
    try:
        cutoff = float(raw_cutoff) if raw_cutoff else None
    except ValueError:
        return redirect(request, back, "cutoff_at: choose a cut-off from the list", "error")
    try:
        weights = _weights(form) or None
        method = form_text(form, "method") or "optimiser"
        run = await run_in_threadpool(
            lambda: award_runs.run_awards(
                ctx, principal, code, cutoff_at=cutoff, method=method, weights=weights
            )
        )
    except AifError as refused:
        return redirect(request, back, refused.message, "error")
    return redirect(
        request,
        f"/portal/programme/award-runs/{run['id']}",
        f"Award run {run['id']} is proposed: nothing is granted until you apply it.",
    )


@dataclass(frozen=True)
class OutcomeRow:
    proposal_id: int
    requested: float
    optimiser: float | None
    greedy: float | None
    why: str


def _outcomes(run: dict[str, Any]) -> list[OutcomeRow]:
    """Each proposal with what both plans award it; the reason is the chosen plan's."""
    plans = {
        name: {o["proposal_id"]: o for o in (run.get(name) or {}).get("outcomes", [])}
        for name in ("optimiser", "greedy")
    }
    chosen = {o["proposal_id"]: o for o in run["plan"]["outcomes"]}
    rows = []
    for proposal_id, outcome in chosen.items():
        optimiser = plans["optimiser"].get(proposal_id)
        greedy = plans["greedy"].get(proposal_id)
        why = f"{outcome['reason']}: {outcome['explanation']}" if outcome.get("reason") else ""
        rows.append(
            OutcomeRow(
                proposal_id,
                float(outcome["requested"]),
                float(optimiser["awarded"]) if optimiser else None,
                float(greedy["awarded"]) if greedy else None,
                why,
            )
        )
    return rows


@router.get("/portal/programme/award-runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, principal: SignedIn, run_id: int) -> HTMLResponse:
    ctx = operator(request, principal, "read award runs")
    run = award_runs.get_run(ctx, principal, run_id)
    return render(
        request,
        "programme/award_run.html",
        page=PAGE,
        run=run,
        header=comparison_header(run["comparison"]),
        outcomes=_outcomes(run),
    )


# Reports by the run's content: drawing the Plotly figures costs tens of milliseconds, and a
# run's content changes only when it is applied (its status and dates change, and so the key).
_REPORTS: dict[str, str] = {}
_REPORTS_KEPT = 64


def _report_html(run: dict[str, Any]) -> str:
    key = hashlib.sha256(json.dumps(run, sort_keys=True, default=str).encode()).hexdigest()
    page = _REPORTS.get(key)
    if page is None:
        page = award_run_html(run)
        if len(_REPORTS) >= _REPORTS_KEPT:
            _REPORTS.clear()
        _REPORTS[key] = page
    return page


@router.get("/portal/programme/award-runs/{run_id}/report", response_class=HTMLResponse)
def report(request: Request, principal: SignedIn, run_id: int) -> HTMLResponse:
    """The report ``aif awards report`` writes, for the run page's frame (or to open alone)."""
    ctx = operator(request, principal, "read award runs")
    response = HTMLResponse(_report_html(award_runs.get_run(ctx, principal, run_id)))
    response.headers["Content-Security-Policy"] = REPORT_POLICY
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@router.post("/portal/programme/award-runs/{run_id}/apply", dependencies=[CsrfChecked])
async def apply(request: Request, principal: SignedIn, run_id: int) -> Response:
    """Grant the run: projects, members and allocations, once the operator has confirmed."""
    ctx = operator(request, principal, "apply awards")
    form = await request.form()
    back = f"/portal/programme/award-runs/{run_id}"
    if form_text(form, "confirm") != "yes":
        return redirect(
            request, back, "Tick the confirmation to apply the run: it grants GPU-hours.", "error"
        )
    try:
        why = reason(form_text(form, "reason"))
        run = await run_in_threadpool(award_runs.apply_run, ctx, principal, run_id, why)
    except AifError as refused:
        return redirect(request, back, refused.message, "error")
    return redirect(
        request,
        back,
        f"Award run {run['id']} is applied: the awarded proposals are projects now.",
    )

"""The programme operator's peer-review pages: the reviewer pool (add with expertise, remove
with a reason), the automatic assignment of a call's proposals to reviewers, the panel's
ranking, and the decisions (accept or reject one proposal with a reason, or all by the call's
minimum average score).

The same services as the API's reviews routes (services.programme.review_pool,
review_assignments, review_decisions). The service assigns reviewers itself, avoiding
conflicts of interest; it has no assignment by hand, so neither has the portal."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from aifactories.domain.errors import AifError, InvalidInput
from aifactories.domain.organisations import Domain
from aifactories.services.programme import calls as call_service
from aifactories.services.programme import review_assignments, review_decisions, review_pool
from aifactories.web.programme_common import comment, form_text, operator, reason
from aifactories.web.render import Tone, redirect, render
from aifactories.web.session import CsrfChecked, SignedIn

router = APIRouter(include_in_schema=False)
PAGE = "programme"


def _cutoff(raw: str | None) -> float | None:
    """A cut-off chosen from the page's list (epoch seconds), or None for every one."""
    if raw is None or not raw.strip():
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput("cutoff_at", "choose a cut-off from the list") from None


# --------------------------------------------------------------------------- the pool


@router.get("/portal/programme/reviewers", response_class=HTMLResponse)
def pool(request: Request, principal: SignedIn) -> HTMLResponse:
    ctx = operator(request, principal, "see the reviewer pool")
    reviewers = review_pool.list_reviewers(ctx, principal)
    return render(
        request,
        "programme/reviewers.html",
        page=PAGE,
        reviewers=reviewers,
        domains=[d.value for d in Domain],
    )


@router.post("/portal/programme/reviewers", dependencies=[CsrfChecked])
async def add_reviewer(request: Request, principal: SignedIn) -> Response:
    ctx = operator(request, principal, "manage the reviewer pool")
    form = await request.form()
    username = form_text(form, "username")
    domains = [d for d in form.getlist("domains") if isinstance(d, str)]
    back = "/portal/programme/reviewers"
    try:
        view = await run_in_threadpool(review_pool.add_reviewer, ctx, principal, username, domains)
    except AifError as refused:
        return redirect(request, back, refused.message, "error")
    return redirect(request, back, f"{view['username']} reviews in {', '.join(view['expertise'])}.")


@router.post("/portal/programme/reviewers/{username}/remove", dependencies=[CsrfChecked])
async def remove_reviewer(request: Request, principal: SignedIn, username: str) -> Response:
    ctx = operator(request, principal, "manage the reviewer pool")
    back = "/portal/programme/reviewers"
    try:
        why = reason(form_text(await request.form(), "reason"))
        await run_in_threadpool(review_pool.remove_reviewer, ctx, principal, username, why)
    except AifError as refused:
        return redirect(request, back, refused.message, "error")
    return redirect(request, back, f"{username} has left the reviewer pool.")


# --------------------------------------------------------------------------- the panel


@router.get("/portal/programme/calls/{code}/ranking", response_class=HTMLResponse)
def ranking(
    request: Request, principal: SignedIn, code: str, cutoff_at: str | None = None
) -> HTMLResponse:
    """The call's reviewed proposals ranked within their cut-off, as the API ranks them."""
    ctx = operator(request, principal, "read the panel's ranking")
    cutoff = _cutoff(cutoff_at)
    panel = review_decisions.panel_ranking(ctx, principal, code, cutoff)
    row, _left = call_service.get_call(ctx, principal, code)
    return render(
        request,
        "programme/ranking.html",
        page=PAGE,
        call=row,
        panel=panel,
        cutoff=cutoff,
        now=ctx.clock.now(),
    )


def _back(code: str, cutoff: str) -> str:
    return f"/portal/programme/calls/{code}/ranking" + (f"?cutoff_at={cutoff}" if cutoff else "")


def _assigned_words(plan: dict[str, Any]) -> str:
    text = f"{len(plan['assigned'])} review(s) assigned to {len(plan['loads'])} reviewer(s)"
    if plan["shortfalls"]:
        short = "; ".join(
            f"proposal {s['proposal_id']} lacks {s['missing']}: {s['reason']}"
            for s in plan["shortfalls"]
        )
        text += f". Still short: {short}"
    return text + "."


@router.post("/portal/programme/calls/{code}/assign", dependencies=[CsrfChecked])
async def assign(request: Request, principal: SignedIn, code: str) -> Response:
    """Give each proposal under review the reviewers it lacks (the service's own rule)."""
    ctx = operator(request, principal, "assign reviewers")
    raw = form_text(await request.form(), "cutoff_at")
    try:
        plan = await run_in_threadpool(
            review_assignments.assign_reviewers, ctx, principal, code, _cutoff(raw)
        )
    except AifError as refused:
        return redirect(request, _back(code, raw), refused.message, "error")
    tone: Tone = "error" if plan["shortfalls"] else "done"
    return redirect(request, _back(code, raw), _assigned_words(plan), tone)


def _decided_words(result: dict[str, Any]) -> str:
    decided = ", ".join(f"proposal {d['proposal_id']} {d['status']}" for d in result["decided"])
    text = f"Decided: {decided}." if decided else "Nothing was decided."
    if result["skipped"]:
        text += " Left for later: " + "; ".join(
            f"proposal {s['proposal_id']} ({s['reason']})" for s in result["skipped"]
        )
    return text


@router.post("/portal/programme/calls/{code}/decisions", dependencies=[CsrfChecked])
async def decide(request: Request, principal: SignedIn, code: str) -> Response:
    """One proposal accepted or rejected with a reason, or every ready one by the call's rule."""
    ctx = operator(request, principal, "decide proposals")
    form = await request.form()
    raw_cutoff = form_text(form, "cutoff_at")
    back = _back(code, raw_cutoff)
    try:
        if form_text(form, "rule") == "yes":
            result = await run_in_threadpool(
                lambda: review_decisions.decide(
                    ctx, principal, code, rule=True, cutoff_at=_cutoff(raw_cutoff)
                )
            )
        else:
            try:
                proposal_id = int(form_text(form, "proposal_id"))
            except ValueError:
                raise InvalidInput("proposal_id", "choose a proposal from the ranking") from None
            choice = review_decisions.Decision(
                proposal_id, form_text(form, "outcome"), comment(form_text(form, "reason"))
            )
            result = await run_in_threadpool(
                lambda: review_decisions.decide(ctx, principal, code, decisions=[choice])
            )
    except AifError as refused:
        message = refused.message.replace("decisions[0].", "")
        return redirect(request, back, message, "error")
    return redirect(request, back, _decided_words(result))

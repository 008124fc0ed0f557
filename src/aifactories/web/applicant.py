"""The applicant's pages: apply to an open call, draft and edit a proposal with every field
checked where it is written, submit it, follow it (automated checks, status, decision, the
anonymised reviews), withdraw it; and the notifications the platform sent the caller.

Every page calls the services the API calls (api/proposals.py, api/reviews.py, api/audit.py)
with the signed-in principal: a proposal the API hides from someone answers 404 here too.
Every form that changes state is a POST checked against CSRF, answered with a redirect (303)
and a one-time message, except a form with errors, which comes back (422) with each error
next to its field and every value kept.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from aifactories.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.core.input_types import ID_MAX
from aifactories.services.notifications.notify_delivery import list_notifications
from aifactories.services.programme import proposals as proposal_service
from aifactories.services.programme.applicant_proposals import PAGE, my_proposals
from aifactories.services.programme.public import PublicCall, open_calls
from aifactories.services.programme.reviews import proposal_reviews
from aifactories.web import applicant_views as views
from aifactories.web.applicant_forms import (
    ProposalForm,
    blank_form,
    form_of,
    read_form,
    read_reason,
    refused,
)
from aifactories.web.render import redirect, render
from aifactories.web.session import CsrfChecked, SignedIn, context

router = APIRouter(include_in_schema=False)
ProposalId = Annotated[int, Path(ge=1, le=ID_MAX)]
CallCode = Annotated[str, Path(min_length=1, max_length=64)]
NOTIFICATIONS_SHOWN = 100


def _helpers() -> dict[str, Any]:
    """The words every applicant page uses (codes never reach the reader)."""
    return {
        "status_words": lambda s: views.words(views.STATUS_WORDS, s),
        "domain_words": lambda d: views.words(views.DOMAIN_WORDS, d),
        "mode_words": views.mode_words,
        "check_words": views.check_words,
    }


def _open_call(ctx: ServiceContext, code: str) -> PublicCall | None:
    return next((c for c in open_calls(ctx) if c.code == code), None)


def _mine(proposal: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """A proposal the caller may change (its PI), else 404 as the API answers."""
    if proposal["pi"] != principal.username:
        raise NotFound(f"proposal {proposal['id']} does not exist or is not yours")
    return proposal


# ---------------------------------------------------------------------------- the list


@router.get("/portal/proposals", response_class=HTMLResponse)
def proposals_page(
    request: Request,
    principal: SignedIn,
    before: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
) -> HTMLResponse:
    """The caller's proposals (as PI or team member), newest first, a page at a time."""
    found = my_proposals(context(request), principal, limit=PAGE + 1, before=before)
    shown = found[:PAGE]
    return render(
        request,
        "applicant/proposals.html",
        page="proposals",
        proposals=shown,
        older=shown[-1]["id"] if len(found) > PAGE else None,
        first_page=before is None,
        **_helpers(),
    )


# ---------------------------------------------------------------------------- the form


def _form_page(
    request: Request,
    *,
    call: PublicCall | None,
    form: ProposalForm,
    action: str,
    heading: str,
    form_key: str = "",
    proposal: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    ctx = context(request)
    sites = sorted(ctx.catalogue.operational_sites, key=lambda s: (s.country, s.id))
    countries = sorted({s.country for s in sites} | set(form.values["residency"]))
    return render(
        request,
        "applicant/form.html",
        page="proposals",
        status_code=status_code,
        call=call,
        form=form,
        action=action,
        heading=heading,
        form_key=form_key,
        proposal=proposal,
        domains=list(views.DOMAIN_WORDS.items()),
        gpu_models=ctx.catalogue.gpu_models,
        sites=sites,
        countries=countries,
        **_helpers(),
    )


@router.get("/portal/calls/{code}/apply", response_class=HTMLResponse)
def apply_page(request: Request, principal: SignedIn, code: CallCode) -> HTMLResponse:
    call = _open_call(context(request), code)
    if call is None:
        raise NotFound(f"no open call {code!r}: the open calls are listed at /portal/calls")
    return _form_page(
        request,
        call=call,
        form=blank_form(),
        action=f"/portal/calls/{call.code}/apply",
        heading=f"Apply to {call.title}",
        form_key=secrets.token_urlsafe(18),  # a double click makes one draft, not two
    )


def _apply(request: Request, principal: Principal, code: str, sent: FormData) -> Response:
    ctx = context(request)
    call = _open_call(ctx, code)
    if call is None:
        raise NotFound(f"no open call {code!r}: the open calls are listed at /portal/calls")
    key = sent.get("form_key")
    form_key = key if isinstance(key, str) and key else ""
    body, form = read_form(sent)
    if body is not None:
        try:
            row = proposal_service.create_draft(ctx, principal, code, body, form_key or None)
        except InvalidInput as error:
            form = refused(form, error)
        except (Conflict, PermissionDenied) as error:
            form.fail("form", error.message)
        else:
            return redirect(
                request,
                f"/portal/proposals/{row.id}",
                f"Draft {row.id} is saved. Check it, then submit it.",
            )
    return _form_page(
        request,
        call=call,
        form=form,
        action=f"/portal/calls/{call.code}/apply",
        heading=f"Apply to {call.title}",
        form_key=form_key,
        status_code=422,
    )


@router.post("/portal/calls/{code}/apply", dependencies=[CsrfChecked])
async def apply(request: Request, principal: SignedIn, code: CallCode) -> Response:
    sent = await request.form()
    return await run_in_threadpool(_apply, request, principal, code, sent)


@router.get("/portal/proposals/{proposal_id}/edit", response_class=HTMLResponse)
def edit_page(request: Request, principal: SignedIn, proposal_id: ProposalId) -> Response:
    ctx = context(request)
    proposal = _mine(proposal_service.get_proposal(ctx, principal, proposal_id), principal)
    if not views.actions_for(proposal, principal.username).edit:
        return redirect(
            request,
            f"/portal/proposals/{proposal_id}",
            f"Proposal {proposal_id} is {views.words(views.STATUS_WORDS, proposal['status'])}: "
            "it can be edited only as a draft, after failed checks or when a revision is asked",
            "error",
        )
    return _form_page(
        request,
        call=_open_call(ctx, proposal["call"]),
        form=form_of(proposal),
        action=f"/portal/proposals/{proposal_id}/edit",
        heading=f"Edit proposal {proposal_id}",
        proposal=proposal,
    )


def _edit(request: Request, principal: Principal, proposal_id: int, sent: FormData) -> Response:
    ctx = context(request)
    proposal = _mine(proposal_service.get_proposal(ctx, principal, proposal_id), principal)
    body, form = read_form(sent)
    if body is not None:
        try:
            proposal_service.update_draft(ctx, principal, proposal_id, body)
        except InvalidInput as error:
            form = refused(form, error)
        except Conflict as error:
            return redirect(request, f"/portal/proposals/{proposal_id}", error.message, "error")
        else:
            return redirect(
                request, f"/portal/proposals/{proposal_id}", f"Proposal {proposal_id} is saved."
            )
    return _form_page(
        request,
        call=_open_call(ctx, proposal["call"]),
        form=form,
        action=f"/portal/proposals/{proposal_id}/edit",
        heading=f"Edit proposal {proposal_id}",
        proposal=proposal,
        status_code=422,
    )


@router.post("/portal/proposals/{proposal_id}/edit", dependencies=[CsrfChecked])
async def edit(request: Request, principal: SignedIn, proposal_id: ProposalId) -> Response:
    sent = await request.form()
    return await run_in_threadpool(_edit, request, principal, proposal_id, sent)


# ---------------------------------------------------------------------------- one proposal


@router.get("/portal/proposals/{proposal_id}", response_class=HTMLResponse)
def proposal_page(request: Request, principal: SignedIn, proposal_id: ProposalId) -> HTMLResponse:
    ctx = context(request)
    proposal = proposal_service.get_proposal(ctx, principal, proposal_id)
    applicant = proposal["pi"] == principal.username or principal.username in proposal["members"]
    reviews = None
    if applicant and proposal["status"] in views.DECIDED:
        try:
            reviews = proposal_reviews(ctx, principal, proposal_id)
        except PermissionDenied:  # the service decides; the page then shows none
            reviews = None
    notes = list_notifications(ctx, principal, mine=True, limit=NOTIFICATIONS_SHOWN)
    return render(
        request,
        "applicant/proposal.html",
        page="proposals",
        proposal=proposal,
        reviews=reviews,
        history=views.history(proposal, notes),
        actions=views.actions_for(proposal, principal.username),
        next_step=views.STATUS_NEXT.get(proposal["status"], ""),
        call=_open_call(ctx, proposal["call"]),
        site_names={site.id: site.name for site in ctx.catalogue.sites},
        peer_reviewed=views.peer_reviewed(proposal["mode"]),
        **_helpers(),
    )


@router.post("/portal/proposals/{proposal_id}/submit", dependencies=[CsrfChecked])
def submit(request: Request, principal: SignedIn, proposal_id: ProposalId) -> Response:
    ctx = context(request)
    page = f"/portal/proposals/{proposal_id}"
    try:
        row = proposal_service.submit(ctx, principal, proposal_id)
    except Conflict as error:
        return redirect(request, page, error.message, "error")
    status = row.status
    if status == views.S.CHECKS_FAILED.value:
        return redirect(
            request,
            page,
            f"The automated checks refused proposal {proposal_id}: read what they say below, "
            "edit it and submit it again.",
            "error",
        )
    return redirect(
        request,
        page,
        f"Proposal {proposal_id} is submitted: {views.words(views.STATUS_WORDS, status)}.",
    )


def _withdraw_page(
    request: Request,
    proposal: dict[str, Any],
    *,
    reason: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "applicant/withdraw.html",
        page="proposals",
        status_code=status_code,
        proposal=proposal,
        reason=reason,
        error=error,
        **_helpers(),
    )


@router.get("/portal/proposals/{proposal_id}/withdraw", response_class=HTMLResponse)
def withdraw_page(request: Request, principal: SignedIn, proposal_id: ProposalId) -> Response:
    """The confirmation step: withdrawing cannot be undone."""
    proposal = _mine(
        proposal_service.get_proposal(context(request), principal, proposal_id), principal
    )
    if not views.actions_for(proposal, principal.username).withdraw:
        return redirect(
            request,
            f"/portal/proposals/{proposal_id}",
            f"Proposal {proposal_id} is {views.words(views.STATUS_WORDS, proposal['status'])}: "
            "it can no longer be withdrawn",
            "error",
        )
    return _withdraw_page(request, proposal)


def _withdraw(request: Request, principal: Principal, proposal_id: int, sent: FormData) -> Response:
    ctx = context(request)
    proposal = _mine(proposal_service.get_proposal(ctx, principal, proposal_id), principal)
    reason, error = read_reason(sent)
    if reason is None:
        text = sent.get("reason")
        return _withdraw_page(
            request,
            proposal,
            reason=text if isinstance(text, str) else "",
            error=error,
            status_code=422,
        )
    page = f"/portal/proposals/{proposal_id}"
    try:
        proposal_service.withdraw(ctx, principal, proposal_id, reason)
    except Conflict as refused_now:
        return redirect(request, page, refused_now.message, "error")
    return redirect(request, page, f"Proposal {proposal_id} is withdrawn.")


@router.post("/portal/proposals/{proposal_id}/withdraw", dependencies=[CsrfChecked])
async def withdraw(request: Request, principal: SignedIn, proposal_id: ProposalId) -> Response:
    sent = await request.form()
    return await run_in_threadpool(_withdraw, request, principal, proposal_id, sent)


# ---------------------------------------------------------------------------- notifications


@router.get("/portal/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, principal: SignedIn) -> HTMLResponse:
    """What the platform told the caller (their own, even for a programme operator), newest
    first: the same outbox the API's GET /notifications?mine=true reads."""
    found = list_notifications(context(request), principal, mine=True, limit=NOTIFICATIONS_SHOWN)
    return render(
        request,
        "applicant/notifications.html",
        page="notifications",
        notices=views.notices(found),
        shown=NOTIFICATIONS_SHOWN,
        **_helpers(),
    )

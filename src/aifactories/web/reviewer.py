"""The reviewer's pages: the proposals assigned to them, and one review: read the proposal,
score each criterion of the call with a comment (changeable until the decision), decline
with a reason, or declare a conflict of interest. The rules are the services' (the same the
API's /reviews endpoints call): a review that is not the caller's is not found."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from aifactories.domain.errors import Conflict, InvalidInput, PermissionDenied
from aifactories.programme.ranking import MAX_SCORE, MIN_SCORE
from aifactories.services.core.context import Principal
from aifactories.services.programme import review_pool
from aifactories.services.programme import reviews as review_service
from aifactories.web.render import redirect, render
from aifactories.web.session import CsrfChecked, SignedIn, context

router = APIRouter(include_in_schema=False)

# What the default criteria ask (the Large Scale and AI for Science calls' own words); a
# call with criteria of its own shows their names and weights only.
CRITERION_HINTS = {
    "excellence": "the novelty, soundness and ambition of the science or technology",
    "impact": "what the results change for science, industry or society, and how they will "
    "be shared",
    "feasibility": "whether the team, the method and the GPU-hours asked for can deliver the "
    "plan in the period",
}
SCALE = f"{MIN_SCORE:g} (poor) to {MAX_SCORE:g} (excellent)"


def _form_text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.get("/portal/reviews", response_class=HTMLResponse)
def reviews_page(request: Request, principal: SignedIn) -> HTMLResponse:
    ctx = context(request)
    mine = review_service.my_reviews(ctx, principal)
    if not principal.is_reviewer and not mine:
        raise PermissionDenied(
            "this page is for reviewers in the programme's pool; a programme operator adds "
            "reviewers"
        )
    conflicts = review_pool.my_conflicts(ctx, principal) if principal.is_reviewer else []
    to_do = [r for r in mine if r["status"] == "assigned" and r["editable"]]
    return render(
        request,
        "reviews/list.html",
        page="reviews",
        reviews=mine,
        to_do=len(to_do),
        conflicts=conflicts,
    )


def _review_page(
    request: Request,
    principal: Principal,
    review_id: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    open_form: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    review = review_service.get_review(context(request), principal, review_id)
    own = review["reviewer"] == principal.username
    if values is None:  # the saved review, as the form shows it
        values = {f"score-{k}": f"{v:g}" for k, v in review["scores"].items()}
        values["comment"] = review["comment"]
    criteria = [
        {**c, "hint": CRITERION_HINTS.get(c["name"], ""), "field": f"score-{c['name']}"}
        for c in review["criteria"]
    ]
    return render(
        request,
        "reviews/review.html",
        page="reviews",
        status_code=status_code,
        review=review,
        proposal=review["proposal"],
        criteria=criteria,
        own=own,
        scale=SCALE,
        min_score=f"{MIN_SCORE:g}",
        max_score=f"{MAX_SCORE:g}",
        errors=errors or {},
        values=values,
        open_form=open_form,
    )


@router.get("/portal/reviews/{review_id}", response_class=HTMLResponse)
def review_page(request: Request, principal: SignedIn, review_id: int) -> HTMLResponse:
    return _review_page(request, principal, review_id)


def _scores_from(
    form: Any, criteria: list[dict[str, Any]]
) -> tuple[dict[str, float], dict[str, str]]:
    """The numbers typed in, and an error for each that is not a number; an empty field is
    left out, so the service names it as missing."""
    scores: dict[str, float] = {}
    errors: dict[str, str] = {}
    for criterion in criteria:
        text = _form_text(form, f"score-{criterion['name']}").strip().replace(",", ".")
        if not text:
            continue
        try:
            scores[criterion["name"]] = float(text)
        except ValueError:
            errors[f"score-{criterion['name']}"] = f"“{text}” is not a number: type {SCALE}"
    return scores, errors


@router.post("/portal/reviews/{review_id}", dependencies=[CsrfChecked], response_model=None)
async def save_review(request: Request, principal: SignedIn, review_id: int) -> Response:
    ctx = context(request)
    form = await request.form()
    review = await run_in_threadpool(review_service.get_review, ctx, principal, review_id)
    values = {k: _form_text(form, k) for k in form if k != "csrf"}
    scores, errors = _scores_from(form, review["criteria"])
    if not errors:
        try:
            await run_in_threadpool(
                review_service.submit_review,
                ctx,
                principal,
                review_id,
                scores,
                _form_text(form, "comment"),
            )
        except InvalidInput as wrong:
            field = wrong.field.replace("scores.", "score-")
            errors[field] = wrong.beside_field()
        except Conflict as refused:
            return redirect(request, f"/portal/reviews/{review_id}", refused.message, "error")
    if errors:
        return _review_page(
            request, principal, review_id, errors=errors, values=values, status_code=422
        )
    first = review["status"] == "assigned"
    message = "Your review is submitted." if first else "Your review is updated."
    return redirect(
        request,
        f"/portal/reviews/{review_id}",
        message + " You can change it until the proposal is decided.",
    )


def _confirmed(form: Any, errors: dict[str, str], what: str) -> None:
    if _form_text(form, "confirm") != "yes":
        errors["confirm"] = f"tick the box to confirm that you {what}"


@router.post("/portal/reviews/{review_id}/decline", dependencies=[CsrfChecked], response_model=None)
async def decline(request: Request, principal: SignedIn, review_id: int) -> Response:
    ctx = context(request)
    form = await request.form()
    reason = _form_text(form, "reason")
    errors: dict[str, str] = {}
    _confirmed(form, errors, "decline this review")
    if not errors:
        try:
            await run_in_threadpool(
                review_service.decline_review, ctx, principal, review_id, reason
            )
        except InvalidInput as wrong:
            errors[wrong.field] = wrong.detail
        except Conflict as refused:
            return redirect(request, f"/portal/reviews/{review_id}", refused.message, "error")
    if errors:
        return _review_page(
            request,
            principal,
            review_id,
            errors={f"decline-{k}": v for k, v in errors.items()},
            values={"decline-reason": reason},
            open_form="decline",
            status_code=422,
        )
    return redirect(
        request,
        "/portal/reviews",
        "You declined the review; the programme operators are told, to assign another reviewer.",
    )


@router.post(
    "/portal/reviews/{review_id}/conflict", dependencies=[CsrfChecked], response_model=None
)
async def declare_conflict(request: Request, principal: SignedIn, review_id: int) -> Response:
    ctx = context(request)
    form = await request.form()
    review = await run_in_threadpool(review_service.get_review, ctx, principal, review_id)
    reason = _form_text(form, "reason")
    scope = _form_text(form, "scope")
    errors: dict[str, str] = {}
    if scope not in ("proposal", "organisation"):
        errors["scope"] = "choose this proposal or its whole organisation"
    _confirmed(form, errors, "have a conflict of interest")
    if review["reviewer"] != principal.username:
        raise PermissionDenied("only the reviewer of this review declares their conflicts")
    if not errors:
        proposal = review["proposal"]
        try:
            await run_in_threadpool(
                lambda: review_pool.declare_conflict(
                    ctx,
                    principal,
                    organisation=proposal["organisation"] if scope == "organisation" else None,
                    proposal_id=proposal["id"] if scope == "proposal" else None,
                    reason=reason,
                )
            )
        except InvalidInput as wrong:
            errors[wrong.field if wrong.field == "reason" else "scope"] = wrong.detail
    if errors:
        return _review_page(
            request,
            principal,
            review_id,
            errors={f"conflict-{k}": v for k, v in errors.items()},
            values={"conflict-reason": reason, "conflict-scope": scope},
            open_form="conflict",
            status_code=422,
        )
    return redirect(
        request,
        "/portal/reviews",
        "Your conflict of interest is recorded: you will not review this proposal"
        + (" nor any other of its organisation" if scope == "organisation" else "")
        + ". The programme operators are told, to assign another reviewer.",
    )

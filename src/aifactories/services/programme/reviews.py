"""Peer review of Large Scale and AI for Science proposals, as reviewers and applicants see
it: a reviewer's own reviews (list, read, score, decline) and a proposal's reviews. The pool
and conflicts are in review_pool, assignment in review_assignments, the panel's ranking and
decisions in review_decisions.

Who sees what:

- programme operators manage the pool, assign, read the ranking and decide; they alone see
  who reviewed what;
- a reviewer sees the proposals assigned to them and their own reviews, never the other
  reviewers. A proposal of their own organisation, or one they declared a conflict with, is
  never assigned to them, so it stays invisible (404) to them;
- an applicant (the PI and the team) sees nothing of the review until the decision; then the
  scores and comments, without the reviewers' names.

Every change writes its audit entry and its notifications in its own transaction.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactories.db.models import OrganisationRow
from aifactories.db.programme_models import CallRow, ProposalRow, ReviewRow
from aifactories.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactories.programme.ranking import check_scores, review_score
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.notifications.audit import record
from aifactories.services.programme.calls import rules_of
from aifactories.services.programme.proposal_views import DECIDED_FOR_APPLICANT, visible_proposal
from aifactories.services.programme.review_common import (
    R,
    S,
    criteria_json,
    required_text,
    reviews_of,
    tell_operators,
    username_of,
    usernames_of,
)

_Row = TypeVar("_Row", CallRow, OrganisationRow)

# --------------------------------------------------------------------------- reviewing


def _review_view(
    session: Session,
    row: ReviewRow,
    *,
    show_reviewer: bool,
    proposal: ProposalRow | None = None,
    call: CallRow | None = None,
    org: OrganisationRow | None = None,
    reviewer: str | None = None,
) -> dict[str, Any]:
    """A review as its reviewer (or a programme operator) reads it. The proposal, call,
    organisation and reviewer's name are looked up unless given (a list loads them once)."""
    proposal = proposal or session.get(ProposalRow, row.proposal_id)
    assert proposal is not None
    call = call or session.get(CallRow, proposal.call_id)
    org = org or session.get(OrganisationRow, proposal.organisation_id)
    assert call is not None and org is not None
    if show_reviewer and reviewer is None:
        reviewer = username_of(session, row.reviewer_id)
    rules = rules_of(call)
    submitted = row.status == R.SUBMITTED.value
    return {
        "id": row.id,
        "status": row.status,
        "reviewer": reviewer if show_reviewer else None,
        "proposal": {
            "id": proposal.id,
            "call": call.code,
            "mode": call.mode,
            "status": proposal.status,
            "title": proposal.title,
            "abstract": proposal.abstract,
            "domain": proposal.domain,
            "organisation": org.name,
            "country": org.country,
            "requested_gpu_hours": proposal.requested_gpu_hours,
            "period_months": proposal.period_months,
            "gpu_model": proposal.gpu_model,
            "largest_job_gpus": proposal.largest_job_gpus,
            "cutoff_at": proposal.cutoff_at,
        },
        "criteria": criteria_json(rules),
        "scores": dict(row.scores or {}) if submitted else {},
        "score": review_score(row.scores, rules.criteria) if submitted else None,
        "comment": row.comment if submitted else "",
        "decline_reason": row.comment if row.status == R.DECLINED.value else None,
        "assigned_at": row.assigned_at,
        "submitted_at": row.submitted_at,
        "editable": row.status != R.DECLINED.value and proposal.status == S.UNDER_REVIEW.value,
    }


def my_reviews(
    ctx: ServiceContext, principal: Principal, *, status: str | None = None
) -> list[dict[str, Any]]:
    """The caller's own assignments, with each proposal's title, abstract, domain and
    request; never another reviewer's."""
    query = (
        select(ReviewRow, ProposalRow)
        .join(ProposalRow, ProposalRow.id == ReviewRow.proposal_id)
        .where(ReviewRow.reviewer_id == principal.user_id)
    )
    if status is not None:
        try:
            query = query.where(ReviewRow.status == R(status).value)
        except ValueError:
            raise InvalidInput(
                "status", f"unknown review status {status!r}", ", ".join(s.value for s in R)
            ) from None
    with ctx.reads() as session:
        pairs = session.execute(query.order_by(ReviewRow.id)).all()
        # one query each for the calls, organisations and names the reviews refer to: the
        # identity map holds rows weakly, so a get per review would reload them every time
        calls = _by_id(session, CallRow, {p.call_id for _, p in pairs})
        orgs = _by_id(session, OrganisationRow, {p.organisation_id for _, p in pairs})
        names = usernames_of(session, {r.reviewer_id for r, _ in pairs})
        return [
            _review_view(
                session,
                r,
                show_reviewer=True,
                proposal=p,
                call=calls[p.call_id],
                org=orgs[p.organisation_id],
                reviewer=names[r.reviewer_id],
            )
            for r, p in pairs
        ]


def _by_id(session: Session, model: type[_Row], ids: set[int]) -> dict[int, _Row]:
    if not ids:
        return {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


def _own_review(
    session: Session, principal: Principal, review_id: int, *, lock: bool = False
) -> ReviewRow:
    row = session.get(ReviewRow, review_id, with_for_update=lock)
    if row is None or row.reviewer_id != principal.user_id:
        raise NotFound(f"review {review_id} does not exist or is not yours; 'aif reviews list'")
    return row


def get_review(ctx: ServiceContext, principal: Principal, review_id: int) -> dict[str, Any]:
    """A reviewer's own review (and the proposal); programme operators read any."""
    with ctx.reads() as session:
        row = session.get(ReviewRow, review_id)
        if row is not None and principal.is_operator:
            return _review_view(session, row, show_reviewer=True)
        row = _own_review(session, principal, review_id)
        proposal = session.get(ProposalRow, row.proposal_id)
        assert proposal is not None
        if principal.organisation_id is not None and (
            principal.organisation_id == proposal.organisation_id
        ):  # never assigned so; defence in depth
            raise NotFound(f"review {review_id} does not exist or is not yours")
        return _review_view(session, row, show_reviewer=True, proposal=proposal)


def _undecided(session: Session, row: ReviewRow) -> ProposalRow:
    proposal = session.get(ProposalRow, row.proposal_id, with_for_update=True)
    assert proposal is not None
    if proposal.status != S.UNDER_REVIEW.value:
        raise Conflict(
            f"proposal {proposal.id} is {proposal.status}: its review is closed and review "
            f"{row.id} can no longer change"
        )
    return proposal


def submit_review(
    ctx: ServiceContext,
    principal: Principal,
    review_id: int,
    scores: dict[str, float],
    comment: str,
) -> dict[str, Any]:
    """Score every criterion of the call (0..10) with a comment. A submitted review can be
    changed until the proposal is decided."""
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        row = _own_review(session, principal, review_id, lock=True)
        if row.status == R.DECLINED.value:
            raise Conflict(f"you declined review {review_id}; it cannot be scored any more")
        proposal = _undecided(session, row)
        call = session.get(CallRow, proposal.call_id)
        assert call is not None
        rules = rules_of(call)
        checked = check_scores(scores or {}, rules.criteria)
        text = required_text(
            comment,
            "comment",
            "tell the applicant the strengths and weaknesses behind your scores",
        )
        first = row.status == R.ASSIGNED.value
        row.status = R.SUBMITTED.value
        row.scores = checked
        row.comment = text
        row.submitted_at = now
        record(
            session,
            at=now,
            actor=principal,
            action="review.submit" if first else "review.update",
            subject=f"proposal:{proposal.id}",
            details={
                "review_id": row.id,
                "scores": checked,
                "score": review_score(checked, rules.criteria),
            },
        )
        session.flush()
        return _review_view(session, row, show_reviewer=True, proposal=proposal)


def decline_review(
    ctx: ServiceContext, principal: Principal, review_id: int, reason: str
) -> dict[str, Any]:
    """Decline an assigned review; the programme operators are told, to assign another."""
    why = required_text(reason, "reason", "say why you decline (programme operators read it)")
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        row = _own_review(session, principal, review_id, lock=True)
        if row.status == R.DECLINED.value:
            raise Conflict(f"you declined review {review_id} already")
        if row.status == R.SUBMITTED.value:
            raise Conflict(
                f"you submitted review {review_id} already: change it with 'aif reviews score', "
                "or, if you have a conflict of interest, declare it with "
                f"'aif reviews conflict --proposal {row.proposal_id} --reason TEXT'"
            )
        proposal = _undecided(session, row)
        call = session.get(CallRow, proposal.call_id)
        assert call is not None
        row.status = R.DECLINED.value
        row.comment = why
        record(
            session,
            at=now,
            actor=principal,
            action="review.decline",
            subject=f"proposal:{proposal.id}",
            reason=why,
            details={"review_id": row.id},
        )
        tell_operators(
            session,
            now,
            "review.declined",
            f"[aifactories] review declined: proposal {proposal.id} needs another reviewer",
            f"{principal.username} declined to review proposal {proposal.id} "
            f"'{proposal.title}' of call {call.code}: {why}\n"
            f"Assign another reviewer: aif reviews assign {call.code}\n",
            {"proposal_id": proposal.id, "review_id": row.id, "call": call.code},
        )
        session.flush()
        return _review_view(session, row, show_reviewer=True, proposal=proposal)


# --------------------------------------------------------------------------- a proposal's reviews


def proposal_reviews(ctx: ServiceContext, principal: Principal, proposal_id: int) -> dict[str, Any]:
    """A proposal's reviews as the caller may read them: programme operators in full, with
    the reviewers' names; the applicant (PI and team) once decided, the submitted reviews
    without names; a reviewer, only their own."""
    with ctx.reads() as session:
        row = visible_proposal(session, ctx, principal, proposal_id)
        call = session.get(CallRow, row.call_id)
        assert call is not None
        rules = rules_of(call)
        reviews = reviews_of(session, [row.id])[row.id]
        applicant = row.pi_user_id == principal.user_id or principal.username in row.members
        decided = S(row.status) in DECIDED_FOR_APPLICANT
        if principal.is_operator:
            shown = [_review_view(session, r, show_reviewer=True, proposal=row) for r in reviews]
        elif applicant:
            if not decided:
                raise PermissionDenied(
                    f"proposal {row.id} is {row.status}: its applicant reads the reviews "
                    "(scores and comments, without the reviewers' names) once it is decided"
                )
            shown = [
                {
                    "id": None,
                    "status": r.status,
                    "reviewer": f"Reviewer {i}",
                    "scores": dict(r.scores),
                    "score": review_score(r.scores, rules.criteria),
                    "comment": r.comment,
                }
                for i, r in enumerate(
                    (r for r in reviews if r.status == R.SUBMITTED.value), start=1
                )
            ]
        else:
            shown = [
                _review_view(session, r, show_reviewer=True, proposal=row)
                for r in reviews
                if r.reviewer_id == principal.user_id
            ]
            if not shown:
                raise PermissionDenied(
                    f"the reviews of proposal {row.id} are read by programme operators, its "
                    "applicant after the decision, and each reviewer (their own review)"
                )
        show_score = principal.is_operator or (applicant and decided)
        return {
            "proposal_id": row.id,
            "call": call.code,
            "status": row.status,
            "score": row.score if show_score else None,
            "rank": row.rank if show_score else None,
            "decision_reason": row.decision_reason if decided or principal.is_operator else None,
            "criteria": criteria_json(rules),
            "reviews": shown,
        }

"""Peer review of Large Scale and AI for Science proposals: the reviewer pool, declared
conflicts of interest, assignment, scores, the panel's ranking and the decision.

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

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactories.db.accounts import organisation_by_name, user_by_username
from aifactories.db.models import OrganisationRow, UserRow
from aifactories.db.programme_models import (
    CallRow,
    ConflictRow,
    ProposalRow,
    ReviewerRow,
    ReviewRow,
)
from aifactories.domain.errors import (
    Conflict,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
)
from aifactories.domain.organisations import Domain
from aifactories.programme.modes import CallRules, ReviewKind, criteria_weights_normalised
from aifactories.programme.ranking import (
    ProposalReviews,
    RankedProposal,
    check_scores,
    rank_proposals,
    review_score,
)
from aifactories.programme.review_assignment import (
    DeclaredConflict,
    ProposalProfile,
    ReviewerProfile,
)
from aifactories.programme.review_assignment import (
    assign_reviewers as plan_assignment,
)
from aifactories.programme.states import ProposalStatus, check_transition
from aifactories.services.audit import parse_time, record
from aifactories.services.auth import forget_cached_principals, require_programme_operator
from aifactories.services.calls import call_by_ref, iso, rules_of
from aifactories.services.context import Principal, ServiceContext
from aifactories.services.notify import notify_user
from aifactories.services.proposals import DECIDED_FOR_APPLICANT, visible_proposal

S = ProposalStatus
MAX_TEXT = 20_000
# the proposals a panel ranks: those that went to peer review and were not withdrawn
REVIEWED = (S.UNDER_REVIEW.value, S.ACCEPTED.value, S.REJECTED.value, S.AWARDED.value)


class ReviewStatus(StrEnum):
    ASSIGNED = "assigned"
    SUBMITTED = "submitted"
    DECLINED = "declined"


R = ReviewStatus
OPEN = (R.ASSIGNED.value, R.SUBMITTED.value)  # a reviewer's load; declined ones do not count


class Outcome(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"


@dataclass(frozen=True)
class Decision:
    """An operator's decision on one proposal."""

    proposal_id: int
    outcome: str
    reason: str


# --------------------------------------------------------------------------- helpers


def _text(value: str | None, field: str, hint: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(field, f"is required: {hint}")
    if len(text) > MAX_TEXT:
        raise InvalidInput(field, "is too long", f"at most {MAX_TEXT} characters")
    return text


def _peer_call(session: Session, call_ref: str, *, lock: bool = False) -> CallRow:
    call = call_by_ref(session, call_ref)
    if lock:
        session.refresh(call, with_for_update=True)
    if rules_of(call).review is not ReviewKind.PEER:
        raise Conflict(
            f"call {call.code} is {rules_of(call).title}: its proposals are not peer reviewed "
            "(peer review is for Large Scale and AI for Science calls)"
        )
    return call


def _cutoff(call: CallRow, value: float | str | None) -> float | None:
    """One of the call's cut-offs (or its closing time) from epoch seconds, an ISO time, or
    an ISO date when the call has one cut-off that day; None: every cut-off."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    when = float(value) if not isinstance(value, str) else parse_time(value, "cutoff_at")
    assert when is not None
    known = sorted({*call.cutoffs, call.closes_at})
    for cut in known:
        if abs(cut - when) < 1.0:
            return cut
    if isinstance(value, str) and len(value.strip()) == 10:  # a date: that day's cut-off
        same_day = [c for c in known if when <= c < when + 86400]
        if len(same_day) == 1:
            return same_day[0]
    raise InvalidInput(
        "cutoff_at",
        f"{value} is no cut-off of call {call.code}",
        ", ".join(iso(c) for c in known),
    )


def _operators(session: Session) -> list[int]:
    return list(session.scalars(select(UserRow.id).where(UserRow.is_operator).order_by(UserRow.id)))


def _tell_operators(
    session: Session, now: float, event: str, subject: str, body: str, payload: dict[str, Any]
) -> None:
    for user_id in _operators(session):
        notify_user(
            session, at=now, user_id=user_id, event=event, subject=subject, body=body,
            payload=payload,
        )  # fmt: skip


def _criteria_json(rules: CallRules) -> list[dict[str, Any]]:
    weights = criteria_weights_normalised(rules.criteria)
    return [
        {"name": c.name, "weight": c.weight, "normalised_weight": round(weights[c.name], 6)}
        for c in rules.criteria
    ]


def _username(session: Session, user_id: int) -> str:
    user = session.get(UserRow, user_id)
    return user.username if user else f"user {user_id}"


# --------------------------------------------------------------------------- the pool


def _reviewer_view(session: Session, row: ReviewerRow) -> dict[str, Any]:
    user = session.get(UserRow, row.user_id)
    assert user is not None
    org = session.get(OrganisationRow, user.organisation_id) if user.organisation_id else None
    counts = dict(
        session.execute(
            select(ReviewRow.status, func.count())
            .where(ReviewRow.reviewer_id == row.user_id)
            .group_by(ReviewRow.status)
        ).all()
    )
    conflicts = session.scalars(
        select(ConflictRow).where(ConflictRow.reviewer_id == row.user_id).order_by(ConflictRow.id)
    ).all()
    return {
        "username": user.username,
        "full_name": user.full_name,
        "organisation": org.name if org else None,
        "country": org.country if org else None,
        "expertise": list(row.expertise),
        "active": row.active,
        "assigned": int(counts.get(R.ASSIGNED.value, 0)),
        "submitted": int(counts.get(R.SUBMITTED.value, 0)),
        "declined": int(counts.get(R.DECLINED.value, 0)),
        "conflicts": [_conflict_view(session, c) for c in conflicts],
    }


def _domains(domains: Sequence[str]) -> list[str]:
    if not domains:
        raise InvalidInput(
            "domains", "name at least one domain of expertise", ", ".join(d.value for d in Domain)
        )
    out: list[str] = []
    for i, name in enumerate(domains):
        try:
            out.append(Domain(str(name).strip().lower()).value)
        except ValueError:
            raise InvalidInput(
                f"domains[{i}]",
                f"unknown domain {name!r}",
                ", ".join(d.value for d in Domain),
            ) from None
    return list(dict.fromkeys(out))


def add_reviewer(
    ctx: ServiceContext, principal: Principal, username: str, domains: Sequence[str]
) -> dict[str, Any]:
    """Add a user to the reviewer pool (or change their domains, or bring them back)."""
    require_programme_operator(principal, "manage the reviewer pool")
    expertise = _domains(domains)
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        user = user_by_username(session, username)
        if user is None:
            raise InvalidInput(
                "username", f"no user {username!r}; a reviewer needs an aifactories account"
            )
        row = session.get(ReviewerRow, user.id)
        if row is None:
            row = ReviewerRow(user_id=user.id, expertise=expertise, active=True)
            session.add(row)
        else:
            row.expertise = expertise
            row.active = True
        session.flush()
        record(
            session,
            at=now,
            actor=principal,
            action="reviewer.add",
            subject=f"user:{user.id}",
            details={"username": user.username, "expertise": expertise},
        )
        view = _reviewer_view(session, row)
    forget_cached_principals()  # the new reviewer's role shows at once
    return view


def remove_reviewer(
    ctx: ServiceContext, principal: Principal, username: str, reason: str
) -> dict[str, Any]:
    """Take a reviewer out of the pool. Their reviews not yet submitted are declined (assign
    again to fill them); submitted ones still count."""
    require_programme_operator(principal, "manage the reviewer pool")
    why = _text(reason, "reason", "say why the reviewer leaves the pool")
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        user = user_by_username(session, username)
        row = session.get(ReviewerRow, user.id, with_for_update=True) if user else None
        if user is None or row is None or not row.active:
            raise NotFound(f"{username!r} is not in the reviewer pool; 'aif reviews pool list'")
        row.active = False
        open_reviews = session.scalars(
            select(ReviewRow)
            .join(ProposalRow, ProposalRow.id == ReviewRow.proposal_id)
            .where(
                ReviewRow.reviewer_id == user.id,
                ReviewRow.status == R.ASSIGNED.value,
                ProposalRow.status == S.UNDER_REVIEW.value,
            )
            .order_by(ReviewRow.id)
        ).all()
        for review in open_reviews:
            review.status = R.DECLINED.value
            review.comment = f"removed from the reviewer pool: {why}"
        record(
            session,
            at=now,
            actor=principal,
            action="reviewer.remove",
            subject=f"user:{user.id}",
            reason=why,
            details={
                "username": user.username,
                "declined_reviews": [r.id for r in open_reviews],
                "proposals": [r.proposal_id for r in open_reviews],
            },
        )
        session.flush()
        view = _reviewer_view(session, row)
    forget_cached_principals()
    return view


def list_reviewers(
    ctx: ServiceContext, principal: Principal, *, include_inactive: bool = False
) -> list[dict[str, Any]]:
    """The pool, with each reviewer's organisation, expertise, load and conflicts."""
    require_programme_operator(principal, "see the reviewer pool")
    with ctx.reads() as session:
        query = select(ReviewerRow).join(UserRow, UserRow.id == ReviewerRow.user_id)
        if not include_inactive:
            query = query.where(ReviewerRow.active)
        rows = session.scalars(query.order_by(UserRow.username)).all()
        return [_reviewer_view(session, r) for r in rows]


# --------------------------------------------------------------------------- conflicts


def _conflict_view(session: Session, row: ConflictRow) -> dict[str, Any]:
    org = session.get(OrganisationRow, row.organisation_id) if row.organisation_id else None
    return {
        "id": row.id,
        "organisation": org.name if org else None,
        "proposal_id": row.proposal_id,
        "reason": row.reason,
        "declared_at": row.declared_at,
    }


def _organisation(session: Session, name: str) -> OrganisationRow:
    text = name.strip()
    org = organisation_by_name(session, text)
    if org is None and text.isdigit():
        org = session.get(OrganisationRow, int(text))
    if org is None:
        org = session.scalar(
            select(OrganisationRow).where(func.lower(OrganisationRow.name) == text.lower())
        )
    if org is None:
        raise InvalidInput("organisation", f"no organisation {name!r}; give its full name")
    return org


def declare_conflict(
    ctx: ServiceContext,
    principal: Principal,
    *,
    organisation: str | None = None,
    proposal_id: int | None = None,
    reason: str,
) -> dict[str, Any]:
    """A reviewer declares a conflict of interest with an organisation or one proposal. From
    then on they are never assigned to it; an open review of theirs on it is withdrawn (the
    programme operators are told, to assign another reviewer)."""
    if (organisation is None) == (proposal_id is None):
        raise InvalidInput(
            "organisation",
            "name either the organisation or the proposal you have a conflict with "
            "(--organisation NAME or --proposal ID), one per declaration",
        )
    why = _text(reason, "reason", "say what the conflict is (programme operators read it)")
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        if session.get(ReviewerRow, int(principal.user_id)) is None:
            raise PermissionDenied(
                "only reviewers in the pool declare conflicts of interest; a programme operator "
                "adds reviewers ('aif reviews pool add')"
            )
        query = select(ConflictRow).where(ConflictRow.reviewer_id == principal.user_id)
        affected = select(ProposalRow).where(ProposalRow.status == S.UNDER_REVIEW.value)
        org_id: int | None = None
        if organisation is not None:
            org_id = _organisation(session, organisation).id
            query = query.where(ConflictRow.organisation_id == org_id)
            affected = affected.where(ProposalRow.organisation_id == org_id)
            subject = f"organisation:{org_id}"
        else:
            assert proposal_id is not None
            target = session.get(ProposalRow, proposal_id)
            if target is None or target.status == S.DRAFT.value:
                raise NotFound(f"proposal {proposal_id} does not exist")
            query = query.where(ConflictRow.proposal_id == proposal_id)
            affected = affected.where(ProposalRow.id == proposal_id)
            subject = f"proposal:{proposal_id}"
        existing = session.scalar(query)
        if existing is not None:
            return {**_conflict_view(session, existing), "withdrawn_reviews": []}
        row = ConflictRow(
            reviewer_id=int(principal.user_id),
            organisation_id=org_id,
            proposal_id=proposal_id,
            reason=why,
            declared_at=now,
        )
        session.add(row)
        session.flush()
        record(
            session,
            at=now,
            actor=principal,
            action="reviewer.conflict",
            subject=subject,
            reason=why,
            details={"conflict_id": row.id},
        )
        proposals = {p.id: p for p in session.scalars(affected)}
        withdrawn = session.scalars(
            select(ReviewRow)
            .where(
                ReviewRow.reviewer_id == principal.user_id,
                ReviewRow.proposal_id.in_(list(proposals)),
            )
            .order_by(ReviewRow.id)
        ).all()
        for review in withdrawn:
            # removed, not declined: the row is what lets a reviewer read the proposal
            record(
                session,
                at=now,
                actor=principal,
                action="review.withdraw",
                subject=f"proposal:{review.proposal_id}",
                reason=f"conflict of interest declared: {why}",
                details={
                    "review_id": review.id,
                    "status": review.status,
                    "scores": dict(review.scores or {}),
                    "comment": review.comment,
                },
            )
            session.delete(review)
        if withdrawn:
            ids = sorted({r.proposal_id for r in withdrawn})
            _tell_operators(
                session,
                now,
                "review.withdrawn",
                f"[aifactories] reviews withdrawn (conflict of interest): proposals {ids}",
                f"{principal.username} declared a conflict of interest and left the review of "
                f"proposal(s) {ids}. Assign again to fill the places: aif reviews assign CALL\n",
                {"proposals": ids},
            )
        session.flush()
        return {
            **_conflict_view(session, row),
            "withdrawn_reviews": sorted({r.proposal_id for r in withdrawn}),
        }


def my_conflicts(ctx: ServiceContext, principal: Principal) -> list[dict[str, Any]]:
    with ctx.reads() as session:
        rows = session.scalars(
            select(ConflictRow)
            .where(ConflictRow.reviewer_id == principal.user_id)
            .order_by(ConflictRow.id)
        ).all()
        return [_conflict_view(session, r) for r in rows]


# --------------------------------------------------------------------------- assignment


def _proposals_of(
    session: Session, call: CallRow, cutoff: float | None, statuses: Iterable[str], lock: bool
) -> list[ProposalRow]:
    query = select(ProposalRow).where(
        ProposalRow.call_id == call.id,
        ProposalRow.status.in_(list(statuses)),
        ProposalRow.cutoff_at.is_not(None),
    )
    if cutoff is not None:
        query = query.where(ProposalRow.cutoff_at == cutoff)
    if lock:
        query = query.with_for_update()
    return list(session.scalars(query.order_by(ProposalRow.id)))


def _reviews_of(session: Session, proposal_ids: Sequence[int]) -> dict[int, list[ReviewRow]]:
    out: dict[int, list[ReviewRow]] = defaultdict(list)
    if proposal_ids:
        for row in session.scalars(
            select(ReviewRow)
            .where(ReviewRow.proposal_id.in_(list(proposal_ids)))
            .order_by(ReviewRow.id)
        ):
            out[row.proposal_id].append(row)
    return out


def assign_reviewers(
    ctx: ServiceContext,
    principal: Principal,
    call_ref: str,
    cutoff_at: float | str | None = None,
) -> dict[str, Any]:
    """Give each proposal under review in the call (of one cut-off, or all) the reviewers it
    lacks, avoiding conflicts of interest (see programme.review_assignment). Running it again
    fills the places of declined and withdrawn reviews; a full proposal gets no one."""
    require_programme_operator(principal, "assign reviewers")
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        call = _peer_call(session, call_ref, lock=True)
        rules = rules_of(call)
        cutoff = _cutoff(call, cutoff_at)
        proposals = _proposals_of(session, call, cutoff, [S.UNDER_REVIEW.value], lock=False)
        reviews = _reviews_of(session, [p.id for p in proposals])
        pool = session.execute(
            select(ReviewerRow, UserRow)
            .join(UserRow, UserRow.id == ReviewerRow.user_id)
            .where(ReviewerRow.active)
            .order_by(UserRow.id)
        ).all()
        countries = dict(session.execute(select(OrganisationRow.id, OrganisationRow.country)).all())
        loads = dict(
            session.execute(
                select(ReviewRow.reviewer_id, func.count())
                .join(ProposalRow, ProposalRow.id == ReviewRow.proposal_id)
                .where(
                    ReviewRow.status.in_(OPEN),
                    ProposalRow.status == S.UNDER_REVIEW.value,
                )
                .group_by(ReviewRow.reviewer_id)
            ).all()
        )
        reviewer_ids = [user.id for _, user in pool]
        declared = [
            DeclaredConflict(c.reviewer_id, c.organisation_id, c.proposal_id)
            for c in session.scalars(
                select(ConflictRow).where(ConflictRow.reviewer_id.in_(reviewer_ids))
            )
        ]
        member_names = {name for p in proposals for name in p.members}
        user_ids = dict(
            session.execute(
                select(UserRow.username, UserRow.id).where(UserRow.username.in_(member_names))
            ).all()
        )
        profiles = [
            ProposalProfile(
                proposal_id=p.id,
                organisation_id=p.organisation_id,
                country=countries.get(p.organisation_id, ""),
                domain=p.domain,
                team=frozenset({p.pi_user_id, *(user_ids[m] for m in p.members if m in user_ids)}),
                reviewers=frozenset(r.reviewer_id for r in reviews[p.id] if r.status in OPEN),
                declined=frozenset(
                    r.reviewer_id for r in reviews[p.id] if r.status == R.DECLINED.value
                ),
            )
            for p in proposals
        ]
        reviewers = [
            ReviewerProfile(
                user_id=user.id,
                organisation_id=user.organisation_id,
                country=countries.get(user.organisation_id) if user.organisation_id else None,
                expertise=frozenset(rev.expertise or ()),
                load=int(loads.get(user.id, 0)),
            )
            for rev, user in pool
        ]
        plan = plan_assignment(
            profiles,
            reviewers,
            declared,
            per_proposal=rules.reviewers_per_proposal,
            same_country_conflict=rules.same_country_conflict,
        )
        names = {user.id: user.username for _, user in pool}
        titles = {p.id: p.title for p in proposals}
        created: list[tuple[ReviewRow, bool]] = []
        for a in plan.assignments:
            row = ReviewRow(
                proposal_id=a.proposal_id,
                reviewer_id=a.reviewer_id,
                status=R.ASSIGNED.value,
                scores={},
                comment="",
                assigned_at=now,
            )
            session.add(row)
            created.append((row, a.expert))
        session.flush()
        for row, expert in created:
            record(
                session,
                at=now,
                actor=principal,
                action="review.assign",
                subject=f"proposal:{row.proposal_id}",
                details={
                    "review_id": row.id,
                    "reviewer": names[row.reviewer_id],
                    "call": call.code,
                    "expert": expert,
                },
            )
        by_reviewer: dict[int, list[ReviewRow]] = defaultdict(list)
        for row, _ in created:
            by_reviewer[row.reviewer_id].append(row)
        for reviewer_id, rows in sorted(by_reviewer.items()):
            lines = "\n".join(
                f"- review {r.id}: proposal {r.proposal_id} '{titles[r.proposal_id]}'" for r in rows
            )
            notify_user(
                session,
                at=now,
                user_id=reviewer_id,
                event="review.assigned",
                subject=f"[aifactories] {len(rows)} proposal(s) of call {call.code} to review",
                body=f"You are asked to review, for call {call.code} ({call.title}):\n{lines}\n"
                "Read them with 'aif reviews list' and 'aif reviews show ID'; score every "
                f"criterion ({', '.join(c.name for c in rules.criteria)}) from 0 to 10 with "
                "'aif reviews score ID --score NAME=VALUE ... --comment TEXT', or decline with "
                "'aif reviews decline ID --reason TEXT'. If you have a conflict of interest, "
                "declare it: 'aif reviews conflict --proposal ID --reason TEXT'.\n",
                payload={"call": call.code, "reviews": [r.id for r in rows]},
            )
        return {
            "call": call.code,
            "cutoff_at": cutoff,
            "reviewers_per_proposal": rules.reviewers_per_proposal,
            "proposals": len(proposals),
            "assigned": [
                {
                    "review_id": row.id,
                    "proposal_id": row.proposal_id,
                    "reviewer": names[row.reviewer_id],
                    "expert": expert,
                }
                for row, expert in created
            ],
            "shortfalls": [
                {
                    "proposal_id": s.proposal_id,
                    "wanted": s.wanted,
                    "reviewers": s.reviewers,
                    "missing": s.missing,
                    "reason": s.reason,
                    "excluded": {k.value: n for k, n in s.excluded.items()},
                }
                for s in plan.shortfalls
            ],
            "loads": {names[uid]: n for uid, n in sorted(plan.loads.items())},
        }


# --------------------------------------------------------------------------- reviewing


def _review_view(
    session: Session, row: ReviewRow, *, show_reviewer: bool, proposal: ProposalRow | None = None
) -> dict[str, Any]:
    proposal = proposal or session.get(ProposalRow, row.proposal_id)
    assert proposal is not None
    call = session.get(CallRow, proposal.call_id)
    org = session.get(OrganisationRow, proposal.organisation_id)
    assert call is not None and org is not None
    rules = rules_of(call)
    submitted = row.status == R.SUBMITTED.value
    return {
        "id": row.id,
        "status": row.status,
        "reviewer": _username(session, row.reviewer_id) if show_reviewer else None,
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
        "criteria": _criteria_json(rules),
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
    query = select(ReviewRow).where(ReviewRow.reviewer_id == principal.user_id)
    if status is not None:
        try:
            query = query.where(ReviewRow.status == R(status).value)
        except ValueError:
            raise InvalidInput(
                "status", f"unknown review status {status!r}", ", ".join(s.value for s in R)
            ) from None
    with ctx.reads() as session:
        rows = session.scalars(query.order_by(ReviewRow.id)).all()
        return [_review_view(session, r, show_reviewer=True) for r in rows]


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
        text = _text(
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
    why = _text(reason, "reason", "say why you decline (programme operators read it)")
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
        _tell_operators(
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


# --------------------------------------------------------------------------- ranking


def _rank(
    proposals: Sequence[ProposalRow], reviews: dict[int, list[ReviewRow]], rules: CallRules
) -> dict[int, RankedProposal]:
    """Ranks within each cut-off: proposals compete with those of their own cut-off."""
    groups: dict[float | None, list[ProposalRow]] = defaultdict(list)
    for p in proposals:
        groups[p.cutoff_at].append(p)
    out: dict[int, RankedProposal] = {}
    for members in groups.values():
        items = [
            ProposalReviews(
                p.id,
                p.submitted_at,
                tuple(r.scores for r in reviews[p.id] if r.status == R.SUBMITTED.value),
            )
            for p in members
        ]
        out.update({r.proposal_id: r for r in rank_proposals(items, rules.criteria)})
    return out


def panel_ranking(
    ctx: ServiceContext,
    principal: Principal,
    call_ref: str,
    cutoff_at: float | str | None = None,
) -> dict[str, Any]:
    """The call's reviewed proposals (one cut-off, or all), ranked within their cut-off,
    with each one's score, spread, reviews in and missing, and who reviews it."""
    require_programme_operator(principal, "read the panel's ranking")
    with ctx.reads() as session:
        call = _peer_call(session, call_ref)
        rules = rules_of(call)
        cutoff = _cutoff(call, cutoff_at)
        proposals = _proposals_of(session, call, cutoff, REVIEWED, lock=False)
        reviews = _reviews_of(session, [p.id for p in proposals])
        ranked = _rank(proposals, reviews, rules)
        orgs = {o.id: o.name for o in session.scalars(select(OrganisationRow))}
        entries = []
        for p in proposals:
            r = ranked[p.id]
            counts = Counter(x.status for x in reviews[p.id])
            entries.append(
                {
                    "proposal_id": p.id,
                    "title": p.title,
                    "organisation": orgs.get(p.organisation_id, ""),
                    "domain": p.domain,
                    "status": p.status,
                    "cutoff_at": p.cutoff_at,
                    "submitted_at": p.submitted_at,
                    "rank": r.rank,
                    "score": r.score,
                    "spread": r.spread,
                    "reviews": r.reviews,
                    "assigned": counts[R.ASSIGNED.value],
                    "declined": counts[R.DECLINED.value],
                    "missing": max(0, rules.reviewers_per_proposal - r.reviews),
                    "reviewers": [
                        {
                            "review_id": x.id,
                            "reviewer": _username(session, x.reviewer_id),
                            "status": x.status,
                            "score": review_score(x.scores, rules.criteria)
                            if x.status == R.SUBMITTED.value
                            else None,
                        }
                        for x in reviews[p.id]
                    ],
                }
            )
        entries.sort(
            key=lambda e: (
                e["cutoff_at"],
                e["rank"] is None,
                e["rank"] or 0,
                e["proposal_id"],
            )
        )
        return {
            "call": call.code,
            "cutoff_at": cutoff,
            "criteria": _criteria_json(rules),
            "reviewers_per_proposal": rules.reviewers_per_proposal,
            "min_average_score": rules.min_average_score,
            "entries": entries,
        }


# --------------------------------------------------------------------------- decisions


def _score_text(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def decide(
    ctx: ServiceContext,
    principal: Principal,
    call_ref: str,
    *,
    rule: bool = False,
    decisions: Sequence[Decision] = (),
    cutoff_at: float | str | None = None,
) -> dict[str, Any]:
    """Decide proposals under review: each as the operator says (accept or reject, with a
    reason), or all by the call's rule ``min_average_score``: every proposal whose cut-off
    has passed and whose reviews are all in (the call's number submitted, none pending) is
    accepted at or above the minimum and rejected below it. The score and the rank within
    the cut-off are stored with the decision; the applicant is told."""
    require_programme_operator(principal, "decide proposals")
    if rule == bool(decisions):
        raise InvalidInput(
            "decisions",
            "give a decision per proposal (accept or reject, with a reason), or rule: true "
            "to apply the call's min_average_score; one or the other",
        )
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        call = _peer_call(session, call_ref, lock=True)
        rules = rules_of(call)
        cutoff = _cutoff(call, cutoff_at)
        everyone = _proposals_of(session, call, None, REVIEWED, lock=True)
        reviews = _reviews_of(session, [p.id for p in everyone])
        ranked = _rank(everyone, reviews, rules)
        by_id = {p.id: p for p in everyone}
        chosen: list[tuple[ProposalRow, Outcome, str, dict[str, Any]]] = []
        skipped: list[dict[str, Any]] = []
        if rule:
            minimum = rules.min_average_score
            if minimum is None:
                raise InvalidInput(
                    "rule",
                    f"call {call.code} has no min_average_score rule; decide each proposal "
                    "with an explicit accept or reject and a reason",
                )
            for p in everyone:
                if p.status != S.UNDER_REVIEW.value or (
                    cutoff is not None and p.cutoff_at != cutoff
                ):
                    continue
                counts = Counter(x.status for x in reviews[p.id])
                submitted, pending = counts[R.SUBMITTED.value], counts[R.ASSIGNED.value]
                assert p.cutoff_at is not None
                if p.cutoff_at > now:
                    skipped.append(
                        {"proposal_id": p.id, "reason": f"its cut-off {iso(p.cutoff_at)} is ahead"}
                    )
                    continue
                if pending or submitted < rules.reviewers_per_proposal:
                    skipped.append(
                        {
                            "proposal_id": p.id,
                            "reason": f"{submitted} of {rules.reviewers_per_proposal} reviews "
                            f"submitted, {pending} pending; wait for them, assign more reviewers "
                            f"('aif reviews assign {call.code}') or decide it yourself",
                        }
                    )
                    continue
                score = ranked[p.id].score
                assert score is not None
                if score >= minimum:
                    outcome = Outcome.ACCEPT
                    why = (
                        f"average score {_score_text(score)} meets the call's minimum "
                        f"{_score_text(minimum)}"
                    )
                else:
                    outcome = Outcome.REJECT
                    why = (
                        f"average score {_score_text(score)} below the call's minimum "
                        f"{_score_text(minimum)}"
                    )
                chosen.append((p, outcome, why, {"by": "rule", "min_average_score": minimum}))
        else:
            seen: set[int] = set()
            for i, d in enumerate(decisions):
                try:
                    outcome = Outcome(str(d.outcome).strip().lower())
                except ValueError:
                    raise InvalidInput(
                        f"decisions[{i}].outcome",
                        f"unknown outcome {d.outcome!r}",
                        "accept or reject",
                    ) from None
                why = _text(d.reason, f"decisions[{i}].reason", "the applicant reads why")
                p_row = by_id.get(d.proposal_id)
                if p_row is None:
                    raise InvalidInput(
                        f"decisions[{i}].proposal_id",
                        f"proposal {d.proposal_id} is not under peer review in call {call.code}; "
                        f"'aif reviews ranking {call.code}' lists them",
                    )
                if d.proposal_id in seen:
                    raise InvalidInput(
                        f"decisions[{i}].proposal_id",
                        f"proposal {d.proposal_id} is twice in the list",
                    )
                seen.add(d.proposal_id)
                if p_row.status != S.UNDER_REVIEW.value:
                    raise InvalidTransition(
                        f"proposal {p_row.id} is {p_row.status}: it was decided already"
                    )
                if outcome is Outcome.ACCEPT and ranked[p_row.id].reviews == 0:
                    raise Conflict(
                        f"proposal {p_row.id} has no submitted review: accept it once at least "
                        "one review is in (a rejection needs none)"
                    )
                chosen.append((p_row, outcome, why, {"by": "operator"}))

        decided = []
        for p, outcome, why, how in chosen:
            new = S.ACCEPTED if outcome is Outcome.ACCEPT else S.REJECTED
            check_transition(S(p.status), new, p.id)
            r = ranked[p.id]
            p.status = new.value
            p.score = r.score
            p.rank = r.rank
            p.decision_reason = why
            p.decided_at = now
            p.updated_at = now
            record(
                session,
                at=now,
                actor=principal,
                action=f"proposal.{outcome.value}",
                subject=f"proposal:{p.id}",
                reason=why,
                details={
                    "call": call.code,
                    "cutoff_at": p.cutoff_at,
                    "score": r.score,
                    "rank": r.rank,
                    "reviews": r.reviews,
                    **how,
                },
            )
            _tell_applicant(session, now, p, call, new, why, r)
            decided.append(
                {
                    "proposal_id": p.id,
                    "outcome": outcome.value,
                    "status": new.value,
                    "score": r.score,
                    "rank": r.rank,
                    "reviews": r.reviews,
                    "reason": why,
                }
            )
        session.flush()
        return {"call": call.code, "cutoff_at": cutoff, "decided": decided, "skipped": skipped}


def _tell_applicant(
    session: Session,
    now: float,
    row: ProposalRow,
    call: CallRow,
    status: ProposalStatus,
    reason: str,
    ranked: RankedProposal,
) -> None:
    accepted = status is S.ACCEPTED
    score = (
        f"Panel score: {_score_text(ranked.score)} of 10 from {ranked.reviews} review(s), "
        f"rank {ranked.rank} at its cut-off.\n"
        if ranked.score is not None
        else ""
    )
    notify_user(
        session,
        at=now,
        user_id=row.pi_user_id,
        event=f"proposal.{status.value}",
        subject=f"[aifactories] proposal {row.id} "
        + ("accepted after peer review" if accepted else "not accepted after peer review"),
        body=f"Your proposal '{row.title}' to call {call.code} was "
        + ("accepted" if accepted else "not accepted")
        + f" after peer review.\nReason: {reason}\n{score}"
        + "The reviewers' scores and comments (without their names): "
        + f"aif reviews proposal {row.id}\n"
        + ("GPU-hours are awarded after the cut-off's award run.\n" if accepted else ""),
        payload={
            "proposal_id": row.id,
            "status": status.value,
            "reason": reason,
            "score": ranked.score,
            "rank": ranked.rank,
        },
    )


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
        reviews = _reviews_of(session, [row.id])[row.id]
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
            "criteria": _criteria_json(rules),
            "reviews": shown,
        }

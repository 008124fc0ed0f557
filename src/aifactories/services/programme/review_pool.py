"""The reviewer pool and declared conflicts of interest.

Programme operators manage the pool (add, remove, list); a reviewer in the pool declares their
own conflicts, with an organisation or one proposal, and is never assigned to it from then on.

Every change writes its audit entry and its notifications in its own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactories.db.accounts import organisation_by_name, user_by_username
from aifactories.db.models import OrganisationRow, UserRow
from aifactories.db.programme_models import ConflictRow, ProposalRow, ReviewerRow, ReviewRow
from aifactories.domain.errors import InvalidInput, NotFound, PermissionDenied
from aifactories.domain.organisations import Domain
from aifactories.services.core.auth import forget_cached_principals, require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.notifications.audit import record
from aifactories.services.programme.review_common import R, S, required_text, tell_operators

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
    why = required_text(reason, "reason", "say why the reviewer leaves the pool")
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
    why = required_text(reason, "reason", "say what the conflict is (programme operators read it)")
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
            tell_operators(
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

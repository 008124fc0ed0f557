"""Reading proposals: who may see one, and what they read of it (one proposal, or the list).

A list walks up to thousands of proposals, and each needs its call, organisation, PI,
project and, for a reviewer, their assignment. The session's identity map holds rows
weakly, so a ``session.get`` per row reloads them row after row (about 2,000 queries for
500 proposals); ``Lookups`` loads them once per batch of rows instead, with the same
answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from aifactories.db.models import OrganisationRow, ProjectRow, UserRow
from aifactories.db.programme_models import CallRow, ProposalRow, ReviewRow
from aifactories.domain.errors import InvalidInput, NotFound
from aifactories.domain.organisations import OrganisationKind
from aifactories.programme.eligibility import ProposalFacts, candidate_sites
from aifactories.programme.states import ProposalStatus
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.programme.calls import call_by_ref

S = ProposalStatus
DECIDED_FOR_APPLICANT = frozenset({S.ACCEPTED, S.AWARDED, S.REJECTED})
BATCH = 500  # proposals whose related rows are loaded together by list_proposals


@dataclass
class Lookups:
    """The rows that proposals refer to, by id, loaded once for a batch of proposals."""

    calls: dict[int, CallRow] = field(default_factory=dict)
    organisations: dict[int, OrganisationRow] = field(default_factory=dict)
    usernames: dict[int, str] = field(default_factory=dict)
    projects: dict[int, str] = field(default_factory=dict)
    # the proposals the caller reviews (assigned, not declined); None: not loaded
    reviewing: set[int] | None = None

    @classmethod
    def load(
        cls,
        session: Session,
        rows: Sequence[ProposalRow],
        reviewer: Principal | None = None,
    ) -> Lookups:
        """What ``rows`` refer to; with ``reviewer``, also which of them the reviewer is
        assigned to."""
        call_ids = {r.call_id for r in rows}
        org_ids = {r.organisation_id for r in rows}
        user_ids = {r.pi_user_id for r in rows}
        project_ids = {r.project_id for r in rows if r.project_id is not None}
        out = cls()
        if call_ids:
            out.calls = {
                c.id: c for c in session.scalars(select(CallRow).where(CallRow.id.in_(call_ids)))
            }
            out.organisations = {
                o.id: o
                for o in session.scalars(
                    select(OrganisationRow).where(OrganisationRow.id.in_(org_ids))
                )
            }
            out.usernames = {
                i: name
                for i, name in session.execute(
                    select(UserRow.id, UserRow.username).where(UserRow.id.in_(user_ids))
                )
            }
        if project_ids:
            out.projects = {
                i: code
                for i, code in session.execute(
                    select(ProjectRow.id, ProjectRow.code).where(ProjectRow.id.in_(project_ids))
                )
            }
        if reviewer is not None and rows:
            out.reviewing = set(
                session.scalars(
                    select(ReviewRow.proposal_id).where(
                        ReviewRow.proposal_id.in_([r.id for r in rows]),
                        ReviewRow.reviewer_id == reviewer.user_id,
                        ReviewRow.status != "declined",
                    )
                )
            )
        return out


def facts_of(row: ProposalRow, org: OrganisationRow) -> ProposalFacts:
    return ProposalFacts(
        organisation_kind=OrganisationKind(org.kind),
        organisation_country=org.country,
        requested_gpu_hours=row.requested_gpu_hours,
        period_months=row.period_months,
        gpu_model=row.gpu_model,
        min_gpu_memory_gb=row.min_gpu_memory_gb,
        largest_job_gpus=row.largest_job_gpus,
        preferred_sites=tuple(row.preferred_sites),
        residency=tuple(row.residency),
        members=len(row.members) + 1,
    )


def facts(session: Session, row: ProposalRow) -> ProposalFacts:
    org = session.get(OrganisationRow, row.organisation_id)
    assert org is not None
    return facts_of(row, org)


def candidates_of(ctx: ServiceContext, session: Session, row: ProposalRow) -> list[str]:
    return candidate_sites(ctx.catalogue, facts(session, row))


def may_see(
    session: Session,
    principal: Principal,
    row: ProposalRow,
    sites: list[str],
    *,
    reviewing: set[int] | None = None,
) -> bool:
    """Nobody but its applicant sees a draft. After submission: the applicant and the team,
    programme operators, operators of a site that could host it, and its assigned reviewers
    (never one of its own organisation: they are not assigned). ``reviewing``: the proposals
    the caller reviews, if known (else asked of the database)."""
    if row.pi_user_id == principal.user_id:
        return True
    if row.status == S.DRAFT.value:
        return False
    if principal.is_operator or principal.username in row.members:
        return True
    if principal.operated_sites & set(sites):
        return True
    if reviewing is not None:
        assigned = row.id in reviewing
    else:
        assigned = (
            session.scalar(
                select(ReviewRow.id).where(
                    ReviewRow.proposal_id == row.id,
                    ReviewRow.reviewer_id == principal.user_id,
                    ReviewRow.status != "declined",  # who declined has no more business here
                )
            )
            is not None
        )
    return assigned and principal.organisation_id != row.organisation_id


def visible_proposal(
    session: Session, ctx: ServiceContext, principal: Principal, proposal_id: int
) -> ProposalRow:
    row = session.get(ProposalRow, proposal_id)
    if row is None or not may_see(session, principal, row, candidates_of(ctx, session, row)):
        raise NotFound(f"proposal {proposal_id} does not exist or you may not see it")
    return row


def get_proposal(ctx: ServiceContext, principal: Principal, proposal_id: int) -> dict[str, Any]:
    with ctx.reads() as session:
        row = visible_proposal(session, ctx, principal, proposal_id)
        return proposal_view(session, ctx, principal, row)


def proposal_view(
    session: Session,
    ctx: ServiceContext,
    principal: Principal,
    row: ProposalRow,
    lookups: Lookups | None = None,
    sites: list[str] | None = None,
) -> dict[str, Any]:
    """What the caller may read of a proposal: scores and rank only to programme operators,
    and to the applicant once decided. ``lookups`` and ``sites``: what a list loaded and
    computed already."""
    known = lookups if lookups is not None else Lookups.load(session, [row])
    call = known.calls[row.call_id]
    org = known.organisations[row.organisation_id]
    pi = known.usernames[row.pi_user_id]
    if sites is None:
        sites = candidate_sites(ctx.catalogue, facts_of(row, org))
    decided = S(row.status) in DECIDED_FOR_APPLICANT
    show_scores = principal.is_operator or (decided and row.pi_user_id == principal.user_id)
    return {
        "id": row.id,
        "call": call.code,
        "mode": call.mode,
        "status": row.status,
        "title": row.title,
        "abstract": row.abstract,
        "organisation": org.name,
        "organisation_kind": org.kind,
        "country": org.country,
        "pi": pi,
        "domain": row.domain,
        "critical_domain": row.critical_domain,
        "industrial": row.industrial,
        "requested_gpu_hours": row.requested_gpu_hours,
        "gpu_model": row.gpu_model,
        "min_gpu_memory_gb": row.min_gpu_memory_gb,
        "largest_job_gpus": row.largest_job_gpus,
        "preferred_sites": row.preferred_sites,
        "residency": row.residency,
        "period_months": row.period_months,
        "starts_at": row.starts_at,
        "members": row.members,
        "checks": row.checks,
        "candidate_sites": sites,
        "cutoff_at": row.cutoff_at,
        "score": row.score if show_scores else None,
        "rank": row.rank if show_scores else None,
        "decision_reason": row.decision_reason
        if decided or row.status in (S.WITHDRAWN.value, S.REVISION_REQUESTED.value)
        else None,
        "project": known.projects.get(row.project_id) if row.project_id is not None else None,
        "created_at": row.created_at,
        "submitted_at": row.submitted_at,
        "decided_at": row.decided_at,
        "version": row.version,
    }


def list_proposals(
    ctx: ServiceContext,
    principal: Principal,
    *,
    call: str | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The proposals the caller may see: their own, their teams', and for operators every
    submitted one (site operators: those their sites could host)."""
    with ctx.reads() as session:
        query = select(ProposalRow).order_by(ProposalRow.id.desc())
        if call is not None:
            query = query.where(ProposalRow.call_id == call_by_ref(session, call).id)
        if status is not None:
            try:
                query = query.where(ProposalRow.status == S(status).value)
            except ValueError:
                raise InvalidInput(
                    "status",
                    f"unknown status {status!r}; use one of {', '.join(s.value for s in S)}",
                ) from None
        if not (principal.is_operator or principal.operated_sites or principal.is_reviewer):
            query = query.where(
                or_(
                    ProposalRow.pi_user_id == principal.user_id,
                    ProposalRow.status != S.DRAFT.value,
                )
            )
        out: list[dict[str, Any]] = []
        # an operator sees every submitted proposal: no assignment to look up
        reviewer = None if principal.is_operator else principal
        for batch in session.scalars(query).partitions(BATCH):
            if len(out) >= limit:
                break
            known = Lookups.load(session, batch, reviewer)
            for row in batch:
                if len(out) >= limit:
                    return out
                sites = candidate_sites(
                    ctx.catalogue, facts_of(row, known.organisations[row.organisation_id])
                )
                if may_see(session, principal, row, sites, reviewing=known.reviewing):
                    out.append(proposal_view(session, ctx, principal, row, known, sites))
        return out

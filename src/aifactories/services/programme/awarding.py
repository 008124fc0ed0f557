"""From award to work: a proposal becomes a project, its members and its allocations in the
ledger, in the caller's transaction, with the audit entry and the applicant's notification."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactories.db.models import AllocationRow, MembershipRow, ProjectRow, UserRow
from aifactories.db.programme_models import CallRow, ProposalRow
from aifactories.domain.organisations import Domain
from aifactories.programme.modes import rules_from_json
from aifactories.programme.states import ProposalStatus, check_transition
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.notifications.audit import record
from aifactories.services.notifications.notify import notify_user


@dataclass(frozen=True, slots=True)
class AwardedAllocation:
    site_id: str | None  # None: the pool
    gpu_seconds: int
    starts_at: float
    ends_at: float
    # a pool award's sites (those its proposal allows); None: any site
    pool_sites: tuple[str, ...] | None = None

    @property
    def where(self) -> str:
        if self.site_id is not None:
            return self.site_id
        if self.pool_sites is None:
            return "any site"
        return f"any of {', '.join(self.pool_sites)}"


def project_code(session: Session, proposal: ProposalRow) -> str:
    """A readable, unique project code from the proposal's title: 'p12-mri-segmentation'."""
    words = re.findall(r"[a-z0-9]+", proposal.title.lower())
    slug = "-".join(words)[:40].strip("-") or "project"
    code = f"p{proposal.id}-{slug}"
    taken = session.scalar(select(ProjectRow.id).where(ProjectRow.code == code))
    return code if taken is None else f"p{proposal.id}"


def award_proposal(
    session: Session,
    ctx: ServiceContext,
    proposal: ProposalRow,
    call: CallRow,
    allocations: list[AwardedAllocation],
    *,
    actor: Principal | None,
    reason: str,
) -> ProjectRow:
    """Create the project, memberships and allocations of an awarded proposal."""
    now = ctx.clock.now()
    check_transition(ProposalStatus(proposal.status), ProposalStatus.AWARDED, proposal.id)
    rules = rules_from_json(call.rules)
    domain = Domain(proposal.domain)
    project = ProjectRow(
        code=project_code(session, proposal),
        title=proposal.title,
        organisation_id=proposal.organisation_id,
        domain=domain.value,
        industrial=proposal.industrial,
        priority_weight=ctx.priority_weights.for_project(domain, proposal.industrial),
    )
    session.add(project)
    session.flush()
    session.add(MembershipRow(project_id=project.id, user_id=proposal.pi_user_id, role="pi"))
    cap = int(rules.member_cap_gpu_hours * 3600) if rules.member_cap_gpu_hours is not None else None
    if proposal.members:
        users = session.scalars(select(UserRow).where(UserRow.username.in_(proposal.members)))
        for user in users:
            if user.id != proposal.pi_user_id:
                session.add(
                    MembershipRow(
                        project_id=project.id, user_id=user.id, role="member", cap_gpu_seconds=cap
                    )
                )
    for alloc in allocations:
        session.add(
            AllocationRow(
                project_id=project.id,
                site_id=alloc.site_id,
                pool_sites=None if alloc.pool_sites is None else list(alloc.pool_sites),
                granted_gpu_seconds=alloc.gpu_seconds,
                reserved_gpu_seconds=0,
                used_gpu_seconds=0,
                starts_at=alloc.starts_at,
                ends_at=alloc.ends_at,
                status="open",
                created_at=now,
            )
        )
    proposal.status = ProposalStatus.AWARDED.value
    proposal.project_id = project.id
    proposal.decided_at = now
    proposal.decision_reason = reason
    proposal.updated_at = now
    session.flush()
    hours = sum(a.gpu_seconds for a in allocations) / 3600
    where = "; ".join(a.where for a in allocations)
    record(
        session,
        at=now,
        actor=actor,
        action="proposal.award",
        subject=f"proposal:{proposal.id}",
        reason=reason,
        details={
            "project": project.code,
            "allocations": [
                {
                    "site_id": a.site_id,
                    "pool_sites": a.pool_sites,
                    "gpu_hours": a.gpu_seconds / 3600,
                    "starts_at": a.starts_at,
                    "ends_at": a.ends_at,
                }
                for a in allocations
            ],
        },
    )
    notify_user(
        session,
        at=now,
        user_id=proposal.pi_user_id,
        event="proposal.awarded",
        subject=f"[aifactories] {proposal.title}: {hours:,.0f} GPU-hours awarded",
        body=(
            f"Your proposal {proposal.id} '{proposal.title}' in call {call.code} was awarded "
            f"{hours:,.0f} GPU-hours at {where}.\n"
            f"Project: {project.code}. Submit jobs with: aif submit -A {project.code} ...\n"
            f"Reason: {reason}\n"
        ),
        payload={"proposal_id": proposal.id, "project": project.code, "gpu_hours": hours},
    )
    return project

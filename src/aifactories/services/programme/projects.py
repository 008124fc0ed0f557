"""Projects and their members: who sees a project, who may add and remove members (the PI, or
a programme operator), with every change audited."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactories.db.accounts import project_by_ref, user_by_username
from aifactories.db.models import (
    AllocationRow,
    JobRow,
    MembershipRow,
    OrganisationRow,
    ProjectRow,
    UserRow,
)
from aifactories.db.programme_models import ProposalRow
from aifactories.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactories.domain.projects import Role
from aifactories.services.core import idempotency
from aifactories.services.core.auth import forget_cached_principals, require_project_access
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.core.input_types import GpuHours, Username
from aifactories.services.notifications.audit import record
from aifactories.services.notifications.notify import notify_user

ACTIVE_JOB_STATES = ("pending", "placed", "submitted", "running")


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    role: Role = Role.MEMBER
    cap_gpu_hours: Annotated[GpuHours | None, Field(description="a per-member cap")] = None


def _project(session: Session, principal: Principal, ref: str) -> ProjectRow:
    row = project_by_ref(session, ref)
    if row is None:
        raise NotFound(f"project {ref!r} does not exist or you are not a member of it")
    require_project_access(principal, row.id, ref)
    return row


def _members(session: Session, project_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(
            UserRow.username, UserRow.full_name, MembershipRow.role, MembershipRow.cap_gpu_seconds
        )
        .join(MembershipRow, MembershipRow.user_id == UserRow.id)
        .where(MembershipRow.project_id == project_id)
        .order_by(MembershipRow.role.desc(), UserRow.username)
    ).all()
    return [
        {
            "username": u,
            "full_name": n,
            "role": r,
            "cap_gpu_hours": c / 3600 if c is not None else None,
        }
        for u, n, r, c in rows
    ]


def _view(session: Session, row: ProjectRow) -> dict[str, Any]:
    org = session.get(OrganisationRow, row.organisation_id)
    granted, used = session.execute(
        select(
            func.coalesce(func.sum(AllocationRow.granted_gpu_seconds), 0),
            func.coalesce(func.sum(AllocationRow.used_gpu_seconds), 0),
        ).where(AllocationRow.project_id == row.id)
    ).one()
    proposal = session.scalar(select(ProposalRow.id).where(ProposalRow.project_id == row.id))
    return {
        "id": row.id,
        "code": row.code,
        "title": row.title,
        "organisation": org.name if org else None,
        "domain": row.domain,
        "industrial": row.industrial,
        "priority_weight": row.priority_weight,
        "proposal_id": proposal,
        "granted_gpu_hours": int(granted) / 3600,
        "used_gpu_hours": int(used) / 3600,
        "members": _members(session, row.id),
    }


def list_projects(ctx: ServiceContext, principal: Principal) -> list[dict[str, Any]]:
    """The caller's projects; every project for a programme operator."""
    with ctx.reads() as session:
        query = select(ProjectRow).order_by(ProjectRow.code)
        if not principal.is_operator:
            query = query.where(ProjectRow.id.in_([int(p) for p in principal.roles]))
        return [_view(session, row) for row in session.scalars(query)]


def get_project(ctx: ServiceContext, principal: Principal, ref: str) -> dict[str, Any]:
    with ctx.reads() as session:
        return _view(session, _project(session, principal, ref))


def _require_manager(principal: Principal, project: ProjectRow) -> None:
    if not principal.is_operator and principal.role_in(project.id) is not Role.PI:
        raise PermissionDenied(
            f"only the PI of {project.code} or a programme operator can change its members"
        )


def add_member(
    ctx: ServiceContext, principal: Principal, ref: str, body: MemberIn, key: str | None = None
) -> dict[str, Any]:
    """Add a member; a retry with the same idempotency ``key`` gets the project as the first
    request left it, not a 409."""
    once = idempotency.once(principal, key, "projects.add_member", ref, body)
    return idempotency.replaying(
        ctx,
        once,
        lambda: _add_member(ctx, principal, ref, body, once),
        lambda project_id: get_project(ctx, principal, str(project_id)),
    )


def _add_member(
    ctx: ServiceContext,
    principal: Principal,
    ref: str,
    body: MemberIn,
    once: idempotency.Once | None,
) -> dict[str, Any]:
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        project = _project(session, principal, ref)
        _require_manager(principal, project)
        user = user_by_username(session, body.username)
        if user is None:
            raise InvalidInput("username", f"no user {body.username!r}; they need an account first")
        existing = session.scalar(
            select(MembershipRow).where(
                MembershipRow.project_id == project.id, MembershipRow.user_id == user.id
            )
        )
        if existing is not None:
            raise Conflict(f"{body.username} is already a member of {project.code}")
        cap = round(body.cap_gpu_hours * 3600) if body.cap_gpu_hours is not None else None
        session.add(
            MembershipRow(
                project_id=project.id, user_id=user.id, role=body.role.value, cap_gpu_seconds=cap
            )
        )
        idempotency.record(session, once, project.id, now)
        record(
            session,
            at=now,
            actor=principal,
            action="project.member.add",
            subject=f"project:{project.id}",
            reason=f"{body.username} as {body.role.value}",
            details={"username": body.username, "cap_gpu_hours": body.cap_gpu_hours},
        )
        notify_user(
            session,
            at=now,
            user_id=user.id,
            event="project.member.added",
            subject=f"[aifactories] you are a member of {project.code}",
            body=f"{principal.username} added you to project {project.code} ('{project.title}') "
            f"as {body.role.value}. Submit jobs with: aif submit -A {project.code} ...\n",
            payload={"project": project.code, "role": body.role.value},
        )
        session.flush()
        view = _view(session, project)
    forget_cached_principals()
    return view


def remove_member(
    ctx: ServiceContext, principal: Principal, ref: str, username: str, reason: str
) -> dict[str, Any]:
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        project = _project(session, principal, ref)
        _require_manager(principal, project)
        user = user_by_username(session, username)
        membership = (
            session.scalar(
                select(MembershipRow).where(
                    MembershipRow.project_id == project.id, MembershipRow.user_id == user.id
                )
            )
            if user
            else None
        )
        if membership is None or user is None:
            raise NotFound(f"{username} is not a member of {project.code}")
        if membership.role == Role.PI.value:
            pis = session.scalar(
                select(func.count()).where(
                    MembershipRow.project_id == project.id, MembershipRow.role == Role.PI.value
                )
            )
            if (pis or 0) <= 1:
                raise Conflict(f"{username} is the only PI of {project.code}; add another PI first")
        active = session.scalar(
            select(func.count()).where(
                JobRow.project_id == project.id,
                JobRow.user_id == user.id,
                JobRow.state.in_(ACTIVE_JOB_STATES),
            )
        )
        if active:
            raise Conflict(
                f"{username} has {active} job(s) queued or running in {project.code}; "
                "cancel them or wait until they end"
            )
        session.delete(membership)
        record(
            session,
            at=now,
            actor=principal,
            action="project.member.remove",
            subject=f"project:{project.id}",
            reason=reason,
            details={"username": username},
        )
        session.flush()
        view = _view(session, project)
    forget_cached_principals()
    return view

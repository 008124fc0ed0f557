"""Setting or lifting a member's own cap of GPU-hours in a project (checked at submission by
``member_caps``). Who may: the project's PI or a programme operator, as for adding and
removing members (``projects``); every change is audited and the member is told.

A cap below what the member already used or holds is allowed: it stops their next
submissions, not the jobs already running.
"""

from __future__ import annotations

from sqlalchemy import select

from aifactories.db.accounts import project_by_ref, user_by_username
from aifactories.db.models import MembershipRow
from aifactories.domain.errors import InvalidInput, NotFound, PermissionDenied
from aifactories.domain.projects import Role
from aifactories.services.core.auth import require_project_access
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.core.input_types import MAX_GPU_HOURS
from aifactories.services.notifications.audit import record
from aifactories.services.notifications.notify import notify_user
from aifactories.services.programme.allocation_common import hours_text


def set_member_cap(
    ctx: ServiceContext,
    principal: Principal,
    ref: str,
    username: str,
    cap_gpu_hours: float | None,
) -> float | None:
    """Set ``username``'s cap in project ``ref`` to ``cap_gpu_hours`` (None: no cap); returns
    the cap now in force, in GPU-hours."""
    cap = _cap_seconds(cap_gpu_hours)
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        project = project_by_ref(session, ref)
        if project is None:
            raise NotFound(f"project {ref!r} does not exist or you are not a member of it")
        require_project_access(principal, project.id, ref)
        if not principal.is_operator and principal.role_in(project.id) is not Role.PI:
            raise PermissionDenied(
                f"only the PI of {project.code} or a programme operator can change its members"
            )
        user = user_by_username(session, username)
        membership = (
            session.scalar(
                select(MembershipRow).where(
                    MembershipRow.project_id == project.id, MembershipRow.user_id == user.id
                )
            )
            if user is not None
            else None
        )
        if membership is None or user is None:
            raise NotFound(f"{username} is not a member of {project.code}")
        before = membership.cap_gpu_seconds
        if before == cap:
            return _hours(cap)
        membership.cap_gpu_seconds = cap
        shown = "no cap" if cap is None else f"a cap of {hours_text(cap)} GPU-hours"
        record(
            session,
            at=now,
            actor=principal,
            action="project.member.cap",
            subject=f"project:{project.id}",
            reason=f"{username}: {shown}",
            details={
                "username": username,
                "cap_gpu_hours": _hours(cap),
                "previous_cap_gpu_hours": _hours(before),
            },
        )
        notify_user(
            session,
            at=now,
            user_id=user.id,
            event="project.member.cap",
            subject=f"[aifactories] your cap in {project.code}",
            body=f"{principal.username} set {shown} for you in project {project.code} "
            f"('{project.title}'). Your running jobs are not affected.\n",
            payload={"project": project.code, "cap_gpu_hours": _hours(cap)},
        )
    return _hours(cap)


def _cap_seconds(cap_gpu_hours: float | None) -> int | None:
    if cap_gpu_hours is None:
        return None
    if not 0 < cap_gpu_hours <= MAX_GPU_HOURS:  # also refuses NaN
        raise InvalidInput(
            "cap_gpu_hours",
            f"{cap_gpu_hours:g} is not a cap",
            limit=f"more than 0 and at most {MAX_GPU_HOURS:g} GPU-hours, or empty for no cap",
        )
    return round(cap_gpu_hours * 3600)


def _hours(gpu_seconds: int | None) -> float | None:
    return None if gpu_seconds is None else gpu_seconds / 3600

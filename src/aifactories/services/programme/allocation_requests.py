"""Extension and transfer requests on an allocation: asking and listing (the decisions are in
``allocation_decisions``).

Rules (docs/allocations.md explains them for people):

- Requests: a project's PI asks for an extension (GPU-hours and/or a later end) or a transfer of
  GPU-hours between two allocations of the project; a programme operator approves or refuses,
  and an approval is applied in the transaction of the decision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictFloat
from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactories.db.accounts import project_by_ref
from aifactories.db.models import AllocationRow, ProjectRow, UserRow
from aifactories.db.programme_models import AllocationRequestRow
from aifactories.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactories.domain.projects import Role
from aifactories.domain.units import SECONDS_PER_HOUR
from aifactories.services.core import idempotency
from aifactories.services.core.auth import require_project_access
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.core.input_types import MAX_GPU_HOURS, Code, Comment, Id, Instant
from aifactories.services.notifications.audit import record
from aifactories.services.programme.allocation_common import (
    CLOSED,
    EXPIRE_ACTION,
    OPEN,
    closed_text,
    closing_entry,
    hours_text,
    iso_utc,
    notify_users,
    required_text,
    site_text,
    visible_allocation,
)

EXTENSION, TRANSFER = "extension", "transfer"
PENDING, APPROVED, REFUSED = "pending", "approved", "refused"
REQUEST_STATUSES = (PENDING, APPROVED, REFUSED)


@dataclass(frozen=True)
class RequestView:
    id: int
    allocation_id: int
    project_id: int
    project_code: str
    kind: str
    status: str
    gpu_seconds: int
    new_ends_at: float | None
    target_allocation_id: int | None
    justification: str
    requested_by: str
    created_at: float
    decided_by: str | None
    decision_reason: str | None
    decided_at: float | None


class AllocationRequestIn(BaseModel):
    """A PI's request: ``extension`` (``gpu_hours`` more and/or a later end ``until``) or
    ``transfer`` (``gpu_hours`` from this allocation to ``to_allocation``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Annotated[Code, Field(description="extension or transfer")]
    gpu_hours: Annotated[
        StrictFloat,
        Field(ge=0, le=MAX_GPU_HOURS, allow_inf_nan=False, description="GPU-hours to add or move"),
    ] = 0.0
    until: Annotated[
        Instant | None,
        Field(
            description="extension: the new end, an ISO date (end of that day, UTC), date-time "
            "or epoch seconds"
        ),
    ] = None
    to_allocation: Annotated[Id | None, Field(description="transfer: the receiving id")] = None
    justification: Annotated[Comment, Field(description="why; the programme reads it")] = ""


def _h_down(gpu_seconds: int) -> str:
    """GPU-hours rounded down to the hundredth: a limit the user can type and stay within."""
    return f"{math.floor(gpu_seconds / 36) / 100:,.2f}"


def parse_until(value: str | float | int, name: str = "until") -> float:
    """An ISO date (meaning the end of that day, UTC), an ISO date-time (UTC unless it says
    otherwise) or epoch seconds."""
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidInput(name, f"{value} is not a time", limit="an ISO date or epoch seconds")
        return float(value)
    text = value.strip()
    try:
        if len(text) == 10:  # YYYY-MM-DD: until the end of that day
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return (day + timedelta(days=1)).timestamp()
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            name, f"{value!r} is not an ISO date; write e.g. 2027-06-30 or 2027-06-30T18:00"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _gpu_seconds(hours: float, name: str = "gpu_hours") -> int:
    if not math.isfinite(hours) or hours < 0:
        raise InvalidInput(name, f"{hours} is not a number of GPU-hours", limit="0 or more")
    return round(hours * SECONDS_PER_HOUR)


def request_views(session: Session, rows: Sequence[AllocationRequestRow]) -> list[RequestView]:
    if not rows:
        return []
    allocations = {
        a_id: (p_id, code)
        for a_id, p_id, code in session.execute(
            select(AllocationRow.id, ProjectRow.id, ProjectRow.code)
            .join(ProjectRow, ProjectRow.id == AllocationRow.project_id)
            .where(AllocationRow.id.in_({r.allocation_id for r in rows}))
        ).all()
    }
    user_ids = {r.requested_by for r in rows} | {r.decided_by for r in rows if r.decided_by}
    names = dict(
        session.execute(select(UserRow.id, UserRow.username).where(UserRow.id.in_(user_ids))).all()
    )
    return [
        RequestView(
            id=r.id,
            allocation_id=r.allocation_id,
            project_id=allocations[r.allocation_id][0],
            project_code=allocations[r.allocation_id][1],
            kind=r.kind,
            status=r.status,
            gpu_seconds=r.gpu_seconds,
            new_ends_at=r.new_ends_at,
            target_allocation_id=r.target_allocation_id,
            justification=r.justification,
            requested_by=names.get(r.requested_by, str(r.requested_by)),
            created_at=r.created_at,
            decided_by=names.get(r.decided_by) if r.decided_by else None,
            decision_reason=r.decision_reason,
            decided_at=r.decided_at,
        )
        for r in rows
    ]


def describe_request(kind: str, gpu_seconds: int, until: float | None, target: int | None) -> str:
    if kind == TRANSFER:
        return f"move {hours_text(gpu_seconds)} GPU-hours to allocation {target}"
    parts = []
    if gpu_seconds:
        parts.append(f"{hours_text(gpu_seconds)} more GPU-hours")
    if until is not None:
        parts.append(f"an end on {iso_utc(until)}")
    return " and ".join(parts)


def request_change(
    ctx: ServiceContext,
    principal: Principal,
    allocation_id: int,
    body: AllocationRequestIn,
    key: str | None = None,
) -> RequestView:
    """A PI asks for an extension or a transfer; programme operators are told. A retry with
    the same idempotency ``key`` gets the first request, not a second one."""
    once = idempotency.once(principal, key, "allocations.request", allocation_id, body)
    return idempotency.replaying(
        ctx,
        once,
        lambda: _request_change(ctx, principal, allocation_id, body, once),
        lambda request_id: _stored_request(ctx, request_id),
    )


def _stored_request(ctx: ServiceContext, request_id: int) -> RequestView:
    row = idempotency.stored(ctx, AllocationRequestRow, request_id)
    with ctx.reads() as session:
        return request_views(session, [row])[0]


def _request_change(
    ctx: ServiceContext,
    principal: Principal,
    allocation_id: int,
    body: AllocationRequestIn,
    once: idempotency.Once | None,
) -> RequestView:
    kind = body.kind.strip().lower()
    if kind not in (EXTENSION, TRANSFER):
        raise InvalidInput(
            "kind", f"{body.kind!r} is not a request kind", limit="extension or transfer"
        )
    justification = required_text(
        body.justification,
        "justification",
        "say why: what the GPU-hours are for, and why the grant or the period is not enough",
    )
    gpu_seconds = _gpu_seconds(body.gpu_hours)
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        row, project = visible_allocation(session, principal, allocation_id)
        if principal.role_in(project.id) is not Role.PI:
            raise PermissionDenied(
                f"only a PI of {project.code} can ask to change its allocations; ask your PI"
            )
        pending = session.scalar(
            select(AllocationRequestRow.id).where(
                AllocationRequestRow.allocation_id == row.id,
                AllocationRequestRow.kind == kind,
                AllocationRequestRow.status == PENDING,
            )
        )
        if pending is not None:
            raise Conflict(
                f"request {pending} ({kind} of allocation {row.id}) is still pending; wait for "
                "the programme's decision ('aif allocations requests' shows it)"
            )
        until: float | None = None
        target: int | None = None
        if kind == EXTENSION:
            until = _check_extension(session, row, body, gpu_seconds, now)
        else:
            target = _check_transfer(session, row, project, body, gpu_seconds)
        request = AllocationRequestRow(
            allocation_id=row.id,
            kind=kind,
            requested_by=int(principal.user_id),
            gpu_seconds=gpu_seconds,
            new_ends_at=until,
            target_allocation_id=target,
            justification=justification,
            status=PENDING,
            created_at=now,
        )
        session.add(request)
        session.flush()
        idempotency.record(session, once, request.id, now)
        what = describe_request(kind, gpu_seconds, until, target)
        record(
            session,
            at=now,
            actor=principal,
            action="allocation.request",
            subject=f"allocation:{row.id}",
            reason=justification,
            details={
                "request_id": request.id,
                "kind": kind,
                "gpu_seconds": gpu_seconds,
                "new_ends_at": until,
                "target_allocation_id": target,
            },
        )
        operators = session.scalars(
            select(UserRow.id).where(UserRow.is_operator.is_(True)).order_by(UserRow.id)
        )
        notify_users(
            session,
            operators,
            at=now,
            event="allocation.request",
            subject=f"[aifactories] {project.code} asks: {kind} of allocation {row.id}",
            body=(
                f"{principal.username} (PI of {project.code}) asks to {what} "
                f"(allocation {row.id}, {site_text(row.site_id, row.pool_sites)}).\n"
                f"Why: {justification}\n"
                f"Decide with: aif allocations approve {request.id} --reason '...' "
                f"(or refuse)"
            ),
            payload={"request_id": request.id, "allocation_id": row.id, "kind": kind},
        )
        return request_views(session, [request])[0]


def _check_extension(
    session: Session, row: AllocationRow, body: AllocationRequestIn, gpu_seconds: int, now: float
) -> float | None:
    if body.to_allocation is not None:
        raise InvalidInput(
            "to_allocation",
            "an extension adds to this allocation; to move GPU-hours use kind 'transfer'",
        )
    until = parse_until(body.until) if body.until is not None else None
    if until is not None and until <= max(row.ends_at, now):
        latest = max(row.ends_at, now)
        raise InvalidInput(
            "until",
            f"{iso_utc(until)} is not after the allocation's end ({iso_utc(row.ends_at)}) and now",
            limit=f"after {iso_utc(latest)}",
        )
    if not gpu_seconds and until is None:
        raise InvalidInput(
            "gpu_hours",
            "an extension asks for more GPU-hours (--gpu-hours) and/or a later end (--until)",
            limit="more than 0, or give until",
        )
    if row.status == CLOSED:
        entry = closing_entry(session, row.id)
        if entry is None or entry.action != EXPIRE_ACTION:
            raise Conflict(
                f"{closed_text(session, row)}; a closed allocation is not extended: ask the "
                "programme for a new one"
            )
        if until is None:
            raise InvalidInput(
                "until",
                f"allocation {row.id} has ended; extending it needs a new end in the future",
                limit=f"after {iso_utc(now)}",
            )
    return until


def _check_transfer(
    session: Session,
    row: AllocationRow,
    project: ProjectRow,
    body: AllocationRequestIn,
    gpu_seconds: int,
) -> int:
    if body.until is not None:
        raise InvalidInput(
            "until", "a transfer moves GPU-hours; ask for a later end with an extension"
        )
    others = [
        a
        for a in session.scalars(
            select(AllocationRow)
            .where(AllocationRow.project_id == project.id, AllocationRow.id != row.id)
            .order_by(AllocationRow.id)
        )
    ]
    open_others = ", ".join(
        f"{a.id} ({site_text(a.site_id, a.pool_sites)})" for a in others if a.status == OPEN
    )
    limit = f"an open allocation of {project.code}: {open_others or 'none'}"
    if body.to_allocation is None:
        raise InvalidInput("to_allocation", "say which allocation receives the GPU-hours", limit)
    target = next((a for a in others if a.id == body.to_allocation), None)
    if target is None:
        raise InvalidInput(
            "to_allocation",
            f"allocation {body.to_allocation} is not another allocation of {project.code}",
            limit,
        )
    if target.status != OPEN:
        raise InvalidInput(
            "to_allocation", f"allocation {target.id} is closed and takes no GPU-hours", limit
        )
    left = row.granted_gpu_seconds - row.reserved_gpu_seconds - row.used_gpu_seconds
    if gpu_seconds <= 0:
        raise InvalidInput(
            "gpu_hours",
            "say how many GPU-hours to move",
            limit=f"more than 0, at most {_h_down(left)}",
        )
    if gpu_seconds > left:
        raise InvalidInput(
            "gpu_hours",
            f"allocation {row.id} has {hours_text(left)} GPU-hours left to move, not "
            f"{hours_text(gpu_seconds)} (of {hours_text(row.granted_gpu_seconds)} granted, "
            f"{hours_text(row.used_gpu_seconds)} are used and "
            f"{hours_text(row.reserved_gpu_seconds)} reserved by queued and running jobs)",
            limit=f"at most {_h_down(left)}",
        )
    return target.id


def list_requests(
    ctx: ServiceContext,
    principal: Principal,
    status: str | None = None,
    project_ref: str | None = None,
) -> list[RequestView]:
    """Requests, oldest first: an operator sees every project's; a PI their projects'."""
    if status is not None and status not in REQUEST_STATUSES:
        raise InvalidInput(
            "status", f"unknown status {status!r}", limit=" or ".join(REQUEST_STATUSES)
        )
    with ctx.reads() as session:
        query = (
            select(AllocationRequestRow)
            .join(AllocationRow, AllocationRow.id == AllocationRequestRow.allocation_id)
            .order_by(AllocationRequestRow.id)
        )
        if status is not None:
            query = query.where(AllocationRequestRow.status == status)
        if project_ref is not None:
            project = project_by_ref(session, project_ref)
            if project is None:
                raise NotFound(
                    f"project {project_ref!r} does not exist or you are not a member of it"
                )
            require_project_access(principal, project.id, project_ref)
            query = query.where(AllocationRow.project_id == project.id)
        if not principal.is_operator:
            mine = [p for p, role in principal.roles.items() if role is Role.PI]
            if not mine:
                return []
            query = query.where(AllocationRow.project_id.in_(mine))
        return request_views(session, list(session.scalars(query)))

"""A programme operator's decision on an extension or transfer request: approved (and applied
in the transaction of the decision) or refused, with a reason the PI is told.

Approving more GPU-hours re-arms the usage alerts of the thresholds that are no longer reached
(the sweep, ``allocation_sweep``, sends them).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from aifactories.db.models import AllocationRow, UserRow
from aifactories.db.programme_models import AllocationAlertRow, AllocationRequestRow
from aifactories.domain.errors import Conflict, InvalidInput, NotFound
from aifactories.services.core.auth import require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.core.input_types import Code, Comment
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
    pis_of,
    reached,
    required_text,
    site_text,
    visible_allocation,
)
from aifactories.services.programme.allocation_requests import (
    APPROVED,
    EXTENSION,
    PENDING,
    REFUSED,
    RequestView,
    describe_request,
    request_views,
)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Annotated[Code, Field(description="approve or refuse")]
    reason: Annotated[Comment, Field(description="why; the PI reads it")] = ""


def decide_request(
    ctx: ServiceContext, principal: Principal, request_id: int, body: DecisionIn
) -> RequestView:
    """Approve (and apply, in the same transaction) or refuse a request; the PI is told."""
    require_programme_operator(principal, "decide allocation requests")
    decision = body.decision.strip().lower()
    if decision not in ("approve", "refuse"):
        raise InvalidInput(
            "decision", f"{body.decision!r} is not a decision", limit="approve or refuse"
        )
    reason = required_text(body.reason, "reason", "say why: the PI reads it")
    status = APPROVED if decision == "approve" else REFUSED
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        request = session.get(AllocationRequestRow, request_id)
        if request is None:
            raise NotFound(
                f"allocation request {request_id} does not exist; 'aif allocations requests' "
                "lists them"
            )
        decided = session.execute(
            update(AllocationRequestRow)
            .where(AllocationRequestRow.id == request_id, AllocationRequestRow.status == PENDING)
            .values(
                status=status,
                decided_by=int(principal.user_id),
                decision_reason=reason,
                decided_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if decided.rowcount != 1:  # type: ignore[attr-defined]
            session.refresh(request)
            by = session.get(UserRow, request.decided_by) if request.decided_by else None
            raise Conflict(
                f"request {request_id} was {request.status} already"
                + (f" by {by.username}" if by else "")
                + (f" at {iso_utc(request.decided_at)}" if request.decided_at else "")
                + "; a decision is final"
            )
        session.refresh(request)
        if request.target_allocation_id is not None and status == APPROVED:
            # lock both rows in id order: two opposite transfers cannot deadlock
            session.execute(
                select(AllocationRow.id)
                .where(AllocationRow.id.in_([request.allocation_id, request.target_allocation_id]))
                .order_by(AllocationRow.id)
                .with_for_update()
            ).all()
        row, project = visible_allocation(session, principal, request.allocation_id, lock=True)
        changes: dict[str, Any] = {}
        if status == APPROVED:
            if request.kind == EXTENSION:
                changes = _apply_extension(session, row, request, now)
            else:
                changes = _apply_transfer(session, row, request)
        what = describe_request(
            request.kind, request.gpu_seconds, request.new_ends_at, request.target_allocation_id
        )
        record(
            session,
            at=now,
            actor=principal,
            action=f"allocation.request.{decision}",
            subject=f"allocation-request:{request.id}",
            reason=reason,
            details={"allocation_id": row.id, "kind": request.kind, **changes},
        )
        verdict = "approved and applied" if status == APPROVED else "refused"
        notify_users(
            session,
            [request.requested_by, *pis_of(session, project.id)],
            at=now,
            event=f"allocation.request.{status}",
            subject=f"[aifactories] {project.code}: your {request.kind} request {verdict}",
            body=(
                f"Your request {request.id} to {what} (allocation {row.id}, "
                f"{site_text(row.site_id, row.pool_sites)}) was {verdict} by "
                f"{principal.username}: {reason}"
            ),
            payload={
                "request_id": request.id,
                "allocation_id": row.id,
                "status": status,
                "reason": reason,
                **changes,
            },
        )
        return request_views(session, [request])[0]


def _rearm_alerts(session: Session, row: AllocationRow) -> None:
    """Forget the alerts of thresholds no longer reached (after the grant grew): they can fire
    again when use crosses them anew."""
    still = reached(row.used_gpu_seconds, row.granted_gpu_seconds)
    query = delete(AllocationAlertRow).where(AllocationAlertRow.allocation_id == row.id)
    if still:
        query = query.where(AllocationAlertRow.threshold.not_in(still))
    session.execute(query)


def _apply_extension(
    session: Session, row: AllocationRow, request: AllocationRequestRow, now: float
) -> dict[str, Any]:
    before = {"granted_gpu_seconds": row.granted_gpu_seconds, "ends_at": row.ends_at}
    reopened = False
    if row.status == CLOSED:
        entry = closing_entry(session, row.id)
        if entry is None or entry.action != EXPIRE_ACTION:
            raise Conflict(
                f"{closed_text(session, row)}; refuse this request, or grant a new allocation"
            )
        if request.new_ends_at is None or request.new_ends_at <= now:
            raise Conflict(
                f"allocation {row.id} has ended and this request gives no end after now; "
                "refuse it and let the PI ask again with a later --until"
            )
        row.status = OPEN  # it ended with its period: the extension gives it a new one
        reopened = True
    row.granted_gpu_seconds += request.gpu_seconds
    if request.new_ends_at is not None and request.new_ends_at > row.ends_at:
        row.ends_at = request.new_ends_at
    session.flush()
    _rearm_alerts(session, row)
    return {
        "before": before,
        "after": {"granted_gpu_seconds": row.granted_gpu_seconds, "ends_at": row.ends_at},
        "reopened": reopened,
    }


def _apply_transfer(
    session: Session, row: AllocationRow, request: AllocationRequestRow
) -> dict[str, Any]:
    assert request.target_allocation_id is not None
    target = session.execute(
        select(AllocationRow)
        .where(AllocationRow.id == request.target_allocation_id)
        .with_for_update()
    ).scalar_one()
    if target.status != OPEN:
        raise Conflict(
            f"{closed_text(session, target)}; it takes no GPU-hours: refuse this request"
        )
    amount = request.gpu_seconds
    before = {row.id: row.granted_gpu_seconds, target.id: target.granted_gpu_seconds}
    # Conditional: only what is left moves (the CHECK reserved + used <= granted stays true
    # even if the broker reserved in between on a database without row locks).
    moved = session.execute(
        update(AllocationRow)
        .where(
            AllocationRow.id == row.id,
            AllocationRow.granted_gpu_seconds
            - AllocationRow.reserved_gpu_seconds
            - AllocationRow.used_gpu_seconds
            >= amount,
        )
        .values(granted_gpu_seconds=AllocationRow.granted_gpu_seconds - amount)
        .execution_options(synchronize_session=False)
    )
    session.refresh(row)
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"allocation {row.id} has only {hours_text(_left(row))} "
            f"GPU-hours left now, less than the {hours_text(amount)} asked; refuse this request "
            "(the PI can ask again for what is left)"
        )
    target.granted_gpu_seconds += amount
    session.flush()
    _rearm_alerts(session, target)
    return {
        "gpu_seconds": amount,
        "from_allocation_id": row.id,
        "to_allocation_id": target.id,
        "before": before,
        "after": {row.id: row.granted_gpu_seconds, target.id: target.granted_gpu_seconds},
    }


def _left(row: AllocationRow) -> int:
    return row.granted_gpu_seconds - row.reserved_gpu_seconds - row.used_gpu_seconds

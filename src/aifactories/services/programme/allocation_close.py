"""Closing an allocation, by a programme operator (and, through ``close_row``, by the sweep
at the end of the allocation's period).

Rules (docs/allocations.md explains them for people):

- Closing (by an operator, or by the sweep once ``ends_at`` has passed) is one conditional
  UPDATE ``status open -> closed``: from its commit no reservation can land on the allocation
  (the ledger's ``try_reserve`` and the broker's snapshot both require ``open``). Jobs that hold
  a reservation on it but have not started (placed, submitted) are marked for cancellation in
  the same transaction; the broker's next reconcile cancels them at their site, and the site's
  final report releases the reservation through the ledger's usual settle move, with the job's
  state change. Releasing at once instead would be wrong for the books: a job queued at a site
  may start before the cancel arrives, and its GPU time would then go uncharged. Running jobs
  are left alone; they finish and are charged to the closed allocation (capped at their
  reservation, as always). Pending jobs hold no reservation and are not touched: the broker
  places them on another open allocation of the project, if one has room.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aifactories.db.models import AllocationRow, JobRow, ProjectRow, table_of
from aifactories.domain.errors import Conflict
from aifactories.domain.jobs import JobState
from aifactories.services.core.auth import require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.notifications.audit import record
from aifactories.services.programme.allocation_common import (
    CLOSE_ACTION,
    CLOSED,
    EXPIRE_ACTION,
    OPEN,
    AllocationView,
    closed_text,
    hours_text,
    iso_utc,
    notify_users,
    pis_of,
    required_text,
    site_text,
    visible_allocation,
)

# not started, yet holding a reservation: what a close cancels
_QUEUED = (JobState.PLACED.value, JobState.SUBMITTED.value)


@dataclass(frozen=True)
class CloseReport:
    allocation: AllocationView
    cancelling_job_ids: tuple[int, ...]  # queued: cancelled at their site by the next cycle
    running_job_ids: tuple[int, ...]  # finish and are charged to this allocation


def close_row(
    session: Session,
    row: AllocationRow,
    project: ProjectRow,
    now: float,
    *,
    actor: Principal | None,
    reason: str,
    action: str,
) -> CloseReport | None:
    """Close ``row`` in the caller's transaction; None if it was closed already (by a
    concurrent writer: the conditional UPDATE decides who closes it)."""
    closed = session.execute(
        update(AllocationRow)
        .where(AllocationRow.id == row.id, AllocationRow.status == OPEN)
        .values(status=CLOSED)
        .execution_options(synchronize_session=False)
    )
    if closed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.refresh(row)
    jobs = table_of(JobRow)
    note = (
        f"cancelling: allocation {row.id} was closed ({reason}); "
        f"submit again to run under another allocation of {project.code}"
    )
    # Conditional on the state: a job that started meanwhile (PostgreSQL re-reads the row
    # under its lock) is left to run.
    cancelling = tuple(
        sorted(
            session.execute(
                update(jobs)
                .where(jobs.c.allocation_id == row.id, jobs.c.state.in_(_QUEUED))
                .values(cancel_requested=True, reason=note)
                .returning(jobs.c.id)
            ).scalars()
        )
    )
    running = tuple(
        session.scalars(
            select(jobs.c.id)
            .where(jobs.c.allocation_id == row.id, jobs.c.state == JobState.RUNNING.value)
            .order_by(jobs.c.id)
        )
    )
    record(
        session,
        at=now,
        actor=actor,
        action=action,
        subject=f"allocation:{row.id}",
        reason=reason,
        details={
            "project": project.code,
            "site_id": row.site_id,
            "granted_gpu_seconds": row.granted_gpu_seconds,
            "reserved_gpu_seconds": row.reserved_gpu_seconds,
            "used_gpu_seconds": row.used_gpu_seconds,
            "cancelling_job_ids": list(cancelling),
            "running_job_ids": list(running),
        },
    )
    who = "the programme" if actor is None else actor.username
    what = (
        f"its period ended on {iso_utc(row.ends_at)}"
        if action == EXPIRE_ACTION
        else f"{who} closed it: {reason}"
    )
    lines = [
        f"Allocation {row.id} of project {project.code} ({site_text(row.site_id, row.pool_sites)}) "
        f"is closed: {what}.",
        f"It takes no new jobs. Used {hours_text(row.used_gpu_seconds)} of "
        f"{hours_text(row.granted_gpu_seconds)} GPU-hours.",
    ]
    if cancelling:
        lines.append(
            f"{len(cancelling)} queued job(s) that had not started are being cancelled "
            f"({', '.join(map(str, cancelling))}); their reservations are given back. Submit "
            "them again to run under another open allocation of the project."
        )
    if running:
        lines.append(
            f"{len(running)} running job(s) finish and are charged to this allocation "
            f"({', '.join(map(str, running))})."
        )
    notify_users(
        session,
        pis_of(session, project.id),
        at=now,
        event="allocation.closed",
        subject=f"[aifactories] allocation {row.id} of {project.code} closed",
        body="\n".join(lines),
        payload={
            "allocation_id": row.id,
            "project": project.code,
            "reason": reason,
            "cancelling_job_ids": list(cancelling),
            "running_job_ids": list(running),
        },
    )
    return CloseReport(AllocationView.of(row, project.code), cancelling, running)


def close_allocation(
    ctx: ServiceContext, principal: Principal, allocation_id: int, reason: str
) -> CloseReport:
    """Close an allocation (programme operators): no new jobs; queued jobs on it are cancelled
    and their reservations given back by the broker's next cycle; running jobs finish and are
    charged to it. A second close is a Conflict."""
    require_programme_operator(principal, "close an allocation")
    reason = required_text(reason, "reason", "say why the allocation is closed: the PI reads it")
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        row, project = visible_allocation(session, principal, allocation_id)
        if row.status == CLOSED:
            raise Conflict(f"{closed_text(session, row)}; nothing to do")
        report = close_row(
            session, row, project, now, actor=principal, reason=reason, action=CLOSE_ACTION
        )
        if report is None:
            raise Conflict(f"allocation {allocation_id} was closed at the same moment by another")
        return report

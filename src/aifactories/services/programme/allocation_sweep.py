"""The allocation sweep: usage alerts, then expiry (allocations whose period has ended are
closed as in ``allocation_close``), then pending jobs marked for cancellation are cancelled.
The programme worker runs it periodically; an operator can run it through the API.

Rules (docs/allocations.md explains them for people):

- Usage alerts compare *used* (charged) GPU-seconds with *granted*; reservations of queued and
  running jobs do not count, because they are promises that are mostly given back (a job is
  charged its actual use, capped at its reservation). Each threshold (50, 75, 90, 100 %) fires
  once per allocation (``allocation_alerts`` is unique on allocation and threshold); one sweep
  that finds several thresholds crossed at once records them all and sends one notification
  for the highest. Approving more GPU-hours re-arms the thresholds that are no longer reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import String, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aifactories.db.models import AllocationRow, JobRow, ProjectRow, table_of
from aifactories.db.programme_models import AllocationAlertRow
from aifactories.domain.jobs import JobState
from aifactories.services.core.auth import require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.notifications.audit import record
from aifactories.services.programme.allocation_close import CloseReport, close_row
from aifactories.services.programme.allocation_common import (
    EXPIRE_ACTION,
    OPEN,
    THRESHOLDS,
    AllocationView,
    alert_thresholds,
    hours_text,
    iso_utc,
    notify_users,
    pis_of,
    reached,
    site_text,
)


@dataclass(frozen=True)
class AlertSent:
    allocation_id: int
    project_code: str
    threshold: int  # the highest newly crossed: what the PI is told
    thresholds: tuple[int, ...]  # every threshold newly crossed (recorded once each)
    used_percent: float
    notified_user_ids: tuple[int, ...]


@dataclass
class SweepReport:
    at: float
    alerts: list[AlertSent] = field(default_factory=list)
    expired: list[CloseReport] = field(default_factory=list)
    # pending jobs that were marked for cancellation (their site copy never existed): cancelled
    finalised_job_ids: list[int] = field(default_factory=list)


def _crossings(session: Session) -> list[tuple[AllocationRow, str, list[int]]]:
    """Open allocations with thresholds reached and not alerted yet, and those thresholds."""
    a = AllocationRow
    candidates = session.execute(
        select(AllocationRow, ProjectRow.code)
        .join(ProjectRow, ProjectRow.id == a.project_id)
        .where(
            a.status == OPEN,
            a.granted_gpu_seconds > 0,
            a.used_gpu_seconds * 100 >= a.granted_gpu_seconds * THRESHOLDS[0],
        )
        .order_by(a.id)
    ).all()
    sent = alert_thresholds(session, [row.id for row, _code in candidates])
    out = []
    for row, code in candidates:
        crossed = [
            t
            for t in reached(row.used_gpu_seconds, row.granted_gpu_seconds)
            if t not in sent.get(row.id, set())
        ]
        if crossed:
            out.append((row, code, crossed))
    return out


def _send_alerts(session: Session, now: float) -> list[AlertSent]:
    out: list[AlertSent] = []
    for row, code, crossed in _crossings(session):
        for threshold in crossed:
            session.add(AllocationAlertRow(allocation_id=row.id, threshold=threshold, at=now))
        top = crossed[-1]
        view = AllocationView.of(row, code)
        record(
            session,
            at=now,
            actor=None,
            action="allocation.alert",
            subject=f"allocation:{row.id}",
            reason=f"{top} % of the granted GPU-hours used",
            details={
                "project": code,
                "thresholds": crossed,
                "granted_gpu_seconds": row.granted_gpu_seconds,
                "reserved_gpu_seconds": row.reserved_gpu_seconds,
                "used_gpu_seconds": row.used_gpu_seconds,
            },
        )
        advice = (
            "New jobs can no longer be charged to it."
            if top >= 100
            else f"It ends on {iso_utc(row.ends_at)}."
        )
        body = (
            f"Allocation {row.id} of project {code} ({site_text(row.site_id, row.pool_sites)}) "
            f"has used "
            f"{view.used_percent:.1f} % of its {hours_text(row.granted_gpu_seconds)} GPU-hours: "
            f"{hours_text(row.used_gpu_seconds)} used, "
            f"{hours_text(row.reserved_gpu_seconds)} reserved by queued and running jobs, "
            f"{hours_text(view.left_gpu_seconds)} left. {advice}\n"
            f"To ask for more: aif allocations extend {row.id} --gpu-hours N --why '...'"
        )
        users = notify_users(
            session,
            pis_of(session, row.project_id),
            at=now,
            event="allocation.usage",
            subject=f"[aifactories] {code}: allocation {row.id} at {top} % of its GPU-hours",
            body=body,
            payload={
                "allocation_id": row.id,
                "project": code,
                "threshold": top,
                "thresholds": crossed,
                "used_gpu_seconds": row.used_gpu_seconds,
                "granted_gpu_seconds": row.granted_gpu_seconds,
            },
        )
        out.append(AlertSent(row.id, code, top, tuple(crossed), view.used_percent, users))
    return out


def sweep_allocations(ctx: ServiceContext, principal: Principal | None = None) -> SweepReport:
    """One pass of the lifecycle, safe to run often and concurrently: usage alerts (once per
    allocation and threshold), then expiry (allocations whose ``ends_at`` has passed are
    closed, audited as by "system"), then pending jobs marked for cancellation are cancelled.
    Allocations that start in the future are left alone: the ledger does not use them before
    ``starts_at``. ``principal`` (an operator) when called from the API; None for the worker."""
    if principal is not None:
        require_programme_operator(principal, "run the allocation sweep")
    now = ctx.clock.now()
    report = SweepReport(at=now)
    # Each step looks first in a read session, so that a sweep with nothing to do never takes
    # SQLite's write lock; the write transaction then decides again on what it reads.
    with ctx.reads() as session:
        alerting = bool(_crossings(session))
        cancelled = session.scalar(
            select(JobRow.id)
            .where(JobRow.state == JobState.PENDING.value, JobRow.cancel_requested.is_(True))
            .limit(1)
        )
    for attempt in range(3 if alerting else 0):
        try:
            with ctx.sessions() as session, session.begin():
                report.alerts = _send_alerts(session, now)
            break
        except IntegrityError:
            # a concurrent sweep recorded the same alert first: look again (it is skipped now)
            if attempt == 2:
                raise
    with ctx.reads() as session:
        expired = list(
            session.scalars(
                select(AllocationRow.id)
                .where(AllocationRow.status == OPEN, AllocationRow.ends_at <= now)
                .order_by(AllocationRow.id)
            )
        )
    for allocation_id in expired:  # one transaction each: a close may touch many jobs
        with ctx.sessions() as session, session.begin():
            row = session.get(AllocationRow, allocation_id)
            if row is None or row.status != OPEN:
                continue
            project = session.get(ProjectRow, row.project_id)
            assert project is not None
            closed = close_row(
                session,
                row,
                project,
                now,
                actor=None,
                reason=f"the allocation's period ended on {iso_utc(row.ends_at)}",
                action=EXPIRE_ACTION,
            )
            if closed is not None:
                report.expired.append(closed)
    if cancelled is not None:
        with ctx.sessions() as session, session.begin():
            report.finalised_job_ids = _finalise_cancelled(session, now)
    return report


def _finalise_cancelled(session: Session, now: float) -> list[int]:
    """Pending jobs marked for cancellation hold no reservation and are never placed (their
    copy at a site never existed, or the site lost it): cancel them. Conditional on the
    state, so a concurrent sweep or cancel changes nothing twice."""
    jobs = table_of(JobRow)
    prefix = literal("cancelled before it reached a site (", String)
    return sorted(
        session.execute(
            update(jobs)
            .where(jobs.c.state == JobState.PENDING.value, jobs.c.cancel_requested.is_(True))
            .values(
                state=JobState.CANCELLED.value,
                ended_at=now,
                reason=prefix + func.coalesce(jobs.c.reason, "cancel requested") + ")",
            )
            .returning(jobs.c.id)
        ).scalars()
    )

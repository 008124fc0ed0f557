"""The allocation lifecycle: usage alerts, expiry and closing, extension and transfer requests,
and the Education per-member cap checked at submission.

Rules (docs/allocations.md explains them for people):

- Usage alerts compare *used* (charged) GPU-seconds with *granted*; reservations of queued and
  running jobs do not count, because they are promises that are mostly given back (a job is
  charged its actual use, capped at its reservation). Each threshold (50, 75, 90, 100 %) fires
  once per allocation (``allocation_alerts`` is unique on allocation and threshold); one sweep
  that finds several thresholds crossed at once records them all and sends one notification
  for the highest. Approving more GPU-hours re-arms the thresholds that are no longer reached.
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
- Requests: a project's PI asks for an extension (GPU-hours and/or a later end) or a transfer of
  GPU-hours between two allocations of the project; a programme operator approves or refuses,
  and an approval is applied in the transaction of the decision.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    BigInteger,
    Connection,
    String,
    case,
    cast,
    delete,
    func,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aifactories.db.accounts import project_by_ref
from aifactories.db.models import (
    AllocationRow,
    JobRow,
    MembershipRow,
    ProjectRow,
    UserRow,
    table_of,
)
from aifactories.db.programme_models import AllocationAlertRow, AllocationRequestRow, AuditRow
from aifactories.domain.clock import to_datetime
from aifactories.domain.errors import (
    BudgetExceeded,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from aifactories.domain.jobs import JobState
from aifactories.domain.projects import AllocationStatus, Role
from aifactories.domain.units import SECONDS_PER_HOUR, gpu_hours
from aifactories.services.audit import record
from aifactories.services.auth import require_programme_operator, require_project_access
from aifactories.services.context import Principal, ServiceContext
from aifactories.services.notify import notify_user

THRESHOLDS = (50, 75, 90, 100)  # per cent of granted GPU-seconds used
OPEN, CLOSED = AllocationStatus.OPEN.value, AllocationStatus.CLOSED.value
EXTENSION, TRANSFER = "extension", "transfer"
PENDING, APPROVED, REFUSED = "pending", "approved", "refused"
REQUEST_STATUSES = (PENDING, APPROVED, REFUSED)
# not started, yet holding a reservation: what a close cancels
_QUEUED = (JobState.PLACED.value, JobState.SUBMITTED.value)
# audit actions that close an allocation: by an operator, and by the sweep at the period's end
CLOSE_ACTION, EXPIRE_ACTION = "allocation.close", "allocation.expire"
MAX_TEXT = 2000


# -- views -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllocationView:
    id: int
    project_id: int
    project_code: str
    site_id: str | None  # None: a pool, usable at any site
    status: str
    starts_at: float
    ends_at: float
    granted_gpu_seconds: int
    reserved_gpu_seconds: int
    used_gpu_seconds: int
    alerts: tuple[int, ...] = ()  # thresholds already alerted

    @property
    def left_gpu_seconds(self) -> int:
        return self.granted_gpu_seconds - self.reserved_gpu_seconds - self.used_gpu_seconds

    @property
    def used_percent(self) -> float:
        if self.granted_gpu_seconds <= 0:
            return 100.0 if self.used_gpu_seconds else 0.0
        return 100.0 * self.used_gpu_seconds / self.granted_gpu_seconds

    @classmethod
    def of(cls, row: AllocationRow, code: str, alerts: Iterable[int] = ()) -> AllocationView:
        return cls(
            id=row.id,
            project_id=row.project_id,
            project_code=code,
            site_id=row.site_id,
            status=row.status,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            granted_gpu_seconds=row.granted_gpu_seconds,
            reserved_gpu_seconds=row.reserved_gpu_seconds,
            used_gpu_seconds=row.used_gpu_seconds,
            alerts=tuple(sorted(alerts)),
        )


@dataclass(frozen=True)
class AlertView:
    allocation_id: int
    threshold: int
    at: float


@dataclass(frozen=True)
class AlertSent:
    allocation_id: int
    project_code: str
    threshold: int  # the highest newly crossed: what the PI is told
    thresholds: tuple[int, ...]  # every threshold newly crossed (recorded once each)
    used_percent: float
    notified_user_ids: tuple[int, ...]


@dataclass(frozen=True)
class CloseReport:
    allocation: AllocationView
    cancelling_job_ids: tuple[int, ...]  # queued: cancelled at their site by the next cycle
    running_job_ids: tuple[int, ...]  # finish and are charged to this allocation


@dataclass
class SweepReport:
    at: float
    alerts: list[AlertSent] = field(default_factory=list)
    expired: list[CloseReport] = field(default_factory=list)
    # pending jobs that were marked for cancellation (their site copy never existed): cancelled
    finalised_job_ids: list[int] = field(default_factory=list)


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

    kind: str = Field(description="extension or transfer")
    gpu_hours: float = Field(default=0.0, description="GPU-hours to add or to move")
    until: str | float | None = Field(
        default=None,
        description="extension: the new end, an ISO date (end of that day, UTC), date-time "
        "or epoch seconds",
    )
    to_allocation: int | None = Field(default=None, description="transfer: the receiving id")
    justification: str = Field(default="", description="why; the programme reads it")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: str = Field(description="approve or refuse")
    reason: str = Field(default="", description="why; the PI reads it")


# -- small helpers ---------------------------------------------------------------------------


def _iso(epoch: float) -> str:
    return to_datetime(epoch).strftime("%Y-%m-%d %H:%M UTC")


def _h(gpu_seconds: int) -> str:
    return f"{gpu_hours(gpu_seconds):,.2f}"


def _h_down(gpu_seconds: int) -> str:
    """GPU-hours rounded down to the hundredth: a limit the user can type and stay within."""
    return f"{math.floor(gpu_seconds / 36) / 100:,.2f}"


def _where(site_id: str | None) -> str:
    return site_id or "any site"


def _text(value: str, name: str, hint: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(name, f"is empty; {hint}")
    if len(text) > MAX_TEXT:
        raise InvalidInput(name, f"{len(text)} characters", limit=f"at most {MAX_TEXT}")
    return text


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


def _pis(session: Session, project_id: int) -> list[int]:
    return list(
        session.scalars(
            select(MembershipRow.user_id)
            .where(MembershipRow.project_id == project_id, MembershipRow.role == Role.PI.value)
            .order_by(MembershipRow.user_id)
        )
    )


def _notify(
    session: Session,
    users: Iterable[int],
    *,
    at: float,
    event: str,
    subject: str,
    body: str,
    payload: dict[str, Any],
) -> tuple[int, ...]:
    sent = tuple(dict.fromkeys(users))
    for user_id in sent:
        notify_user(
            session,
            at=at,
            user_id=user_id,
            event=event,
            subject=subject,
            body=body,
            payload=payload,
        )
    return sent


def _visible_allocation(
    session: Session, principal: Principal, allocation_id: int, *, lock: bool = False
) -> tuple[AllocationRow, ProjectRow]:
    query = select(AllocationRow).where(AllocationRow.id == allocation_id)
    if lock:  # PostgreSQL: the broker's reservations wait for us; SQLite: one writer anyway
        query = query.with_for_update()
    row = session.execute(query).scalar_one_or_none()
    if row is None or (principal.role_in(row.project_id) is None and not principal.is_operator):
        raise NotFound(
            f"allocation {allocation_id} does not exist or is not one of your projects'; "
            "'aif allocations list -A PROJECT' shows a project's allocations"
        )
    project = session.get(ProjectRow, row.project_id)
    assert project is not None
    return row, project


def _closing_entry(session: Session, allocation_id: int) -> AuditRow | None:
    """The audit entry of the allocation's (latest) close or expiry."""
    return session.execute(
        select(AuditRow)
        .where(
            AuditRow.subject == f"allocation:{allocation_id}",
            AuditRow.action.in_([CLOSE_ACTION, EXPIRE_ACTION]),
        )
        .order_by(AuditRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _closed_text(session: Session, row: AllocationRow) -> str:
    entry = _closing_entry(session, row.id)
    if entry is None:
        return f"allocation {row.id} is closed"
    how = "by the end of its period" if entry.action == EXPIRE_ACTION else f"by {entry.actor}"
    return f"allocation {row.id} was closed {how} at {_iso(entry.at)} ({entry.reason})"


def _alert_thresholds(session: Session, ids: Sequence[int]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    if not ids:
        return out
    for allocation_id, threshold in session.execute(
        select(AllocationAlertRow.allocation_id, AllocationAlertRow.threshold).where(
            AllocationAlertRow.allocation_id.in_(list(ids))
        )
    ).all():
        out.setdefault(allocation_id, set()).add(threshold)
    return out


def _reached(used: int, granted: int) -> list[int]:
    return [t for t in THRESHOLDS if granted > 0 and used * 100 >= t * granted]


def _rearm_alerts(session: Session, row: AllocationRow) -> None:
    """Forget the alerts of thresholds no longer reached (after the grant grew): they can fire
    again when use crosses them anew."""
    still = _reached(row.used_gpu_seconds, row.granted_gpu_seconds)
    query = delete(AllocationAlertRow).where(AllocationAlertRow.allocation_id == row.id)
    if still:
        query = query.where(AllocationAlertRow.threshold.not_in(still))
    session.execute(query)


# -- reading ---------------------------------------------------------------------------------


def list_allocations(
    ctx: ServiceContext, principal: Principal, project_ref: str
) -> list[AllocationView]:
    """A project's allocations, oldest first (members and operators)."""
    with ctx.reads() as session:
        project = project_by_ref(session, project_ref)
        if project is None:
            raise NotFound(f"project {project_ref!r} does not exist or you are not a member of it")
        require_project_access(principal, project.id, project_ref)
        rows = list(
            session.scalars(
                select(AllocationRow)
                .where(AllocationRow.project_id == project.id)
                .order_by(AllocationRow.id)
            )
        )
        alerts = _alert_thresholds(session, [r.id for r in rows])
        return [AllocationView.of(r, project.code, alerts.get(r.id, ())) for r in rows]


def allocation_alerts(
    ctx: ServiceContext, principal: Principal, allocation_id: int
) -> list[AlertView]:
    """The usage alerts sent for one allocation, in threshold order."""
    with ctx.reads() as session:
        _visible_allocation(session, principal, allocation_id)
        rows = session.scalars(
            select(AllocationAlertRow)
            .where(AllocationAlertRow.allocation_id == allocation_id)
            .order_by(AllocationAlertRow.threshold)
        )
        return [AlertView(r.allocation_id, r.threshold, r.at) for r in rows]


# -- closing ---------------------------------------------------------------------------------


def _close(
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
        f"its period ended on {_iso(row.ends_at)}"
        if action == EXPIRE_ACTION
        else f"{who} closed it: {reason}"
    )
    lines = [
        f"Allocation {row.id} of project {project.code} ({_where(row.site_id)}) is closed: {what}.",
        f"It takes no new jobs. Used {_h(row.used_gpu_seconds)} of "
        f"{_h(row.granted_gpu_seconds)} GPU-hours.",
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
    _notify(
        session,
        _pis(session, project.id),
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
    reason = _text(reason, "reason", "say why the allocation is closed: the PI reads it")
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        row, project = _visible_allocation(session, principal, allocation_id)
        if row.status == CLOSED:
            raise Conflict(f"{_closed_text(session, row)}; nothing to do")
        report = _close(
            session, row, project, now, actor=principal, reason=reason, action=CLOSE_ACTION
        )
        if report is None:
            raise Conflict(f"allocation {allocation_id} was closed at the same moment by another")
        return report


# -- the sweep -------------------------------------------------------------------------------


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
    sent = _alert_thresholds(session, [row.id for row, _code in candidates])
    out = []
    for row, code in candidates:
        crossed = [
            t
            for t in _reached(row.used_gpu_seconds, row.granted_gpu_seconds)
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
            else f"It ends on {_iso(row.ends_at)}."
        )
        body = (
            f"Allocation {row.id} of project {code} ({_where(row.site_id)}) has used "
            f"{view.used_percent:.1f} % of its {_h(row.granted_gpu_seconds)} GPU-hours: "
            f"{_h(row.used_gpu_seconds)} used, {_h(row.reserved_gpu_seconds)} reserved by "
            f"queued and running jobs, {_h(view.left_gpu_seconds)} left. {advice}\n"
            f"To ask for more: aif allocations extend {row.id} --gpu-hours N --why '...'"
        )
        users = _notify(
            session,
            _pis(session, row.project_id),
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
            closed = _close(
                session,
                row,
                project,
                now,
                actor=None,
                reason=f"the allocation's period ended on {_iso(row.ends_at)}",
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


# -- requests --------------------------------------------------------------------------------


def _request_views(session: Session, rows: Sequence[AllocationRequestRow]) -> list[RequestView]:
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


def _describe(kind: str, gpu_seconds: int, until: float | None, target: int | None) -> str:
    if kind == TRANSFER:
        return f"move {_h(gpu_seconds)} GPU-hours to allocation {target}"
    parts = []
    if gpu_seconds:
        parts.append(f"{_h(gpu_seconds)} more GPU-hours")
    if until is not None:
        parts.append(f"an end on {_iso(until)}")
    return " and ".join(parts)


def request_change(
    ctx: ServiceContext, principal: Principal, allocation_id: int, body: AllocationRequestIn
) -> RequestView:
    """A PI asks for an extension or a transfer; programme operators are told."""
    kind = body.kind.strip().lower()
    if kind not in (EXTENSION, TRANSFER):
        raise InvalidInput(
            "kind", f"{body.kind!r} is not a request kind", limit="extension or transfer"
        )
    justification = _text(
        body.justification,
        "justification",
        "say why: what the GPU-hours are for, and why the grant or the period is not enough",
    )
    gpu_seconds = _gpu_seconds(body.gpu_hours)
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        row, project = _visible_allocation(session, principal, allocation_id)
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
        what = _describe(kind, gpu_seconds, until, target)
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
        _notify(
            session,
            operators,
            at=now,
            event="allocation.request",
            subject=f"[aifactories] {project.code} asks: {kind} of allocation {row.id}",
            body=(
                f"{principal.username} (PI of {project.code}) asks to {what} "
                f"(allocation {row.id}, {_where(row.site_id)}).\nWhy: {justification}\n"
                f"Decide with: aif allocations approve {request.id} --reason '...' "
                f"(or refuse)"
            ),
            payload={"request_id": request.id, "allocation_id": row.id, "kind": kind},
        )
        return _request_views(session, [request])[0]


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
            f"{_iso(until)} is not after the allocation's end ({_iso(row.ends_at)}) and now",
            limit=f"after {_iso(latest)}",
        )
    if not gpu_seconds and until is None:
        raise InvalidInput(
            "gpu_hours",
            "an extension asks for more GPU-hours (--gpu-hours) and/or a later end (--until)",
            limit="more than 0, or give until",
        )
    if row.status == CLOSED:
        entry = _closing_entry(session, row.id)
        if entry is None or entry.action != EXPIRE_ACTION:
            raise Conflict(
                f"{_closed_text(session, row)}; a closed allocation is not extended: ask the "
                "programme for a new one"
            )
        if until is None:
            raise InvalidInput(
                "until",
                f"allocation {row.id} has ended; extending it needs a new end in the future",
                limit=f"after {_iso(now)}",
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
    open_others = ", ".join(f"{a.id} ({_where(a.site_id)})" for a in others if a.status == OPEN)
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
            f"allocation {row.id} has {_h(left)} GPU-hours left to move, not "
            f"{_h(gpu_seconds)} (of {_h(row.granted_gpu_seconds)} granted, "
            f"{_h(row.used_gpu_seconds)} are used and {_h(row.reserved_gpu_seconds)} reserved "
            "by queued and running jobs)",
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
        return _request_views(session, list(session.scalars(query)))


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
    reason = _text(body.reason, "reason", "say why: the PI reads it")
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
                + (f" at {_iso(request.decided_at)}" if request.decided_at else "")
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
        row, project = _visible_allocation(session, principal, request.allocation_id, lock=True)
        changes: dict[str, Any] = {}
        if status == APPROVED:
            if request.kind == EXTENSION:
                changes = _apply_extension(session, row, request, now)
            else:
                changes = _apply_transfer(session, row, request)
        what = _describe(
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
        _notify(
            session,
            [request.requested_by, *_pis(session, project.id)],
            at=now,
            event=f"allocation.request.{status}",
            subject=f"[aifactories] {project.code}: your {request.kind} request {verdict}",
            body=(
                f"Your request {request.id} to {what} (allocation {row.id}, "
                f"{_where(row.site_id)}) was {verdict} by {principal.username}: {reason}"
            ),
            payload={
                "request_id": request.id,
                "allocation_id": row.id,
                "status": status,
                "reason": reason,
                **changes,
            },
        )
        return _request_views(session, [request])[0]


def _apply_extension(
    session: Session, row: AllocationRow, request: AllocationRequestRow, now: float
) -> dict[str, Any]:
    before = {"granted_gpu_seconds": row.granted_gpu_seconds, "ends_at": row.ends_at}
    reopened = False
    if row.status == CLOSED:
        entry = _closing_entry(session, row.id)
        if entry is None or entry.action != EXPIRE_ACTION:
            raise Conflict(
                f"{_closed_text(session, row)}; refuse this request, or grant a new allocation"
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
            f"{_closed_text(session, target)}; it takes no GPU-hours: refuse this request"
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
            f"allocation {row.id} has only {_h(_left(row))} "
            f"GPU-hours left now, less than the {_h(amount)} asked; refuse this request (the PI "
            "can ask again for what is left)"
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


# -- the Education per-member cap ------------------------------------------------------------


def check_member_cap(
    ctx: ServiceContext,
    conn: Connection,
    principal: Principal,
    project: ProjectRow,
    need: Callable[[], int],
) -> None:
    """Refuse a submission that would take a capped member past their cap in the project.

    One indexed query (memberships' unique key on project and user) for everyone; the sums over
    the member's jobs run only when the membership has a cap (``CASE``). What counts: every job
    of the member in the project, charged plus reserved, plus pending jobs at the least they
    can reserve (GPUs x time limit x the lowest billing weight). ``need`` is the least the new
    job can reserve. Like the budget check, this is admission advice."""
    members, jobs = table_of(MembershipRow), table_of(JobRow)
    mine = (jobs.c.project_id == members.c.project_id) & (jobs.c.user_id == members.c.user_id)
    held = (
        select(func.coalesce(func.sum(jobs.c.reserved_gpu_seconds + jobs.c.charged_gpu_seconds), 0))
        .where(mine)
        .scalar_subquery()
    )
    waiting = (
        select(func.coalesce(func.sum(cast(jobs.c.gpus, BigInteger) * jobs.c.time_limit_s), 0))
        .where(
            mine,
            jobs.c.state == JobState.PENDING.value,
            jobs.c.cancel_requested.is_(False),
        )
        .scalar_subquery()
    )
    capped = members.c.cap_gpu_seconds.is_not(None)
    found = conn.execute(
        select(
            members.c.cap_gpu_seconds,
            case((capped, held), else_=null()),
            case((capped, waiting), else_=null()),
        ).where(members.c.project_id == project.id, members.c.user_id == principal.user_id)
    ).first()
    if found is None or found[0] is None:
        return
    cap = int(found[0])
    weight = min((p.billing_weight for p in ctx.catalogue.operational_partitions), default=1.0)
    committed = int(found[1] or 0) + math.ceil(int(found[2] or 0) * weight)
    needed = need()
    if committed + needed <= cap:
        return
    left = max(0, cap - committed)
    raise BudgetExceeded(
        f"member cap: your cap in {project.code} is {_h(cap)} GPU-hours; your jobs there have "
        f"used or hold {_h(committed)} (charged, reserved and waiting), so {_h(left)} are left, "
        f"and this job reserves at least {_h(needed)}; shorten --time, use fewer GPUs, wait "
        "for your jobs to end, or ask your PI or teacher to raise your cap",
        needed_gpu_seconds=needed,
        left_gpu_seconds=left,
    )

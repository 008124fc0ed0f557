"""What the allocation lifecycle services share: the statuses, thresholds and audit actions,
the view of an allocation, the texts of their messages, finding an allocation the principal may
see and how it was closed, the alert thresholds reached and sent, and telling people.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactories.db.models import AllocationRow, MembershipRow, ProjectRow
from aifactories.db.programme_models import AllocationAlertRow, AuditRow
from aifactories.domain.clock import to_datetime
from aifactories.domain.errors import InvalidInput, NotFound
from aifactories.domain.projects import AllocationStatus, Role
from aifactories.domain.units import gpu_hours
from aifactories.services.core.context import Principal
from aifactories.services.notifications.notify import notify_user

THRESHOLDS = (50, 75, 90, 100)  # per cent of granted GPU-seconds used
OPEN, CLOSED = AllocationStatus.OPEN.value, AllocationStatus.CLOSED.value
# audit actions that close an allocation: by an operator, and by the sweep at the period's end
CLOSE_ACTION, EXPIRE_ACTION = "allocation.close", "allocation.expire"
MAX_TEXT = 2000


@dataclass(frozen=True)
class AllocationView:
    id: int
    project_id: int
    project_code: str
    site_id: str | None  # None: a pool, usable at any site or at pool_sites
    status: str
    starts_at: float
    ends_at: float
    granted_gpu_seconds: int
    reserved_gpu_seconds: int
    used_gpu_seconds: int
    alerts: tuple[int, ...] = ()  # thresholds already alerted
    pool_sites: tuple[str, ...] | None = None  # a pool's sites; None: any site

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
            pool_sites=None if row.pool_sites is None else tuple(row.pool_sites),
        )


def iso_utc(epoch: float) -> str:
    return to_datetime(epoch).strftime("%Y-%m-%d %H:%M UTC")


def hours_text(gpu_seconds: int) -> str:
    return f"{gpu_hours(gpu_seconds):,.2f}"


def site_text(site_id: str | None, pool_sites: Iterable[str] | None = None) -> str:
    if site_id is not None:
        return site_id
    return "any site" if pool_sites is None else f"any of {', '.join(pool_sites)}"


def required_text(value: str, name: str, hint: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(name, f"is empty; {hint}")
    if len(text) > MAX_TEXT:
        raise InvalidInput(name, f"{len(text)} characters", limit=f"at most {MAX_TEXT}")
    return text


def pis_of(session: Session, project_id: int) -> list[int]:
    return list(
        session.scalars(
            select(MembershipRow.user_id)
            .where(MembershipRow.project_id == project_id, MembershipRow.role == Role.PI.value)
            .order_by(MembershipRow.user_id)
        )
    )


def notify_users(
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


def visible_allocation(
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


def closing_entry(session: Session, allocation_id: int) -> AuditRow | None:
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


def closed_text(session: Session, row: AllocationRow) -> str:
    entry = closing_entry(session, row.id)
    if entry is None:
        return f"allocation {row.id} is closed"
    how = "by the end of its period" if entry.action == EXPIRE_ACTION else f"by {entry.actor}"
    return f"allocation {row.id} was closed {how} at {iso_utc(entry.at)} ({entry.reason})"


def alert_thresholds(session: Session, ids: Sequence[int]) -> dict[int, set[int]]:
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


def reached(used: int, granted: int) -> list[int]:
    return [t for t in THRESHOLDS if granted > 0 and used * 100 >= t * granted]

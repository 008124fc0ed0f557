"""Reads for the portal's project pages: each project's balance in one line (granted, used,
reserved, left), its access mode and period, and the GPU-hours it used day by day.

Who sees what is the API's rule (``projects.list_projects``, ``require_project_access``):
members see their projects, programme operators every project, anyone else learns nothing
(the same 404 as for a project that does not exist). One query per kind of fact for the whole
list, not one per project, so the operator's list of every project stays quick.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import BigInteger, case, cast, func, select
from sqlalchemy.orm import Session

from aifactories.db.accounts import project_by_ref
from aifactories.db.models import AllocationRow, LedgerEntryRow, OrganisationRow, ProjectRow
from aifactories.db.programme_models import CallRow, ProposalRow
from aifactories.domain.errors import NotFound
from aifactories.programme.states import ProposalStatus
from aifactories.services.core.auth import require_project_access
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.programme.allocation_common import OPEN
from aifactories.services.programme.calls import rules_of

DAY_S = 86400
PAGE_SIZE = 50  # projects per page: an operator sees every project


@dataclass(frozen=True)
class ProjectSummary:
    """A project as its list shows it. GPU time in GPU-seconds, summed over its allocations;
    ``left_gpu_seconds`` counts open allocations only (what a closed one did not use is gone)."""

    id: int
    code: str
    title: str
    organisation: str | None
    domain: str
    industrial: bool
    role: str | None  # the caller's role in it: pi, member, or None (an operator's view)
    access_mode: str | None  # the call's access mode ("Playground", ...); None: granted directly
    call_code: str | None
    starts_at: float | None  # the earliest start and latest end of its allocations
    ends_at: float | None
    allocations: int
    open_allocations: int
    granted_gpu_seconds: int
    reserved_gpu_seconds: int
    used_gpu_seconds: int
    left_gpu_seconds: int


@dataclass(frozen=True)
class UsageDay:
    day: float  # the start of the day (UTC), epoch seconds
    gpu_seconds: int  # charged that day
    total_gpu_seconds: int  # charged from the first day to the end of this one


@dataclass(frozen=True)
class UsageSeries:
    """GPU time charged to a project, per day with charges, over the span a chart shows:
    from its first allocation's start to now (or to its last allocation's end, if earlier)."""

    starts_at: float
    ends_at: float
    granted_gpu_seconds: int
    days: tuple[UsageDay, ...]

    @property
    def used_gpu_seconds(self) -> int:
        return self.days[-1].total_gpu_seconds if self.days else 0


@dataclass(frozen=True)
class ProjectList:
    """One page of the caller's projects, and how many there are in all."""

    projects: list[ProjectSummary]
    total: int
    offset: int
    limit: int


def project_summaries(
    ctx: ServiceContext,
    principal: Principal,
    *,
    search: str | None = None,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> ProjectList:
    """The caller's projects (every project for a programme operator), by code, a page at a
    time; ``search``: those whose code or title holds it (any case)."""
    visible = select(ProjectRow.id)
    if not principal.is_operator:
        visible = visible.where(ProjectRow.id.in_([int(p) for p in principal.roles]))
    if search:
        needle = search.strip().lower()
        visible = visible.where(
            func.lower(ProjectRow.code).contains(needle, autoescape=True)
            | func.lower(ProjectRow.title).contains(needle, autoescape=True)
        )
    with ctx.reads() as session:
        total = int(session.scalar(select(func.count()).select_from(visible.subquery())) or 0)
        rows = list(
            session.scalars(
                select(ProjectRow)
                .where(ProjectRow.id.in_(visible.scalar_subquery()))
                .order_by(ProjectRow.code)
                .offset(max(0, offset))
                .limit(max(1, limit))
            )
        )
        return ProjectList(_summaries(session, principal, rows), total, max(0, offset), limit)


def project_summary(ctx: ServiceContext, principal: Principal, ref: str) -> ProjectSummary:
    with ctx.reads() as session:
        return _summaries(session, principal, [_visible(session, principal, ref)])[0]


def usage_over_time(ctx: ServiceContext, principal: Principal, ref: str) -> UsageSeries:
    """The project's charges grouped by UTC day, with the running total (the ledger's charge
    entries: a job that ran over a month's end is charged per month, each piece dated at its
    end)."""
    now = ctx.clock.now()
    with ctx.reads() as session:
        project = _visible(session, principal, ref)
        starts, ends, granted = session.execute(
            select(
                func.min(AllocationRow.starts_at),
                func.max(AllocationRow.ends_at),
                func.coalesce(func.sum(AllocationRow.granted_gpu_seconds), 0),
            ).where(AllocationRow.project_id == project.id)
        ).one()
        # integer division groups by day the same way on SQLite and PostgreSQL
        day = cast(LedgerEntryRow.at, BigInteger) // DAY_S
        rows = session.execute(
            select(day, func.sum(LedgerEntryRow.gpu_seconds))
            .join(AllocationRow, AllocationRow.id == LedgerEntryRow.allocation_id)
            .where(AllocationRow.project_id == project.id, LedgerEntryRow.kind == "charge")
            .group_by(day)
            .order_by(day)
        ).all()
    days: list[UsageDay] = []
    total = 0
    for number, gpu_seconds in rows:
        total += int(gpu_seconds or 0)
        days.append(UsageDay(float(int(number) * DAY_S), int(gpu_seconds or 0), total))
    first = float(starts) if starts is not None else now
    last = min(now, float(ends)) if ends is not None else now
    if days:  # charges after the end (late reconciles) or dated before the start still show
        first = min(first, days[0].day)
        last = max(last, days[-1].day + DAY_S)
    return UsageSeries(
        starts_at=first,
        ends_at=max(last, first + DAY_S),
        granted_gpu_seconds=int(granted),
        days=tuple(days),
    )


def _visible(session: Session, principal: Principal, ref: str) -> ProjectRow:
    row = project_by_ref(session, ref)
    if row is None:
        raise NotFound(f"project {ref!r} does not exist or you are not a member of it")
    require_project_access(principal, row.id, ref)
    return row


def _summaries(
    session: Session, principal: Principal, projects: list[ProjectRow]
) -> list[ProjectSummary]:
    if not projects:
        return []
    ids = [p.id for p in projects]
    balances = _balances(session, ids)
    calls = _calls(session, ids)
    organisations = _organisations(session, {p.organisation_id for p in projects})
    out = []
    for project in projects:
        b = balances.get(project.id, _NO_BALANCE)
        call = calls.get(project.id)
        role = principal.role_in(project.id)
        out.append(
            ProjectSummary(
                id=project.id,
                code=project.code,
                title=project.title,
                organisation=organisations.get(project.organisation_id),
                domain=project.domain,
                industrial=project.industrial,
                role=role.value if role is not None else None,
                access_mode=call[1] if call else None,
                call_code=call[0] if call else None,
                starts_at=b[0],
                ends_at=b[1],
                allocations=b[2],
                open_allocations=b[3],
                granted_gpu_seconds=b[4],
                reserved_gpu_seconds=b[5],
                used_gpu_seconds=b[6],
                left_gpu_seconds=b[7],
            )
        )
    return out


_Balance = tuple[float | None, float | None, int, int, int, int, int, int]
_NO_BALANCE: _Balance = (None, None, 0, 0, 0, 0, 0, 0)


def _balances(session: Session, ids: list[int]) -> dict[int, _Balance]:
    a = AllocationRow
    is_open = a.status == OPEN
    left = a.granted_gpu_seconds - a.reserved_gpu_seconds - a.used_gpu_seconds
    rows = session.execute(
        select(
            a.project_id,
            func.min(a.starts_at),
            func.max(a.ends_at),
            func.count(a.id),
            func.sum(case((is_open, 1), else_=0)),
            func.sum(a.granted_gpu_seconds),
            func.sum(a.reserved_gpu_seconds),
            func.sum(a.used_gpu_seconds),
            func.sum(case((is_open, left), else_=0)),
        )
        .where(a.project_id.in_(ids))
        .group_by(a.project_id)
    ).all()
    return {
        int(r[0]): (
            float(r[1]),
            float(r[2]),
            int(r[3]),
            int(r[4] or 0),
            int(r[5] or 0),
            int(r[6] or 0),
            int(r[7] or 0),
            int(r[8] or 0),
        )
        for r in rows
    }


def _calls(session: Session, ids: list[int]) -> dict[int, tuple[str, str]]:
    """Project id -> (call code, access mode title) of the proposal it was awarded from.
    Awarded proposals only (their status is indexed and final; proposals.project_id is not
    indexed), and the calls apart: joined, SQLite's planner made it ten times slower."""
    pairs = session.execute(
        select(ProposalRow.project_id, func.min(ProposalRow.call_id))
        .where(ProposalRow.status == ProposalStatus.AWARDED.value, ProposalRow.project_id.in_(ids))
        .group_by(ProposalRow.project_id)
    ).all()
    if not pairs:
        return {}
    calls = {
        call.id: (call.code, rules_of(call).title)
        for call in session.scalars(
            select(CallRow).where(CallRow.id.in_({call_id for _, call_id in pairs}))
        )
    }
    return {
        int(project_id): calls[call_id]
        for project_id, call_id in pairs
        if project_id is not None and call_id in calls
    }


def _organisations(session: Session, ids: Iterable[int]) -> dict[int, str]:
    return dict(
        session.execute(
            select(OrganisationRow.id, OrganisationRow.name).where(OrganisationRow.id.in_(ids))
        ).all()
    )

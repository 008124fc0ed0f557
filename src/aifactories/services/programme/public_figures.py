"""The programme's public figures: calls, proposals received and awarded, GPU-hours
requested, granted and delivered, by access mode and by organisation kind.

Aggregates only, for anyone to read: no proposal, project or person is named. A proposal is
received once submitted (drafts are their applicant's business); its GPU-hours are granted
when its project's allocations exist and delivered as they are used. Allocations of projects
that came from no call (set up by an operator) count under ``OUTSIDE_CALLS``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select

from aifactories.db.models import AllocationRow, OrganisationRow, ProjectRow
from aifactories.db.programme_models import CallRow, ProposalRow
from aifactories.domain.organisations import OrganisationKind
from aifactories.programme.modes import AccessMode
from aifactories.programme.states import ProposalStatus
from aifactories.services.core.context import ServiceContext

HOUR_S = 3600.0
OUTSIDE_CALLS = "outside_calls"
_MODE_ORDER = [m.value for m in AccessMode]
_KIND_ORDER = [k.value for k in OrganisationKind]


def _order(known: list[str], key: str) -> tuple[int, str]:
    """The enum's order (as the rules list them), then anything else, OUTSIDE_CALLS last."""
    if key == OUTSIDE_CALLS:
        return (len(known) + 1, key)
    return (known.index(key) if key in known else len(known), key)


@dataclass
class FigureRow:
    key: str  # an access mode, an organisation kind, or OUTSIDE_CALLS
    calls: int = 0
    received: int = 0
    awarded: int = 0
    requested_gpu_hours: float = 0.0
    granted_gpu_hours: float = 0.0
    delivered_gpu_hours: float = 0.0


@dataclass(frozen=True)
class PublicFigures:
    calls_open: int
    calls_total: int
    total: FigureRow
    by_mode: list[FigureRow]
    by_organisation_kind: list[FigureRow]


def public_figures(ctx: ServiceContext) -> PublicFigures:
    with ctx.reads() as session:
        calls = session.execute(select(CallRow.id, CallRow.mode, CallRow.status)).all()
        kinds = dict(session.execute(select(OrganisationRow.id, OrganisationRow.kind)).all())
        proposals = session.execute(
            select(
                ProposalRow.call_id,
                ProposalRow.organisation_id,
                ProposalRow.status,
                ProposalRow.requested_gpu_hours,
                ProposalRow.project_id,
            ).where(ProposalRow.status != ProposalStatus.DRAFT.value)
        ).all()
        projects = dict(session.execute(select(ProjectRow.id, ProjectRow.organisation_id)).all())
        budgets = session.execute(
            select(
                AllocationRow.project_id,
                func.sum(AllocationRow.granted_gpu_seconds),
                func.sum(AllocationRow.used_gpu_seconds),
            ).group_by(AllocationRow.project_id)
        ).all()
    mode_of_call = {cid: mode for cid, mode, _ in calls}
    by_mode: dict[str, FigureRow] = defaultdict(lambda: FigureRow(""))
    by_kind: dict[str, FigureRow] = defaultdict(lambda: FigureRow(""))
    total = FigureRow("total", calls=len(calls))
    for _, mode, _ in calls:
        by_mode[mode].calls += 1
    mode_of_project: dict[int, str] = {}
    for call_id, org_id, status, requested, project_id in proposals:
        mode = mode_of_call[call_id]
        awarded = status == ProposalStatus.AWARDED.value
        for row in (by_mode[mode], by_kind[kinds[org_id]], total):
            row.received += 1
            row.awarded += int(awarded)
            row.requested_gpu_hours += float(requested)
        if project_id is not None:
            mode_of_project[project_id] = mode
    for project_id, granted, used in budgets:
        g, u = float(granted or 0) / HOUR_S, float(used or 0) / HOUR_S
        kind = kinds.get(projects.get(project_id, -1), OUTSIDE_CALLS)
        mode = mode_of_project.get(project_id, OUTSIDE_CALLS)
        for row in (by_mode[mode], by_kind[kind], total):
            row.granted_gpu_hours += g
            row.delivered_gpu_hours += u
    for table in (by_mode, by_kind):
        for key, row in table.items():
            row.key = key
    for row in (total, *by_mode.values(), *by_kind.values()):
        row.requested_gpu_hours = round(row.requested_gpu_hours, 2)
        row.granted_gpu_hours = round(row.granted_gpu_hours, 2)
        row.delivered_gpu_hours = round(row.delivered_gpu_hours, 2)
    return PublicFigures(
        calls_open=sum(1 for _, _, status in calls if status == "open"),
        calls_total=len(calls),
        total=total,
        by_mode=sorted(by_mode.values(), key=lambda r: _order(_MODE_ORDER, r.key)),
        by_organisation_kind=sorted(by_kind.values(), key=lambda r: _order(_KIND_ORDER, r.key)),
    )

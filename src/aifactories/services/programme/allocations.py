"""The allocation lifecycle: reading a project's allocations and the usage alerts sent.

The lifecycle is split by concern (docs/allocations.md explains the rules for people): usage
alerts and expiry in ``allocation_sweep``, closing in ``allocation_close``, extension and
transfer requests in ``allocation_requests`` and their decisions in ``allocation_decisions``,
the Education per-member cap checked at submission in ``member_caps``; what they share is in
``allocation_common``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from aifactories.db.accounts import project_by_ref
from aifactories.db.models import AllocationRow
from aifactories.db.programme_models import AllocationAlertRow
from aifactories.domain.errors import NotFound
from aifactories.services.core.auth import require_project_access
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.programme.allocation_common import (
    AllocationView,
    alert_thresholds,
    visible_allocation,
)


@dataclass(frozen=True)
class AlertView:
    allocation_id: int
    threshold: int
    at: float


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
        alerts = alert_thresholds(session, [r.id for r in rows])
        return [AllocationView.of(r, project.code, alerts.get(r.id, ())) for r in rows]


def allocation_alerts(
    ctx: ServiceContext, principal: Principal, allocation_id: int
) -> list[AlertView]:
    """The usage alerts sent for one allocation, in threshold order."""
    with ctx.reads() as session:
        visible_allocation(session, principal, allocation_id)
        rows = session.scalars(
            select(AllocationAlertRow)
            .where(AllocationAlertRow.allocation_id == allocation_id)
            .order_by(AllocationAlertRow.threshold)
        )
        return [AlertView(r.allocation_id, r.threshold, r.at) for r in rows]

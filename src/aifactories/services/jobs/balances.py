"""Balances: GPU-hours granted, reserved, used and left, per allocation, and their euros."""

from __future__ import annotations

from dataclasses import dataclass

from aifactories.db.accounts import allocations_of, project_by_ref
from aifactories.domain.errors import NotFound
from aifactories.fund.valuation_rules import AllocationEuros
from aifactories.services.core.auth import require_project_access
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.fund.valuation import allocation_euros


@dataclass(frozen=True)
class AllocationBalance:
    allocation_id: int
    site_id: str | None  # None: a pool, usable at any site of pool_sites
    pool_sites: list[str] | None  # None: any site
    status: str
    starts_at: float
    ends_at: float
    granted_gpu_seconds: int
    reserved_gpu_seconds: int
    used_gpu_seconds: int
    euros: AllocationEuros | None = None  # the same balance in euros (docs/fund.md)

    @property
    def left_gpu_seconds(self) -> int:
        return self.granted_gpu_seconds - self.reserved_gpu_seconds - self.used_gpu_seconds


@dataclass(frozen=True)
class ProjectBalance:
    project_id: int
    project_code: str
    domain: str
    industrial: bool
    priority_weight: float  # the programme's visible weight (critical domain, industrial)
    allocations: list[AllocationBalance]


def project_balance(ctx: ServiceContext, principal: Principal, project_ref: str) -> ProjectBalance:
    with ctx.reads() as session:
        project = project_by_ref(session, project_ref)
        if project is None:
            raise NotFound(f"project {project_ref!r} does not exist or you are not a member of it")
        require_project_access(principal, project.id, project_ref)
        rows = allocations_of(session, project.id)
        euros = allocation_euros(session, ctx.catalogue, rows)
        return ProjectBalance(
            project_id=project.id,
            project_code=project.code,
            domain=project.domain,
            industrial=project.industrial,
            priority_weight=project.priority_weight,
            allocations=[
                AllocationBalance(
                    allocation_id=r.id,
                    site_id=r.site_id,
                    pool_sites=None if r.pool_sites is None else sorted(r.pool_sites),
                    status=r.status,
                    starts_at=r.starts_at,
                    ends_at=r.ends_at,
                    granted_gpu_seconds=r.granted_gpu_seconds,
                    reserved_gpu_seconds=r.reserved_gpu_seconds,
                    used_gpu_seconds=r.used_gpu_seconds,
                    euros=euros.get(r.id),
                )
                for r in rows
            ],
        )

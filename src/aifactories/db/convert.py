"""Rows to domain values and back, in one place."""

from __future__ import annotations

from aifactories.db.models import AllocationRow, JobRow
from aifactories.domain.ids import (
    AllocationId,
    ProjectId,
    SiteId,
)
from aifactories.domain.jobs import JobSpec
from aifactories.domain.projects import Allocation, AllocationStatus


def job_spec(row: JobRow) -> JobSpec:
    return JobSpec(
        gpus=row.gpus,
        time_limit_s=row.time_limit_s,
        gpu_model=row.gpu_model,
        min_gpu_memory_gb=row.min_gpu_memory_gb,
        nodes=row.nodes,
        name=row.name,
        command=tuple(row.command or ()),
        script=row.script,
        workdir=row.workdir,
        countries=frozenset(row.countries or ()),
        runtime_s=row.runtime_s,
    )


def allocation(row: AllocationRow) -> Allocation:
    return Allocation(
        id=AllocationId(row.id),
        project_id=ProjectId(row.project_id),
        site_id=SiteId(row.site_id) if row.site_id else None,
        granted_gpu_seconds=row.granted_gpu_seconds,
        reserved_gpu_seconds=row.reserved_gpu_seconds,
        used_gpu_seconds=row.used_gpu_seconds,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        status=AllocationStatus(row.status),
    )

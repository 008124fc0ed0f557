"""Rows to domain values and back, in one place."""

from __future__ import annotations

from aifactories.db.models import AllocationRow, JobRow
from aifactories.domain.ids import (
    AllocationId,
    JobId,
    PartitionId,
    ProjectId,
    SiteId,
    UserId,
)
from aifactories.domain.jobs import ActiveJob, JobSpec, JobState, PendingJob, Shape
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


def pending_job(row: JobRow) -> PendingJob:
    return PendingJob(
        id=JobId(row.id),
        project_id=ProjectId(row.project_id),
        user_id=UserId(row.user_id),
        spec=job_spec(row),
        submitted_at=row.submitted_at,
        requeues=row.requeues,
    )


def job_shape(row: JobRow) -> Shape:
    if row.shape_nodes is None or row.shape_gpus_per_node is None:
        raise ValueError(f"job {row.id} has no shape: it was never placed")
    return Shape(row.shape_nodes, row.shape_gpus_per_node, bool(row.shape_exclusive))


def active_job(row: JobRow) -> ActiveJob:
    if row.site_id is None or row.partition_id is None:
        raise ValueError(f"job {row.id} is {row.state} but has no site")
    return ActiveJob(
        id=JobId(row.id),
        project_id=ProjectId(row.project_id),
        site_id=SiteId(row.site_id),
        partition_id=PartitionId(row.partition_id),
        shape=job_shape(row),
        state=JobState(row.state),
        started_at=row.started_at,
        time_limit_s=row.time_limit_s,
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

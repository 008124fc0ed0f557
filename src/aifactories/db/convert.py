"""Rows to domain values and back, in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aifactories.db.models import AllocationRow, JobRow
from aifactories.domain.batch import batch_options_from_dict
from aifactories.domain.ids import (
    AllocationId,
    ProjectId,
    SiteId,
)
from aifactories.domain.jobs import JobSpec
from aifactories.domain.projects import Allocation, AllocationStatus


def slurm_options(spec: JobSpec) -> dict[str, Any] | None:
    """The ``slurm`` column: the spec's Slurm options that differ from the defaults."""
    out: dict[str, Any] = {}
    if spec.partitions:
        out["partitions"] = sorted(spec.partitions)
    for key in ("ntasks", "ntasks_per_node", "mem_per_node_mb", "mem_per_gpu_mb"):
        if getattr(spec, key) is not None:
            out[key] = getattr(spec, key)
    if spec.cpus_per_task != 1:
        out["cpus_per_task"] = spec.cpus_per_task
    if spec.exclusive:
        out["exclusive"] = True
    batch = spec.batch.as_dict()
    if batch:
        out["batch"] = batch
    return out or None


def spec_from_columns(values: Mapping[Any, Any]) -> JobSpec:
    """A JobSpec from a job row's columns (an ORM row's attributes or a Core mapping)."""
    slurm: dict[str, Any] = values["slurm"] or {}
    return JobSpec(
        gpus=values["gpus"],
        time_limit_s=values["time_limit_s"],
        gpu_model=values["gpu_model"],
        min_gpu_memory_gb=values["min_gpu_memory_gb"],
        nodes=values["nodes"],
        name=values["name"],
        command=tuple(values["command"] or ()),
        script=values["script"],
        workdir=values["workdir"],
        countries=frozenset(values["countries"] or ()),
        runtime_s=values["runtime_s"],
        partitions=frozenset(slurm.get("partitions", ())),
        ntasks=slurm.get("ntasks"),
        ntasks_per_node=slurm.get("ntasks_per_node"),
        cpus_per_task=int(slurm.get("cpus_per_task", 1)),
        mem_per_node_mb=slurm.get("mem_per_node_mb"),
        mem_per_gpu_mb=slurm.get("mem_per_gpu_mb"),
        exclusive=bool(slurm.get("exclusive", False)),
        batch=batch_options_from_dict(slurm.get("batch")),
    )


_SPEC_COLUMNS = (
    "gpus",
    "time_limit_s",
    "gpu_model",
    "min_gpu_memory_gb",
    "nodes",
    "name",
    "command",
    "script",
    "workdir",
    "countries",
    "runtime_s",
    "slurm",
)


def job_spec(row: JobRow) -> JobSpec:
    return spec_from_columns({key: getattr(row, key) for key in _SPEC_COLUMNS})


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
        pool_sites=None if row.pool_sites is None else frozenset(map(SiteId, row.pool_sites)),
    )

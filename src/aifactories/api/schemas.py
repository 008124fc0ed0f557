"""Response bodies. GPU time is given in GPU-seconds (exact) and GPU-hours (for people)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from aifactories.db.models import JobRow
from aifactories.domain.batch import dependency_text
from aifactories.domain.clock import to_datetime
from aifactories.domain.jobs import job_ref
from aifactories.domain.units import gpu_hours
from aifactories.fund.valuation_rules import AllocationEuros
from aifactories.services.fund.costs import PartitionCostView, cost_fields
from aifactories.services.fund.valuation import JobEuros
from aifactories.services.jobs.balances import ProjectBalance
from aifactories.services.jobs.sites import SiteView


class ErrorBody(BaseModel):
    error: str
    message: str
    field: str | None = None
    limit: str | None = None


class JobOut(BaseModel):
    id: int
    project_id: int
    project: str  # the project's code
    user_id: int
    name: str
    state: str
    reason: str | None
    gpus: int
    nodes: int | None
    gpu_model: str
    min_gpu_memory_gb: int
    time_limit_s: int
    countries: list[str]
    command: list[str]
    has_script: bool
    site_id: str | None
    partition_id: str | None
    allocated_gpus: int | None
    submitted_at: str
    placed_at: str | None
    started_at: str | None
    ended_at: str | None
    elapsed_s: float | None
    exit_code: int | None
    site_job_id: str | None
    reserved_gpu_hours: float
    charged_gpu_hours: float
    charged_gpu_seconds: int
    charged_eur: float | None = Field(
        None, description="the charge in euros: GPU-hours used x eur_per_gpu_hour; null: unpriced"
    )
    eur_per_gpu_hour: float | None = Field(
        None,
        description="the full cost of one GPU-hour of the job's partition (cost model), "
        "to 4 decimals",
    )
    requeues: int
    cancel_requested: bool
    ref: str  # as Slurm shows it: 123, or 123_4 for task 4 of array 123
    array_job_id: int | None = None
    array_task_id: int | None = None
    array_task_count: int | None = None  # how many tasks the job's array has
    options: dict[str, Any] = {}  # the Slurm options the job asked for (partitions, tasks, ...)
    dependency: str | None = None  # afterok:12:13 as given, resolved to job ids
    warnings: list[str] = []  # what the submission accepted but does not act on
    output_path: str | None = None  # where the site writes standard output, once known
    error_path: str | None = None

    @classmethod
    def of(cls, row: JobRow, euros: JobEuros | None = None) -> JobOut:
        def iso(value: float | None) -> str | None:
            return to_datetime(value).isoformat() if value is not None else None

        allocated = (
            row.shape_nodes * row.shape_gpus_per_node
            if row.shape_nodes is not None and row.shape_gpus_per_node is not None
            else None
        )
        return cls(
            id=row.id,
            project_id=row.project_id,
            project=row.project.code,
            user_id=row.user_id,
            name=row.name,
            state=row.state,
            reason=row.reason,
            gpus=row.gpus,
            nodes=row.nodes,
            gpu_model=row.gpu_model,
            min_gpu_memory_gb=row.min_gpu_memory_gb,
            time_limit_s=row.time_limit_s,
            countries=list(row.countries or []),
            command=list(row.command or []),
            has_script=row.script is not None,
            site_id=row.site_id,
            partition_id=row.partition_id,
            allocated_gpus=allocated,
            submitted_at=iso(row.submitted_at) or "",
            placed_at=iso(row.placed_at),
            started_at=iso(row.started_at),
            ended_at=iso(row.ended_at),
            elapsed_s=row.elapsed_s,
            exit_code=row.exit_code,
            site_job_id=row.site_job_id,
            reserved_gpu_hours=round(gpu_hours(row.reserved_gpu_seconds), 4),
            charged_gpu_hours=round(gpu_hours(row.charged_gpu_seconds), 4),
            charged_gpu_seconds=row.charged_gpu_seconds,
            charged_eur=_eur(euros.charged) if euros is not None else None,
            eur_per_gpu_hour=_rate(euros.eur_per_gpu_hour) if euros is not None else None,
            requeues=row.requeues,
            cancel_requested=row.cancel_requested,
            ref=job_ref(row.id, row.array_job_id, row.array_task_id),
            array_job_id=row.array_job_id,
            array_task_id=row.array_task_id,
            array_task_count=_array_task_count(row.slurm),
            options=dict(row.slurm or {}),
            dependency=dependency_text(row.dependency),
            warnings=list(row.warnings or []),
            output_path=row.output_path,
            error_path=row.error_path,
        )


def _eur(value: float | None) -> float | None:
    """Euros for people and scripts: to the cent (the books keep float estimates)."""
    return None if value is None else round(value, 2)


def _rate(value: float | None) -> float | None:
    """A rate in euros per GPU-hour: to 4 decimals, so that GPU-hours x rate gives the euros
    sent beside it to the cent (a rate rounded to the cent is off by up to EUR 0.005 an hour:
    EUR 25 on 5,000 GPU-hours)."""
    return None if value is None else round(value, 4)


class EurosOut(BaseModel):
    """An allocation's balance in euros (docs/fund.md, "The books in euros"); null: not
    valued (no partition it may use has a cost)."""

    eur_per_gpu_hour: float | None = Field(
        None,
        description="euros per billing-weighted GPU-hour of the partitions it may use, "
        "to 4 decimals (the euros are to the cent)",
    )
    granted_eur: float | None = None
    reserved_eur: float | None = None
    used_eur: float | None = Field(None, description="its charges at their partitions' cost")
    left_eur: float | None = None

    @staticmethod
    def fields(euros: AllocationEuros | None) -> dict[str, float | None]:
        if euros is None:
            return {}
        return {
            "eur_per_gpu_hour": _rate(euros.eur_per_gpu_hour),
            "granted_eur": _eur(euros.granted),
            "reserved_eur": _eur(euros.reserved),
            "used_eur": _eur(euros.used),
            "left_eur": _eur(euros.left),
        }


def _array_task_count(slurm: dict[str, Any] | None) -> int | None:
    array = ((slurm or {}).get("batch") or {}).get("array")
    return int(array[2]) if isinstance(array, list) and len(array) > 2 else None


class PartitionOut(BaseModel):
    id: str
    name: str
    gpu_model: str
    gpu_memory_gb: int
    nodes: int
    gpus_per_node: int
    total_gpus: int
    billing_weight: float
    free_gpus: int | None
    available: bool
    status_reason: str | None
    # the cost model (docs/fund.md); null when it cannot be read. Per available GPU-hour.
    eur_per_gpu_hour: float | None = Field(
        None, description="full cost of one GPU-hour: energy + capital + operating, EUR"
    )
    energy_eur_per_gpu_hour: float | None = None
    capital_eur_per_gpu_hour: float | None = None
    operating_eur_per_gpu_hour: float | None = None
    kwh_per_gpu_hour: float | None = None
    kg_co2_per_gpu_hour: float | None = None


class SiteOut(BaseModel):
    id: str
    name: str
    country: str
    supercomputer: str
    status: str
    carbon_g_per_kwh: float | None
    sources: list[str]
    partitions: list[PartitionOut]

    @classmethod
    def of(cls, view: SiteView, costs: Mapping[str, PartitionCostView] | None = None) -> SiteOut:
        site = view.site
        return cls(
            id=site.id,
            name=site.name,
            country=site.country,
            supercomputer=site.supercomputer,
            status=site.status.value,
            carbon_g_per_kwh=site.carbon_g_per_kwh,
            sources=list(site.sources),
            partitions=[
                PartitionOut(**vars(p), **cost_fields((costs or {}).get(p.id)))
                for p in view.partitions
            ],
        )


class AllocationBalanceOut(EurosOut):
    allocation_id: int
    site_id: str | None
    pool_sites: list[str] | None = None  # a pool usable only at these sites; None: any
    status: str
    starts_at: str
    ends_at: str
    granted_gpu_seconds: int
    reserved_gpu_seconds: int
    used_gpu_seconds: int
    left_gpu_seconds: int
    granted_gpu_hours: float
    reserved_gpu_hours: float
    used_gpu_hours: float
    left_gpu_hours: float


class BalanceOut(BaseModel):
    project_id: int
    project_code: str
    domain: str
    industrial: bool
    priority_weight: float
    allocations: list[AllocationBalanceOut]

    @classmethod
    def of(cls, balance: ProjectBalance) -> BalanceOut:
        return cls(
            project_id=balance.project_id,
            project_code=balance.project_code,
            domain=balance.domain,
            industrial=balance.industrial,
            priority_weight=balance.priority_weight,
            allocations=[
                AllocationBalanceOut(
                    allocation_id=a.allocation_id,
                    site_id=a.site_id,
                    pool_sites=a.pool_sites,
                    status=a.status,
                    starts_at=to_datetime(a.starts_at).isoformat(),
                    ends_at=to_datetime(a.ends_at).isoformat(),
                    granted_gpu_seconds=a.granted_gpu_seconds,
                    reserved_gpu_seconds=a.reserved_gpu_seconds,
                    used_gpu_seconds=a.used_gpu_seconds,
                    left_gpu_seconds=a.left_gpu_seconds,
                    granted_gpu_hours=round(gpu_hours(a.granted_gpu_seconds), 4),
                    reserved_gpu_hours=round(gpu_hours(a.reserved_gpu_seconds), 4),
                    used_gpu_hours=round(gpu_hours(a.used_gpu_seconds), 4),
                    left_gpu_hours=round(gpu_hours(a.left_gpu_seconds), 4),
                    **EurosOut.fields(a.euros),
                )
                for a in balance.allocations
            ],
        )


class BrokerHealthOut(BaseModel):
    policy: str
    last_cycle_at: float
    last_cycle_ms: float
    waiting: int = Field(description="jobs waiting for a placement after the last cycle")
    unreachable_sites: list[str]


class LeaseHealthOut(BaseModel):
    holder: str | None = Field(description="the instance whose broker places now; null: none")
    epoch: int = Field(description="grows by one at every change of leader")
    acquired_at: float | None
    expires_in_s: float | None = Field(description="unless renewed; null when no one leads")
    this_instance: str = Field(description="the name of the instance that answers")


class HealthOut(BaseModel):
    status: str
    version: str
    sites: int = Field(description="operational sites in the catalogue")
    broker: BrokerHealthOut | None = Field(description="null where this process runs no broker")
    lease: LeaseHealthOut | None = Field(
        description="the broker lease among the instances; null: the database does not answer"
    )


class MeOut(BaseModel):
    user_id: int
    username: str
    is_operator: bool
    projects: dict[str, str]  # project id -> role
    project_codes: dict[str, str] = Field(description="project code -> role, for people")

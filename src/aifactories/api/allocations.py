"""REST endpoints: the allocation lifecycle (list, alerts, close, sweep, extension and transfer
requests and their decisions). Thin: every rule is in services.allocations, allocation_sweep,
allocation_close, allocation_requests and allocation_decisions. Times are epoch seconds, each
with an ISO 8601 twin (``*_iso``); GPU time in exact GPU-seconds and in GPU-hours."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from aifactories.api.deps import Ctx, IdempotencyKey, Me
from aifactories.api.params import PathId, PathRef, RefQ, WordQ
from aifactories.api.schemas import EurosOut
from aifactories.domain.clock import to_datetime
from aifactories.domain.units import gpu_hours
from aifactories.fund.valuation_rules import AllocationEuros
from aifactories.services.core.input_types import Comment
from aifactories.services.fund.valuation import project_allocations_valued
from aifactories.services.programme import (
    allocation_close,
    allocation_decisions,
    allocation_requests,
    allocation_sweep,
)
from aifactories.services.programme import allocations as service
from aifactories.services.programme.allocation_common import AllocationView

router = APIRouter(tags=["allocations"])


def _iso(epoch: float | None) -> str | None:
    return to_datetime(epoch).isoformat() if epoch is not None else None


def _hours(gpu_seconds: int) -> float:
    return round(gpu_hours(gpu_seconds), 4)


class AllocationOut(EurosOut):
    id: int
    project_id: int
    project: str
    site_id: str | None  # None: a pool, usable at any site or at pool_sites
    pool_sites: list[str] | None = Field(
        None, description="a pool's sites, those its proposal allows; null: any site"
    )
    status: str
    starts_at: float
    starts_at_iso: str
    ends_at: float
    ends_at_iso: str
    granted_gpu_seconds: int
    reserved_gpu_seconds: int
    used_gpu_seconds: int
    left_gpu_seconds: int
    granted_gpu_hours: float
    reserved_gpu_hours: float
    used_gpu_hours: float
    left_gpu_hours: float
    used_percent: float
    alerts_sent: list[int]  # thresholds (per cent used) already alerted

    @classmethod
    def of(cls, a: AllocationView, euros: AllocationEuros | None = None) -> AllocationOut:
        return cls(
            id=a.id,
            project_id=a.project_id,
            project=a.project_code,
            site_id=a.site_id,
            pool_sites=None if a.pool_sites is None else list(a.pool_sites),
            status=a.status,
            starts_at=a.starts_at,
            starts_at_iso=to_datetime(a.starts_at).isoformat(),
            ends_at=a.ends_at,
            ends_at_iso=to_datetime(a.ends_at).isoformat(),
            granted_gpu_seconds=a.granted_gpu_seconds,
            reserved_gpu_seconds=a.reserved_gpu_seconds,
            used_gpu_seconds=a.used_gpu_seconds,
            left_gpu_seconds=a.left_gpu_seconds,
            granted_gpu_hours=_hours(a.granted_gpu_seconds),
            reserved_gpu_hours=_hours(a.reserved_gpu_seconds),
            used_gpu_hours=_hours(a.used_gpu_seconds),
            left_gpu_hours=_hours(a.left_gpu_seconds),
            used_percent=round(a.used_percent, 2),
            alerts_sent=list(a.alerts),
            **EurosOut.fields(euros),
        )


class AlertOut(BaseModel):
    allocation_id: int
    threshold: int
    at: float
    at_iso: str


class CloseOut(BaseModel):
    allocation: AllocationOut
    cancelling_job_ids: list[int]  # queued jobs: cancelled at their site by the next cycle
    running_job_ids: list[int]  # finish and are charged to the closed allocation

    @classmethod
    def of(cls, report: allocation_close.CloseReport) -> CloseOut:
        return cls(
            allocation=AllocationOut.of(report.allocation),
            cancelling_job_ids=list(report.cancelling_job_ids),
            running_job_ids=list(report.running_job_ids),
        )


class AlertSentOut(BaseModel):
    allocation_id: int
    project: str
    threshold: int
    thresholds: list[int]
    used_percent: float
    notified_user_ids: list[int]


class SweepOut(BaseModel):
    at: float
    at_iso: str
    alerts: list[AlertSentOut]
    expired: list[CloseOut]
    finalised_job_ids: list[int]

    @classmethod
    def of(cls, report: allocation_sweep.SweepReport) -> SweepOut:
        return cls(
            at=report.at,
            at_iso=to_datetime(report.at).isoformat(),
            alerts=[
                AlertSentOut(
                    allocation_id=a.allocation_id,
                    project=a.project_code,
                    threshold=a.threshold,
                    thresholds=list(a.thresholds),
                    used_percent=round(a.used_percent, 2),
                    notified_user_ids=list(a.notified_user_ids),
                )
                for a in report.alerts
            ],
            expired=[CloseOut.of(c) for c in report.expired],
            finalised_job_ids=list(report.finalised_job_ids),
        )


class RequestOut(BaseModel):
    id: int
    allocation_id: int
    project_id: int
    project: str
    kind: str  # extension / transfer
    status: str  # pending / approved / refused
    gpu_seconds: int
    gpu_hours: float
    new_ends_at: float | None
    new_ends_at_iso: str | None
    target_allocation_id: int | None
    justification: str
    requested_by: str
    created_at: float
    created_at_iso: str
    decided_by: str | None
    decision_reason: str | None
    decided_at: float | None
    decided_at_iso: str | None

    @classmethod
    def of(cls, r: allocation_requests.RequestView) -> RequestOut:
        return cls(
            id=r.id,
            allocation_id=r.allocation_id,
            project_id=r.project_id,
            project=r.project_code,
            kind=r.kind,
            status=r.status,
            gpu_seconds=r.gpu_seconds,
            gpu_hours=_hours(r.gpu_seconds),
            new_ends_at=r.new_ends_at,
            new_ends_at_iso=_iso(r.new_ends_at),
            target_allocation_id=r.target_allocation_id,
            justification=r.justification,
            requested_by=r.requested_by,
            created_at=r.created_at,
            created_at_iso=to_datetime(r.created_at).isoformat(),
            decided_by=r.decided_by,
            decision_reason=r.decision_reason,
            decided_at=r.decided_at,
            decided_at_iso=_iso(r.decided_at),
        )


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[Comment, Field(description="why; the project's PI reads it")] = ""


@router.get("/projects/{project}/allocations", response_model=list[AllocationOut])
def list_allocations(context: Ctx, who: Me, project: PathRef) -> list[AllocationOut]:
    """A project's allocations with their balance (in GPU-hours and in euros), use in per
    cent and alerts sent."""
    valued = project_allocations_valued(context, who, project)  # one read: both agree
    return [AllocationOut.of(v.allocation, v.euros) for v in valued]


@router.get("/allocations/{allocation_id}/alerts", response_model=list[AlertOut])
def alerts(context: Ctx, who: Me, allocation_id: PathId) -> list[AlertOut]:
    """The usage alerts sent for an allocation (50, 75, 90, 100 % of granted used)."""
    return [
        AlertOut(
            allocation_id=a.allocation_id,
            threshold=a.threshold,
            at=a.at,
            at_iso=to_datetime(a.at).isoformat(),
        )
        for a in service.allocation_alerts(context, who, allocation_id)
    ]


@router.post("/allocations/sweep", response_model=SweepOut)
def sweep(context: Ctx, who: Me) -> SweepOut:
    """Programme operators: run the lifecycle sweep now (alerts, expiry)."""
    return SweepOut.of(allocation_sweep.sweep_allocations(context, who))


@router.post("/allocations/{allocation_id}/close", response_model=CloseOut)
def close(context: Ctx, who: Me, allocation_id: PathId, body: CloseIn) -> CloseOut:
    """Programme operators: close an allocation; queued jobs on it are cancelled."""
    return CloseOut.of(allocation_close.close_allocation(context, who, allocation_id, body.reason))


@router.post("/allocations/{allocation_id}/requests", response_model=RequestOut, status_code=201)
def request_change(
    context: Ctx,
    who: Me,
    allocation_id: PathId,
    body: allocation_requests.AllocationRequestIn,
    key: IdempotencyKey = None,
) -> RequestOut:
    """A project's PI asks for an extension or a transfer of GPU-hours."""
    return RequestOut.of(allocation_requests.request_change(context, who, allocation_id, body, key))


@router.get("/allocation-requests", response_model=list[RequestOut])
def list_requests(
    context: Ctx, who: Me, status: WordQ = None, project: RefQ = None
) -> list[RequestOut]:
    """Requests: every project's for operators, your projects' for a PI."""
    return [
        RequestOut.of(r) for r in allocation_requests.list_requests(context, who, status, project)
    ]


@router.post("/allocation-requests/{request_id}/decision", response_model=RequestOut)
def decide(
    context: Ctx, who: Me, request_id: PathId, body: allocation_decisions.DecisionIn
) -> RequestOut:
    """Programme operators: approve (applied at once) or refuse, with a reason."""
    return RequestOut.of(allocation_decisions.decide_request(context, who, request_id, body))

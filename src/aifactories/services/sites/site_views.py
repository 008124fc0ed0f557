"""What a site operator reads of their own site: the jobs queued and running there and the
GPU-hours it delivered, by project. Nothing of another site: every read names a site the
caller operates (404 for a site not in the catalogue, 403 for someone else's).

Delivered is what the GPUs ran (GPUs x elapsed time, a running job up to now); charged is
what the ledger counted (weighted by the partition's billing weight). Jobs a member ran with
the project's account outside the broker (imported from the site's accounting) count too.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from aifactories.db.models import JobRow, ProjectRow, SiteUsageRow
from aifactories.domain.errors import NotFound, PermissionDenied
from aifactories.domain.jobs import JobState, job_ref
from aifactories.domain.sites import Site
from aifactories.services.core.context import Principal, ServiceContext

HOUR_S = 3600.0
_AT_SITE = (JobState.PLACED.value, JobState.SUBMITTED.value, JobState.RUNNING.value)


@dataclass(frozen=True)
class SiteJob:
    ref: str
    name: str
    project: str
    state: str
    partition: str  # the partition's name at the site
    gpus: int
    time_limit_s: int
    submitted_at: float
    started_at: float | None
    site_job_id: str | None


@dataclass(frozen=True)
class ProjectUsage:
    project: str  # its code, or "" for imported jobs of no known project
    jobs: int
    delivered_gpu_hours: float
    charged_gpu_hours: float


def operated_site(ctx: ServiceContext, principal: Principal, site_id: str) -> Site:
    """The catalogue's site ``site_id``, if the caller operates it."""
    site = ctx.catalogue.site(site_id)
    if site is None:
        raise NotFound(f"site {site_id} is not in the catalogue")
    if site.id not in principal.operated_sites:
        raise PermissionDenied(f"you do not operate {site.id}: its operators read this page")
    return site


def jobs_at_site(
    ctx: ServiceContext, principal: Principal, site_id: str, limit: int = 500
) -> list[SiteJob]:
    """The jobs placed at the site and not ended yet, running ones first, oldest first."""
    site = operated_site(ctx, principal, site_id)
    with ctx.reads() as session:
        rows = session.scalars(
            select(JobRow)
            .where(JobRow.site_id == site.id, JobRow.state.in_(_AT_SITE))
            .order_by(JobRow.submitted_at, JobRow.id)
            .limit(limit)
        ).all()
        jobs = [
            SiteJob(
                ref=job_ref(r.id, r.array_job_id, r.array_task_id),
                name=r.name,
                project=r.project.code,
                state=r.state,
                partition=(r.partition_id or "").split("/", 1)[-1],
                gpus=r.gpus,
                time_limit_s=r.time_limit_s,
                submitted_at=r.submitted_at,
                started_at=r.started_at,
                site_job_id=r.site_job_id,
            )
            for r in rows
        ]
    return sorted(jobs, key=lambda j: j.state != JobState.RUNNING.value)


def usage_at_site(ctx: ServiceContext, principal: Principal, site_id: str) -> list[ProjectUsage]:
    """GPU-hours delivered and charged at the site, by project, most first."""
    site = operated_site(ctx, principal, site_id)
    now = ctx.clock.now()
    totals: dict[str, list[float]] = {}
    with ctx.reads() as session:
        ran = session.execute(
            select(
                ProjectRow.code,
                JobRow.gpus,
                JobRow.elapsed_s,
                JobRow.started_at,
                JobRow.ended_at,
                JobRow.charged_gpu_seconds,
            )
            .join(ProjectRow, ProjectRow.id == JobRow.project_id)
            .where(JobRow.site_id == site.id, JobRow.started_at.is_not(None))
        ).all()
        for code, gpus, elapsed, started, ended, charged in ran:
            seconds = (
                elapsed if elapsed is not None else max(0.0, (ended or now) - (started or now))
            )
            into = totals.setdefault(code, [0, 0.0, 0.0])
            into[0] += 1
            into[1] += gpus * seconds
            into[2] += charged or 0
        imported = session.execute(
            select(
                ProjectRow.code,
                func.count(),
                func.sum(SiteUsageRow.gpus * SiteUsageRow.elapsed_s),
                func.sum(SiteUsageRow.charged_gpu_seconds),
            )
            .outerjoin(ProjectRow, ProjectRow.id == SiteUsageRow.project_id)
            .where(SiteUsageRow.site_id == site.id)
            .group_by(ProjectRow.code)
        ).all()
        for code, count, delivered, charged in imported:
            into = totals.setdefault(code or "", [0, 0.0, 0.0])
            into[0] += count
            into[1] += float(delivered or 0)
            into[2] += float(charged or 0)
    usage = [
        ProjectUsage(code, int(n), round(d / HOUR_S, 2), round(c / HOUR_S, 2))
        for code, (n, d, c) in totals.items()
    ]
    return sorted(usage, key=lambda u: (-u.delivered_gpu_hours, u.project))

"""Failover: jobs waiting at a site that stopped answering go back to the federation's queue.

When a site's controller is unreachable, its *queued* jobs (placed or submitted, not yet
started) would wait for it indefinitely. If another reachable site could run the job (GPU model,
memory, residency, shape, and an allocation usable there), the job is given back to the queue
and placed again elsewhere in the same cycle. Its copy at the dead site is recorded as stale and
cancelled as soon as that site answers again, before anything else is done there, so the job
does not run twice. Jobs already running stay: their processes outlive the controller, and
they finish (and are charged once) when it returns. A job no other site admits stays too.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from aifactories.broker import events
from aifactories.broker.reconcile import requeue_job
from aifactories.catalogue.loader import Catalogue
from aifactories.db.convert import job_spec
from aifactories.db.models import AllocationRow, JobRow, StaleSiteJobRow
from aifactories.domain.errors import ExecutorError
from aifactories.domain.fit import shape_fitting
from aifactories.domain.ids import SiteId
from aifactories.domain.jobs import JobSpec, JobState
from aifactories.domain.sites import Site
from aifactories.executors.base import Executor, job_tag

log = logging.getLogger(__name__)

_QUEUED = (JobState.PLACED.value, JobState.SUBMITTED.value)


def admits(site: Site, spec: JobSpec) -> bool:
    """Whether some partition of ``site`` could ever run the job (capacity aside)."""
    if spec.countries and site.country.upper() not in {c.upper() for c in spec.countries}:
        return False
    return any(shape_fitting(spec, p) is not None for p in site.partitions)


def move_queued_jobs(
    session_factory: sessionmaker[Session],
    catalogue: Catalogue,
    unreachable: Iterable[SiteId],
    reachable: Iterable[SiteId],
    now: float,
    instance: str = "",
) -> int:
    """Give back to the queue every not-yet-started job at an unreachable site that some
    reachable site admits; return how many moved."""
    down = set(unreachable)
    if not down:
        return 0
    others = [s for s in catalogue.operational_sites if s.id in set(reachable)]
    moved = 0
    with session_factory() as session, session.begin():
        rows = session.execute(
            select(JobRow).where(JobRow.site_id.in_(down), JobRow.state.in_(_QUEUED))
        ).scalars()
        for row in rows:
            spec = job_spec(row)
            targets = [s.id for s in others if admits(s, spec)]
            if not targets or not _has_allocation(session, row.project_id, targets):
                continue
            site_id = row.site_id
            assert site_id is not None
            session.add(
                StaleSiteJobRow(
                    site_id=site_id,
                    job_id=row.id,
                    tag=job_tag(row.id, instance),
                    site_job_id=row.site_job_id,
                    reason=f"moved away while {site_id} was unreachable",
                    created_at=now,
                )
            )
            requeue_job(session, row, now, f"moved: site {site_id} unreachable")
            row.requeues -= 1  # the site's fault, not the job's
            moved += 1
            events.moved(row, site_id)
    if moved:
        log.warning("moved %d queued jobs away from unreachable sites %s", moved, sorted(down))
    return moved


def _has_allocation(session: Session, project_id: int, sites: list[SiteId]) -> bool:
    pools = session.execute(
        select(AllocationRow.site_id, AllocationRow.pool_sites).where(
            AllocationRow.project_id == project_id,
            AllocationRow.status == "open",
            AllocationRow.site_id.in_(sites) | AllocationRow.site_id.is_(None),
        )
    ).all()
    # a site allocation there, or a pool usable at any of them (unrestricted, or listing one)
    return any(site is not None or only is None or set(only) & set(sites) for site, only in pools)


def cancel_stale_copies(
    session_factory: sessionmaker[Session],
    executors: Mapping[SiteId, Executor],
    now: float,
    skip: Collection[SiteId] = (),
) -> set[SiteId]:
    """Cancel the stale copies at every site that answers (sites in ``skip`` are known to be
    down and not asked); return the sites that did not answer."""
    with session_factory() as session:
        stale = session.execute(
            select(
                StaleSiteJobRow.id,
                StaleSiteJobRow.site_id,
                StaleSiteJobRow.tag,
                StaleSiteJobRow.site_job_id,
                JobRow.site_id,
                JobRow.site_job_id,
            )
            .join(JobRow, JobRow.id == StaleSiteJobRow.job_id)
            .where(StaleSiteJobRow.done_at.is_(None))
        ).all()
    if not stale:
        return set()
    done: list[int] = []
    silent: set[SiteId] = set()
    for stale_id, site_id, tag, site_job_id, now_site, now_site_job in stale:
        executor = executors.get(SiteId(site_id))
        if executor is None or site_id in silent or site_id in skip:
            continue
        try:
            target = site_job_id
            if target is None:  # the submit's reply was lost: find the copy by its tag
                found = executor.find_by_tag(tag)
                target = found.site_job_id if found is not None else None
            # The job may since have come back to this very site: never cancel that run.
            if target is not None and not (now_site == site_id and now_site_job == target):
                executor.cancel(target)
                log.info("cancelled stale copy %s of %s at %s", target, tag, site_id)
            done.append(stale_id)
        except ExecutorError as exc:
            log.info("stale copy of %s at %s not cancelled yet: %s", tag, site_id, exc.message)
            silent.add(SiteId(site_id))
    if done:
        with session_factory() as session, session.begin():
            for row in session.execute(
                select(StaleSiteJobRow).where(StaleSiteJobRow.id.in_(done))
            ).scalars():
                row.done_at = now
    return silent

"""Apply: turn placements into reservations and site submissions, crash-safely.

For each placement: (1) one transaction moves the job pending -> placed and reserves its budget
(a conditional update: if the allocation changed since the snapshot, the job just stays pending);
(2) the site gets the job, tagged with its id; (3) one transaction records the site's job id.
A crash between (2) and (3) leaves a *placed* job with no site id, which reconcile adopts by tag.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from aifactories.broker import events
from aifactories.broker.reconcile import finish_job
from aifactories.db.convert import job_spec
from aifactories.db.jobs import try_reserve
from aifactories.db.models import JobRow, ProjectRow, UserRow, table_of
from aifactories.domain.errors import ExecutorError, SubmissionRejected
from aifactories.domain.ids import PartitionId, SiteId
from aifactories.domain.jobs import JobState
from aifactories.domain.sites import Partition
from aifactories.executors.base import Executor, SubmitRequest, job_tag
from aifactories.scheduling.snapshot import Placement

log = logging.getLogger(__name__)


@dataclass
class ApplyOutcome:
    submitted: int = 0
    rejected: int = 0
    skipped: int = 0
    failed_sites: set[SiteId] | None = None


# Placements are reserved and recorded in chunks: one transaction per chunk instead of two
# per job, yet short enough that the API's writes never wait long for SQLite's write lock.
CHUNK = 10


def _reserve_chunk(
    session_factory: sessionmaker[Session],
    chunk: list[Placement],
    partitions: Mapping[PartitionId, Partition],
    now: float,
    instance: str,
) -> list[SubmitRequest]:
    requests: list[SubmitRequest] = []
    with session_factory() as session, session.begin():
        rows = {
            r.id: r
            for r in session.execute(
                select(JobRow).where(JobRow.id.in_([p.job_id for p in chunk]))
            ).scalars()
        }
        names = dict(session.execute(select(ProjectRow.id, ProjectRow.code)).all())
        users = dict(session.execute(select(UserRow.id, UserRow.username)).all())
        for placement in chunk:
            row = rows.get(placement.job_id)
            if row is None or row.state != JobState.PENDING.value or row.cancel_requested:
                continue
            if not try_reserve(
                session, placement.allocation_id, placement.reserved_gpu_seconds, row.id, now
            ):
                continue  # the allocation moved since the snapshot: the job waits a cycle
            row.state = JobState.PLACED.value
            row.placed_at = now
            row.site_id = placement.site_id
            row.partition_id = placement.partition_id
            row.shape_nodes = placement.shape.nodes
            row.shape_gpus_per_node = placement.shape.gpus_per_node
            row.shape_exclusive = placement.shape.exclusive
            row.allocation_id = placement.allocation_id
            row.billing_weight = placement.billing_weight
            row.reserved_gpu_seconds = placement.reserved_gpu_seconds
            row.reason = None
            events.placed(row, names.get(row.project_id, str(row.project_id)))
            requests.append(
                SubmitRequest(
                    job_id=placement.job_id,
                    tag=job_tag(row.id, instance),
                    partition=partitions[placement.partition_id],
                    shape=placement.shape,
                    spec=job_spec(row),
                    account=names.get(row.project_id, str(row.project_id)),
                    user=users.get(row.user_id, str(row.user_id)),
                )
            )
    return requests


def apply_placements(
    session_factory: sessionmaker[Session],
    executors: Mapping[SiteId, Executor],
    partitions: Mapping[PartitionId, Partition],
    placements: tuple[Placement, ...],
    now: float,
    instance: str = "",
) -> ApplyOutcome:
    outcome = ApplyOutcome(failed_sites=set())
    assert outcome.failed_sites is not None
    for start in range(0, len(placements), CHUNK):
        chunk = [
            p for p in placements[start : start + CHUNK] if p.site_id not in outcome.failed_sites
        ]
        outcome.skipped += len(placements[start : start + CHUNK]) - len(chunk)
        requests = (
            _reserve_chunk(session_factory, chunk, partitions, now, instance) if chunk else []
        )
        outcome.skipped += len(chunk) - len(requests)
        accepted: list[tuple[int, str]] = []
        for request in requests:
            site_id = request.partition.site_id
            if site_id in outcome.failed_sites:
                continue  # placed without a site id: reconcile adopts or requeues it
            try:
                accepted.append((request.job_id, executors[site_id].submit(request)))
                events.submitted(site_id, 1)
            except SubmissionRejected as exc:
                with session_factory() as session, session.begin():
                    row = session.get(JobRow, request.job_id)
                    if row is not None:
                        finish_job(
                            session,
                            row,
                            JobState.FAILED,
                            now,
                            reason=f"rejected by {site_id}: {exc.reason}",
                        )
                outcome.rejected += 1
            except ExecutorError as exc:
                # The site may or may not have the job (a timeout after it accepted): leave
                # it placed without a site id; reconcile looks it up by tag once the site
                # answers, and adopts it or gives it back to the queue. Resubmitting now
                # could run it twice.
                log.warning("site %s failed on submit: %s", site_id, exc.message)
                events.submitted(site_id, 0, site_down=True)
                outcome.failed_sites.add(site_id)
        if accepted:
            with session_factory() as session, session.begin():
                jobs = table_of(JobRow)
                session.execute(
                    update(jobs)
                    .where(jobs.c.id == bindparam("b_id"), jobs.c.state == JobState.PLACED.value)
                    .values(site_job_id=bindparam("b_site"), state=JobState.SUBMITTED.value),
                    [{"b_id": j, "b_site": s} for j, s in accepted],
                )
            outcome.submitted += len(accepted)
    return outcome

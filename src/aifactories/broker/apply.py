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

from sqlalchemy.orm import Session, sessionmaker

from aifactories.broker.reconcile import finish_job
from aifactories.db.convert import job_spec
from aifactories.db.jobs import try_reserve
from aifactories.db.models import JobRow, ProjectRow, UserRow
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


def _reserve(
    session_factory: sessionmaker[Session], placement: Placement, partition: Partition, now: float
) -> SubmitRequest | None:
    with session_factory() as session, session.begin():
        row = session.get(JobRow, placement.job_id)
        if row is None or row.state != JobState.PENDING.value or row.cancel_requested:
            return None
        if not try_reserve(
            session, placement.allocation_id, placement.reserved_gpu_seconds, row.id, now
        ):
            return None
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
        project = session.get(ProjectRow, row.project_id)
        user = session.get(UserRow, row.user_id)
        return SubmitRequest(
            job_id=placement.job_id,
            tag=job_tag(row.id),
            partition=partition,
            shape=placement.shape,
            spec=job_spec(row),
            account=project.code if project else str(row.project_id),
            user=user.username if user else str(row.user_id),
        )


def apply_placements(
    session_factory: sessionmaker[Session],
    executors: Mapping[SiteId, Executor],
    partitions: Mapping[PartitionId, Partition],
    placements: tuple[Placement, ...],
    now: float,
) -> ApplyOutcome:
    outcome = ApplyOutcome(failed_sites=set())
    assert outcome.failed_sites is not None
    for placement in placements:
        if placement.site_id in outcome.failed_sites:
            outcome.skipped += 1
            continue
        request = _reserve(session_factory, placement, partitions[placement.partition_id], now)
        if request is None:
            outcome.skipped += 1
            continue
        executor = executors[placement.site_id]
        try:
            site_job_id = executor.submit(request)
        except SubmissionRejected as exc:
            with session_factory() as session, session.begin():
                row = session.get(JobRow, placement.job_id)
                if row is not None:
                    finish_job(
                        session,
                        row,
                        JobState.FAILED,
                        now,
                        reason=f"rejected by {placement.site_id}: {exc.reason}",
                    )
            outcome.rejected += 1
            continue
        except ExecutorError as exc:
            # The site may or may not have the job (a timeout after it accepted): leave it
            # placed without a site id; reconcile looks it up by tag once the site answers, and
            # adopts it or gives it back to the queue. Resubmitting now could run it twice.
            log.warning("site %s failed on submit: %s", placement.site_id, exc.message)
            outcome.failed_sites.add(placement.site_id)
            continue
        with session_factory() as session, session.begin():
            row = session.get(JobRow, placement.job_id)
            if row is not None and row.state == JobState.PLACED.value:
                row.site_job_id = site_job_id
                row.state = JobState.SUBMITTED.value
        outcome.submitted += 1
    return outcome

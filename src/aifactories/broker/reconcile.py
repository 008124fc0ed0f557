"""Reconcile: bring the database in line with what the sites report.

Runs at the start of every cycle, and so also right after a restart: a job left *placed* by a
crash between the site's submit and the database commit is looked up by its tag and adopted,
or put back to pending if the site never got it. A job is charged once, when it first reaches a
final state in the database; a second poll of the same final state changes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from aifactories.broker import events, job_mail
from aifactories.db.jobs import ACTIVE_STATES, charge_usage, settle
from aifactories.db.models import AllocationRow, JobRow, RequeuedStartRow
from aifactories.domain.errors import ExecutorError
from aifactories.domain.ids import SiteId
from aifactories.domain.jobs import JobState, check_transition
from aifactories.domain.logthrottle import LogThrottle, clip
from aifactories.domain.units import charge_gpu_seconds
from aifactories.executors.base import Executor, SiteJobStatus, job_tag
from aifactories.ledger.balance import settle_amount
from aifactories.ledger.usage_split import UsagePiece, split_usage

log = logging.getLogger(__name__)
_throttle = LogThrottle(log)  # a site down for hours: one line, then a count every window


def finish_job(
    session: Session,
    row: JobRow,
    state: JobState,
    now: float,
    *,
    elapsed_s: float = 0.0,
    exit_code: int | None = None,
    reason: str | None = None,
    ended_at: float | None = None,
    allocated_gpus: int = 0,
) -> None:
    """Move a job holding a reservation to a final state and settle its budget, in the
    caller's transaction. Charge = allocated GPUs x elapsed x billing weight, capped at the
    reservation. ``allocated_gpus`` is the site's own count (Slurm's gres/gpu); without it
    the placement's shape counts. The charge is split by month and at the allocation's end."""
    check_transition(row.id, JobState(row.state), state)
    before = row.state
    charged = 0
    end = ended_at if ended_at is not None else now
    if row.allocation_id is not None and row.reserved_gpu_seconds:
        allocated = allocated_gpus or (row.shape_nodes or 0) * (row.shape_gpus_per_node or 0)
        actual = charge_gpu_seconds(allocated, elapsed_s, row.billing_weight or 1.0)
        charged = settle_amount(row.reserved_gpu_seconds, actual)
        note = f"job {row.id} {state.value}"
        own = _usage_pieces(session, row, charged, elapsed_s, end, now, note)
        settle(
            session,
            row.allocation_id,
            row.reserved_gpu_seconds,
            sum(p.gpu_seconds for p in own),
            row.id,
            now,
            note=note,
            pieces=own,
        )
    row.state = state.value
    row.charged_gpu_seconds = charged
    row.reserved_gpu_seconds = 0
    row.elapsed_s = elapsed_s
    row.exit_code = exit_code
    row.reason = reason
    row.ended_at = end
    events.finished(row, state.value, charged, reason)
    job_mail.ended(session, row, before, now)


def _usage_pieces(
    session: Session,
    row: JobRow,
    charged: int,
    elapsed_s: float,
    end: float,
    now: float,
    note: str,
) -> list[UsagePiece]:
    """The pieces of ``charged`` that stay on the job's own allocation; those that ran after
    it ended go to the allocation covering that time (charged here, in the same transaction)."""
    if not charged:
        return []
    allocation = session.get(AllocationRow, row.allocation_id)
    assert allocation is not None
    pieces = split_usage(end - elapsed_s, end, charged, [allocation.ends_at])
    inside = [p for p in pieces if p.start < allocation.ends_at]
    after = [p for p in pieces if p.start >= allocation.ends_at]
    taken_elsewhere = charge_usage(
        session,
        allocation.project_id,
        row.site_id,
        after,
        now,
        note,
        job_id=row.id,
        exclude_allocation_id=allocation.id,
    )
    return inside + taken_elsewhere


def requeue_job(session: Session, row: JobRow, now: float, reason: str) -> None:
    """Give a job back to the queue: release its reservation, forget its placement. A start
    it had is kept in ``requeued_starts``: the programme's figures as of a date before now
    still count it (rare, so off the broker's start path)."""
    check_transition(row.id, JobState(row.state), JobState.PENDING)
    if row.started_at is not None:
        session.add(
            RequeuedStartRow(
                job_id=row.id,
                site_id=row.site_id,
                started_at=row.started_at,
                recorded_at=row.start_recorded_at
                if row.start_recorded_at is not None
                else row.started_at,
                requeued_at=now,
            )
        )
    if row.allocation_id is not None and row.reserved_gpu_seconds:
        settle(
            session,
            row.allocation_id,
            row.reserved_gpu_seconds,
            0,
            row.id,
            now,
            note=f"job {row.id} requeued",
        )
    row.state = JobState.PENDING.value
    row.reserved_gpu_seconds = 0
    row.allocation_id = None
    row.site_id = row.partition_id = row.site_job_id = None
    row.shape_nodes = row.shape_gpus_per_node = None
    row.shape_exclusive = None
    row.billing_weight = None
    row.placed_at = row.started_at = row.start_recorded_at = None
    row.requeues += 1
    row.reason = reason


def _apply_status(session: Session, row: JobRow, status: SiteJobStatus, now: float) -> None:
    if row.site_job_id is None:
        row.site_job_id = status.site_job_id
    # kept on the job: its output stays readable after the site forgets it (job_output.py)
    row.output_path = status.output_path or row.output_path
    row.error_path = status.error_path or row.error_path
    if status.state is JobState.SUBMITTED:
        if row.state == JobState.PLACED.value:
            row.state = JobState.SUBMITTED.value
        row.reason = status.reason
        return
    if status.state is JobState.RUNNING:
        if row.state != JobState.RUNNING.value:
            check_transition(row.id, JobState(row.state), JobState.RUNNING)
            row.state = JobState.RUNNING.value
            row.started_at = status.started_at or now
            row.start_recorded_at = now  # in the same UPDATE: learnt now, whenever it began
            row.reason = None
            job_mail.began(session, row, now)
        return
    if status.state.final:
        if row.started_at is None and status.started_at is not None:
            row.started_at = status.started_at
            row.start_recorded_at = now
        finish_job(
            session,
            row,
            status.state,
            now,
            elapsed_s=status.elapsed_s,
            exit_code=status.exit_code,
            reason=status.reason,
            ended_at=status.ended_at,
            allocated_gpus=status.allocated_gpus,
        )
        return
    if status.state is JobState.PENDING:  # the site requeued it (node failure, preemption)
        if ((row.slurm or {}).get("batch") or {}).get("requeue") is False:
            # --no-requeue: the job said it must not run twice (it may not be restartable)
            finish_job(
                session,
                row,
                JobState.FAILED,
                now,
                elapsed_s=status.elapsed_s,
                reason=f"{status.reason or 'the site requeued it'}; not requeued (--no-requeue)",
                allocated_gpus=status.allocated_gpus,
            )
            return
        job_mail.requeued(session, row, now, status.reason or "requeued by the site")
        requeue_job(session, row, now, status.reason or "requeued by the site")


def reconcile(
    session_factory: sessionmaker[Session],
    read_factory: sessionmaker[Session],
    executors: Mapping[SiteId, Executor],
    now: float,
    skip: Collection[SiteId] = (),
    instance: str = "",
) -> set[SiteId]:
    """Poll every site that holds our jobs, except those in ``skip`` (known to be down);
    return the sites that did not answer."""
    unreachable: set[SiteId] = set()
    with read_factory() as session:
        rows = session.execute(
            select(JobRow.id, JobRow.site_id).where(JobRow.state.in_(ACTIVE_STATES))
        ).all()
    by_site: dict[str, list[int]] = defaultdict(list)
    for job_id, site_id in rows:
        if site_id is not None:
            by_site[site_id].append(job_id)
    for site_id, job_ids in by_site.items():
        if site_id in skip:
            continue
        executor = executors.get(SiteId(site_id))
        if executor is None:
            log.warning("jobs %s are at site %s, which has no executor", job_ids, site_id)
            continue
        try:
            _reconcile_site(session_factory, read_factory, executor, job_ids, now, instance)
        except ExecutorError as exc:
            key = (site_id, "reconcile")
            _throttle.warning(key, "site %s did not answer: %s", site_id, clip(exc.message))
            unreachable.add(SiteId(site_id))
        else:
            _throttle.resolve((site_id, "reconcile"))
    return unreachable


def _news(state: str, reason: str | None, status: SiteJobStatus | None) -> bool:
    """Whether a site's status changes anything for a job in ``state`` with ``reason``."""
    if status is None:
        return True  # the site lost it
    if status.state is JobState.SUBMITTED:
        return state == JobState.PLACED.value or reason != status.reason
    return status.state.value != state


def _new_paths(known: list[str | None], status: SiteJobStatus | None) -> bool:
    """Whether the site reports an output or error path the job does not have yet."""
    if status is None:
        return False
    output, error = known
    return bool(
        (status.output_path and status.output_path != output)
        or (status.error_path and status.error_path != error)
    )


def _reconcile_site(
    session_factory: sessionmaker[Session],
    read_factory: sessionmaker[Session],
    executor: Executor,
    job_ids: list[int],
    now: float,
    instance: str,
) -> None:
    # Talk to the site outside any transaction (a slow controller must not hold the database
    # write lock), then apply what it said in one short transaction.
    with read_factory() as session:
        seen = session.execute(
            select(
                JobRow.id,
                JobRow.state,
                JobRow.site_job_id,
                JobRow.cancel_requested,
                JobRow.reason,
                JobRow.output_path,
                JobRow.error_path,
            ).where(JobRow.id.in_(job_ids), JobRow.state.in_(ACTIVE_STATES))
        ).all()
    adopted: dict[int, SiteJobStatus | None] = {}
    site_ids: dict[int, str] = {}
    for job_id, state, site_job_id, cancel_requested, _reason, *_paths in seen:
        if state == JobState.PLACED.value and site_job_id is None:
            # An orphan of a crash between submit and commit: find it by its tag.
            adopted[job_id] = found = executor.find_by_tag(job_tag(job_id, instance))
            if found is not None:
                site_ids[job_id] = found.site_job_id
        elif site_job_id:
            site_ids[job_id] = site_job_id
        if cancel_requested and job_id in site_ids:
            executor.cancel(site_ids[job_id])
    statuses = executor.poll(list(site_ids.values())) if site_ids else {}
    # A site that lost its controller state numbers jobs from the start again: an id may now
    # be someone else's job. A status whose tag is not the job's is no news of our job.
    for job_id, site_job_id in site_ids.items():
        status = statuses.get(site_job_id)
        if status is not None and status.tag and status.tag != job_tag(job_id, instance):
            log.warning(
                "site job %s is no longer job %s (its tag is %s)", site_job_id, job_id, status.tag
            )
            del statuses[site_job_id]
    # Only jobs whose site status says something new are loaded in the write transaction:
    # thousands of jobs running unchanged must not hold SQLite's write lock.
    changed = [
        job_id
        for job_id, state, site_job_id, _cancel, reason, *paths in seen
        if job_id in adopted
        or _news(state, reason, statuses.get(site_ids.get(job_id, "")))
        or _new_paths(paths, statuses.get(site_ids.get(job_id, "")))
    ]
    if not changed:
        return
    with session_factory() as session, session.begin():
        rows = session.execute(
            select(JobRow).where(JobRow.id.in_(changed), JobRow.state.in_(ACTIVE_STATES))
        ).scalars()
        for row in rows:
            if row.id in adopted and adopted[row.id] is None and row.site_job_id is None:
                requeue_job(session, row, now, "requeued: the site never received it")
                row.requeues -= 1  # neither the job's fault nor a real run
                continue
            site_job_id = row.site_job_id or site_ids.get(row.id)
            if site_job_id is None:
                continue  # placed after our read: the next cycle looks at it
            status = statuses.get(site_job_id)
            if status is None:
                if row.state == JobState.RUNNING.value:
                    finish_job(
                        session,
                        row,
                        JobState.FAILED,
                        now,
                        reason="the site lost the job (no longer known to the site)",
                    )
                else:
                    requeue_job(session, row, now, "requeued: the site lost the job before start")
                continue
            _apply_status(session, row, status, now)

"""Apply: turn placements into reservations and site submissions, crash-safely.

For each placement: (1) one transaction moves the job pending -> placed and reserves its budget
(a conditional update: if the allocation changed since the snapshot, the job just stays pending);
(2) the site gets the job, tagged with its id; (3) one transaction records the site's job id.
A crash between (2) and (3) leaves a *placed* job with no site id, which reconcile adopts by tag.

Sites are independent, so each site with work gets a worker thread (at most
``MAX_SITE_WORKERS``) that only talks to that site, in placement order, a chunk at a time. The
database is written on the calling (broker) thread only: it reserves a site's next chunk when
the site's worker is done with the previous one and records what the site answered. Three
sites are thus submitted to at once, and a slow site holds up no other.

A failed submission fails only what it is about (docs/broker.md, "When a submission fails"):

- ``SubmissionRejected``, ``InvalidInput`` (the job's data), or an error that is no
  ``AifError`` (a back-end's bug or an untranslated error): that job fails with the reason,
  its reservation is released; the site's other jobs go on.
- ``ProtocolError``: the site's answer was not understood, so whether it has the job is
  unknown: the job stays placed for reconcile to adopt or requeue; the site's other jobs go on.
- ``SiteUnavailable`` (or a site's ``ConfigurationError``): the site is down for the rest of
  the cycle. The job it failed on stays placed (a timeout may come after the site accepted
  it); its jobs not yet sent go straight back to the queue (the site cannot have them).
- Any other ``AifError`` (a lost broker lease) stops the cycle: what was sent and not yet
  recorded is placed without a site id, which reconcile adopts by tag, as after a crash.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from aifactories.broker import events
from aifactories.broker.reconcile import finish_job, requeue_job
from aifactories.db.convert import job_spec
from aifactories.db.jobs import reserve_many
from aifactories.db.models import JobRow, ProjectRow, UserRow, table_of
from aifactories.domain.errors import (
    AifError,
    ConfigurationError,
    ExecutorError,
    InvalidInput,
    ProtocolError,
    SiteUnavailable,
    SubmissionRejected,
)
from aifactories.domain.ids import JobId, PartitionId, SiteId
from aifactories.domain.jobs import JobState
from aifactories.domain.logthrottle import LogThrottle, clip
from aifactories.domain.sites import Partition
from aifactories.executors.base import Executor, SubmitRequest, job_tag
from aifactories.scheduling.snapshot import Placement

log = logging.getLogger(__name__)
_throttle = LogThrottle(log)

# Placements are reserved and recorded in chunks: one transaction per chunk instead of two
# per job, yet short enough that the API's writes never wait long for SQLite's write lock
# (a chunk of 50 reserves in a few ms); a site that takes a chunk at once (the emulated
# site's submit_many) launches its runners together: 10 made a 1,000-task array 8.7 s.
CHUNK = 50
# One worker per site with work; a federation of dozens of sites still gets a bounded pool.
MAX_SITE_WORKERS = 8
# What a job's failure reason keeps of a site's words (they may echo the job's own text).
MAX_REASON = 500


@dataclass
class ApplyOutcome:
    submitted: int = 0
    rejected: int = 0  # jobs failed by their submission (rejected, or refused for their data)
    skipped: int = 0  # placements not reserved (job changed, budget moved, site down)
    unconfirmed: int = 0  # jobs left placed without a site id: reconcile settles them
    failed_sites: set[SiteId] = field(default_factory=set)


@dataclass
class _SiteBatch:
    """What one site answered to one chunk of its jobs."""

    site_id: SiteId
    accepted: list[tuple[JobId, str]] = field(default_factory=list)
    failed: list[tuple[JobId, str]] = field(default_factory=list)  # with the user's reason
    unknown: list[JobId] = field(default_factory=list)  # the site may or may not have it
    unsent: list[JobId] = field(default_factory=list)  # never handed to the site
    site_down: bool = False


def _submit_together(
    executor: Executor,
    requests: Sequence[SubmitRequest],
    batch: _SiteBatch,
    throttle: LogThrottle,
) -> Sequence[str | Exception] | None:
    """The outcomes of a back-end that takes a chunk at once (``submit_many``: the emulated
    site launches the chunk's runners together), or None to submit one by one. A site that
    fails the whole call may have taken any of the chunk: all are left for reconcile, which
    adopts what carries our tag and requeues the rest."""
    submit_many = getattr(executor, "submit_many", None)
    if submit_many is None or len(requests) < 2:
        return None
    try:
        outcomes: Sequence[str | Exception] = submit_many(requests)
    except (SiteUnavailable, ConfigurationError, ProtocolError) as exc:
        throttle.warning(
            (executor.site_id, "unavailable"),
            "site %s failed on submit; its other jobs wait for the next cycle: %s",
            executor.site_id,
            clip(exc.message),
        )
        batch.unknown.extend(r.job_id for r in requests)
        batch.site_down = not isinstance(exc, ProtocolError)
        return None
    return outcomes


def _submit_batch(
    executor: Executor, requests: Sequence[SubmitRequest], throttle: LogThrottle
) -> _SiteBatch:
    """Hand one chunk to its site, in order; runs on the site's worker thread (no database)."""
    site = executor.site_id
    batch = _SiteBatch(site)
    outcomes = _submit_together(executor, requests, batch, throttle)
    if batch.unknown:  # the whole chunk failed at once
        return batch
    for index, request in enumerate(requests):
        job_id = request.job_id
        try:
            outcome = outcomes[index] if outcomes is not None else executor.submit(request)
            if isinstance(outcome, Exception):
                raise outcome
            batch.accepted.append((job_id, outcome))
        except SubmissionRejected as exc:
            # logged with the job's end (broker/events.py), like every failure
            batch.failed.append((job_id, f"rejected by {site}: {clip(exc.reason, MAX_REASON)}"))
        except (SiteUnavailable, ConfigurationError) as exc:
            throttle.warning(
                (site, "unavailable"),
                "site %s failed on submit; its other jobs wait for the next cycle: %s",
                site,
                clip(exc.message),
            )
            batch.unknown.append(job_id)
            batch.unsent = [r.job_id for r in requests[index + 1 :]]
            batch.site_down = True
            return batch
        except ExecutorError as exc:  # ProtocolError, or one not yet classified
            throttle.warning(
                (site, "protocol"),
                "site %s: unclear answer to the submission of job %s, left for reconcile: %s",
                site,
                job_id,
                clip(exc.message),
            )
            batch.unknown.append(job_id)
        except InvalidInput as exc:
            # The back-end refused the job's data before sending it (an invalid field).
            reason = f"not submitted to {site}: {clip(exc.message, MAX_REASON)}"
            batch.failed.append((job_id, reason))
        except AifError:
            raise  # about neither this job nor this site (a lost broker lease): stop the cycle
        except Exception as exc:
            # A back-end's bug, or an error it does not translate, is about this job's data
            # in every case seen so far: failing the job keeps the site's queue moving, where
            # retrying it each cycle would fail it forever. The traceback is for operators.
            throttle.log(
                logging.ERROR,
                (site, "bug", type(exc).__name__),
                "site %s: the back-end failed on job %s with %s: %s",
                site,
                job_id,
                type(exc).__name__,
                clip(exc),
                exc_info=True,
            )
            batch.failed.append(
                (
                    job_id,
                    f"the platform could not submit the job to {site} ({type(exc).__name__}:"
                    f" {clip(exc)}); the platform's operators see the details in its log",
                )
            )
    throttle.resolve((site, "unavailable"))
    return batch


def _reserve_chunk(
    session_factory: sessionmaker[Session],
    chunk: Sequence[Placement],
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
        project_ids = {r.project_id for r in rows.values()}
        user_ids = {r.user_id for r in rows.values()}
        names = dict(
            session.execute(
                select(ProjectRow.id, ProjectRow.code).where(ProjectRow.id.in_(project_ids))
            ).all()
        )
        users = dict(
            session.execute(
                select(UserRow.id, UserRow.username).where(UserRow.id.in_(user_ids))
            ).all()
        )
        placeable = [
            p
            for p in chunk
            if (row := rows.get(p.job_id)) is not None
            and row.state == JobState.PENDING.value
            and not row.cancel_requested
        ]
        # The chunk's reservations first, then the jobs' rows: one flush of all the rows at the
        # end instead of one per job (autoflush before each reservation's update).
        reserved = reserve_many(
            session,
            [(p.allocation_id, p.reserved_gpu_seconds, p.job_id) for p in placeable],
            now,
        )
        for placement in placeable:
            row = rows[placement.job_id]
            if placement.job_id not in reserved:
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


def _record(session_factory: sessionmaker[Session], batch: _SiteBatch, now: float) -> None:
    """Write one site's answers in one transaction: site ids, failures, jobs given back."""
    if not (batch.accepted or batch.failed or batch.unsent):
        return
    with session_factory() as session, session.begin():
        if batch.accepted:
            jobs = table_of(JobRow)
            session.execute(
                update(jobs)
                .where(jobs.c.id == bindparam("b_id"), jobs.c.state == JobState.PLACED.value)
                .values(site_job_id=bindparam("b_site"), state=JobState.SUBMITTED.value),
                [{"b_id": j, "b_site": s} for j, s in batch.accepted],
            )
        for job_id, reason in batch.failed:
            row = session.get(JobRow, job_id)
            if row is not None and row.state == JobState.PLACED.value:
                finish_job(session, row, JobState.FAILED, now, reason=reason)
        for job_id in batch.unsent:
            row = session.get(JobRow, job_id)
            if row is not None and row.state == JobState.PLACED.value and not row.site_job_id:
                requeue_job(session, row, now, f"waiting: site {batch.site_id} did not answer")
                row.requeues -= 1  # neither the job's fault nor a run


class _Inline:
    """Runs a batch at once on the calling thread: one site needs no worker."""

    def submit(self, fn: Callable[..., _SiteBatch], /, *args: Any) -> Future[_SiteBatch]:
        future: Future[_SiteBatch] = Future()
        future.set_result(fn(*args))
        return future

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


def apply_placements(
    session_factory: sessionmaker[Session],
    executors: Mapping[SiteId, Executor],
    partitions: Mapping[PartitionId, Partition],
    placements: tuple[Placement, ...],
    now: float,
    instance: str = "",
    *,
    throttle: LogThrottle | None = None,
) -> ApplyOutcome:
    outcome = ApplyOutcome()
    throttle = throttle or _throttle
    queues: dict[SiteId, deque[Placement]] = {}
    for placement in placements:
        queues.setdefault(placement.site_id, deque()).append(placement)

    def next_chunk(site_id: SiteId) -> list[SubmitRequest]:
        """Reserve the site's next chunk of placements that still stand ([] when none)."""
        queue = queues[site_id]
        while queue:
            chunk = [queue.popleft() for _ in range(min(CHUNK, len(queue)))]
            requests = _reserve_chunk(session_factory, chunk, partitions, now, instance)
            outcome.skipped += len(chunk) - len(requests)
            if requests:
                return requests
        return []

    workers = min(len(queues), MAX_SITE_WORKERS)
    pool = (
        ThreadPoolExecutor(workers, thread_name_prefix="aif-submit") if workers > 1 else _Inline()
    )
    with pool:
        running: dict[Future[_SiteBatch], SiteId] = {}

        def start(site_id: SiteId) -> None:
            requests = next_chunk(site_id)
            if requests:
                running[pool.submit(_submit_batch, executors[site_id], requests, throttle)] = (
                    site_id
                )

        for site_id in queues:
            start(site_id)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                site_id = running.pop(future)
                batch = future.result()
                _record(session_factory, batch, now)
                events.submitted(site_id, len(batch.accepted), site_down=batch.site_down)
                outcome.submitted += len(batch.accepted)
                outcome.rejected += len(batch.failed)
                outcome.unconfirmed += len(batch.unknown)
                outcome.skipped += len(batch.unsent)
                if batch.site_down:
                    outcome.failed_sites.add(site_id)
                    outcome.skipped += len(queues[site_id])
                    queues[site_id].clear()
                else:
                    start(site_id)
    return outcome

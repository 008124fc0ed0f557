"""Repositories for jobs, ledger moves and partition status.

The ledger moves are conditional UPDATEs: a reservation only lands if the allocation still has
room at the moment of writing, so two writers (API, broker, a second broker) can never overdraw
it, on SQLite or PostgreSQL. They never commit: the caller's transaction does.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from aifactories.db.convert import spec_from_columns
from aifactories.db.models import (
    AllocationRow,
    JobRow,
    LedgerEntryRow,
    PartitionStatusRow,
    PlatformMetaRow,
    table_of,
)
from aifactories.domain.ids import JobId, PartitionId, ProjectId, SiteId, UserId
from aifactories.domain.jobs import ActiveJob, JobState, PendingJob, Shape
from aifactories.ledger.usage_split import UsagePiece

ACTIVE_STATES = (JobState.PLACED.value, JobState.SUBMITTED.value, JobState.RUNNING.value)


def jobs_in_states(session: Session, states: Sequence[str]) -> list[JobRow]:
    return list(
        session.execute(
            select(JobRow).where(JobRow.state.in_(states)).order_by(JobRow.submitted_at, JobRow.id)
        ).scalars()
    )


def try_reserve(
    session: Session, allocation_id: int, gpu_seconds: int, job_id: int, now: float
) -> bool:
    """Reserve if the allocation still has room and is open; False leaves everything unchanged."""
    if not _take(session, allocation_id, gpu_seconds):
        return False
    session.add(_reserve_entry(allocation_id, job_id, gpu_seconds, now))
    return True


def reserve_many(session: Session, wants: Sequence[tuple[int, int, int]], now: float) -> set[int]:
    """Reserve for several jobs at once; ``wants`` holds (allocation id, GPU-seconds, job id)
    in placement order. Returns the ids of the jobs that got their reservation.

    The same outcome as ``try_reserve`` one job after the other, in fewer round trips (the
    broker places hundreds of jobs a second): per allocation, one conditional update for the
    sum of its jobs; only an allocation that cannot hold the sum is asked job by job, in
    order, so the first that fit are reserved as they would have been one at a time."""
    by_allocation: dict[int, list[tuple[int, int]]] = {}
    for allocation_id, gpu_seconds, job_id in wants:
        by_allocation.setdefault(allocation_id, []).append((job_id, gpu_seconds))
    reserved: list[tuple[int, int, int]] = []
    for allocation_id, jobs in by_allocation.items():
        if len(jobs) > 1 and _take(session, allocation_id, sum(s for _, s in jobs)):
            taken = jobs
        else:
            taken = [(j, s) for j, s in jobs if _take(session, allocation_id, s)]
        reserved.extend((allocation_id, j, s) for j, s in taken)
    session.add_all([_reserve_entry(a, j, s, now) for a, j, s in reserved])
    return {j for _, j, _ in reserved}


def _reserve_entry(allocation_id: int, job_id: int, gpu_seconds: int, now: float) -> LedgerEntryRow:
    return LedgerEntryRow(
        allocation_id=allocation_id,
        job_id=job_id,
        kind="reserve",
        gpu_seconds=gpu_seconds,
        at=now,
        recorded_at=now,
    )


def _take(session: Session, allocation_id: int, gpu_seconds: int) -> bool:
    """The conditional update behind every reservation: lands only if the allocation is open
    and still has room at the moment of writing."""
    result = session.execute(
        update(AllocationRow)
        .where(
            AllocationRow.id == allocation_id,
            AllocationRow.status == "open",
            AllocationRow.granted_gpu_seconds
            - AllocationRow.reserved_gpu_seconds
            - AllocationRow.used_gpu_seconds
            >= gpu_seconds,
        )
        .values(reserved_gpu_seconds=AllocationRow.reserved_gpu_seconds + gpu_seconds)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def settle(
    session: Session,
    allocation_id: int,
    reserved: int,
    charged: int,
    job_id: int,
    now: float,
    note: str | None = None,
    pieces: Sequence[UsagePiece] = (),
) -> None:
    """Release a job's reservation and charge ``charged`` (<= reserved) of it as used.

    ``pieces`` (summing to ``charged``) write one charge entry per month the job ran in,
    dated at the piece's end; without them the charge is one entry dated ``now``."""
    if not 0 <= charged <= reserved:
        raise ValueError(f"charge {charged} must be between 0 and the reservation {reserved}")
    if pieces and sum(p.gpu_seconds for p in pieces) != charged:
        raise ValueError("usage pieces must add up to the charge")
    session.execute(
        update(AllocationRow)
        .where(AllocationRow.id == allocation_id)
        .values(
            reserved_gpu_seconds=AllocationRow.reserved_gpu_seconds - reserved,
            used_gpu_seconds=AllocationRow.used_gpu_seconds + charged,
        )
        .execution_options(synchronize_session=False)
    )
    _add_charges(session, allocation_id, job_id, charged, now, note, pieces)
    if reserved - charged:
        session.add(
            LedgerEntryRow(
                allocation_id=allocation_id,
                job_id=job_id,
                kind="release",
                gpu_seconds=reserved - charged,
                at=now,
                note=note,
                recorded_at=now,
            )
        )


def _add_charges(
    session: Session,
    allocation_id: int,
    job_id: int | None,
    charged: int,
    now: float,
    note: str | None,
    pieces: Sequence[UsagePiece],
) -> None:
    if not pieces:
        if charged:
            session.add(
                LedgerEntryRow(
                    allocation_id=allocation_id,
                    job_id=job_id,
                    kind="charge",
                    gpu_seconds=charged,
                    at=now,
                    note=note,
                    recorded_at=now,
                )
            )
        return
    for piece in pieces:
        if piece.gpu_seconds:
            session.add(
                LedgerEntryRow(
                    allocation_id=allocation_id,
                    job_id=job_id,
                    kind="charge",
                    gpu_seconds=piece.gpu_seconds,
                    at=piece.end,
                    note=f"{note or f'job {job_id}'} ({piece.month})",
                    recorded_at=now,  # written now, perhaps days after the usage it covers
                )
            )


def charge_usage(
    session: Session,
    project_id: int,
    site_id: str | None,
    pieces: Sequence[UsagePiece],
    now: float,
    note: str | None = None,
    *,
    job_id: int | None = None,
    exclude_allocation_id: int | None = None,
) -> list[UsagePiece]:
    """Charge each piece of usage to the project's open allocation that covers the piece's
    time at ``site_id`` (a site allocation before a pool), as far as it has room; return the
    pieces (or parts) no allocation could take. No reservation is involved: this is use that
    happened outside one (after a job's allocation ended, or a job run outside the broker)."""
    left_over: list[UsagePiece] = []
    usable: ColumnElement[bool] = AllocationRow.site_id.is_(None)
    if site_id is not None:
        usable = usable | (AllocationRow.site_id == site_id)
    for piece in pieces:
        query = (
            select(AllocationRow)
            .where(
                AllocationRow.project_id == project_id,
                AllocationRow.status == "open",
                AllocationRow.starts_at <= piece.start,
                AllocationRow.ends_at > piece.start,
                usable,
            )
            .order_by(AllocationRow.site_id.is_(None), AllocationRow.starts_at, AllocationRow.id)
        )
        if exclude_allocation_id is not None:
            query = query.where(AllocationRow.id != exclude_allocation_id)
        remaining = piece.gpu_seconds
        for allocation in session.execute(query).scalars():
            pool_sites = allocation.pool_sites
            if site_id is not None and pool_sites is not None and site_id not in pool_sites:
                continue  # a pool restricted to other sites
            room = (
                allocation.granted_gpu_seconds
                - allocation.reserved_gpu_seconds
                - allocation.used_gpu_seconds
            )
            taken = max(0, min(room, remaining))
            if taken:
                allocation.used_gpu_seconds += taken
                _add_charges(
                    session,
                    allocation.id,
                    job_id,
                    taken,
                    now,
                    note,
                    [UsagePiece(piece.start, piece.end, taken)],
                )
                remaining -= taken
            if not remaining:
                break
        if remaining:
            left_over.append(UsagePiece(piece.start, piece.end, remaining))
    return left_over


def charges_since(session: Session, since: float) -> list[tuple[int, float, int]]:
    """(project id, time, GPU-seconds) of every charge since ``since``: fair share's input."""
    rows = session.execute(
        select(AllocationRow.project_id, LedgerEntryRow.at, LedgerEntryRow.gpu_seconds)
        .join(AllocationRow, AllocationRow.id == LedgerEntryRow.allocation_id)
        .where(LedgerEntryRow.kind == "charge", LedgerEntryRow.at >= since)
    ).all()
    return [(int(p), float(a), int(g)) for p, a, g in rows]


def ledger_totals(session: Session, allocation_id: int) -> dict[str, int]:
    rows = session.execute(
        select(LedgerEntryRow.kind, func.sum(LedgerEntryRow.gpu_seconds))
        .where(LedgerEntryRow.allocation_id == allocation_id)
        .group_by(LedgerEntryRow.kind)
    ).all()
    return {kind: int(total or 0) for kind, total in rows}


def upsert_partition_status(session: Session, rows: Iterable[PartitionStatusRow]) -> None:
    for row in rows:
        session.merge(row)


def partition_statuses(session: Session) -> dict[str, PartitionStatusRow]:
    return {r.partition_id: r for r in session.execute(select(PartitionStatusRow)).scalars()}


def pending_jobs(session: Session) -> list[PendingJob]:
    """Pending jobs not being cancelled, oldest first, as the scheduler sees them. Core rows,
    not ORM objects: the broker reads every pending job every cycle."""
    jobs = table_of(JobRow)
    rows = session.execute(
        select(jobs)
        .where(jobs.c.state == JobState.PENDING.value, jobs.c.cancel_requested.is_(False))
        .order_by(jobs.c.submitted_at, jobs.c.id)
    ).mappings()
    return [
        PendingJob(
            id=JobId(r["id"]),
            project_id=ProjectId(r["project_id"]),
            user_id=UserId(r["user_id"]),
            spec=spec_from_columns(r),
            submitted_at=r["submitted_at"],
            requeues=r["requeues"],
        )
        for r in rows
    ]


def record_reasons(session: Session, reasons: Mapping[int, str]) -> None:
    """Write wait reasons of pending jobs in one executemany."""
    if not reasons:
        return
    jobs = table_of(JobRow)
    session.execute(
        update(jobs)
        .where(jobs.c.id == bindparam("b_id"), jobs.c.state == JobState.PENDING.value)
        .values(reason=bindparam("b_reason")),
        [{"b_id": job_id, "b_reason": reason} for job_id, reason in reasons.items()],
    )


def active_jobs(session: Session) -> list[ActiveJob]:
    """Jobs holding capacity at a site (placed, submitted, running), for the snapshot."""
    jobs = table_of(JobRow)
    rows = session.execute(
        select(
            jobs.c.id,
            jobs.c.project_id,
            jobs.c.site_id,
            jobs.c.partition_id,
            jobs.c.state,
            jobs.c.shape_nodes,
            jobs.c.shape_gpus_per_node,
            jobs.c.shape_exclusive,
            jobs.c.started_at,
            jobs.c.time_limit_s,
        ).where(jobs.c.state.in_(ACTIVE_STATES), jobs.c.site_id.is_not(None))
    ).all()
    return [
        ActiveJob(
            id=JobId(r.id),
            project_id=ProjectId(r.project_id),
            site_id=SiteId(r.site_id),
            partition_id=PartitionId(r.partition_id),
            shape=Shape(r.shape_nodes, r.shape_gpus_per_node, bool(r.shape_exclusive)),
            state=JobState(r.state),
            started_at=r.started_at,
            time_limit_s=r.time_limit_s,
        )
        for r in rows
    ]


def instance_id(session: Session) -> str:
    """This platform's instance id, made once (8 hex digits) and kept in the database."""
    row = session.get(PlatformMetaRow, "instance_id")
    if row is None:
        row = PlatformMetaRow(key="instance_id", value=secrets.token_hex(4))
        session.add(row)
        session.flush()
    return row.value

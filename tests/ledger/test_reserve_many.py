"""Reservations for a chunk of placements at once (``reserve_many``) end as they would one
job after the other (``try_reserve``): on SQLite and PostgreSQL, through the real schema."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from aifactories.db.jobs import reserve_many
from aifactories.db.models import AllocationRow, JobRow, LedgerEntryRow
from tests.api.harness import Harness, make_harness

HOUR = 3600


def _world(tmp_path: Path, database_url: str) -> tuple[Harness, int, list[int]]:
    """alice's project with one allocation of exactly 10 GPU-hours left, and four jobs."""
    h = make_harness(tmp_path, database_url)
    alice = h.client("alice")
    ids = [
        alice.post(
            "/jobs",
            json={"project": "aurora-vision", "gpus": 1, "time_limit": "1:00:00", "runtime": 60},
        ).json()["id"]
        for _ in range(4)
    ]
    with h.platform.ctx.sessions() as session, session.begin():
        job = session.get(JobRow, ids[0])
        assert job is not None
        allocation = session.scalars(
            select(AllocationRow)
            .where(AllocationRow.project_id == job.project_id, AllocationRow.status == "open")
            .order_by(AllocationRow.id)
        ).first()
        assert allocation is not None
        session.execute(
            update(AllocationRow)
            .where(AllocationRow.id == allocation.id)
            .values(granted_gpu_seconds=10 * HOUR, reserved_gpu_seconds=0, used_gpu_seconds=0)
        )
        return h, allocation.id, ids


def _state(h: Harness, allocation_id: int) -> tuple[int, list[tuple[int | None, int]]]:
    with h.platform.ctx.sessions() as session:
        allocation = session.get(AllocationRow, allocation_id)
        assert allocation is not None
        entries = session.execute(
            select(LedgerEntryRow.job_id, LedgerEntryRow.gpu_seconds).where(
                LedgerEntryRow.allocation_id == allocation_id, LedgerEntryRow.kind == "reserve"
            )
        ).all()
        return allocation.reserved_gpu_seconds, sorted((j, s) for j, s in entries)


def test_a_chunk_that_fits_is_reserved_whole(tmp_path: Path, database_url: str) -> None:
    h, allocation, jobs = _world(tmp_path, database_url)
    with h.platform.ctx.sessions() as session, session.begin():
        got = reserve_many(session, [(allocation, 2 * HOUR, j) for j in jobs], now=5.0)
    assert got == set(jobs)
    assert _state(h, allocation) == (8 * HOUR, sorted((j, 2 * HOUR) for j in jobs))
    h.platform.stop()


def test_a_chunk_over_the_budget_reserves_the_first_that_fit_in_order(
    tmp_path: Path, database_url: str
) -> None:
    h, allocation, jobs = _world(tmp_path, database_url)
    sizes = [4 * HOUR, 5 * HOUR, 3 * HOUR, 1 * HOUR]  # one by one: 4 + 5 fit, 3 does not, 1 fits
    with h.platform.ctx.sessions() as session, session.begin():
        got = reserve_many(
            session, [(allocation, s, j) for s, j in zip(sizes, jobs, strict=True)], now=5.0
        )
    assert got == {jobs[0], jobs[1], jobs[3]}
    assert _state(h, allocation) == (
        10 * HOUR,
        sorted([(jobs[0], 4 * HOUR), (jobs[1], 5 * HOUR), (jobs[3], 1 * HOUR)]),
    )
    h.platform.stop()


def test_a_closed_allocation_reserves_nothing(tmp_path: Path, database_url: str) -> None:
    h, allocation, jobs = _world(tmp_path, database_url)
    with h.platform.ctx.sessions() as session, session.begin():
        session.execute(
            update(AllocationRow).where(AllocationRow.id == allocation).values(status="closed")
        )
    with h.platform.ctx.sessions() as session, session.begin():
        assert reserve_many(session, [(allocation, HOUR, j) for j in jobs], now=5.0) == set()
    assert _state(h, allocation) == (0, [])
    h.platform.stop()

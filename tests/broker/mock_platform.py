"""A platform on mock sites and a manual clock, and a database's books as comparable data:
shared by the lease, backup and migration tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select

from aifactories.db.models import AllocationRow, ApiTokenRow, JobRow, LedgerEntryRow, UserRow
from aifactories.domain.clock import ManualClock
from aifactories.domain.ids import SiteId
from aifactories.domain.jobs import JobState
from aifactories.executors.base import Executor
from aifactories.executors.mock import MockExecutor
from aifactories.services.core.auth import authenticate
from aifactories.services.demo import load_demo
from aifactories.services.jobs.job_queries import cancel_job
from aifactories.services.jobs.jobs import JobRequest, submit_job
from aifactories.services.platform import Platform
from aifactories.settings import Settings


@dataclass
class MockPlatform:
    platform: Platform
    clock: ManualClock
    tokens: dict[str, str]
    executors: dict[SiteId, Executor]

    def submit(self, user: str = "alice", gpus: int = 4) -> int:
        principal = authenticate(self.platform.ctx, self.tokens[user])
        request = JobRequest(project="aurora-vision", gpus=gpus, time_limit=3600, command=["x"])
        return int(submit_job(self.platform.ctx, principal, request).id)

    def cancel(self, job_id: int, user: str = "alice") -> None:
        cancel_job(self.platform.ctx, authenticate(self.platform.ctx, self.tokens[user]), job_id)

    def job(self, job_id: int) -> JobRow:
        with self.platform.ctx.reads() as session:
            row = session.get(JobRow, job_id)
            assert row is not None
            session.expunge(row)
            return row

    def finish(self, job_id: int) -> None:
        """End a job at its mock site (the broker charges it at its next cycle)."""
        row = self.job(job_id)
        assert row.site_id is not None and row.site_job_id is not None, row.state
        site = self.executors[SiteId(row.site_id)]
        assert isinstance(site, MockExecutor)
        site.finish(row.site_job_id)

    def finish_all(self) -> None:
        with self.platform.ctx.reads() as session:
            ids = session.execute(
                select(JobRow.id).where(
                    JobRow.state.in_([JobState.SUBMITTED.value, JobState.RUNNING.value])
                )
            ).scalars()
            for job_id in list(ids):
                self.finish(job_id)


def mock_platform(
    tmp_path: Path,
    database_url: str,
    *,
    clock: ManualClock | None = None,
    executors: dict[SiteId, Executor] | None = None,
    load: bool = True,
) -> MockPlatform:
    """A migrated platform with the demo data (``load``), on mock sites (``executors`` to
    share them with another platform on the same or a restored database)."""
    clock = clock or ManualClock()
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, run_broker=False)  # type: ignore[call-arg]
    if executors is None:
        probe = Platform(settings, clock=clock)
        executors = {
            site.id: MockExecutor(site, clock) for site in probe.catalogue.operational_sites
        }
        probe.stop()
    platform = Platform(settings, clock=clock, executors=executors)
    platform.migrate()
    tokens = load_demo(platform.ctx).tokens if load else {}
    return MockPlatform(platform, clock, tokens, executors)


def populate(mp: MockPlatform) -> dict[str, list[int]]:
    """Jobs in every state the books know: completed and charged, running, queued at a site,
    pending, cancelled. Returns the job ids by state."""
    done = [mp.submit() for _ in range(3)]
    mp.platform.broker.run_once()
    mp.clock.advance(1800)
    for job_id in done:
        mp.finish(job_id)
    mp.platform.broker.run_once()
    running = [mp.submit(gpus=2) for _ in range(2)]
    mp.platform.broker.run_once()
    cancelled = mp.submit()
    mp.cancel(cancelled)
    pending = mp.submit()  # submitted after the last cycle: pending
    states = {i: mp.job(i).state for i in [*done, *running, cancelled, pending]}
    assert {states[i] for i in done} == {"completed"}, states
    assert {states[i] for i in running} <= {"submitted", "running"}, states
    assert states[cancelled] == "cancelled" and states[pending] == "pending", states
    return {"completed": done, "active": running, "cancelled": [cancelled], "pending": [pending]}


def books(database_url: str) -> dict[str, Any]:
    """Everything the books are made of, as plain sorted data: equal before and after a
    backup and restore or a migration."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return {
                "allocations": sorted(
                    tuple(r)
                    for r in conn.execute(
                        select(
                            AllocationRow.id,
                            AllocationRow.project_id,
                            AllocationRow.granted_gpu_seconds,
                            AllocationRow.reserved_gpu_seconds,
                            AllocationRow.used_gpu_seconds,
                            AllocationRow.status,
                        )
                    )
                ),
                "ledger": sorted(
                    tuple(r)
                    for r in conn.execute(
                        select(
                            LedgerEntryRow.id,
                            LedgerEntryRow.allocation_id,
                            LedgerEntryRow.job_id,
                            LedgerEntryRow.kind,
                            LedgerEntryRow.gpu_seconds,
                        )
                    )
                ),
                "jobs": sorted(
                    tuple(r)
                    for r in conn.execute(
                        select(
                            JobRow.id,
                            JobRow.state,
                            JobRow.site_id,
                            JobRow.site_job_id,
                            JobRow.reserved_gpu_seconds,
                            JobRow.charged_gpu_seconds,
                        )
                    )
                ),
                "users": sorted(conn.execute(select(UserRow.username)).scalars()),
                "tokens": sorted(conn.execute(select(ApiTokenRow.token_hash)).scalars()),
            }
    finally:
        engine.dispose()


def assert_books_consistent(database_url: str) -> None:
    """The books of a database caught at any instant (jobs in flight): each allocation holds
    exactly its jobs' reservations, and its use is exactly its charge entries."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            for a in conn.execute(select(AllocationRow)).all():
                held = conn.execute(
                    select(func.coalesce(func.sum(JobRow.reserved_gpu_seconds), 0)).where(
                        JobRow.allocation_id == a.id
                    )
                ).scalar_one()
                charged = conn.execute(
                    select(func.coalesce(func.sum(LedgerEntryRow.gpu_seconds), 0)).where(
                        LedgerEntryRow.allocation_id == a.id, LedgerEntryRow.kind == "charge"
                    )
                ).scalar_one()
                assert (a.reserved_gpu_seconds, a.used_gpu_seconds) == (held, charged), a.id
    finally:
        engine.dispose()

"""The broker lease: one leader at a time, and fencing, on SQLite and PostgreSQL.

Lease times come from an injected clock and each instance's "monotonic" reading from a
counter the test moves, so a *paused* leader is one whose own clock stands still while the
database's moves on: it still believes it leads, and only the fence stops it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, func, select, text
from typer.testing import CliRunner

from aifactories.broker import Broker, loop
from aifactories.broker.lease import BrokerLease, LeaseLost
from aifactories.cli.admin import db_app
from aifactories.db.models import AllocationRow, JobRow, LedgerEntryRow
from aifactories.domain.ids import SiteId
from aifactories.executors.base import SiteJobStatus, SubmitRequest
from aifactories.executors.mock import MockExecutor
from aifactories.services.platform import Platform
from aifactories.settings import Settings
from tests.broker.mock_platform import MockPlatform as Harness
from tests.broker.mock_platform import mock_platform

PERIOD = 10.0


class Ticks:
    """An instance's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def harness(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    h = mock_platform(tmp_path, database_url)
    yield h
    h.platform.stop()


@dataclass
class Instance:
    lease: BrokerLease
    ticks: Ticks
    broker: Broker


def _instance(h: Harness, name: str) -> Instance:
    ticks = Ticks()
    lease = BrokerLease(
        h.platform.ctx.sessions, holder=name, period_s=PERIOD, clock=h.clock, monotonic=ticks
    )
    broker = Broker(
        session_factory=h.platform.ctx.sessions,
        read_factory=h.platform.ctx.reads,
        catalogue=h.platform.catalogue,
        executors=h.executors,
        policy="first_fit",
        clock=h.clock,
    )
    broker.lead_with(lease)
    return Instance(lease, ticks, broker)


def _submissions(h: Harness) -> int:
    return sum(
        len([c for c in e.calls if c[0] == "submit"])
        for e in h.executors.values()
        if isinstance(e, MockExecutor)
    )


def _books(h: Harness, job_id: int) -> tuple[str, int, int]:
    with h.platform.ctx.reads() as s:
        job = s.get(JobRow, job_id)
        assert job is not None
        reserved = s.execute(select(func.sum(AllocationRow.reserved_gpu_seconds))).scalar_one()
        entries = s.execute(
            select(func.count()).select_from(LedgerEntryRow).where(LedgerEntryRow.job_id == job_id)
        ).scalar_one()
        return job.state, int(reserved or 0), int(entries)


def test_one_holder_at_a_time_and_takeover_after_expiry(harness: Harness) -> None:
    a, b = _instance(harness, "a"), _instance(harness, "b")
    assert a.lease.tick() and a.lease.epoch == 1
    assert not b.lease.tick() and b.lease.epoch is None
    harness.clock.advance(PERIOD / 2)
    a.ticks.value += PERIOD / 2
    assert a.lease.tick()  # renewed: the expiry moves on
    harness.clock.advance(PERIOD * 0.9)
    assert not b.lease.tick()  # still A's: 0.9 periods since the renewal
    view = b.lease.view()
    assert view.active and view.holder == "a" and view.epoch == 1
    harness.clock.advance(PERIOD * 0.2)
    assert b.lease.tick() and b.lease.epoch == 2  # expired: B takes it, a new epoch
    assert not a.lease.tick() and a.lease.epoch is None  # A's renewal fails; B holds it


def _take_over(h: Harness, b: Instance) -> None:
    """A pauses here: the database's clock passes A's expiry and B takes the lease. A's own
    clock stands still, so A still believes it leads."""
    h.clock.advance(PERIOD + 1)
    assert b.lease.tick()


def test_paused_leader_cannot_commit_a_reservation(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = _instance(harness, "a"), _instance(harness, "b")
    assert a.lease.tick()
    job_id = harness.submit()
    real_apply = loop.apply_placements

    def paused_then_apply(*args: Any, **kwargs: Any) -> Any:
        _take_over(harness, b)  # after A's decision, before its reservation
        assert a.lease.epoch == 1
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(loop, "apply_placements", paused_then_apply)
    with pytest.raises(LeaseLost):
        a.broker.run_once()
    monkeypatch.setattr(loop, "apply_placements", real_apply)
    assert _books(harness, job_id) == ("pending", 0, 0)  # nothing reserved, nothing written
    assert _submissions(harness) == 0  # and nothing sent to a site
    assert a.lease.epoch is None  # the refusal taught A that it lost
    b.broker.run_once()
    state, reserved, entries = _books(harness, job_id)
    assert state in ("submitted", "running") and reserved > 0 and entries == 1
    assert _submissions(harness) == 1


def test_paused_leader_cannot_record_a_site_job_id(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paused after the site took the job, before recording its id: the record is refused;
    the new leader adopts the job by its tag (no second submission)."""
    a, b = _instance(harness, "a"), _instance(harness, "b")
    assert a.lease.tick()
    job_id = harness.submit()
    site = next(e for e in harness.executors.values() if isinstance(e, MockExecutor))
    real_submit = site.submit

    def submit_then_pause(request: SubmitRequest) -> str:
        site_job_id = real_submit(request)
        _take_over(harness, b)
        return site_job_id

    monkeypatch.setattr(site, "submit", submit_then_pause)
    with pytest.raises(LeaseLost):
        a.broker.run_once()
    monkeypatch.setattr(site, "submit", real_submit)
    with harness.platform.ctx.reads() as s:
        job = s.get(JobRow, job_id)
        assert job is not None and job.state == "placed" and job.site_job_id is None
    b.broker.run_once()  # reconcile adopts it by tag
    with harness.platform.ctx.reads() as s:
        job = s.get(JobRow, job_id)
        assert job is not None and job.state in ("submitted", "running") and job.site_job_id
    assert _submissions(harness) == 1


def test_paused_leader_cannot_charge_a_finished_job(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paused after polling a finished job, before charging it: only the new leader charges,
    once."""
    a, b = _instance(harness, "a"), _instance(harness, "b")
    assert a.lease.tick()
    job_id = harness.submit()
    a.broker.run_once()
    with harness.platform.ctx.reads() as s:
        job = s.get(JobRow, job_id)
        assert job is not None and job.site_id is not None and job.site_job_id is not None
        site = harness.executors[SiteId(job.site_id)]
        site_job_id = job.site_job_id
    assert isinstance(site, MockExecutor)
    harness.clock.advance(PERIOD / 2)
    a.ticks.value += PERIOD / 2
    assert a.lease.tick() and a.lease.epoch == 1  # renewed while the job ran
    site.finish(site_job_id, elapsed_s=PERIOD / 2)
    real_poll = site.poll

    def poll_then_pause(site_job_ids: Sequence[str]) -> dict[str, SiteJobStatus]:
        statuses = real_poll(site_job_ids)
        _take_over(harness, b)
        return statuses

    monkeypatch.setattr(site, "poll", poll_then_pause)
    with pytest.raises(LeaseLost):
        a.broker.run_once()
    monkeypatch.setattr(site, "poll", real_poll)
    assert _books(harness, job_id)[0] == "submitted"  # A's write never committed
    b.broker.run_once()
    state, reserved, _entries = _books(harness, job_id)
    assert (state, reserved) == ("completed", 0)
    with harness.platform.ctx.reads() as s:
        charges = s.execute(
            select(func.count())
            .select_from(LedgerEntryRow)
            .where(LedgerEntryRow.job_id == job_id, LedgerEntryRow.kind == "charge")
        ).scalar_one()
    assert charges == 1


def test_expired_lease_fences_even_with_no_new_leader(harness: Harness) -> None:
    a = _instance(harness, "a")
    assert a.lease.tick()
    job_id = harness.submit()
    harness.clock.advance(PERIOD + 1)  # nobody took it, but A's lease is over
    with pytest.raises(LeaseLost):
        a.broker.run_once()
    assert _books(harness, job_id) == ("pending", 0, 0)
    assert a.lease.tick() and a.lease.epoch == 2  # it may take it again: a new term
    a.broker.run_once()
    assert _books(harness, job_id)[0] in ("submitted", "running")


def test_local_deadline_stops_a_leader_that_cannot_renew(harness: Harness) -> None:
    a = _instance(harness, "a")
    assert a.lease.tick()
    harness.submit()
    a.ticks.value += PERIOD  # no renewal reached the database for a whole period
    assert not a.lease.held()
    with pytest.raises(LeaseLost):
        a.broker.run_once()  # refused before talking to any site or the database
    assert _submissions(harness) == 0


def test_release_hands_over_at_once_and_same_name_takes_back(harness: Harness) -> None:
    a, b = _instance(harness, "a"), _instance(harness, "b")
    assert a.lease.tick()
    a.lease.release()
    assert not a.lease.held()
    assert b.lease.tick() and b.lease.epoch == 2  # no wait for the expiry
    # B's process dies; B restarted (same name, new process) does not wait for the expiry
    b_again = _instance(harness, "b")
    assert b_again.lease.tick() and b_again.lease.epoch == 3
    with pytest.raises(LeaseLost):
        b.broker.run_once()  # the dead process's epoch is fenced out


@pytest.mark.postgres
def test_takeover_waits_for_the_old_leaders_transaction(
    harness: Harness, database_url: str
) -> None:
    """On PostgreSQL the fence's row lock is held to commit: a takeover that comes while the
    old leader's reservation is in flight waits for it, so that reservation either commits
    before the new term starts (and the new leader's reconcile sees it) or not at all."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises every write transaction: nothing to interleave")
    a, b = _instance(harness, "a"), _instance(harness, "b")
    assert a.lease.tick()
    fenced = a.lease.fenced(harness.platform.ctx.sessions)
    with fenced() as session, session.begin():
        session.execute(text("SELECT 1"))  # the check ran and share-locked the lease row
        harness.clock.advance(PERIOD + 1)
        taker = threading.Thread(target=b.lease.tick)
        taker.start()
        _wait_for_lock_wait(database_url)
        assert taker.is_alive() and b.lease.epoch is None
    taker.join(timeout=30)
    assert b.lease.epoch == 2
    with pytest.raises(LeaseLost), fenced() as session, session.begin():
        session.execute(text("SELECT 1"))


def _wait_for_lock_wait(database_url: str) -> None:
    """Until some backend of this database waits for a row lock (the taker's FOR UPDATE)."""
    engine = create_engine(database_url)
    try:
        for _ in range(3000):
            with engine.connect() as conn:
                waiting = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                ).scalar_one()
            if waiting:
                return
            threading.Event().wait(0.01)
        raise AssertionError("the takeover never waited for the lease row")
    finally:
        engine.dispose()


def test_platform_leads_only_with_the_lease(tmp_path: Path, database_url: str) -> None:
    """Two platforms on one database: the first one started leads; the second stands by
    and takes over when the first stops (it releases the lease)."""
    settings = {
        "database_url": database_url,
        "run_broker": False,
        "executor": "mock",
        "lease_period_s": 4.0,
        "lease_renew_interval_s": 0.05,
        "site_sync_interval_s": 0,
    }
    first = Platform(Settings(data_dir=tmp_path / "1", instance_name="one", **settings))  # type: ignore[arg-type]
    first.migrate()
    second = Platform(Settings(data_dir=tmp_path / "2", instance_name="two", **settings))  # type: ignore[arg-type]
    try:
        first.start_broker()
        second.start_broker()
        assert first.lease.held() and not second.lease.held()
        assert second.lease.view().holder == "one"
        first.stop()
        for _ in range(2000):
            if second.lease.held():
                break
            threading.Event().wait(0.01)
        assert second.lease.view().holder == "two"
    finally:
        first.stop()
        second.stop()


def test_renew_interval_must_leave_room_for_a_late_renewal() -> None:
    with pytest.raises(ValidationError, match="at most half"):
        Settings(lease_period_s=4, lease_renew_interval_s=3)


def test_aif_db_lease_names_the_leader(
    harness: Harness, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIFACTORIES_DATABASE_URL", database_url)
    monkeypatch.setenv("AIFACTORIES_DATA_DIR", str(tmp_path / "cli"))
    runner = CliRunner()
    result = runner.invoke(db_app, ["lease"])
    assert result.exit_code == 0, result.output
    assert "no instance leads the broker (epoch 0)" in result.output
    lease = BrokerLease(harness.platform.ctx.sessions, holder="host-a:8000", period_s=PERIOD)
    assert lease.tick()  # the database's clock: the CLI reads the same one
    result = runner.invoke(db_app, ["lease"])
    assert result.exit_code == 0, result.output
    assert "host-a:8000 leads the broker (epoch 1;" in result.output


def test_a_missing_lease_row_is_made_and_taken(harness: Harness) -> None:
    """Databases made with create_all, not the migration, have no lease row at first."""
    with harness.platform.ctx.sessions() as session, session.begin():
        session.execute(text("DELETE FROM leases"))
    a = _instance(harness, "a")
    assert a.lease.tick() and a.lease.epoch == 1

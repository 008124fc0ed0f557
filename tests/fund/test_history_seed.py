"""The seeded year of the programme: written through the services at its virtual times, the
same for the same seed, covering every organisation kind, domain and outcome, with books
that balance."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from aifactories.db.models import AllocationRow, JobRow, LedgerEntryRow
from aifactories.db.programme_models import AuditRow, ProposalRow
from aifactories.domain.clock import ManualClock
from aifactories.domain.errors import Conflict
from aifactories.domain.organisations import Domain, OrganisationKind
from aifactories.services.demo import load_demo
from aifactories.services.fund.history_seed import SeededHistory, seed_history
from aifactories.services.platform import Platform
from aifactories.settings import Settings

DAY_S = 86400.0


def _platform(tmp: Path, url: str | None = None) -> tuple[Platform, ManualClock]:
    clock = ManualClock()
    settings = Settings(
        data_dir=tmp / "data", database_url=url or f"sqlite:///{tmp / 'aif.db'}", run_broker=False
    )
    platform = Platform(settings, clock=clock)
    platform.migrate()
    load_demo(platform.ctx)
    return platform, clock


def _seed(platform: Platform, clock: ManualClock) -> SeededHistory:
    return seed_history(platform.ctx, start=clock.now() + DAY_S, days=200, proposals=30, seed=11)


def _everything(platform: Platform) -> dict[str, list[Any]]:
    """What the history wrote, with its times, in a comparable form."""
    with platform.ctx.reads() as session:
        return {
            "audit": [
                tuple(r)
                for r in session.execute(
                    select(AuditRow.at, AuditRow.action, AuditRow.subject).order_by(AuditRow.id)
                )
            ],
            "ledger": [
                tuple(r)
                for r in session.execute(
                    select(
                        LedgerEntryRow.at, LedgerEntryRow.kind, LedgerEntryRow.gpu_seconds
                    ).order_by(LedgerEntryRow.id)
                )
            ],
            "jobs": [
                tuple(r)
                for r in session.execute(
                    select(
                        JobRow.submitted_at,
                        JobRow.started_at,
                        JobRow.ended_at,
                        JobRow.partition_id,
                        JobRow.charged_gpu_seconds,
                    ).order_by(JobRow.id)
                )
            ],
        }


def test_the_same_seed_writes_the_same_history(tmp_path: Path) -> None:
    written = []
    for name in ("one", "two"):
        platform, clock = _platform(tmp_path / name)
        _seed(platform, clock)
        written.append(_everything(platform))
        platform.stop()
    assert written[0] == written[1]
    assert len(written[0]["jobs"]) > 50 and len(written[0]["ledger"]) > 100


def test_the_history_covers_the_programme_and_its_books_balance(
    tmp_path: Path, database_url: str
) -> None:
    platform, clock = _platform(tmp_path, database_url)
    try:
        history = _seed(platform, clock)
        kinds = {p.kind for p in history.proposals}
        assert kinds == {k.value for k in OrganisationKind}
        assert {p.domain for p in history.proposals} == {d.value for d in Domain}
        assert {p.mode for p in history.proposals} == {"playground", "fast_lane", "large_scale"}
        assert any(not p.awarded for p in history.proposals)
        assert history.extensions
        with platform.ctx.reads() as session:
            # every step happened at its virtual time, inside the history
            first, last = session.execute(
                select(func.min(AuditRow.at), func.max(AuditRow.at)).where(
                    AuditRow.at >= history.start
                )
            ).one()
            assert history.start <= first and last <= history.end
            awarded = session.scalar(
                select(func.count())
                .select_from(ProposalRow)
                .where(ProposalRow.status == "awarded", ProposalRow.submitted_at >= history.start)
            )
            assert awarded == sum(p.awarded for p in history.proposals)
            # nothing happened after the end: jobs running then keep their reservation
            late = session.scalar(
                select(func.count())
                .select_from(JobRow)
                .where((JobRow.submitted_at >= history.end) | (JobRow.ended_at >= history.end))
            )
            assert late == 0
            states = dict(
                session.execute(select(JobRow.state, func.count()).group_by(JobRow.state)).all()
            )
            assert states.get("completed", 0) > 0.8 * sum(states.values())
            # each allocation's used is its charges, its reserved its running jobs'
            for alloc in session.scalars(
                select(AllocationRow).where(AllocationRow.starts_at >= history.start)
            ):
                charged = session.scalar(
                    select(func.sum(LedgerEntryRow.gpu_seconds)).where(
                        LedgerEntryRow.allocation_id == alloc.id, LedgerEntryRow.kind == "charge"
                    )
                )
                held = session.scalar(
                    select(func.sum(JobRow.reserved_gpu_seconds)).where(
                        JobRow.allocation_id == alloc.id, JobRow.state == "running"
                    )
                )
                assert alloc.reserved_gpu_seconds == int(held or 0)
                assert alloc.used_gpu_seconds == int(charged or 0)
                assert alloc.reserved_gpu_seconds + alloc.used_gpu_seconds <= (
                    alloc.granted_gpu_seconds
                )
        with pytest.raises(Conflict, match="seeded already"):
            _seed(platform, clock)
    finally:
        platform.stop()


@pytest.mark.parametrize("ending", ["2026-12-07T01:03:55", "2026-06-30T12:00:00"])
def test_a_default_year_submits_each_job_inside_its_allocation(tmp_path: Path, ending: str) -> None:
    # The command's defaults (a year ending now, 60 proposals): a project's jobs spread over
    # weeks, and none may come after its allocation ends (the budget would refuse it and the
    # seed stop halfway).
    end = datetime.fromisoformat(ending).replace(tzinfo=UTC).timestamp()
    clock = ManualClock(end - 40.0)
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'aif.db'}",
        run_broker=False,
    )
    platform = Platform(settings, clock=clock)
    platform.migrate()
    load_demo(platform.ctx)
    clock.advance(35.0)
    history = seed_history(platform.ctx)  # the command's defaults: a year ending now
    assert len(history.proposals) == 60
    with platform.ctx.reads() as session:
        for row in session.scalars(select(JobRow).where(JobRow.name == "seeded")):
            alloc = session.get(AllocationRow, row.allocation_id)
            assert alloc is not None and alloc.starts_at <= row.submitted_at < alloc.ends_at


def test_the_command_refuses_while_the_platform_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A running platform's broker would place the seeded jobs as they are written and
    # reserve their budgets twice (a seed beside 'aif up' stopped halfway on "budget").
    from typer.testing import CliRunner

    from aifactories.cli.main import app

    monkeypatch.setenv("AIFACTORIES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("AIFACTORIES_DATABASE_URL", raising=False)
    platform = Platform(Settings())
    platform.migrate()
    load_demo(platform.ctx)
    platform.lease.tick()  # as 'aif up' does: this instance now leads the broker
    try:
        result = CliRunner().invoke(app, ["programme", "seed-history", "--days", "30"])
    finally:
        platform.stop()
    assert result.exit_code == 1
    assert "stop 'aif up'" in result.output
    with platform.ctx.reads() as session:
        assert session.scalar(select(func.count()).select_from(ProposalRow)) == 0

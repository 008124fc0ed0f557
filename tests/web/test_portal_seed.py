"""The volume seed of the portal's benchmark (services/volume_seed.py), at a tiny size: it
writes what it says, keeps the ledger's and the programme's invariants, and the services
read its rows as they read real ones."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from aifactories.db.models import AllocationRow, JobRow, LedgerEntryRow
from aifactories.db.programme_models import (
    CallRow,
    ProposalRow,
    ReviewRow,
    TechnicalCheckRow,
)
from aifactories.services.volume_seed import seed_volume
from tests.api.harness import Harness, make_harness


def _seed(h: Harness) -> None:
    seeded = seed_volume(h.platform.ctx, jobs=300, proposals=200, seed=7)
    assert (seeded.jobs, seeded.proposals, seeded.calls) == (300, 200, 5)
    with h.platform.ctx.reads() as session:
        assert session.scalar(select(func.count()).select_from(JobRow)) == 300
        assert session.scalar(select(func.count()).select_from(ProposalRow)) == 200
        assert session.scalar(select(func.count()).select_from(ReviewRow)) == seeded.reviews
        assert session.scalar(select(func.count()).select_from(LedgerEntryRow)) == (
            seeded.ledger_entries
        )


def test_jobs_in_many_states_over_every_project_with_consistent_books(h: Harness) -> None:
    _seed(h)
    with h.platform.ctx.reads() as session:
        jobs = list(session.scalars(select(JobRow)))
        states = Counter(j.state for j in jobs)
        assert {"pending", "running", "completed", "failed", "cancelled"} <= set(states)
        assert len({j.project_id for j in jobs}) == 5  # every demo project
        for allocation in session.scalars(select(AllocationRow)):
            mine = [j for j in jobs if j.allocation_id == allocation.id]
            charged = session.scalar(
                select(func.coalesce(func.sum(LedgerEntryRow.gpu_seconds), 0)).where(
                    LedgerEntryRow.allocation_id == allocation.id, LedgerEntryRow.kind == "charge"
                )
            )
            # used is the sum of the charges; reserved is what the active jobs hold
            assert (
                allocation.used_gpu_seconds == charged == sum(j.charged_gpu_seconds for j in mine)
            )
            assert allocation.reserved_gpu_seconds == sum(
                j.reserved_gpu_seconds
                for j in mine
                if j.state in ("placed", "submitted", "running")
            )
            assert allocation.reserved_gpu_seconds + allocation.used_gpu_seconds <= (
                allocation.granted_gpu_seconds
            )
        for job in jobs:
            assert (job.site_id is None) == (job.state == "pending" or job.placed_at is None)
            if job.state in ("completed", "failed", "timeout"):
                assert job.started_at is not None and job.ended_at is not None


def test_proposals_have_what_their_states_imply(h: Harness) -> None:
    _seed(h)
    with h.platform.ctx.reads() as session:
        modes = {i: m for i, m in session.execute(select(CallRow.id, CallRow.mode))}
        assert sorted(modes.values()) == sorted(
            ["playground", "fast_lane", "large_scale", "ai_for_science", "education"]
        )
        proposals = {p.id: p for p in session.scalars(select(ProposalRow))}
        assert len({p.status for p in proposals.values()}) >= 7
        reviews = list(session.scalars(select(ReviewRow)))
        assert reviews
        for review in reviews:
            proposal = proposals[review.proposal_id]
            assert modes[proposal.call_id] in ("large_scale", "ai_for_science")
            assert proposal.status in ("under_review", "accepted", "rejected", "awarded")
            if proposal.status != "under_review":
                assert review.status == "submitted" and review.scores
        for check in session.scalars(select(TechnicalCheckRow)):
            assert modes[proposals[check.proposal_id].call_id] in ("fast_lane", "education")
        for proposal in proposals.values():
            assert (proposal.project_id is not None) == (proposal.status == "awarded")
            assert (proposal.submitted_at is None) == (proposal.status == "draft")


def test_the_services_read_the_seeded_rows(h: Harness) -> None:
    _seed(h)
    alice = h.client("alice")
    mine = alice.get("/proposals", params={"limit": 10_000})
    assert mine.status_code == 200
    assert mine.json() and {p["pi"] for p in mine.json()} == {"alice"}
    rita = h.client("rita").get("/reviews")
    assert rita.status_code == 200 and rita.json()
    jobs = alice.get("/jobs", params={"project": "aurora-vision"})
    assert jobs.status_code == 200 and jobs.json()


def test_the_same_seed_writes_the_same_rows(h: Harness, tmp_path: Path) -> None:
    other = make_harness(tmp_path / "other", f"sqlite:///{tmp_path / 'other.db'}")
    try:
        rows = []
        for harness in (h, other):
            seed_volume(harness.platform.ctx, jobs=50, proposals=30, seed=3)
            with harness.platform.ctx.reads() as session:
                jobs = session.execute(
                    select(JobRow.name, JobRow.state, JobRow.gpus, JobRow.charged_gpu_seconds)
                ).all()
                proposals = session.execute(
                    select(ProposalRow.title, ProposalRow.status, ProposalRow.score)
                ).all()
                rows.append((sorted(jobs), sorted(proposals, key=str)))
        assert rows[0] == rows[1]
    finally:
        other.platform.stop()

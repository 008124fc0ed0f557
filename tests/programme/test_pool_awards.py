"""A first-come award funded by a call's pool is usable at every site the proposal allows
(its hardware and residency), and only there; each GPU-hour is charged at the billing weight
of the partition where the job ran.

Found by issue 12: a Playground award from the pool went to the first candidate site in the
catalogue (bsc-aif, billing weight 2) although the proposal could run at all eight.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from aifactories.broker.failover import _has_allocation
from aifactories.broker.site_accounts import LedgerAllocation, LedgerProject, desired_site
from aifactories.db.jobs import charge_usage
from aifactories.db.models import AllocationRow, JobRow, ProjectRow
from aifactories.db.programme_models import NotificationRow
from aifactories.domain.ids import AllocationId, ProjectId, SiteId
from aifactories.domain.projects import Allocation, AllocationStatus
from aifactories.executors.mock import MockExecutor
from aifactories.ledger.usage_split import UsagePiece
from aifactories.programme.periods import month_starts
from aifactories.scheduling.working import Budgets
from aifactories.services.programme.award_runs import _held_by_allocations
from tests.api.harness import Harness, make_harness
from tests.api.programme_helpers import draft, open_call, submit

H = 3600


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, database_url)
    yield harness
    harness.platform.stop()


def _allocation(h: Harness, code: str) -> AllocationRow:
    with h.platform.ctx.sessions() as s:
        project = s.scalars(select(ProjectRow).where(ProjectRow.code == code)).one()
        row = s.scalars(select(AllocationRow).where(AllocationRow.project_id == project.id)).one()
        s.expunge(row)
        return row


def _job(h: Harness, job_id: int) -> JobRow:
    with h.platform.ctx.sessions() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        s.expunge(row)
        return row


def _submit(h: Harness, user: str, project: str, **spec: Any) -> Any:
    body = {"project": project, "gpus": 4, "time_limit": "2:00:00", "command": ["true"], **spec}
    return h.client(user).post("/jobs", json=body)


def _run(h: Harness, user: str, project: str, hours: float, **spec: Any) -> JobRow:
    """Submit, place, start and finish a job after ``hours`` of use; the job's final row."""
    response = _submit(h, user, project, **spec)
    assert response.status_code == 201, response.text
    h.cycle()
    job = _job(h, response.json()["id"])
    assert job.state == "submitted" and job.site_id and job.site_job_id, job.reason
    site = h.executors[job.site_id]
    assert isinstance(site, MockExecutor)
    site.finish(job.site_job_id, elapsed_s=hours * H)
    h.cycle()
    done = _job(h, job.id)
    assert done.state == "completed", done.reason
    return done


def test_a_playground_pool_award_is_usable_at_every_site_the_proposal_allows(h: Harness) -> None:
    open_call(h, "pg", "playground", budget_gpu_hours={"pool": 5000})
    awarded = submit(h, "alice", draft(h, "alice", "pg", requested_gpu_hours=500)["id"])
    assert awarded["status"] == "awarded", awarded["checks"]
    code = awarded["project"]
    alloc = _allocation(h, code)
    operational = sorted(s.id for s in h.platform.catalogue.operational_sites)
    assert len(operational) == 8
    # drawn from the pool, so usable at any of the sites that can host the proposal
    assert alloc.site_id is None and sorted(alloc.pool_sites or ()) == operational
    # jobs whose hardware exists at one site only are admitted and run there
    for model, site in (("MI250X", "lumi-aif"), ("A100", "it4lia"), ("H200", "brain-plus-plus")):
        countries = ["IT"] if site == "it4lia" else []
        response = _submit(h, "alice", code, gpu_model=model, countries=countries)
        assert response.status_code == 201, response.text
        h.cycle(2)
        job = _job(h, response.json()["id"])
        assert (job.state, job.site_id, job.allocation_id) == ("running", site, alloc.id)
    # the call's pool shrank by the award
    assert h.client("oscar").get("/calls/pg").json()["budget_left_gpu_hours"] == {"pool": 4500}


def test_a_pool_award_is_not_usable_where_the_proposal_does_not_allow(h: Harness) -> None:
    open_call(h, "pg", "playground", budget_gpu_hours={"pool": 5000})
    body = {"requested_gpu_hours": 500, "residency": ["FI", "IT"]}
    awarded = submit(h, "alice", draft(h, "alice", "pg", **body)["id"])
    assert awarded["status"] == "awarded", awarded["checks"]
    code = awarded["project"]
    alloc = _allocation(h, code)
    assert alloc.site_id is None and sorted(alloc.pool_sites or ()) == ["it4lia", "lumi-aif"]
    balance = h.client("alice").get(f"/projects/{code}/balance").json()
    assert [a["pool_sites"] for a in balance["allocations"]] == [["it4lia", "lumi-aif"]]
    # H100 exists only at bsc-aif (Spain), outside the proposal's residency: no budget there
    refused = _submit(h, "alice", code, gpu_model="H100")
    assert refused.status_code == 409, refused.text
    assert "budget" in refused.json()["message"]
    # a job that could run anywhere is placed only where the allocation may be used
    anywhere = _submit(h, "alice", code)
    assert anywhere.status_code == 201, anywhere.text
    h.cycle(2)
    job = _job(h, anywhere.json()["id"])
    assert job.state == "running" and job.site_id in ("it4lia", "lumi-aif"), job.reason


def test_usage_outside_the_broker_is_charged_to_a_pool_only_at_its_sites(h: Harness) -> None:
    open_call(h, "pg", "playground", budget_gpu_hours={"pool": 5000})
    body = {"requested_gpu_hours": 500, "residency": ["FI", "IT"]}
    code = submit(h, "alice", draft(h, "alice", "pg", **body)["id"])["project"]
    alloc = _allocation(h, code)
    now = h.clock.now()
    piece = [UsagePiece(now, now + 60, 3600)]
    with h.platform.ctx.sessions() as s, s.begin():
        # usage at a site the proposal excluded finds no allocation; at one it allows, it does
        assert charge_usage(s, alloc.project_id, "bsc-aif", piece, now) == piece
        assert charge_usage(s, alloc.project_id, "lumi-aif", piece, now) == []
    assert _allocation(h, code).used_gpu_seconds == 3600
    # the site accounts agent gives the project a Slurm account only where it may run
    ledger = LedgerProject(
        code,
        frozenset({"alice"}),
        (LedgerAllocation(None, 1, 0, "open", 0, 2 * now, frozenset(alloc.pool_sites or ())),),
    )
    for site, wanted in (("lumi-aif", True), ("bsc-aif", False)):
        accounts = desired_site([ledger], site, 1.0, "svc", now).accounts
        assert (code in accounts) is wanted, site


def test_capacity_planning_and_failover_see_a_pool_only_at_its_sites(h: Harness) -> None:
    starts = month_starts(h.clock.now(), 2)
    with h.platform.ctx.sessions() as s:
        before = _held_by_allocations(h.platform.ctx, s, starts)
    open_call(h, "pg", "playground", budget_gpu_hours={"pool": 5000})
    body = {"requested_gpu_hours": 500, "residency": ["FI", "IT"]}
    code = submit(h, "alice", draft(h, "alice", "pg", **body)["id"])["project"]
    project_id = _allocation(h, code).project_id
    with h.platform.ctx.sessions() as s:
        after = _held_by_allocations(h.platform.ctx, s, starts)
        # the next award run counts the award as held only where it can be used
        grew = {p for p in after if sum(after[p]) > sum(before[p]) + 1e-6}
        assert grew == {"it4lia/booster", "lumi-aif/lumi-g"}
        assert sum(sum(after[p]) - sum(before[p]) for p in grew) == pytest.approx(500)
        # a job is moved away from a site that is down only to where its project may pay
        assert _has_allocation(s, project_id, [SiteId("lumi-aif")])
        assert not _has_allocation(s, project_id, [SiteId("bsc-aif"), SiteId("jaif")])


def test_a_site_line_still_funds_an_award_at_that_site(h: Harness) -> None:
    open_call(h, "pg", "playground", budget_gpu_hours={"lumi-aif": 1000, "pool": 5000})
    awarded = submit(h, "alice", draft(h, "alice", "pg", requested_gpu_hours=500)["id"])
    alloc = _allocation(h, awarded["project"])
    assert (alloc.site_id, alloc.pool_sites) == ("lumi-aif", None)
    left = h.client("oscar").get("/calls/pg").json()["budget_left_gpu_hours"]
    assert left == {"lumi-aif": 500, "pool": 5000}


def test_a_pool_gpu_hour_is_charged_at_the_weight_of_the_partition_it_ran_on(h: Harness) -> None:
    open_call(h, "pg", "playground", budget_gpu_hours={"pool": 5000})
    code = submit(h, "alice", draft(h, "alice", "pg", requested_gpu_hours=500)["id"])["project"]
    granted = _allocation(h, code).granted_gpu_seconds
    weights = {
        str(p.id): p.billing_weight
        for s in h.platform.catalogue.operational_sites
        for p in s.partitions
    }
    h100 = _run(h, "alice", code, 1.5, gpu_model="H100")  # bsc-aif/acc, weight 2
    a100 = _run(h, "alice", code, 1.5, gpu_model="A100", countries=["IT"])  # it4lia, weight 1
    assert (h100.partition_id, a100.partition_id) == ("bsc-aif/acc", "it4lia/booster")
    assert (weights["bsc-aif/acc"], weights["it4lia/booster"]) == (2.0, 1.0)
    assert h100.charged_gpu_seconds == round(4 * 1.5 * H * 2.0)
    assert a100.charged_gpu_seconds == round(4 * 1.5 * H * 1.0)
    after = _allocation(h, code)
    assert after.used_gpu_seconds == h100.charged_gpu_seconds + a100.charged_gpu_seconds
    assert after.reserved_gpu_seconds == 0
    assert after.granted_gpu_seconds == granted


def test_a_fast_lane_award_from_the_pool_is_usable_beyond_the_checking_site(h: Harness) -> None:
    open_call(h, "fl", "fast_lane", budget_gpu_hours={"pool": 40_000})
    body = {"requested_gpu_hours": 20_000, "gpu_model": "A100", "largest_job_gpus": 4}
    waiting = submit(h, "dario", draft(h, "dario", "fl", **body)["id"])
    assert waiting["status"] == "technical_check"
    accepted = h.client("sam").post(
        f"/proposals/{waiting['id']}/technical-check",
        json={"outcome": "accept", "reason": "fits", "site_id": "it4lia"},
    )
    assert accepted.json()["status"] == "awarded", accepted.text
    code = accepted.json()["project"]
    alloc = _allocation(h, code)
    # every A100 site, whoever checked it; never the sites with other GPUs
    assert alloc.site_id is None
    assert sorted(alloc.pool_sites or ()) == ["czai", "it4lia", "meluxina-ai", "slaif"]
    listed = h.client("dario").get(f"/projects/{code}/allocations").json()
    assert [a["pool_sites"] for a in listed] == [["czai", "it4lia", "meluxina-ai", "slaif"]]
    with h.platform.ctx.sessions() as s:
        told = s.scalars(
            select(NotificationRow.body).where(NotificationRow.event == "proposal.awarded")
        ).one()
    assert "20,000 GPU-hours at any of czai, it4lia, meluxina-ai, slaif" in told


def _pool(id_: int, sites: tuple[str, ...] | None, left: int = 1000) -> Allocation:
    return Allocation(
        id=AllocationId(id_),
        project_id=ProjectId(1),
        site_id=None,
        granted_gpu_seconds=left,
        reserved_gpu_seconds=0,
        used_gpu_seconds=0,
        starts_at=0.0,
        ends_at=100.0,
        status=AllocationStatus.OPEN,
        pool_sites=None if sites is None else frozenset(map(SiteId, sites)),
    )


def test_the_broker_pays_from_a_pool_only_at_its_sites() -> None:
    at_a = replace(_pool(1, None), site_id=SiteId("a"))
    narrow, wide = _pool(2, ("a", "b")), _pool(3, None)
    budgets = Budgets([wide, narrow, at_a], 10.0, map(SiteId, ("a", "b", "c")))
    # the site's own allocation first, then the pools usable there, each by lowest id
    assert budgets.orders(ProjectId(1)) == {"a": (1, 2, 3), "b": (2, 3), "c": (3,)}
    only_narrow = Budgets([narrow], 10.0, map(SiteId, ("a", "b", "c")))
    assert only_narrow.covers(ProjectId(1)) == {"a", "b"}
    assert only_narrow.find(ProjectId(1), SiteId("c"), 1) is None
    assert only_narrow.find(ProjectId(1), SiteId("b"), 1000) == 2
    assert [narrow.usable_at(SiteId(s), 10.0) for s in "abc"] == [True, True, False]
    assert [wide.usable_at(SiteId(s), 10.0) for s in "abc"] == [True, True, True]

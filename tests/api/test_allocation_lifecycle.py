"""The allocation lifecycle through the REST API and the real broker, on SQLite and PostgreSQL,
with mock sites that start jobs only when told (so that jobs can be held queued at a site):
usage alerts, expiry, close (books balance), extension and transfer requests, member caps."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from aifactories.cli import allocations as cli_allocations
from aifactories.cli.client import Client
from aifactories.cli.config import Profile
from aifactories.db.jobs import try_reserve
from aifactories.db.models import (
    AllocationRow,
    JobRow,
    LedgerEntryRow,
    MembershipRow,
    ProjectRow,
    UserRow,
)
from aifactories.db.programme_models import AuditRow, NotificationRow
from aifactories.executors.mock import MockExecutor
from aifactories.services.programme.allocation_sweep import SweepReport, sweep_allocations
from tests.api.harness import Harness, make_harness

H = 3600  # GPU-seconds in a GPU-hour
DAY = 86400

# Two sites, billing weight 1 everywhere: GPU-hours charged are GPUs x hours.
CATALOGUE = """
sites:
  - {id: lumi-aif, name: LUMI, country: FI, supercomputer: LUMI-G, status: operational,
     partitions: [{name: g, gpu_model: MI250X, gpu_memory_gb: 128, gpus_per_node: 4, nodes: 4}]}
  - {id: it4lia, name: Leonardo, country: IT, supercomputer: Leonardo, status: operational,
     partitions: [{name: booster, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4,
                   nodes: 4}]}
"""


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(CATALOGUE)
    harness = make_harness(
        tmp_path,
        database_url,
        make_executor=lambda site, clock: MockExecutor(site, clock, auto_start=False),
        catalogue=catalogue,
    )
    yield harness
    harness.platform.stop()


# -- helpers ---------------------------------------------------------------------------------


def _allocation_id(h: Harness, project: str, site: str | None = None) -> int:
    with h.platform.ctx.sessions() as s:
        return int(
            s.execute(
                select(AllocationRow.id)
                .join(ProjectRow, ProjectRow.id == AllocationRow.project_id)
                .where(
                    ProjectRow.code == project,
                    AllocationRow.site_id.is_(None)
                    if site is None
                    else AllocationRow.site_id == site,
                )
            ).scalar_one()
        )


def _allocation(h: Harness, allocation_id: int) -> AllocationRow:
    with h.platform.ctx.sessions() as s:
        row = s.get(AllocationRow, allocation_id)
        assert row is not None
        s.expunge(row)
        return row


def _set_allocation(h: Harness, allocation_id: int, **values: Any) -> None:
    with h.platform.ctx.sessions() as s, s.begin():
        s.execute(update(AllocationRow).where(AllocationRow.id == allocation_id).values(**values))


def _job(h: Harness, job_id: int) -> JobRow:
    with h.platform.ctx.sessions() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        s.expunge(row)
        return row


def _submit(h: Harness, user: str, project: str, gpus: int, hours: float, **extra: Any) -> Any:
    return h.client(user).post(
        "/jobs",
        json={
            "project": project,
            "gpus": gpus,
            "time_limit": int(hours * 3600),
            "command": ["train"],
            **extra,
        },
    )


def _site(h: Harness, job: JobRow) -> MockExecutor:
    assert job.site_id is not None
    site = h.executors[job.site_id]  # type: ignore[index]
    assert isinstance(site, MockExecutor)
    return site


def _queue(h: Harness, user: str, project: str, gpus: int, hours: float, **extra: Any) -> JobRow:
    """Submit and let the broker place it: queued at its site, holding a reservation."""
    response = _submit(h, user, project, gpus, hours, **extra)
    assert response.status_code == 201, response.text
    h.cycle()
    job = _job(h, response.json()["id"])
    assert job.state == "submitted" and job.reserved_gpu_seconds > 0, job.reason
    return job


def _start(h: Harness, job: JobRow) -> None:
    assert job.site_job_id is not None
    _site(h, job).start(job.site_job_id)
    h.cycle()
    assert _job(h, job.id).state == "running"


def _run(h: Harness, user: str, project: str, gpus: int, hours: float, ran: float) -> JobRow:
    """A job through the broker from submission to its charge: ``ran`` hours of use."""
    job = _queue(h, user, project, gpus, hours)
    assert job.site_job_id is not None
    site = _site(h, job)
    site.start(job.site_job_id)
    site.finish(job.site_job_id, elapsed_s=ran * 3600)
    h.cycle()
    done = _job(h, job.id)
    assert done.state == "completed" and done.charged_gpu_seconds == round(gpus * ran * H)
    return done


def _notifications(h: Harness, user: str, event: str) -> list[NotificationRow]:
    with h.platform.ctx.sessions() as s:
        return list(
            s.scalars(
                select(NotificationRow)
                .where(
                    NotificationRow.recipient == f"{user}@example.eu",
                    NotificationRow.event == event,
                )
                .order_by(NotificationRow.id)
            )
        )


def _audit(h: Harness, action: str) -> list[AuditRow]:
    with h.platform.ctx.sessions() as s:
        return list(s.scalars(select(AuditRow).where(AuditRow.action == action)))


def _assert_books(h: Harness) -> None:
    """Every allocation's reserved equals its active jobs' reservations; its used equals its
    charge entries; its entries add up (reserve - release - charge == reserved); the jobs'
    charges equal the allocations' use."""
    with h.platform.ctx.sessions() as s:
        for a in s.scalars(select(AllocationRow)):
            assert 0 <= a.reserved_gpu_seconds + a.used_gpu_seconds <= a.granted_gpu_seconds
            held = s.execute(
                select(func.coalesce(func.sum(JobRow.reserved_gpu_seconds), 0)).where(
                    JobRow.allocation_id == a.id,
                    JobRow.state.in_(["placed", "submitted", "running"]),
                )
            ).scalar_one()
            assert a.reserved_gpu_seconds == held
            totals = dict(
                s.execute(
                    select(LedgerEntryRow.kind, func.sum(LedgerEntryRow.gpu_seconds))
                    .where(LedgerEntryRow.allocation_id == a.id)
                    .group_by(LedgerEntryRow.kind)
                ).all()
            )
            reserve, release, charge = (
                int(totals.get(k) or 0) for k in ("reserve", "release", "charge")
            )
            assert a.used_gpu_seconds == charge
            assert reserve - release - charge == a.reserved_gpu_seconds
        jobs = s.execute(
            select(func.coalesce(func.sum(JobRow.charged_gpu_seconds), 0))
        ).scalar_one()
        used = s.execute(
            select(func.coalesce(func.sum(AllocationRow.used_gpu_seconds), 0))
        ).scalar_one()
        assert jobs == used


# -- usage alerts ----------------------------------------------------------------------------


def test_alerts_fire_once_at_each_threshold(h: Harness) -> None:
    pool = _allocation_id(h, "aurora-vision")
    _set_allocation(h, pool, granted_gpu_seconds=10 * H)
    ctx = h.platform.ctx
    assert sweep_allocations(ctx).alerts == []

    steps = [(6, 5.0, 50), (3, 2.5, 75), (2, 1.5, 90), (1, 1.0, 100)]  # limit, ran, threshold
    for hours, ran, threshold in steps:
        _run(h, "alice", "aurora-vision", 1, hours, ran)
        report = sweep_allocations(ctx)
        assert [(a.allocation_id, a.threshold, a.thresholds) for a in report.alerts] == [
            (pool, threshold, (threshold,))
        ]
        assert sweep_allocations(ctx).alerts == []  # once per threshold
        h.clock.advance(60)

    assert _allocation(h, pool).used_gpu_seconds == 10 * H
    mails = _notifications(h, "alice", "allocation.usage")  # the PI
    assert [m.payload["threshold"] for m in mails] == [50, 75, 90, 100]
    assert "100 %" in mails[-1].subject and "aif allocations extend" in mails[-1].body
    assert _notifications(h, "bob", "allocation.usage") == []  # a member, not the PI
    audit = _audit(h, "allocation.alert")
    assert len(audit) == 4 and all(a.actor == "system" for a in audit)

    # the alerts are visible to the project's members and operators, and nobody else
    alerts = h.client("bob").get(f"/allocations/{pool}/alerts")
    assert [a["threshold"] for a in alerts.json()] == [50, 75, 90, 100]
    assert alerts.json()[0]["at_iso"].startswith("2026-01-01")
    assert h.client("carol").get(f"/allocations/{pool}/alerts").status_code == 404
    listed = h.client("alice").get("/projects/aurora-vision/allocations").json()
    assert listed[0]["used_percent"] == 100.0 and listed[0]["alerts_sent"] == [50, 75, 90, 100]
    # the sweep from the API is for operators
    refused = h.client("alice").post("/allocations/sweep")
    assert refused.status_code == 403 and "operator" in refused.json()["message"]
    swept = h.client("oscar").post("/allocations/sweep")
    assert swept.status_code == 200 and swept.json()["alerts"] == []
    _assert_books(h)


def test_a_jump_alerts_once_and_more_hours_rearm_the_thresholds(h: Harness) -> None:
    pool = _allocation_id(h, "aurora-vision")
    _set_allocation(h, pool, granted_gpu_seconds=10 * H)
    _run(h, "alice", "aurora-vision", 2, 4, 4.0)  # 8 of 10 GPU-hours: 50 and 75 at once
    report = sweep_allocations(h.platform.ctx)
    assert [(a.threshold, a.thresholds) for a in report.alerts] == [(75, (50, 75))]
    assert len(_notifications(h, "alice", "allocation.usage")) == 1  # one mail, not two

    asked = h.client("alice").post(
        f"/allocations/{pool}/requests",
        json={"kind": "extension", "gpu_hours": 10, "justification": "ablation runs"},
    )
    assert asked.status_code == 201, asked.text
    decided = h.client("oscar").post(
        f"/allocation-requests/{asked.json()['id']}/decision",
        json={"decision": "approve", "reason": "good progress report"},
    )
    assert decided.status_code == 200, decided.text
    # 8 of 20 GPU-hours: 40 %, so the 50 and 75 % alerts can fire again
    allocation = h.client("alice").get("/projects/aurora-vision/allocations").json()[0]
    assert allocation["granted_gpu_seconds"] == 20 * H and allocation["alerts_sent"] == []
    _run(h, "alice", "aurora-vision", 1, 3, 3.0)  # 11 of 20: 55 %
    assert [a.threshold for a in sweep_allocations(h.platform.ctx).alerts] == [50]


def test_concurrent_sweeps_alert_once(h: Harness) -> None:
    """The worker's sweep and an operator's may run at once: each threshold still fires once."""
    pool = _allocation_id(h, "aurora-vision")
    _set_allocation(h, pool, granted_gpu_seconds=10 * H)
    _run(h, "alice", "aurora-vision", 1, 6, 6.0)
    start = threading.Barrier(4)
    reports: list[SweepReport] = []

    def sweep() -> None:
        start.wait()
        reports.append(sweep_allocations(h.platform.ctx))

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reports) == 4
    assert sorted(a.threshold for r in reports for a in r.alerts) == [50]
    assert len(_notifications(h, "alice", "allocation.usage")) == 1
    assert len(_audit(h, "allocation.alert")) == 1


# -- periods: future start, expiry -------------------------------------------------------------


def test_future_allocation_waits_and_expiry_closes(h: Harness) -> None:
    pool = _allocation_id(h, "climat-downscale")
    now = h.clock.now()
    _set_allocation(h, pool, starts_at=now + DAY, ends_at=now + 2 * DAY)
    early = _submit(h, "fabien", "climat-downscale", 1, 1)
    assert early.status_code == 409 and "no open allocation valid now" in early.json()["message"]
    # not usable yet is not expired: the sweep leaves it open
    assert sweep_allocations(h.platform.ctx).expired == []
    assert _allocation(h, pool).status == "open"

    h.clock.advance(DAY + 60)
    queued = _queue(h, "fabien", "climat-downscale", 2, 2)
    assert queued.allocation_id == pool
    running = _queue(h, "fabien", "climat-downscale", 1, 2)
    _start(h, running)

    h.clock.advance(DAY)  # past ends_at
    report = sweep_allocations(h.platform.ctx)
    assert [c.allocation.id for c in report.expired] == [pool]
    assert report.expired[0].cancelling_job_ids == (queued.id,)
    assert report.expired[0].running_job_ids == (running.id,)
    assert _allocation(h, pool).status == "closed"
    (entry,) = _audit(h, "allocation.expire")
    assert entry.actor == "system" and entry.subject == f"allocation:{pool}"
    (mail,) = _notifications(h, "fabien", "allocation.closed")
    assert "period ended" in mail.body and str(queued.id) in mail.body
    assert sweep_allocations(h.platform.ctx).expired == []  # once

    h.cycle()  # the broker cancels the queued job at its site: its reservation comes back
    assert _job(h, queued.id).state == "cancelled"
    assert _allocation(h, pool).reserved_gpu_seconds == running.reserved_gpu_seconds
    late = _submit(h, "fabien", "climat-downscale", 1, 1)
    assert late.status_code == 409 and late.json()["error"] == "budget_exceeded"

    # The running job ends 60 s after the period's end, having run an hour: it is charged to
    # the closed allocation (the last minute would go to an allocation covering that time if
    # the project had one: the ledger's usual split at an allocation's end).
    site = _site(h, running)
    assert running.site_job_id is not None
    site.finish(running.site_job_id, elapsed_s=3600)
    h.cycle()
    assert _job(h, running.id).state == "completed"
    after = _allocation(h, pool)
    assert after.reserved_gpu_seconds == 0 and after.used_gpu_seconds == 3600
    _assert_books(h)


# -- close -----------------------------------------------------------------------------------


def test_close_cancels_queued_jobs_and_the_books_balance(h: Harness) -> None:
    pool = _allocation_id(h, "aurora-vision")
    running = _queue(h, "alice", "aurora-vision", 2, 2)
    _start(h, running)
    queued = _queue(h, "bob", "aurora-vision", 1, 1)
    before = _allocation(h, pool)
    assert before.reserved_gpu_seconds == (2 * 2 + 1) * H

    for user in ("bob", "alice"):  # a member, the PI: not operators
        refused = h.client(user).post(f"/allocations/{pool}/close", json={"reason": "done"})
        assert refused.status_code == 403
    empty = h.client("oscar").post(f"/allocations/{pool}/close", json={"reason": " "})
    assert empty.status_code == 422 and empty.json()["field"] == "reason"

    closed = h.client("oscar").post(
        f"/allocations/{pool}/close", json={"reason": "the startup was acquired"}
    )
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["allocation"]["status"] == "closed"
    assert body["cancelling_job_ids"] == [queued.id]
    assert body["running_job_ids"] == [running.id]
    assert "allocation" in (_job(h, queued.id).reason or "")

    # the ledger never reserves on a closed allocation
    with h.platform.ctx.sessions() as s, s.begin():
        assert not try_reserve(s, pool, 1, queued.id, h.clock.now())

    again = h.client("oscar").post(f"/allocations/{pool}/close", json={"reason": "twice"})
    assert again.status_code == 409
    assert "closed by oscar" in again.json()["message"] and "acquired" in again.json()["message"]

    h.cycle()  # reconcile cancels the queued job at its site; its reservation is released
    assert _job(h, queued.id).state == "cancelled"
    assert _job(h, queued.id).charged_gpu_seconds == 0
    assert _allocation(h, pool).reserved_gpu_seconds == 2 * 2 * H
    _assert_books(h)

    refused_job = _submit(h, "alice", "aurora-vision", 1, 1)
    assert refused_job.status_code == 409
    assert "no open allocation valid now" in refused_job.json()["message"]

    # the running job finishes and is charged to the closed allocation
    site = _site(h, running)
    assert running.site_job_id is not None
    site.finish(running.site_job_id, elapsed_s=1800)
    h.cycle()
    after = _allocation(h, pool)
    assert after.status == "closed"
    assert after.reserved_gpu_seconds == 0 and after.used_gpu_seconds == 2 * 1800
    _assert_books(h)

    (entry,) = _audit(h, "allocation.close")
    assert entry.actor == "oscar" and entry.reason == "the startup was acquired"
    assert entry.details["cancelling_job_ids"] == [queued.id]
    (mail,) = _notifications(h, "alice", "allocation.closed")
    assert "acquired" in mail.body and "running job(s) finish" in mail.body
    assert _notifications(h, "bob", "allocation.closed") == []


def test_after_closing_a_site_allocation_new_jobs_use_the_pool(h: Harness) -> None:
    site_allocation = _allocation_id(h, "kalevala-mri", "lumi-aif")
    pool = _allocation_id(h, "kalevala-mri")
    first = _queue(h, "carol", "kalevala-mri", 1, 1, gpu_model="MI250X")  # at lumi-aif
    assert first.allocation_id == site_allocation  # a site's own allocation comes first
    closed = h.client("oscar").post(
        f"/allocations/{site_allocation}/close", json={"reason": "moved to the pool"}
    )
    assert closed.status_code == 200
    h.cycle()
    assert _job(h, first.id).state == "cancelled"
    job = _queue(h, "carol", "kalevala-mri", 1, 1, gpu_model="MI250X")
    assert job.allocation_id == pool and job.site_id == "lumi-aif"
    assert _allocation(h, site_allocation).reserved_gpu_seconds == 0
    _assert_books(h)


def test_sweep_cancels_pending_jobs_marked_for_cancellation(h: Harness) -> None:
    response = _submit(h, "alice", "aurora-vision", 1, 1)
    job_id = response.json()["id"]
    with h.platform.ctx.sessions() as s, s.begin():  # as a requeue after a lost submit leaves it
        s.execute(update(JobRow).where(JobRow.id == job_id).values(cancel_requested=True))
    assert sweep_allocations(h.platform.ctx).finalised_job_ids == [job_id]
    assert (_job(h, job_id).reason or "").startswith("cancelled before it reached a site (")
    assert _job(h, job_id).state == "cancelled"


# -- requests --------------------------------------------------------------------------------


def test_extension_request_roles_and_approval(h: Harness) -> None:
    pool = _allocation_id(h, "aurora-vision")
    original = _allocation(h, pool)
    ask = {
        "kind": "extension",
        "gpu_hours": 100,
        "until": "2027-06-30",
        "justification": "the customer pilot was extended by six months",
    }
    bob = h.client("bob").post(f"/allocations/{pool}/requests", json=ask)
    assert bob.status_code == 403 and "PI" in bob.json()["message"]
    carol = h.client("carol").post(f"/allocations/{pool}/requests", json=ask)
    assert carol.status_code == 404

    bad: list[tuple[dict[str, Any], str]] = [
        ({"kind": "more"}, "kind"),
        ({"justification": ""}, "justification"),
        ({"until": "2026-06-30"}, "until"),  # before the current end
        ({"until": "June"}, "until"),
        ({"gpu_hours": 0, "until": None}, "gpu_hours"),
        ({"gpu_hours": -5}, "gpu_hours"),
        ({"to_allocation": pool}, "to_allocation"),
    ]
    for change, field in bad:
        response = h.client("alice").post(f"/allocations/{pool}/requests", json={**ask, **change})
        assert response.status_code == 422, (change, response.text)
        assert response.json()["field"] == field

    created = h.client("alice").post(f"/allocations/{pool}/requests", json=ask)
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["status"] == "pending" and request["gpu_seconds"] == 100 * H
    assert request["new_ends_at"] == datetime(2027, 7, 1, tzinfo=UTC).timestamp()
    assert request["requested_by"] == "alice" and request["project"] == "aurora-vision"
    duplicate = h.client("alice").post(f"/allocations/{pool}/requests", json=ask)
    assert duplicate.status_code == 409 and "pending" in duplicate.json()["message"]
    assert len(_notifications(h, "oscar", "allocation.request")) == 1

    def ids(user: str, **params: str) -> list[int]:
        response = h.client(user).get("/allocation-requests", params=params)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()]

    assert ids("alice") == [request["id"]]
    assert ids("bob") == [] and ids("carol") == []
    assert ids("oscar", status="pending") == [request["id"]]
    assert ids("oscar", status="approved") == []
    assert h.client("oscar").get("/allocation-requests?status=maybe").status_code == 422

    url = f"/allocation-requests/{request['id']}/decision"
    assert (
        h.client("alice").post(url, json={"decision": "approve", "reason": "x"}).status_code == 403
    )
    no_reason = h.client("oscar").post(url, json={"decision": "approve", "reason": ""})
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    approved = h.client("oscar").post(url, json={"decision": "approve", "reason": "on track"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["decided_by"] == "oscar"
    after = _allocation(h, pool)
    assert after.granted_gpu_seconds == original.granted_gpu_seconds + 100 * H
    assert after.ends_at == datetime(2027, 7, 1, tzinfo=UTC).timestamp()
    twice = h.client("oscar").post(url, json={"decision": "refuse", "reason": "oops"})
    assert twice.status_code == 409 and "approved already by oscar" in twice.json()["message"]
    (entry,) = _audit(h, "allocation.request.approve")
    assert entry.details["before"]["granted_gpu_seconds"] == original.granted_gpu_seconds
    (mail,) = _notifications(h, "alice", "allocation.request.approved")
    assert "on track" in mail.body
    assert ids("oscar", status="pending") == []


def test_transfer_request_refuse_approve_and_limits(h: Harness) -> None:
    site = _allocation_id(h, "kalevala-mri", "lumi-aif")  # 8,000 GPU-hours
    pool = _allocation_id(h, "kalevala-mri")  # 2,000 GPU-hours
    other = _allocation_id(h, "aurora-vision")
    carol = h.client("carol")

    def ask(hours: float, to: int = pool) -> Any:
        return carol.post(
            f"/allocations/{site}/requests",
            json={
                "kind": "transfer",
                "gpu_hours": hours,
                "to_allocation": to,
                "justification": "our MRI data may leave Finland after all",
            },
        )

    too_much = ask(9000)
    assert too_much.status_code == 422 and too_much.json()["field"] == "gpu_hours"
    assert "8,000.00" in too_much.json()["limit"]
    foreign = ask(10, to=other)
    assert foreign.status_code == 422 and foreign.json()["field"] == "to_allocation"
    assert str(pool) in foreign.json()["limit"]
    assert ask(0).json()["field"] == "gpu_hours"

    first = ask(1000)
    assert first.status_code == 201, first.text
    refused = h.client("oscar").post(
        f"/allocation-requests/{first.json()['id']}/decision",
        json={"decision": "refuse", "reason": "keep the data in Finland"},
    )
    assert refused.status_code == 200 and refused.json()["status"] == "refused"
    assert _allocation(h, site).granted_gpu_seconds == 8000 * H
    assert _allocation(h, pool).granted_gpu_seconds == 2000 * H
    (mail,) = _notifications(h, "carol", "allocation.request.refused")
    assert "keep the data in Finland" in mail.body

    second = ask(1000)
    assert second.status_code == 201
    approved = h.client("oscar").post(
        f"/allocation-requests/{second.json()['id']}/decision",
        json={"decision": "approve", "reason": "fine"},
    )
    assert approved.status_code == 200, approved.text
    assert _allocation(h, site).granted_gpu_seconds == 7000 * H
    assert _allocation(h, pool).granted_gpu_seconds == 3000 * H

    # at the decision, only what is left can move: the request stays pending
    third = ask(500)
    assert third.status_code == 201
    _set_allocation(h, site, used_gpu_seconds=7000 * H - 100 * H)
    late = h.client("oscar").post(
        f"/allocation-requests/{third.json()['id']}/decision",
        json={"decision": "approve", "reason": "fine"},
    )
    assert late.status_code == 409 and "100.00" in late.json()["message"]
    assert _allocation(h, site).granted_gpu_seconds == 7000 * H
    pending = h.client("carol").get("/allocation-requests", params={"status": "pending"}).json()
    assert [r["id"] for r in pending] == [third.json()["id"]]


def test_extension_of_an_expired_allocation_reopens_it(h: Harness) -> None:
    pool = _allocation_id(h, "climat-downscale")
    now = h.clock.now()
    _set_allocation(h, pool, ends_at=now + DAY)
    asked = h.client("fabien").post(
        f"/allocations/{pool}/requests",
        json={"kind": "extension", "until": now + 30 * DAY, "justification": "late data"},
    )
    assert asked.status_code == 201, asked.text
    h.clock.advance(2 * DAY)
    assert [c.allocation.id for c in sweep_allocations(h.platform.ctx).expired] == [pool]
    approved = h.client("oscar").post(
        f"/allocation-requests/{asked.json()['id']}/decision",
        json={"decision": "approve", "reason": "fine"},
    )
    assert approved.status_code == 200, approved.text
    row = _allocation(h, pool)
    assert row.status == "open" and row.ends_at == now + 30 * DAY
    assert _submit(h, "fabien", "climat-downscale", 1, 1).status_code == 201

    # an allocation an operator closed is not extended
    h.client("oscar").post(f"/allocations/{pool}/close", json={"reason": "project ended"})
    refused = h.client("fabien").post(
        f"/allocations/{pool}/requests",
        json={"kind": "extension", "gpu_hours": 5, "justification": "more"},
    )
    assert refused.status_code == 409 and "closed by oscar" in refused.json()["message"]


# -- the Education per-member cap -------------------------------------------------------------


def test_member_cap_at_submission(h: Harness) -> None:
    with h.platform.ctx.sessions() as s, s.begin():
        bob = s.execute(select(UserRow.id).where(UserRow.username == "bob")).scalar_one()
        s.execute(
            update(MembershipRow).where(MembershipRow.user_id == bob).values(cap_gpu_seconds=2 * H)
        )
    assert _submit(h, "bob", "aurora-vision", 1, 1).status_code == 201  # waiting: 1 of 2
    assert _submit(h, "bob", "aurora-vision", 1, 1).status_code == 201  # waiting: 2 of 2
    refused = _submit(h, "bob", "aurora-vision", 1, 1)
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["error"] == "budget_exceeded" and "member cap" in body["message"]
    assert "2.00 GPU-hours" in body["message"]
    assert body["left_gpu_seconds"] == 0 and body["needed_gpu_seconds"] == H
    assert _submit(h, "alice", "aurora-vision", 1, 1).status_code == 201  # the PI: no cap

    # placed, run for half their limit, charged: an hour of the cap is free again
    h.cycle()
    with h.platform.ctx.sessions() as s:
        jobs = list(s.scalars(select(JobRow).where(JobRow.user_id == bob).order_by(JobRow.id)))
    assert [j.state for j in jobs] == ["submitted", "submitted"]
    for job in jobs:
        assert job.site_job_id is not None
        site = _site(h, job)
        site.start(job.site_job_id)
        site.finish(job.site_job_id, elapsed_s=1800)
    h.cycle()
    assert _submit(h, "bob", "aurora-vision", 2, 1).status_code == 409  # 2 needed, 1 left
    assert _submit(h, "bob", "aurora-vision", 1, 1).status_code == 201
    _assert_books(h)


# -- the CLI ---------------------------------------------------------------------------------


def _aif(h: Harness, monkeypatch: pytest.MonkeyPatch, user: str, *args: str) -> tuple[int, str]:
    """Run ``aif allocations ...`` against the in-process API (TestClient is an httpx.Client)."""
    api = Client(Profile(server="http://testserver", token=h.tokens[user]))
    api._http = h.client(user)
    monkeypatch.setattr(cli_allocations, "client", lambda: api)
    result = CliRunner().invoke(
        cli_allocations.allocations_app,
        list(args),
        env={"NO_COLOR": "1", "COLUMNS": "250", "AIFACTORIES_CONFIG": "/nonexistent/p.json"},
    )
    return result.exit_code, result.output


def test_cli(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    pool = _allocation_id(h, "kalevala-mri")
    site = _allocation_id(h, "kalevala-mri", "lumi-aif")
    code, out = _aif(h, monkeypatch, "carol", "list", "-A", "kalevala-mri")
    assert code == 0, out
    assert "lumi-aif" in out and "any site" in out and "8,000.00" in out

    code, out = _aif(
        h, monkeypatch, "carol", "extend", str(pool), "--gpu-hours", "50", "--until",
        "2027-03-31", "--why", "longer training",
    )  # fmt: skip
    assert code == 0 and "extension of allocation" in out and "pending" in out, out
    code, out = _aif(
        h, monkeypatch, "carol", "transfer", str(site), "--to", str(pool), "--gpu-hours",
        "9000", "--why", "x",
    )  # fmt: skip
    assert code == 2 and "gpu_hours" in out and "at most 8,000.00" in out, out
    code, out = _aif(h, monkeypatch, "carol", "approve", "1", "--reason", "me")
    assert code == 4 and "operator" in out, out

    code, out = _aif(h, monkeypatch, "oscar", "requests", "--status", "pending")
    assert code == 0 and "kalevala-mri" in out and "longer training" in out, out
    code, out = _aif(h, monkeypatch, "oscar", "requests", "--json")
    (request,) = json.loads(out)
    code, out = _aif(h, monkeypatch, "oscar", "approve", str(request["id"]), "--reason", "ok")
    assert code == 0 and "approved" in out, out
    code, out = _aif(h, monkeypatch, "oscar", "refuse", str(request["id"]), "--reason", "no")
    assert code == 5 and "already" in out, out

    code, out = _aif(h, monkeypatch, "oscar", "close", str(site), "--reason", "site retired")
    assert code == 0 and f"allocation {site} closed" in out, out
    code, out = _aif(h, monkeypatch, "oscar", "close", str(site), "--reason", "again")
    assert code == 5 and "closed by oscar" in out, out
    code, out = _aif(h, monkeypatch, "oscar", "sweep")
    assert code == 0 and "nothing to do" in out, out
    code, out = _aif(h, monkeypatch, "oscar", "alerts", str(pool))
    assert code == 0 and "no usage alert" in out, out
    code, out = _aif(h, monkeypatch, "carol", "list", "-A", "kalevala-mri", "--json")
    rows = {a["id"]: a for a in json.loads(out)}
    assert rows[site]["status"] == "closed" and rows[pool]["granted_gpu_hours"] == 2050

"""Calls and proposals through the REST API: validation, automated checks, the Playground's
immediate award (to a first job that runs), Fast Lane technical checks and who sees what."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from aifactories.db.models import AllocationRow, MembershipRow, ProjectRow
from aifactories.db.programme_models import AuditRow, NotificationRow
from tests.api.harness import Harness, make_harness
from tests.api.programme_helpers import DAY, draft, open_call, proposal_body, submit


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Harness:
    harness = make_harness(tmp_path, database_url)
    yield harness  # type: ignore[misc]
    harness.platform.stop()


def test_only_programme_operators_open_calls_and_rules_never_widen_a_mode(h: Harness) -> None:
    body = {
        "code": "pg-1",
        "title": "Playground",
        "mode": "playground",
        "closes_at": h.clock.now() + DAY,
        "budget_gpu_hours": {"pool": 1000},
    }
    assert h.client("alice").post("/calls", json=body).status_code == 403
    wide = h.client("oscar").post("/calls", json={**body, "rules": {"max_gpu_hours": 60_000}})
    assert wide.status_code == 422
    assert wide.json()["field"] == "rules.max_gpu_hours"
    unknown = h.client("oscar").post("/calls", json={**body, "mode": "express"})
    assert unknown.status_code == 422 and "playground" in unknown.json()["message"]
    bad_site = h.client("oscar").post("/calls", json={**body, "budget_gpu_hours": {"nowhere": 5}})
    assert bad_site.json()["field"] == "budget_gpu_hours.nowhere"
    assert h.client("oscar").post("/calls", json=body).status_code == 201
    assert h.client("oscar").post("/calls", json=body).status_code == 409
    listed = h.client("alice").get("/calls").json()
    assert [c["code"] for c in listed] == ["pg-1"]
    assert listed[0]["rules"]["review"] == "none"


def test_every_field_is_validated_with_its_name(h: Harness) -> None:
    open_call(h, "pg", "playground")
    alice = h.client("alice")
    cases = {
        "requested_gpu_hours": {"requested_gpu_hours": -5},
        "domain": {"domain": "astrology"},
        "gpu_model": {"gpu_model": "Z9000"},
        "preferred_sites[1]": {"preferred_sites": ["lumi-aif", "atlantis"]},
        "residency[0]": {"residency": ["Germany"]},
        "members[0]": {"members": ["nobody"]},
        "abstract": {"abstract": "short"},
    }
    for field, change in cases.items():
        response = alice.post("/calls/pg/proposals", json=proposal_body(**change))
        assert response.status_code == 422, (field, response.text)
        assert response.json()["field"] == field, response.json()
    missing = {k: v for k, v in proposal_body().items() if k != "title"}
    response = alice.post("/calls/pg/proposals", json=missing)
    assert response.status_code == 422 and response.json()["field"] == "title"


def test_playground_submission_is_awarded_at_once_and_its_first_job_runs(h: Harness) -> None:
    open_call(h, "pg", "playground", budget_gpu_hours={"lumi-aif": 2000})
    proposal = draft(h, "carol", "pg", domain="health", members=["bob"], gpu_model="MI250X")
    assert proposal["status"] == "draft" and proposal["critical_domain"] is True
    # nobody else sees a draft, not even an operator or a listed team member
    for other in ("oscar", "bob", "alice", "sam"):
        assert h.client(other).get(f"/proposals/{proposal['id']}").status_code == 404
    edited = h.client("carol").patch(
        f"/proposals/{proposal['id']}", json={"requested_gpu_hours": 300}
    )
    assert edited.json()["requested_gpu_hours"] == 300 and edited.json()["version"] == 2

    result = submit(h, "carol", proposal["id"])
    assert result["status"] == "awarded", result["checks"]
    assert all(c["passed"] for c in result["checks"])
    code = result["project"]
    assert code and code.startswith(f"p{proposal['id']}-")
    with h.platform.ctx.sessions() as s:
        project = s.scalars(select(ProjectRow).where(ProjectRow.code == code)).one()
        alloc = s.scalars(select(AllocationRow).where(AllocationRow.project_id == project.id)).one()
        assert (alloc.site_id, alloc.granted_gpu_seconds) == ("lumi-aif", 300 * 3600)
        assert 58 * DAY < alloc.ends_at - alloc.starts_at < 63 * DAY  # two calendar months
        roles = dict(
            s.execute(
                select(MembershipRow.user_id, MembershipRow.role).where(
                    MembershipRow.project_id == project.id
                )
            ).all()
        )
        assert sorted(roles.values()) == ["member", "pi"]
        assert s.scalars(
            select(AuditRow.action).where(AuditRow.subject == f"proposal:{proposal['id']}")
        ).all() == [
            "proposal.draft",
            "proposal.submit",
            "proposal.award",
        ]
        mails = s.scalars(
            select(NotificationRow).where(NotificationRow.event == "proposal.awarded")
        ).all()
        assert [m.recipient for m in mails] == ["carol@example.eu"]
    # the team sees the proposal now, and can work: a job placed under the new project runs
    assert h.client("bob").get(f"/proposals/{proposal['id']}").status_code == 200
    job = h.client("bob").post(
        "/jobs", json={"project": code, "gpus": 4, "time_limit": "1:00:00", "command": ["true"]}
    )
    assert job.status_code == 201, job.text
    h.cycle(2)
    state = h.client("bob").get(f"/jobs/{job.json()['id']}").json()
    assert state["state"] == "running" and state["site_id"] == "lumi-aif"
    # the call's budget line shrank by the award
    call = h.client("oscar").get("/calls/pg").json()
    assert call["budget_left_gpu_hours"] == {"lumi-aif": 1700}
    # a submitted proposal is no longer editable
    again = h.client("carol").patch(f"/proposals/{proposal['id']}", json={"title": "Other title"})
    assert again.status_code == 409


def test_failed_checks_say_why_and_the_draft_can_be_fixed(h: Harness) -> None:
    open_call(h, "pg", "playground", rules={"organisation_kinds": ["startup", "sme"]})
    # dario's organisation is an industry: not eligible for this call
    refused = submit(h, "dario", draft(h, "dario", "pg")["id"])
    assert refused["status"] == "checks_failed"
    failed = {c["name"]: c["message"] for c in refused["checks"] if not c["passed"]}
    assert set(failed) == {"organisation_kind"} and "startup, sme" in failed["organisation_kind"]

    over = draft(h, "alice", "pg", requested_gpu_hours=5000, residency=["PT"])
    result = submit(h, "alice", over["id"])
    failed = {c["name"] for c in result["checks"] if not c["passed"]}
    assert failed == {"request_within_limits", "residency"}
    fixed = h.client("alice").patch(
        f"/proposals/{over['id']}", json={"requested_gpu_hours": 800, "residency": ["DE", "FI"]}
    )
    assert fixed.status_code == 200
    assert submit(h, "alice", over["id"])["status"] == "awarded"


def test_first_come_first_served_until_the_budget_is_spent(h: Harness) -> None:
    open_call(h, "pg", "playground", budget_gpu_hours={"pool": 1000})
    first = submit(h, "alice", draft(h, "alice", "pg", requested_gpu_hours=700)["id"])
    second = submit(h, "carol", draft(h, "carol", "pg", requested_gpu_hours=700)["id"])
    assert first["status"] == "awarded"
    assert second["status"] == "checks_failed"
    budget = next(c for c in second["checks"] if c["name"] == "call_budget")
    assert not budget["passed"] and "300" in budget["message"]


def test_fast_lane_technical_check_accept_revise_reject(h: Harness) -> None:
    open_call(h, "fl", "fast_lane", budget_gpu_hours={"it4lia": 40_000, "lumi-aif": 40_000})
    wanted = draft(h, "dario", "fl", requested_gpu_hours=20_000, gpu_model="A100", residency=["IT"])
    waiting = submit(h, "dario", wanted["id"])
    assert waiting["status"] == "technical_check" and waiting["candidate_sites"] == ["it4lia"]
    # a site operator of a site that can host it sees it; an applicant of another org does not
    assert h.client("sam").get(f"/proposals/{wanted['id']}").status_code == 200
    assert h.client("alice").get(f"/proposals/{wanted['id']}").status_code == 404
    # only an operator of a hosting site may decide
    assert (
        h.client("alice")
        .post(
            f"/proposals/{wanted['id']}/technical-check", json={"outcome": "accept", "reason": "ok"}
        )
        .status_code
        == 404
    )
    revise = h.client("sam").post(
        f"/proposals/{wanted['id']}/technical-check",
        json={"outcome": "revise", "reason": "the largest job needs fewer GPUs per node"},
    )
    assert revise.json()["status"] == "revision"
    assert (
        "fewer GPUs"
        in h.client("dario").get(f"/proposals/{wanted['id']}").json()["decision_reason"]
    )
    h.client("dario").patch(f"/proposals/{wanted['id']}", json={"largest_job_gpus": 4})
    assert submit(h, "dario", wanted["id"])["status"] == "technical_check"
    accepted = h.client("sam").post(
        f"/proposals/{wanted['id']}/technical-check", json={"outcome": "accept", "reason": "fits"}
    )
    assert accepted.json()["status"] == "awarded"
    balance = h.client("dario").get(f"/projects/{accepted.json()['project']}/balance").json()
    assert [(a["site_id"], a["granted_gpu_seconds"]) for a in balance["allocations"]] == [
        ("it4lia", 20_000 * 3600)
    ]

    other = submit(h, "elena", draft(h, "elena", "fl", requested_gpu_hours=1000)["id"])
    rejected = (
        h.client("sam")
        .post(
            f"/proposals/{other['id']}/technical-check",
            json={"outcome": "reject", "reason": "the software stack is not supported"},
        )
        .json()
    )
    assert rejected["status"] == "rejected"
    assert (
        h.client("elena")
        .post(f"/proposals/{other['id']}/withdraw", json={"reason": "x"})
        .status_code
        == 409
    )


def test_withdraw_and_call_closing(h: Harness) -> None:
    open_call(h, "ls", "large_scale", budget_gpu_hours={"pool": 1_000_000})
    proposal = draft(
        h, "elena", "ls", requested_gpu_hours=80_000, period_months=6, domain="language"
    )
    under = submit(h, "elena", proposal["id"])
    assert under["status"] == "under_review" and under["cutoff_at"] is not None
    assert under["score"] is None
    out = h.client("elena").post(f"/proposals/{proposal['id']}/withdraw", json={"reason": "merged"})
    assert out.json()["status"] == "withdrawn"
    assert (
        h.client("oscar").post("/calls/ls/close", json={"reason": "budget spent"}).status_code
        == 200
    )
    late = h.client("elena").post("/calls/ls/proposals", json=proposal_body())
    assert late.status_code == 409 and "closed" in late.json()["message"]


def test_peer_calls_get_the_modes_regular_cut_offs(h: Harness) -> None:
    def iso(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")

    body = {
        "title": "peer call",
        "opens_at": "2027-01-10",
        "closes_at": "2027-03-05",
        "budget_gpu_hours": {"pool": 1_000_000},
    }
    oscar = h.client("oscar")
    large = oscar.post("/calls", json={**body, "code": "ls", "mode": "large_scale"})
    assert large.status_code == 201, large.text
    # twice a month (the middle and the end of each month), then the closing date
    assert [iso(c) for c in large.json()["cutoffs"]] == [
        "2027-01-16 12:00",
        "2027-02-01 00:00",
        "2027-02-15 00:00",
        "2027-03-01 00:00",
        "2027-03-05 00:00",
    ]
    science = oscar.post("/calls", json={**body, "code": "sci", "mode": "ai_for_science"})
    assert [iso(c) for c in science.json()["cutoffs"]] == ["2027-03-05 00:00"]
    given = oscar.post(
        "/calls",
        json={**body, "code": "ls2", "mode": "large_scale", "cutoffs": ["2027-02-20"]},
    )
    assert [iso(c) for c in given.json()["cutoffs"]] == ["2027-02-20 00:00"]
    monthly = oscar.post(
        "/calls",
        json={**body, "code": "ls3", "mode": "large_scale", "rules": {"cutoffs_per_month": 1}},
    )
    assert [iso(c) for c in monthly.json()["cutoffs"]] == [
        "2027-02-01 00:00",
        "2027-03-01 00:00",
        "2027-03-05 00:00",
    ]
    bad = oscar.post(
        "/calls",
        json={**body, "code": "ls4", "mode": "large_scale", "rules": {"cutoffs_per_month": 9}},
    )
    assert bad.status_code == 422 and bad.json()["field"] == "rules.cutoffs_per_month"

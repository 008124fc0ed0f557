"""Projects and members through the REST API: who sees a project, who changes its members."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from aifactories.db.programme_models import AuditRow
from tests.api.harness import Harness, make_harness


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Harness:
    harness = make_harness(tmp_path, database_url)
    yield harness  # type: ignore[misc]
    harness.platform.stop()


def test_members_are_managed_by_the_pi_and_take_effect_at_once(h: Harness) -> None:
    alice, bob, carol = h.client("alice"), h.client("bob"), h.client("carol")
    assert [p["code"] for p in alice.get("/projects").json()] == ["aurora-vision"]
    assert len(h.client("oscar").get("/projects").json()) == 5
    assert carol.get("/projects/aurora-vision").status_code == 404

    refused = bob.post("/projects/aurora-vision/members", json={"username": "carol"})
    assert refused.status_code == 403 and "PI" in refused.json()["message"]
    unknown = alice.post("/projects/aurora-vision/members", json={"username": "zed"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "username"
    added = alice.post(
        "/projects/aurora-vision/members", json={"username": "carol", "cap_gpu_hours": 10}
    )
    assert added.status_code == 201, added.text
    member = next(m for m in added.json()["members"] if m["username"] == "carol")
    assert member == {
        "username": "carol",
        "full_name": "Carol Koskinen",
        "role": "member",
        "cap_gpu_hours": 10.0,
    }
    # carol sees the project and its balance straight away (no stale role cache)
    assert carol.get("/projects/aurora-vision/balance").status_code == 200
    again = alice.post("/projects/aurora-vision/members", json={"username": "carol"})
    assert again.status_code == 409

    only_pi = alice.post("/projects/aurora-vision/members/alice/remove", json={"reason": "leaving"})
    assert only_pi.status_code == 409 and "only PI" in only_pi.json()["message"]
    removed = alice.post("/projects/aurora-vision/members/carol/remove", json={"reason": "done"})
    assert removed.status_code == 200
    assert carol.get("/projects/aurora-vision").status_code == 404
    with h.platform.ctx.sessions() as s:
        actions = s.scalars(select(AuditRow.action).order_by(AuditRow.id)).all()
    assert actions == ["project.member.add", "project.member.remove"]


def test_a_member_with_running_jobs_is_not_removed(h: Harness) -> None:
    job = h.client("bob").post(
        "/jobs",
        json={"project": "aurora-vision", "gpus": 1, "time_limit": "1:00:00", "command": ["x"]},
    )
    assert job.status_code == 201
    refused = h.client("alice").post(
        "/projects/aurora-vision/members/bob/remove", json={"reason": "x"}
    )
    assert refused.status_code == 409 and "1 job(s)" in refused.json()["message"]

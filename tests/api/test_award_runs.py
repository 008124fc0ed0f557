"""After a cut-off: peer-reviewed proposals decided by the call's rule, the allocation
optimiser's award run next to the greedy rule, and applying it: projects, members and
allocations in one transaction, the others rejected with the optimiser's reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from aifactories.db.models import AllocationRow, ProjectRow
from aifactories.db.programme_models import AuditRow, ProposalRow
from tests.api.harness import Harness, make_harness
from tests.api.programme_helpers import DAY, open_call
from tests.api.test_reviews import GOOD, POOR, assign, peer_proposal, reviewers_of, score


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, database_url)
    yield harness
    harness.platform.stop()


def reviewed_round(h: Harness, budget_hours: float) -> dict[str, int]:
    open_call(
        h,
        "ls",
        "large_scale",
        cutoffs=[h.clock.now() + 10 * DAY],
        budget_gpu_hours={"pool": budget_hours},
        rules={"min_average_score": 6, "reviewers_per_proposal": 2},
    )
    ids = {
        "carol": peer_proposal(
            h, "carol", "ls", "health", requested_gpu_hours=100_000, industrial=True
        ),
        "elena": peer_proposal(h, "elena", "ls", "language", requested_gpu_hours=80_000),
        "dario": peer_proposal(h, "dario", "ls", "manufacturing", requested_gpu_hours=120_000),
    }
    plan = assign(h, "ls")
    for user, proposal in ids.items():
        for reviewer in reviewers_of(plan, proposal):
            score(h, reviewer, proposal, POOR if user == "dario" else GOOD)
    h.clock.advance(11 * DAY)  # past the cut-off: the rule decides
    decided = h.client("oscar").post("/calls/ls/decisions", json={"rule": True})
    assert decided.status_code == 200, decided.text
    return ids


def _status(h: Harness, proposal_id: int) -> str:
    with h.platform.ctx.sessions() as s:
        row = s.get(ProposalRow, proposal_id)
        assert row is not None
        return row.status


def test_award_run_then_apply(h: Harness) -> None:
    ids = reviewed_round(h, budget_hours=150_000)
    assert _status(h, ids["dario"]) == "rejected"
    assert _status(h, ids["carol"]) == _status(h, ids["elena"]) == "accepted"

    assert h.client("carol").post("/calls/ls/award-runs", json={}).status_code == 403
    response = h.client("oscar").post("/calls/ls/award-runs", json={})
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    assert run["status"] == "proposed" and run["method"] == "optimiser"
    assert "Maximise" in run["objective"] and run["weights"]["rank"] > 0
    outcomes = {o["proposal_id"]: o for o in run["plan"]["outcomes"]}
    assert set(outcomes) == {ids["carol"], ids["elena"]}
    awarded = sum(o["awarded"] for o in outcomes.values())
    # 180,000 GPU-hours asked of a 150,000 pool: the pool is a budget over the whole horizon,
    # so these 6-month proposals use all of it, not a 12-month even share
    assert awarded == pytest.approx(150_000, abs=1)
    assert "pool: 150,000" in run["objective"]
    short = [o for o in outcomes.values() if o["awarded"] < o["requested"] - 1e-6]
    assert short and all(o["reason"] in ("capacity", "rank", "constraint") for o in short)
    assert all(o["explanation"] for o in short)
    header, *rows = run["comparison"]
    assert len(header) >= 3 and rows  # optimiser and greedy side by side
    # nothing is granted before the run is applied
    with h.platform.ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ProjectRow)) == 5

    applied = h.client("oscar").post(f"/award-runs/{run['id']}/apply", json={"reason": "panel 1"})
    assert applied.status_code == 200, applied.text
    assert (
        h.client("oscar").post(f"/award-runs/{run['id']}/apply", json={"reason": "x"}).status_code
        == 409
    )
    for user in ("carol", "elena"):
        view = h.client(user).get(f"/proposals/{ids[user]}").json()
        if outcomes[ids[user]]["awarded"] > 0:
            assert view["status"] == "awarded" and view["project"]
            balance = h.client(user).get(f"/projects/{view['project']}/balance").json()
            granted = sum(a["granted_gpu_seconds"] for a in balance["allocations"])
            assert abs(granted / 3600 - outcomes[ids[user]]["awarded"]) < 1
            assert view["score"] is not None  # decided: the applicant sees the score
        else:
            assert view["status"] == "rejected" and "not funded" in view["decision_reason"]
    with h.platform.ctx.sessions() as s:
        actions = s.scalars(select(AuditRow.action).where(AuditRow.action.like("awards.%"))).all()
        assert sorted(actions) == ["awards.apply", "awards.propose"]
        total = s.scalar(
            select(func.sum(AllocationRow.granted_gpu_seconds))
            .join(ProposalRow, ProposalRow.project_id == AllocationRow.project_id)
            .where(ProposalRow.call_id == 1)
        )
        assert abs(float(total or 0) / 3600 - awarded) < 2  # PostgreSQL sums to Decimal


def test_greedy_run_and_nothing_to_award(h: Harness) -> None:
    open_call(h, "empty", "large_scale", cutoffs=[h.clock.now() + DAY])
    nothing = h.client("oscar").post("/calls/empty/award-runs", json={})
    assert nothing.status_code == 409 and "no accepted proposal" in nothing.json()["message"]
    reviewed_round(h, budget_hours=1_000_000)
    greedy = h.client("oscar").post("/calls/ls/award-runs", json={"method": "greedy"}).json()
    assert greedy["method"] == "greedy"
    assert all(o["awarded"] == pytest.approx(o["requested"]) for o in greedy["plan"]["outcomes"])
    bad = h.client("oscar").post("/calls/ls/award-runs", json={"weights": {"speed": 3}})
    assert bad.status_code == 422 and bad.json()["field"] == "weights"
    # the list names each run with its plan's summary, without the lines and both full plans
    listed = h.client("oscar").get("/calls/ls/award-runs").json()
    assert [r["id"] for r in listed] == [greedy["id"]]
    assert listed[0]["plan"] == greedy["plan"] and "lines" not in listed[0]
    assert (
        "optimiser" not in listed[0]
        and "greedy" in h.client("oscar").get(f"/award-runs/{greedy['id']}").json()
    )
    assert h.client("carol").get("/calls/ls/award-runs").status_code == 403

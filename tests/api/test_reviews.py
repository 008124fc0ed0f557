"""Peer review through the REST API, on SQLite and PostgreSQL: the reviewer pool, conflicts
of interest, assignment, scores, the panel's ranking and the decisions, with who sees what
at every role boundary. The demo pool: rita (Universidad de Ejemplo, ES, the organisation of
the applicant elena), ravi (DE), rosa (IT), rune (NO, every domain), radka (CZ)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from aifactories.cli import reviews as reviews_cli
from aifactories.cli.client import Client
from aifactories.cli.config import Profile
from aifactories.cli.main import app as cli
from aifactories.db.programme_models import AuditRow, NotificationRow
from tests.api.harness import Harness, make_harness
from tests.api.programme_helpers import DAY, draft, open_call, submit

REVIEWERS = ("rita", "ravi", "rosa", "rune", "radka")
GOOD = {"excellence": 9, "impact": 8, "feasibility": 7}  # 8.2
POOR = {"excellence": 4, "impact": 5, "feasibility": 6}  # 4.8


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, database_url)
    yield harness
    harness.platform.stop()


def peer_call(h: Harness, code: str = "sci", **rules: Any) -> dict[str, Any]:
    return open_call(
        h,
        code,
        "ai_for_science",
        cutoffs=[h.clock.now() + 10 * DAY],
        budget_gpu_hours={"pool": 1_000_000},
        rules=rules,
    )


def peer_proposal(h: Harness, user: str, call: str, domain: str, **extra: Any) -> int:
    """Until then: the real flow, draft and submit, to under_review at the next cut-off."""
    body = {"requested_gpu_hours": 5000, "period_months": 6, "domain": domain, **extra}
    proposal = draft(h, user, call, **body)
    result = submit(h, user, proposal["id"])
    assert result["status"] == "under_review", result["checks"]
    return int(proposal["id"])


def assign(h: Harness, call: str, user: str = "oscar") -> dict[str, Any]:
    response = h.client(user).post(f"/calls/{call}/review-assignments", json={})
    assert response.status_code == 200, response.text
    return dict(response.json())


def reviewers_of(plan: dict[str, Any], proposal_id: int) -> set[str]:
    return {a["reviewer"] for a in plan["assigned"] if a["proposal_id"] == proposal_id}


def my_review(h: Harness, user: str, proposal_id: int) -> dict[str, Any]:
    mine = h.client(user).get("/reviews").json()
    (review,) = [r for r in mine if r["proposal"]["id"] == proposal_id]
    return dict(review)


def score(
    h: Harness, user: str, proposal_id: int, scores: Mapping[str, float], comment: str = "Sound."
) -> dict[str, Any]:
    review = my_review(h, user, proposal_id)
    response = h.client(user).put(
        f"/reviews/{review['id']}", json={"scores": scores, "comment": comment}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_pool_is_kept_by_programme_operators(h: Harness) -> None:
    oscar = h.client("oscar")
    listed = oscar.get("/reviewers").json()
    assert [r["username"] for r in listed] == sorted(REVIEWERS)
    rita = next(r for r in listed if r["username"] == "rita")
    assert (rita["organisation"], rita["country"]) == ("Universidad de Ejemplo", "ES")
    # nobody else sees who reviews, reviewers included
    for user in ("alice", "rita", "sam"):
        assert h.client(user).get("/reviewers").status_code == 403
    denied = h.client("rita").post("/reviewers", json={"username": "bob", "domains": ["health"]})
    assert denied.status_code == 403 and "programme operator" in denied.json()["message"]

    for body, field in (
        ({"username": "bob", "domains": ["health", "astrology"]}, "domains[1]"),
        ({"username": "bob", "domains": []}, "domains"),
        ({"username": "nobody", "domains": ["health"]}, "username"),
    ):
        response = oscar.post("/reviewers", json=body)
        assert response.status_code == 422 and response.json()["field"] == field, response.text
    added = oscar.post("/reviewers", json={"username": "fabien", "domains": ["Climate", "energy"]})
    assert added.status_code == 201, added.text
    assert added.json()["expertise"] == ["climate", "energy"]
    assert "fabien" in [r["username"] for r in oscar.get("/reviewers").json()]
    assert h.client("fabien").get("/me").status_code == 200

    # removing a reviewer declines their open reviews: assigning again fills the place
    peer_call(h, reviewers_per_proposal=1)
    pid = peer_proposal(h, "carol", "sci", "climate")
    plan = assign(h, "sci")
    (first,) = reviewers_of(plan, pid)
    removed = oscar.delete(f"/reviewers/{first}", params={"reason": "on leave"})
    assert removed.status_code == 200 and removed.json()["active"] is False
    assert removed.json()["declined"] == 1
    assert oscar.delete(f"/reviewers/{first}", params={"reason": "again"}).status_code == 404
    assert oscar.delete("/reviewers/ravi").json()["field"] == "reason"
    second = reviewers_of(assign(h, "sci"), pid)
    assert len(second) == 1 and first not in second
    assert first not in [r["username"] for r in oscar.get("/reviewers").json()]
    everyone = oscar.get("/reviewers", params={"include_inactive": True}).json()
    assert first in [r["username"] for r in everyone]
    with h.platform.ctx.sessions() as s:
        actions = s.scalars(select(AuditRow.action).where(AuditRow.action.like("reviewer.%")))
        assert sorted(actions) == ["reviewer.add", "reviewer.remove"]


def test_assignment_avoids_every_conflict_of_interest(h: Harness) -> None:
    peer_call(h, same_country_conflict=True)
    spanish = peer_proposal(h, "elena", "sci", "language")  # rita's organisation
    italian = peer_proposal(h, "dario", "sci", "manufacturing")  # rosa's country
    finnish = peer_proposal(h, "carol", "sci", "health", members=["bob"])
    # only programme operators assign
    assert h.client("rita").post("/calls/sci/review-assignments").status_code == 403
    # rune declares a conflict with Kalevala (carol's organisation) before the assignment
    declared = h.client("rune").post(
        "/reviewers/me/conflicts",
        json={"organisation": "kalevala health imaging", "reason": "I advise their board"},
    )
    assert declared.status_code == 201, declared.text
    assert declared.json()["organisation"] == "Kalevala Health Imaging"

    plan = assign(h, "sci")
    assert plan["shortfalls"] == [] and len(plan["assigned"]) == 9
    assert "rita" not in reviewers_of(plan, spanish)  # same organisation
    assert "rosa" not in reviewers_of(plan, italian)  # same country, rule on
    assert "rune" not in reviewers_of(plan, finnish)  # declared
    assert reviewers_of(plan, finnish) == {"rita", "rosa", "radka"}  # the health experts left
    assert {"rune", "radka"} <= reviewers_of(plan, spanish)  # the language experts
    assert reviewers_of(plan, italian) == {"ravi", "rune", "radka"}  # the manufacturing ones
    assert sorted(plan["loads"].values()) == [1, 1, 2, 2, 3]  # experts first: radka has 3
    # running again assigns nobody: every proposal has its reviewers
    assert assign(h, "sci")["assigned"] == []

    # a reviewer never sees a proposal they may not review: a direct GET is 404
    assert h.client("rita").get(f"/proposals/{spanish}").status_code == 404
    assert h.client("rune").get(f"/proposals/{finnish}").status_code == 404
    assert h.client("rita").get(f"/proposals/{spanish}/reviews").status_code == 404
    # and sees the ones they were given, without the other reviewers
    rita = h.client("rita").get("/reviews").json()
    assert sorted(r["proposal"]["id"] for r in rita) == sorted(
        p for p in (spanish, italian, finnish) if "rita" in reviewers_of(plan, p)
    )
    assert all(r["reviewer"] == "rita" for r in rita)
    text = json.dumps(rita)
    assert not any(name in text for name in REVIEWERS if name != "rita")
    assert rita[0]["proposal"]["abstract"] and rita[0]["criteria"][0]["name"] == "excellence"
    assert h.client("rita").get(f"/proposals/{finnish}").status_code == 200
    # another reviewer's review is not there for them
    radka_review = my_review(h, "radka", finnish)
    assert h.client("rita").get(f"/reviews/{radka_review['id']}").status_code == 404
    assert h.client("elena").get(f"/reviews/{radka_review['id']}").status_code == 404
    assert h.client("oscar").get(f"/reviews/{radka_review['id']}").json()["reviewer"] == "radka"
    # a reviewer reads only their own review of a proposal, an applicant nothing yet
    own = h.client("radka").get(f"/proposals/{finnish}/reviews").json()
    assert [r["reviewer"] for r in own["reviews"]] == ["radka"]
    before = h.client("carol").get(f"/proposals/{finnish}/reviews")
    assert before.status_code == 403 and "once it is decided" in before.json()["message"]
    assert h.client("bob").get(f"/proposals/{finnish}/reviews").status_code == 403
    assert h.client("alice").get(f"/proposals/{finnish}/reviews").status_code == 404
    # only operators see the ranking
    for user in ("rita", "carol", "sam"):
        assert h.client(user).get("/calls/sci/ranking").status_code == 403

    # a conflict declared after the assignment withdraws the review; the proposal is gone
    # for the reviewer, the operators are told, and assigning again fills the place
    late = h.client("radka").post(
        "/reviewers/me/conflicts",
        json={"proposal_id": finnish, "reason": "I co-wrote the cited paper"},
    )
    assert late.status_code == 201 and late.json()["withdrawn_reviews"] == [finnish]
    assert h.client("radka").get(f"/proposals/{finnish}").status_code == 404
    assert h.client("radka").get(f"/reviews/{radka_review['id']}").status_code == 404
    refill = assign(h, "sci")
    assert [(a["proposal_id"], a["reviewer"]) for a in refill["assigned"]] == [(finnish, "ravi")]
    with h.platform.ctx.sessions() as s:
        told = s.scalars(
            select(NotificationRow.recipient).where(NotificationRow.event == "review.withdrawn")
        ).all()
        assert told == ["oscar@example.eu"]
        mails = s.scalars(
            select(NotificationRow.recipient).where(NotificationRow.event == "review.assigned")
        ).all()
        # one message per reviewer and run: five at first, then ravi's new one
        assert sorted(mails) == sorted([f"{u}@example.eu" for u in REVIEWERS] + ["ravi@example.eu"])

    # without enough reviewers, the shortfall says why
    peer_call(h, "sci-5", reviewers_per_proposal=5, same_country_conflict=True)
    short = peer_proposal(h, "elena", "sci-5", "science")
    plan = assign(h, "sci-5")
    (shortfall,) = plan["shortfalls"]
    assert (shortfall["proposal_id"], shortfall["reviewers"], shortfall["missing"]) == (short, 4, 1)
    assert shortfall["excluded"] == {"same_organisation": 1}
    assert "of the applicant organisation" in shortfall["reason"]
    # conflicts: one at a time, a reason, and reviewers only
    bad = h.client("rune").post(
        "/reviewers/me/conflicts", json={"organisation": "Aurora Robotics", "proposal_id": short}
    )
    assert bad.status_code == 422 and bad.json()["field"] == "organisation"
    no_reason = h.client("rune").post("/reviewers/me/conflicts", json={"proposal_id": short})
    assert no_reason.json()["field"] == "reason"
    outsider = h.client("alice").post(
        "/reviewers/me/conflicts", json={"proposal_id": short, "reason": "x"}
    )
    assert outsider.status_code == 403
    assert [c["organisation"] for c in h.client("rune").get("/reviewers/me/conflicts").json()] == [
        "Kalevala Health Imaging"
    ]
    # peer review only: a Playground call has none
    open_call(h, "pg", "playground")
    assert h.client("oscar").post("/calls/pg/review-assignments").status_code == 409


def test_scores_ranking_and_the_decision_by_the_calls_rule(h: Harness) -> None:
    peer_call(h, reviewers_per_proposal=2, min_average_score=6)
    strong = peer_proposal(h, "carol", "sci", "health")
    weak = peer_proposal(h, "fabien", "sci", "climate")
    late = peer_proposal(h, "alice", "sci", "manufacturing")
    plan = assign(h, "sci")
    assert plan["shortfalls"] == []
    first, second = sorted(reviewers_of(plan, strong))

    review = my_review(h, first, strong)
    put = h.client(first).put
    for body, field in (
        ({"scores": {"excellence": 9, "impact": 8}, "comment": "ok"}, "scores.feasibility"),
        ({"scores": {**GOOD, "excellence": 11}, "comment": "ok"}, "scores.excellence"),
        ({"scores": {**GOOD, "novelty": 5}, "comment": "ok"}, "scores.novelty"),
        ({"scores": GOOD, "comment": "  "}, "comment"),
    ):
        response = put(f"/reviews/{review['id']}", json=body)
        assert response.status_code == 422 and response.json()["field"] == field, response.text
    # someone else's review cannot be scored
    assert h.client(second).put(f"/reviews/{review['id']}", json={"scores": GOOD}).status_code == (
        404
    )
    done = score(h, first, strong, {**GOOD, "excellence": 3}, "First thoughts.")
    assert done["status"] == "submitted" and done["score"] == 5.8
    edited = score(h, first, strong, GOOD, "Convincing plan; the data set is ready.")
    assert edited["score"] == 8.2 and edited["comment"].startswith("Convincing")
    score(h, second, strong, {"excellence": 8, "impact": 8, "feasibility": 8}, "Strong team.")
    for reviewer in reviewers_of(plan, weak):
        score(h, reviewer, weak, POOR, "The method is not new.")
    # the late proposal: one review in, one declined
    late_first, late_second = sorted(reviewers_of(plan, late))
    score(h, late_first, late, GOOD, "Good.")
    declining = my_review(h, late_second, late)
    assert (
        h.client(late_second).post(f"/reviews/{declining['id']}/decline", json={}).json()["field"]
        == "reason"
    )
    declined = h.client(late_second).post(
        f"/reviews/{declining['id']}/decline", json={"reason": "travelling"}
    )
    assert declined.status_code == 200 and declined.json()["decline_reason"] == "travelling"
    # having declined, the reviewer no longer reads the proposal; the one still on it does
    assert h.client(late_second).get(f"/proposals/{late}").status_code == 404
    assert h.client(late_first).get(f"/proposals/{late}").status_code == 200
    again = h.client(late_second).put(
        f"/reviews/{declining['id']}", json={"scores": GOOD, "comment": "x"}
    )
    assert again.status_code == 409

    ranking = h.client("oscar").get("/calls/sci/ranking").json()
    rows = {e["proposal_id"]: e for e in ranking["entries"]}
    assert [e["proposal_id"] for e in ranking["entries"]] == [late, strong, weak]
    assert (rows[strong]["rank"], rows[strong]["score"], rows[strong]["spread"]) == (2, 8.1, 0.2)
    assert (rows[weak]["rank"], rows[weak]["score"], rows[weak]["missing"]) == (3, 4.8, 0)
    assert (rows[late]["reviews"], rows[late]["declined"], rows[late]["missing"]) == (1, 1, 1)
    assert {r["reviewer"] for r in rows[strong]["reviewers"]} == {first, second}
    # the operator sees the cut-off by its date too
    cutoff = ranking["entries"][0]["cutoff_at"]
    day = h.client("oscar").get("/calls/sci/ranking", params={"cutoff_at": "2026-01-11"}).json()
    assert day["cutoff_at"] == cutoff and len(day["entries"]) == 3
    wrong = h.client("oscar").get("/calls/sci/ranking", params={"cutoff_at": "2026-01-05"})
    assert wrong.status_code == 422 and wrong.json()["field"] == "cutoff_at"

    # before the cut-off, the rule decides nothing
    early = h.client("oscar").post("/calls/sci/decisions", json={"rule": True}).json()
    assert early["decided"] == [] and len(early["skipped"]) == 3
    assert h.client("carol").post("/calls/sci/decisions", json={"rule": True}).status_code == 403
    h.clock.advance(11 * DAY)
    decided = h.client("oscar").post("/calls/sci/decisions", json={"rule": True})
    assert decided.status_code == 200, decided.text
    outcome = {d["proposal_id"]: d for d in decided.json()["decided"]}
    assert outcome[strong]["status"] == "accepted" and outcome[strong]["rank"] == 2
    assert outcome[weak]["status"] == "rejected"
    assert outcome[weak]["reason"] == "average score 4.8 below the call's minimum 6"
    (waiting,) = decided.json()["skipped"]
    assert waiting["proposal_id"] == late and "1 of 2 reviews submitted" in waiting["reason"]

    # decided: the reviews are closed; the applicant sees scores and comments, no names
    closed = h.client(first).put(f"/reviews/{review['id']}", json={"scores": POOR, "comment": "x"})
    assert closed.status_code == 409 and "can no longer change" in closed.json()["message"]
    seen = h.client("carol").get(f"/proposals/{strong}/reviews")
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert body["score"] == 8.1 and body["rank"] == 2 and body["status"] == "accepted"
    assert sorted(r["score"] for r in body["reviews"]) == [8.0, 8.2]
    assert {r["reviewer"] for r in body["reviews"]} == {"Reviewer 1", "Reviewer 2"}
    assert "Strong team." in [r["comment"] for r in body["reviews"]]
    text = json.dumps(body)
    assert not any(name in text for name in REVIEWERS) and "review_id" not in text
    assert h.client("carol").get(f"/proposals/{strong}").json()["score"] == 8.1
    weak_view = h.client("fabien").get(f"/proposals/{weak}/reviews").json()
    assert weak_view["decision_reason"].startswith("average score 4.8")
    full = h.client("oscar").get(f"/proposals/{strong}/reviews").json()
    assert {r["reviewer"] for r in full["reviews"]} == {first, second}

    # the late proposal: assign again, score, and the rule decides it too
    refill = assign(h, "sci")
    (new,) = refill["assigned"]
    assert new["proposal_id"] == late and new["reviewer"] not in (late_first, late_second)
    score(h, new["reviewer"], late, {"excellence": 7, "impact": 7, "feasibility": 7}, "Fine.")
    last = h.client("oscar").post("/calls/sci/decisions", json={"rule": True}).json()
    assert [(d["proposal_id"], d["status"], d["score"]) for d in last["decided"]] == [
        (late, "accepted", 7.6)
    ]
    with h.platform.ctx.sessions() as s:
        audit = s.scalars(
            select(AuditRow).where(AuditRow.subject == f"proposal:{weak}").order_by(AuditRow.id)
        ).all()
        assert [a.action for a in audit][-1] == "proposal.reject"
        assert audit[-1].actor == "oscar" and audit[-1].details["by"] == "rule"
        assert audit[-1].reason == "average score 4.8 below the call's minimum 6"
        assert "review.submit" in [a.action for a in audit]
        told = s.scalars(
            select(NotificationRow).where(
                NotificationRow.event.in_(("proposal.accepted", "proposal.rejected"))
            )
        ).all()
        assert sorted((n.recipient, n.event) for n in told) == [
            ("alice@example.eu", "proposal.accepted"),
            ("carol@example.eu", "proposal.accepted"),
            ("fabien@example.eu", "proposal.rejected"),
        ]
        declines = s.scalars(
            select(NotificationRow.recipient).where(NotificationRow.event == "review.declined")
        ).all()
        assert declines == ["oscar@example.eu"]


def test_operators_decide_each_proposal_with_a_reason(h: Harness) -> None:
    peer_call(h, reviewers_per_proposal=1)
    reviewed = peer_proposal(h, "carol", "sci", "health")
    unreviewed = peer_proposal(h, "dario", "sci", "manufacturing")
    plan = assign(h, "sci")
    score(h, next(iter(reviewers_of(plan, reviewed))), reviewed, GOOD, "Good.")
    post = h.client("oscar").post
    no_rule = post("/calls/sci/decisions", json={"rule": True})
    assert no_rule.status_code == 422 and no_rule.json()["field"] == "rule"
    neither = post("/calls/sci/decisions", json={})
    assert neither.status_code == 422 and neither.json()["field"] == "decisions"
    for decision, field in (
        ({"proposal_id": reviewed, "outcome": "maybe", "reason": "x"}, "decisions[0].outcome"),
        ({"proposal_id": reviewed, "outcome": "accept"}, "decisions[0].reason"),
        ({"proposal_id": 9999, "outcome": "accept", "reason": "x"}, "decisions[0].proposal_id"),
    ):
        response = post("/calls/sci/decisions", json={"decisions": [decision]})
        assert response.status_code == 422 and response.json()["field"] == field, response.text
    nothing_in = post(
        "/calls/sci/decisions",
        json={"decisions": [{"proposal_id": unreviewed, "outcome": "accept", "reason": "x"}]},
    )
    assert nothing_in.status_code == 409 and "no submitted review" in nothing_in.json()["message"]
    both = post(
        "/calls/sci/decisions",
        json={
            "decisions": [
                {"proposal_id": reviewed, "outcome": "accept", "reason": "Excellent fit."},
                {"proposal_id": unreviewed, "outcome": "reject", "reason": "Out of scope."},
            ]
        },
    )
    assert both.status_code == 200, both.text
    got = {d["proposal_id"]: (d["status"], d["score"], d["rank"]) for d in both.json()["decided"]}
    assert got == {reviewed: ("accepted", 8.2, 1), unreviewed: ("rejected", None, None)}
    twice = post(
        "/calls/sci/decisions",
        json={"decisions": [{"proposal_id": reviewed, "outcome": "reject", "reason": "x"}]},
    )
    assert twice.status_code == 409 and "decided already" in twice.json()["message"]
    assert h.client("dario").get(f"/proposals/{unreviewed}/reviews").json()["reviews"] == []
    shown = h.client("dario").get(f"/proposals/{unreviewed}").json()
    assert (shown["status"], shown["decision_reason"]) == ("rejected", "Out of scope.")


def test_the_cli_over_the_api(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    peer_call(h, reviewers_per_proposal=1, min_average_score=5)
    pid = peer_proposal(h, "carol", "sci", "health")

    def aif(user: str, *args: str) -> tuple[int, str]:
        api = Client(Profile(server="http://testserver", token=h.tokens[user]))
        test_client: TestClient = h.client(user)
        api._http = test_client
        monkeypatch.setattr(reviews_cli, "client", lambda: api)
        result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "250", "NO_COLOR": "1"})
        return result.exit_code, result.output

    code, out = aif("oscar", "reviews", "pool", "add", "fabien", "--domain", "climate")
    assert code == 0 and "fabien" in out and "climate" in out, out
    code, out = aif("oscar", "reviews", "pool", "list")
    assert code == 0 and "Universidad de Ejemplo" in out
    code, out = aif("rita", "reviews", "pool", "list")
    assert code == 4 and "programme operator" in out
    code, out = aif("oscar", "reviews", "assign", "sci", "--json")
    assert code == 0, out
    (assigned,) = json.loads(out)["assigned"]
    reviewer, review_id = assigned["reviewer"], assigned["review_id"]
    code, out = aif(reviewer, "reviews", "list")
    assert code == 0 and "My reviews" in out and str(pid) in out
    code, out = aif(reviewer, "reviews", "show", str(review_id))
    assert code == 0 and "excellence (40%)" in out
    code, out = aif(reviewer, "reviews", "score", str(review_id), "--score", "excellence",
                    "--comment", "x")  # fmt: skip
    assert code == 2 and "CRITERION=VALUE" in out
    code, out = aif(reviewer, "reviews", "score", str(review_id), "--score", "excellence=8",
                    "--comment", "x")  # fmt: skip
    assert code == 2 and "scores.impact" in out
    code, out = aif(
        reviewer, "reviews", "score", str(review_id), "--score", "excellence=8",
        "--score", "impact=7", "--score", "feasibility=6", "--comment", "Clear plan.", "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["score"] == 7.2
    code, out = aif("oscar", "reviews", "ranking", "sci")
    assert code == 0 and "7.20" in out and reviewer in out
    code, out = aif("oscar", "reviews", "decide", "sci", "--accept", str(pid))
    assert code == 2 and "--reason" in out
    code, out = aif("oscar", "reviews", "decide", "sci", "--rule")
    assert code == 0 and "waits" in out  # the cut-off is ahead
    h.clock.advance(11 * DAY)
    code, out = aif("oscar", "reviews", "decide", "sci", "--rule")
    assert code == 0 and "accept" in out and "meets the call's minimum 5" in out
    code, out = aif("carol", "reviews", "proposal", str(pid))
    assert code == 0 and "Reviewer 1" in out and "Clear plan." in out and reviewer not in out
    code, out = aif("rune", "reviews", "conflict", "--organisation", "Aurora Robotics",
                    "--reason", "former employer")  # fmt: skip
    assert code == 0 and "Aurora Robotics" in out

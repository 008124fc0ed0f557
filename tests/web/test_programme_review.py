"""The programme operator's peer-review pages: the reviewer pool, the automatic assignment,
the ranking and the decisions, end to end through the portal as oscar (the reviewers score
through the API, as in tests/api/test_reviews.py)."""

from __future__ import annotations

import re

import pytest

from tests.api.harness import Harness
from tests.api.programme_helpers import DAY, open_call
from tests.api.test_reviews import GOOD, POOR, peer_proposal, score
from tests.web.harness import csrf, portal


def _round(h: Harness) -> dict[str, int]:
    open_call(
        h,
        "ls",
        "large_scale",
        cutoffs=[h.clock.now() + 10 * DAY],
        budget_gpu_hours={"pool": 250_000.0},
        rules={"min_average_score": 6, "reviewers_per_proposal": 2},
    )
    return {
        "carol": peer_proposal(h, "carol", "ls", "health", requested_gpu_hours=100_000),
        "elena": peer_proposal(h, "elena", "ls", "language", requested_gpu_hours=80_000),
        "dario": peer_proposal(h, "dario", "ls", "manufacturing", requested_gpu_hours=120_000),
    }


def _status(h: Harness, proposal_id: int) -> str:
    return str(h.client("oscar").get(f"/proposals/{proposal_id}").json()["status"])


def _flash(page: str) -> str:
    found = re.search(r'<p class="flash [a-z]+" role="[a-z]+">([^<]*)</p>', page)
    assert found, "no message on the page"
    return found.group(1)


def test_assign_rank_and_decide_from_the_portal(h: Harness) -> None:
    ids = _round(h)
    oscar = portal(h, "oscar")
    answer = oscar.post("/portal/programme/calls/ls/assign", data={"csrf": csrf(oscar)})
    assert answer.status_code == 303
    assert "6 review(s) assigned" in _flash(oscar.get(answer.headers["location"]).text)
    plan = h.client("oscar").get("/calls/ls/ranking").json()
    assert all(len(e["reviewers"]) == 2 for e in plan["entries"])
    for user, proposal in ids.items():
        for entry in plan["entries"]:
            if entry["proposal_id"] == proposal:
                for reviewer in {r["reviewer"] for r in entry["reviewers"]}:
                    score(h, reviewer, proposal, POOR if user == "dario" else GOOD)
    page = oscar.get("/portal/programme/calls/ls/ranking").text
    assert "8.20" in page and "4.80" in page  # the scores, as the API ranks them
    rows = re.findall(r"<th scope=\"row\">(\d+):", page)
    assert [int(r) for r in rows][-1] == ids["dario"]  # the weakest last

    # a decision needs a reason; then it is stored and the applicant's proposal moves
    answer = oscar.post(
        "/portal/programme/calls/ls/decisions",
        data={"csrf": csrf(oscar), "proposal_id": str(ids["dario"]), "outcome": "reject"},
    )
    assert "reason" in _flash(oscar.get(answer.headers["location"]).text)
    assert _status(h, ids["dario"]) == "under_review"
    answer = oscar.post(
        "/portal/programme/calls/ls/decisions",
        data={
            "csrf": csrf(oscar),
            "proposal_id": str(ids["dario"]),
            "outcome": "reject",
            "reason": "Too thin on method.",
        },
    )
    message = _flash(oscar.get(answer.headers["location"]).text)
    assert f"proposal {ids['dario']} rejected" in message
    assert _status(h, ids["dario"]) == "rejected"

    # the call's rule waits for the cut-off, and says so
    answer = oscar.post(
        "/portal/programme/calls/ls/decisions", data={"csrf": csrf(oscar), "rule": "yes"}
    )
    assert "is ahead" in _flash(oscar.get(answer.headers["location"]).text)
    h.clock.advance(11 * DAY)
    oscar = portal(h, "oscar")  # a session does not last 11 days
    answer = oscar.post(
        "/portal/programme/calls/ls/decisions", data={"csrf": csrf(oscar), "rule": "yes"}
    )
    assert "accepted" in _flash(oscar.get(answer.headers["location"]).text)
    assert {_status(h, ids["carol"]), _status(h, ids["elena"])} == {"accepted"}
    # deciding twice is refused in words
    answer = oscar.post(
        "/portal/programme/calls/ls/decisions",
        data={
            "csrf": csrf(oscar),
            "proposal_id": str(ids["carol"]),
            "outcome": "reject",
            "reason": "Changed my mind.",
        },
    )
    assert "decided already" in _flash(oscar.get(answer.headers["location"]).text)


def test_the_pool_is_kept_from_the_portal(h: Harness) -> None:
    oscar = portal(h, "oscar")
    page = oscar.get("/portal/programme/reviewers").text
    assert "rita" in page and "Universidad de Ejemplo" in page
    answer = oscar.post(
        "/portal/programme/reviewers",
        data={"csrf": csrf(oscar), "username": "alice", "domains": ["health", "energy"]},
    )
    assert "alice reviews in health, energy." in _flash(oscar.get(answer.headers["location"]).text)
    pool = {r["username"]: r for r in h.client("oscar").get("/reviewers").json()}
    assert pool["alice"]["expertise"] == ["health", "energy"]
    answer = oscar.post(
        "/portal/programme/reviewers", data={"csrf": csrf(oscar), "username": "nobody-here"}
    )
    assert "domain" in _flash(oscar.get(answer.headers["location"]).text)
    answer = oscar.post(
        "/portal/programme/reviewers/alice/remove", data={"csrf": csrf(oscar), "reason": ""}
    )
    assert "reason" in _flash(oscar.get(answer.headers["location"]).text)
    answer = oscar.post(
        "/portal/programme/reviewers/alice/remove",
        data={"csrf": csrf(oscar), "reason": "Moved to industry."},
    )
    assert "alice has left" in _flash(oscar.get(answer.headers["location"]).text)
    assert "alice" not in {r["username"] for r in h.client("oscar").get("/reviewers").json()}


def test_a_call_without_peer_review_has_no_ranking(h: Harness) -> None:
    open_call(h, "fl", "fast_lane")
    page = portal(h, "oscar").get("/portal/programme/calls/fl/ranking")
    assert page.status_code in (409, 422) and "peer" in page.text


@pytest.mark.parametrize("user", ["alice", "rita", "sam"])
def test_only_a_programme_operator_assigns_ranks_decides_or_keeps_the_pool(
    h: Harness, user: str
) -> None:
    ids = _round(h)
    client = portal(h, user)
    for path in ("/portal/programme/reviewers", "/portal/programme/calls/ls/ranking"):
        assert client.get(path).status_code == 403, path
    token = csrf(client)
    posts = {
        "/portal/programme/calls/ls/assign": {},
        "/portal/programme/calls/ls/decisions": {
            "proposal_id": str(ids["carol"]),
            "outcome": "reject",
            "reason": "no",
        },
        "/portal/programme/reviewers": {"username": user, "domains": "health"},
        "/portal/programme/reviewers/rita/remove": {"reason": "no"},
    }
    for path, data in posts.items():
        assert client.post(path, data={"csrf": token, **data}).status_code == 403, path
    assert _status(h, ids["carol"]) == "under_review"
    ranking = h.client("oscar").get("/calls/ls/ranking").json()
    assert all(not e["reviewers"] for e in ranking["entries"])
    assert "rita" in {r["username"] for r in h.client("oscar").get("/reviewers").json()}

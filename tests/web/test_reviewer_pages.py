"""The reviewer's pages: assigned proposals, scoring each criterion until the decision,
declining and declaring a conflict of interest, and who sees none of it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.api.harness import Harness
from tests.api.test_reviews import GOOD, assign, peer_call, peer_proposal, reviewers_of
from tests.web.harness import browser, csrf, portal


def _assigned(h: Harness, reviewers: int = 1) -> tuple[int, str, int]:
    """A peer-reviewed proposal of carol's, assigned: (proposal id, reviewer, review id)."""
    peer_call(h, reviewers_per_proposal=reviewers)
    proposal = peer_proposal(h, "carol", "sci", "health", title="Protein folding at scale")
    plan = assign(h, "sci")
    reviewer = sorted(reviewers_of(plan, proposal))[0]
    (review,) = [a["review_id"] for a in plan["assigned"] if a["reviewer"] == reviewer]
    return proposal, reviewer, int(review)


def _score_form(client: TestClient, **values: str) -> dict[str, str]:
    return {"csrf": csrf(client), **values}


def _good(client: TestClient, comment: str = "Strong team, clear plan.") -> dict[str, str]:
    return _score_form(client, **{f"score-{k}": str(v) for k, v in GOOD.items()}, comment=comment)


def test_a_reviewer_lists_reads_scores_and_edits_until_the_decision(h: Harness) -> None:
    proposal, reviewer, review = _assigned(h)
    client = portal(h, reviewer)
    listing = client.get("/portal/reviews")
    assert listing.status_code == 200
    assert "Protein folding at scale" in listing.text and "to write" in listing.text
    assert f'href="/portal/reviews/{review}"' in listing.text
    page = client.get(f"/portal/reviews/{review}")
    assert page.status_code == 200
    for text in ("Excellence", "Impact", "Feasibility", "0 (poor) to 10 (excellent)", "40 %"):
        assert text in page.text, text
    assert 'for="score-excellence"' in page.text and 'id="score-excellence"' in page.text
    answer = client.post(f"/portal/reviews/{review}", data=_good(client))
    assert answer.status_code == 303 and answer.headers["location"] == f"/portal/reviews/{review}"
    shown = client.get(f"/portal/reviews/{review}").text
    assert "Your review is submitted." in shown and "8.20 of 10" in shown
    assert 'value="9"' in shown and "Strong team, clear plan." in shown
    # the API sees the same review
    api = h.client(reviewer).get(f"/reviews/{review}").json()
    assert api["status"] == "submitted" and api["scores"]["excellence"] == 9
    # edit: the review is updated, the API agrees
    changed = {**_good(client, "Revised: the plan is too long."), "score-impact": "6"}
    assert client.post(f"/portal/reviews/{review}", data=changed).status_code == 303
    assert "Your review is updated." in client.get(f"/portal/reviews/{review}").text
    assert h.client(reviewer).get(f"/reviews/{review}").json()["scores"]["impact"] == 6
    # the decision closes it: read-only, saying so, and a POST is refused
    decided = h.client("oscar").post(
        "/calls/sci/decisions",
        json={"decisions": [{"proposal_id": proposal, "outcome": "accept", "reason": "Good."}]},
    )
    assert decided.status_code == 200, decided.text
    closed = client.get(f"/portal/reviews/{review}").text
    assert (
        "can no longer change" in closed
        and '<form method="post" action="/portal/reviews/' not in closed
    )
    assert "Revised: the plan is too long." in closed
    late = client.post(f"/portal/reviews/{review}", data=_good(client, "Too late."))
    assert late.status_code == 303
    assert "can no longer change" in client.get(late.headers["location"]).text
    assert h.client(reviewer).get(f"/reviews/{review}").json()["comment"].startswith("Revised")


def test_wrong_scores_are_named_next_to_their_field_and_kept(h: Harness) -> None:
    _, reviewer, review = _assigned(h)
    client = portal(h, reviewer)
    data = _score_form(
        client, **{"score-excellence": "11", "score-impact": "8", "score-feasibility": "7"},
        comment="Kept text.",
    )  # fmt: skip
    page = client.post(f"/portal/reviews/{review}", data=data)
    assert page.status_code == 422
    assert re.search(r'id="score-excellence"[^>]*value="11"[^>]*aria-invalid="true"', page.text)
    assert 'id="score-excellence-error"' in page.text and "out of range" in page.text
    assert "Kept text." in page.text and 'value="8"' in page.text
    not_a_number = _score_form(
        client, **{"score-excellence": "nine", "score-impact": "8", "score-feasibility": "7"},
        comment="x",
    )  # fmt: skip
    page = client.post(f"/portal/reviews/{review}", data=not_a_number)
    assert page.status_code == 422 and "is not a number" in page.text
    missing = _score_form(client, **{"score-excellence": "5", "score-impact": "5"}, comment="")
    page = client.post(f"/portal/reviews/{review}", data=missing)
    assert page.status_code == 422 and 'id="score-feasibility-error"' in page.text
    no_comment = _good(client, comment="  ")
    page = client.post(f"/portal/reviews/{review}", data=no_comment)
    assert page.status_code == 422 and 'id="comment-error"' in page.text
    assert h.client(reviewer).get(f"/reviews/{review}").json()["status"] == "assigned"


def test_declining_needs_a_reason_and_a_confirmation(h: Harness) -> None:
    _, reviewer, review = _assigned(h)
    client = portal(h, reviewer)
    page = client.post(
        f"/portal/reviews/{review}/decline", data={"csrf": csrf(client), "reason": "Too busy."}
    )
    assert page.status_code == 422 and 'id="decline-confirm-error"' in page.text
    assert "Too busy." in page.text  # kept
    page = client.post(
        f"/portal/reviews/{review}/decline",
        data={"csrf": csrf(client), "reason": " ", "confirm": "yes"},
    )
    assert page.status_code == 422 and 'id="decline-reason-error"' in page.text
    done = client.post(
        f"/portal/reviews/{review}/decline",
        data={"csrf": csrf(client), "reason": "Travelling all month.", "confirm": "yes"},
    )
    assert done.status_code == 303 and done.headers["location"] == "/portal/reviews"
    assert "You declined the review" in client.get("/portal/reviews").text
    assert h.client(reviewer).get(f"/reviews/{review}").json()["status"] == "declined"
    shown = client.get(f"/portal/reviews/{review}").text
    assert "You declined this review" in shown and "Travelling all month." in shown


def test_a_conflict_of_interest_withdraws_the_review(h: Harness) -> None:
    proposal, reviewer, review = _assigned(h)
    client = portal(h, reviewer)
    page = client.post(
        f"/portal/reviews/{review}/conflict",
        data={"csrf": csrf(client), "scope": "proposal", "reason": "", "confirm": "yes"},
    )
    assert page.status_code == 422 and 'id="conflict-reason-error"' in page.text
    done = client.post(
        f"/portal/reviews/{review}/conflict",
        data={
            "csrf": csrf(client),
            "scope": "organisation",
            "reason": "I co-authored with its PI.",
            "confirm": "yes",
        },
    )
    assert done.status_code == 303
    listing = client.get("/portal/reviews").text
    assert "conflict of interest is recorded" in listing and "I co-authored with its PI." in listing
    assert client.get(f"/portal/reviews/{review}").status_code == 404
    conflicts = h.client(reviewer).get("/reviewers/me/conflicts").json()
    assert [c["organisation"] for c in conflicts] == ["Kalevala Health Imaging"]
    assert h.client(reviewer).get(f"/proposals/{proposal}").status_code == 404


def test_only_the_assigned_reviewer_reaches_a_review(h: Harness) -> None:
    _, reviewer, review = _assigned(h)
    other = next(r for r in ("rita", "ravi", "rosa", "rune", "radka") if r != reviewer)
    for who, status in ((other, 404), ("alice", 404), ("sam", 404)):
        client = portal(h, who)
        assert client.get(f"/portal/reviews/{review}").status_code == status, who
        answer = client.post(f"/portal/reviews/{review}", data=_good(client))
        assert answer.status_code == status, who
        answer = client.post(
            f"/portal/reviews/{review}/decline",
            data={"csrf": csrf(client), "reason": "x", "confirm": "yes"},
        )
        assert answer.status_code == status, who
    assert portal(h, "alice").get("/portal/reviews").status_code == 403
    assert "Protein folding" not in portal(h, other).get("/portal/reviews").text
    anonymous = browser(h).get(f"/portal/reviews/{review}")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith(
        "/portal/login?next="
    )
    # a programme operator reads it, without a form to change it
    oscar = portal(h, "oscar").get(f"/portal/reviews/{review}")
    assert oscar.status_code == 200 and f"The review of {reviewer}" in oscar.text
    assert 'name="score-excellence"' not in oscar.text
    assert h.client(reviewer).get(f"/reviews/{review}").json()["status"] == "assigned"


def test_review_forms_without_csrf_change_nothing(h: Harness) -> None:
    _, reviewer, review = _assigned(h)
    client = portal(h, reviewer)
    data = {f"score-{k}": str(v) for k, v in GOOD.items()} | {"comment": "Forged."}
    for path, body in (
        (f"/portal/reviews/{review}", data),
        (f"/portal/reviews/{review}/decline", {"reason": "x", "confirm": "yes"}),
        (
            f"/portal/reviews/{review}/conflict",
            {"scope": "proposal", "reason": "x", "confirm": "yes"},
        ),
    ):
        answer = client.post(path, data=body)
        assert answer.status_code == 403 and "reload the page" in answer.text, path
    assert h.client(reviewer).get(f"/reviews/{review}").json()["status"] == "assigned"

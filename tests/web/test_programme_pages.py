"""The programme operator's pages: the overview and the calls (open with every field of the
API's body, errors next to their field, close), through the portal as oscar; everyone else
is refused."""

from __future__ import annotations

import re

import pytest

from tests.api.harness import Harness
from tests.api.programme_helpers import DAY, draft, open_call, submit
from tests.web.harness import browser, csrf, portal

PAGES = (
    "/portal/programme",
    "/portal/programme/calls",
    "/portal/programme/calls/new",
    "/portal/programme/calls/fl",
    "/portal/programme/proposals",
)


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M")


def test_the_overview_shows_what_waits_with_links(h: Harness) -> None:
    open_call(h, "fl", "fast_lane", title="Fast Lane spring")
    page = portal(h, "oscar").get("/portal/programme")
    assert page.status_code == 200, page.text
    assert 'href="/portal/programme/calls/fl"' in page.text and "Fast Lane spring" in page.text
    assert "0 allocation requests" in page.text and "No award run yet" in page.text
    assert 'aria-current="page"' in page.text


def test_proposals_waiting_are_counted_and_listed_by_stage(h: Harness) -> None:
    open_call(h, "fl", "fast_lane")
    proposal = draft(h, "alice", "fl", title="Robots that pick")
    assert submit(h, "alice", proposal["id"])["status"] == "technical_check"
    draft(h, "carol", "fl", title="A draft nobody sees")
    oscar = portal(h, "oscar")
    overview = oscar.get("/portal/programme").text
    assert '<a href="/portal/programme/proposals?status=technical_check">1 proposal</a>' in overview
    page = oscar.get("/portal/programme/proposals", params={"status": "technical_check"}).text
    assert f"{proposal['id']}: Robots that pick" in page and "a site's technical check" in page
    assert "A draft nobody sees" not in page
    assert "No proposal here." in oscar.get("/portal/programme/proposals").text  # under review
    other = oscar.get("/portal/programme/proposals", params={"status": "technical_check",
                                                              "call": "nope"})  # fmt: skip
    assert other.status_code == 404


def test_opening_a_call_from_the_form_opens_it_as_the_api_would(h: Harness) -> None:
    oscar = portal(h, "oscar")
    form = oscar.get("/portal/programme/calls/new").text
    for name in ("code", "title", "mode", "opens_at", "closes_at", "cutoffs", "course_ends_at",
                 "budget_gpu_hours.pool", "rules.max_gpu_hours", "rules.criteria",
                 "rules.organisation_kinds", "rules.same_country_conflict",
                 "rules.member_cap_gpu_hours"):  # fmt: skip
        assert f'name="{name}"' in form, name
    now = h.clock.now()
    answer = oscar.post(
        "/portal/programme/calls",
        data={
            "csrf": csrf(oscar),
            "code": "sci-27",
            "title": "AI for Science 2027",
            "mode": "ai_for_science",
            "closes_at": _iso(now + 60 * DAY),
            "cutoffs": _iso(now + 10 * DAY) + "\n" + _iso(now + 40 * DAY),
            "budget_gpu_hours.pool": "200000",
            "rules.reviewers_per_proposal": "2",
            "rules.min_average_score": "6.5",
            "rules.criteria": "excellence 0.5\nimpact 0.5",
            "rules.organisation_kinds": ["academia", "public"],
        },
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/portal/programme/calls/sci-27"
    call = h.client("oscar").get("/calls/sci-27").json()
    assert call["rules"]["reviewers_per_proposal"] == 2
    assert call["rules"]["min_average_score"] == 6.5
    assert call["rules"]["organisation_kinds"] == ["academia", "public"]
    assert [c["name"] for c in call["rules"]["criteria"]] == ["excellence", "impact"]
    assert len(call["cutoffs"]) == 2 and call["budget_gpu_hours"] == {"pool": 200000.0}
    page = oscar.get(answer.headers["location"]).text
    assert "Call sci-27 is open." in page and "200,000" in page and "6.5 out of 10" in page


def test_a_wrong_call_form_names_each_field_and_keeps_what_was_typed(h: Harness) -> None:
    oscar = portal(h, "oscar")
    answer = oscar.post(
        "/portal/programme/calls",
        data={
            "csrf": csrf(oscar),
            "code": "Bad Code",
            "title": "A call with mistakes",
            "mode": "fast_lane",
            "closes_at": "tomorrow",
            "budget_gpu_hours.pool": "lots",
            "rules.max_members": "many",
        },
    )
    assert answer.status_code == 422
    text = answer.text
    assert 'value="A call with mistakes"' in text and 'value="Bad Code"' in text
    for name in ("budget_gpu_hours-pool", "rules-max_members"):
        assert f'id="f-{name}-error"' in text, name
    assert re.search(r'id="f-budget_gpu_hours-pool"[^>]*value="lots"', text, re.S)
    # once the numbers read, the API's own checks speak, next to their fields
    answer = oscar.post(
        "/portal/programme/calls",
        data={
            "csrf": csrf(oscar),
            "code": "Bad Code",
            "title": "A call with mistakes",
            "mode": "fast_lane",
            "closes_at": "tomorrow",
            "budget_gpu_hours.pool": "1000",
        },
    )
    assert answer.status_code == 422 and 'id="f-code-error"' in answer.text
    assert h.client("oscar").get("/calls").json() == []


def test_the_services_refusal_lands_next_to_its_field(h: Harness) -> None:
    oscar = portal(h, "oscar")
    now = h.clock.now()
    answer = oscar.post(
        "/portal/programme/calls",
        data={
            "csrf": csrf(oscar),
            "code": "fl2",
            "title": "Fast Lane",
            "mode": "fast_lane",
            "opens_at": _iso(now + 10 * DAY),
            "closes_at": _iso(now + 5 * DAY),
            "budget_gpu_hours.pool": "1000",
        },
    )
    assert answer.status_code == 422
    error = re.search(r'id="f-closes_at-error">([^<]+)<', answer.text)
    assert error and "close after it opens" in error.group(1)


def test_closing_a_call_needs_a_reason_and_is_audited(h: Harness) -> None:
    open_call(h, "fl", "fast_lane")
    oscar = portal(h, "oscar")
    answer = oscar.post("/portal/programme/calls/fl/close", data={"csrf": csrf(oscar)})
    assert answer.status_code == 303
    assert "give a reason" in oscar.get("/portal/programme/calls/fl").text
    assert h.client("oscar").get("/calls/fl").json()["status"] == "open"
    answer = oscar.post(
        "/portal/programme/calls/fl/close", data={"csrf": csrf(oscar), "reason": "budget spent"}
    )
    page = oscar.get(answer.headers["location"]).text
    assert "Call fl is closed." in page and "Close the call" not in page
    assert h.client("oscar").get("/calls/fl").json()["status"] == "closed"
    audit = h.client("oscar").get("/audit", params={"action": "call.close"}).json()
    assert audit[0]["reason"] == "budget spent" and audit[0]["actor"] == "oscar"


@pytest.mark.parametrize("user", ["alice", "rita", "sam"])
def test_no_one_but_a_programme_operator_reaches_these_pages(h: Harness, user: str) -> None:
    open_call(h, "fl", "fast_lane")
    client = portal(h, user)
    for path in PAGES:
        answer = client.get(path)
        assert answer.status_code == 403, (path, answer.status_code)
        assert "only a programme operator" in answer.text
    answer = client.post(
        "/portal/programme/calls/fl/close", data={"csrf": csrf(client), "reason": "mine"}
    )
    assert answer.status_code == 403
    assert h.client("oscar").get("/calls/fl").json()["status"] == "open"


def test_a_stranger_is_sent_to_sign_in(h: Harness) -> None:
    for path in PAGES:
        answer = browser(h).get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith(
            "/portal/login?next="
        )


def test_forms_without_the_csrf_token_change_nothing(h: Harness) -> None:
    open_call(h, "fl", "fast_lane")
    oscar = portal(h, "oscar")
    answer = oscar.post("/portal/programme/calls/fl/close", data={"reason": "forged"})
    assert answer.status_code == 403
    assert h.client("oscar").get("/calls/fl").json()["status"] == "open"

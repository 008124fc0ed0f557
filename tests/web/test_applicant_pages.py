"""The applicant's pages: apply to an open call, fix the errors named next to their fields,
submit, read the automated checks, the decision and the anonymised reviews, withdraw; the
notifications; and the role boundaries, which answer as the API answers."""

from __future__ import annotations

import html
import re
from typing import Any

from fastapi.testclient import TestClient

from aifactories.services.programme.applicant_proposals import PAGE
from tests.api.harness import Harness
from tests.api.programme_helpers import DAY, draft, open_call
from tests.web.harness import browser, csrf, portal

REVIEWERS = ("rita", "ravi", "rosa", "rune", "radka")
GOOD_FORM = {
    "title": "Vision models for warehouse robots",
    "abstract": "We fine-tune vision transformers on warehouse images for picking robots.",
    "domain": "manufacturing",
    "industrial": "1",
    "requested_gpu_hours": "1,500",
    "period_months": "6",
    "gpu_model": "any",
    "largest_job_gpus": "8",
}


def peer_call(h: Harness, code: str = "sci") -> dict[str, Any]:
    return open_call(
        h,
        code,
        "ai_for_science",
        cutoffs=[h.clock.now() + 10 * DAY],
        budget_gpu_hours={"pool": 1_000_000},
        rules={"reviewers_per_proposal": 2},
    )


def apply(client: TestClient, call: str, **fields: str) -> Any:
    form = {**GOOD_FORM, **fields}
    return client.post(
        f"/portal/calls/{call}/apply",
        data={"csrf": csrf(client, f"/portal/calls/{call}/apply"), **form},
    )


def drafted(client: TestClient, call: str, **fields: str) -> int:
    answer = apply(client, call, **fields)
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/portal/proposals/(\d+)", answer.headers["location"])
    assert found, answer.headers["location"]
    return int(found.group(1))


def post(client: TestClient, path: str, **data: str) -> Any:
    return client.post(path, data={"csrf": csrf(client), **data})


def field_error(page: str, name: str) -> str:
    """The error shown next to field ``name``, which the field names as its description."""
    found = re.search(
        rf'id="{name}-error"><span class="visually-hidden">Error: </span>([^<]*)<', page
    )
    assert found, f"no error next to {name}"
    return html.unescape(found.group(1))


def test_an_open_call_offers_apply_and_a_form_with_its_limits(h: Harness) -> None:
    peer_call(h)
    alice = portal(h, "alice")
    assert 'href="/portal/calls/sci/apply"' in alice.get("/portal/calls").text
    assert "Sign in to apply" in browser(h).get("/portal/calls").text
    page = alice.get("/portal/calls/sci/apply")
    assert page.status_code == 200
    text = page.text
    for name in (
        "title",
        "abstract",
        "domain",
        "requested_gpu_hours",
        "period_months",
        "starts_at",
        "gpu_model",
        "min_gpu_memory_gb",
        "largest_job_gpus",
        "members",
    ):
        assert f'<label for="f-{name}">' in text, name
    assert "<legend>Preferred sites</legend>" in text and "<legend>Data residency</legend>" in text
    assert "1,000 to 2,000,000 GPU-hours in this call" in text  # the call's limits as a hint
    assert 'aria-describedby="requested_gpu_hours-hint"' in text
    assert '<option value="6">6 months</option>' in text  # the call's only period
    assert '<option value="manufacturing">Manufacturing</option>' in text
    # its one script (focus on the error summary) is the platform's own
    assert '<script src="/static/portal/applicant.js" defer>' in text
    assert alice.get("/static/portal/applicant.js").status_code == 200
    # a call that is not open has no form; a stranger is sent to sign in
    assert alice.get("/portal/calls/nope/apply").status_code == 404
    assert browser(h).get("/portal/calls/sci/apply").status_code == 303


def test_bad_values_come_back_next_to_their_fields_with_what_was_written(h: Harness) -> None:
    peer_call(h)
    alice = portal(h, "alice")
    answer = apply(
        alice, "sci", title="ab", abstract="", requested_gpu_hours="lots", largest_job_gpus="0"
    )
    assert answer.status_code == 422
    page = answer.text
    assert "field-error" in page and 'role="alert"' in page  # the summary is announced
    assert field_error(page, "title") == "should have at least 3 characters"
    assert field_error(page, "abstract") == "is required"
    assert "'lots' is not a number" in field_error(page, "requested_gpu_hours")
    assert "greater than or equal to 1" in field_error(page, "largest_job_gpus")
    assert re.search(r'id="f-title"[^>]*value="ab"|value="ab"[^>]*id="f-title"', page)
    assert re.search(
        r'id="f-title"[^>]*aria-describedby="title-hint title-error" aria-invalid="true"', page
    )
    assert 'value="lots"' in page and '<a href="#f-title">' in page
    assert '<option value="manufacturing" selected>' in page
    # the service's own checks are named next to their field too
    unknown_member = apply(alice, "sci", members="carol, nobody-here")
    assert unknown_member.status_code == 422
    assert "no user 'nobody-here'" in field_error(unknown_member.text, "members")
    assert 'value="carol, nobody-here"' in unknown_member.text
    unknown_model = apply(alice, "sci", gpu_model="Z100")
    assert "unknown GPU model 'Z100'" in field_error(unknown_model.text, "gpu_model")
    assert h.client("alice").get("/proposals").json() == []  # nothing was saved


def test_an_applicant_drafts_fixes_submits_and_reads_the_decision_and_reviews(h: Harness) -> None:
    peer_call(h)
    alice = portal(h, "alice")
    pid = drafted(alice, "sci", requested_gpu_hours="500", members="dario")
    page = alice.get(f"/portal/proposals/{pid}")
    assert page.status_code == 200 and "Draft " in page.text  # the flash
    assert '<strong class="status status-draft">draft</strong>' in page.text
    assert f'action="/portal/proposals/{pid}/submit"' in page.text
    # the API sees the same draft, with the form's values
    seen = h.client("alice").get(f"/proposals/{pid}").json()
    assert (seen["requested_gpu_hours"], seen["period_months"], seen["industrial"]) == (
        500,
        6,
        True,
    )
    assert seen["members"] == ["dario"]

    # 500 GPU-hours are under the call's minimum: the checks say so in words
    assert post(alice, f"/portal/proposals/{pid}/submit").status_code == 303
    page = alice.get(f"/portal/proposals/{pid}").text
    assert "automated checks failed" in page and "The automated checks refused" in page
    assert "GPU-hours within the call&#39;s limits" in page
    assert "outside AI for Science&#39;s limits" in page and "badge bad" in page
    # the edit form comes back filled in; a bad value is refused, then fixed
    form = alice.get(f"/portal/proposals/{pid}/edit").text
    assert 'value="500"' in form and 'value="dario"' in form
    edit = {**GOOD_FORM, "members": "dario", "csrf": csrf(alice)}
    bad = alice.post(f"/portal/proposals/{pid}/edit", data={**edit, "requested_gpu_hours": "-5"})
    assert bad.status_code == 422 and "greater than 0" in field_error(
        bad.text, "requested_gpu_hours"
    )
    fixed = alice.post(
        f"/portal/proposals/{pid}/edit", data={**edit, "requested_gpu_hours": "5000"}
    )
    assert fixed.status_code == 303 and fixed.headers["location"] == f"/portal/proposals/{pid}"
    assert post(alice, f"/portal/proposals/{pid}/submit").status_code == 303
    page = alice.get(f"/portal/proposals/{pid}").text
    assert "under peer review" in page and "badge bad" not in page
    assert "Who may apply" in page and "5,000 GPU-hours" in page
    assert "received: peer review" in page  # the history has the platform's message
    assert f'href="/portal/proposals/{pid}/edit"' not in page  # no longer editable
    assert "Reviews" not in page

    # the operator assigns, the reviewers score, the operator decides (through the API)
    plan = h.client("oscar").post("/calls/sci/review-assignments", json={})
    assert plan.status_code == 200, plan.text
    for assigned in plan.json()["assigned"]:
        reviewer = h.client(assigned["reviewer"])
        (review,) = [r for r in reviewer.get("/reviews").json() if r["proposal"]["id"] == pid]
        scored = reviewer.put(
            f"/reviews/{review['id']}",
            json={
                "scores": {"excellence": 9, "impact": 8, "feasibility": 7},
                "comment": f"Convincing plan, says {assigned['reviewer']}.",
            },
        )
        assert scored.status_code == 200, scored.text
    h.clock.advance(11 * DAY)
    decided = h.client("oscar").post(
        "/calls/sci/decisions",
        json={"decisions": [{"proposal_id": pid, "outcome": "accept", "reason": "Excellent fit."}]},
    )
    assert decided.status_code == 200, decided.text
    alice = portal(h, "alice")  # eleven days later: a new session
    page = alice.get(f"/portal/proposals/{pid}").text
    assert "Excellent fit." in page and "8.2 out of 10" in page
    assert "Reviewer 1" in page and "Reviewer 2" in page and "Convincing plan" in page
    assert page.count("Convincing plan, says") == 2
    # the reviews are anonymised: no reviewer's name, not even in their comment's signature
    # (the comment is the reviewer's own text: here it names them, so check the header only)
    headers = re.findall(r'<h3 id="review-\d+">([^<]*)</h3>', page)
    assert len(headers) == 2 and not any(name in h3 for h3 in headers for name in REVIEWERS)
    # the team member reads it too, and may change nothing
    dario = portal(h, "dario")
    team_view = dario.get(f"/portal/proposals/{pid}")
    assert team_view.status_code == 200 and "Excellent fit." in team_view.text
    assert f"/portal/proposals/{pid}/withdraw" not in team_view.text
    assert dario.get(f"/portal/proposals/{pid}/withdraw").status_code == 404
    assert f'href="/portal/proposals/{pid}"' in dario.get("/portal/proposals").text


def test_a_playground_proposal_is_awarded_and_leads_to_its_project(h: Harness) -> None:
    open_call(h, "pg", "playground")
    carol = portal(h, "carol")
    pid = drafted(carol, "pg", requested_gpu_hours="500", period_months="2")
    answer = post(carol, f"/portal/proposals/{pid}/submit")
    assert answer.status_code == 303
    page = carol.get(f"/portal/proposals/{pid}").text
    assert "is submitted: awarded" in page
    project = h.client("carol").get(f"/proposals/{pid}").json()["project"]
    assert project and f'href="/portal/projects/{project}"' in page
    assert "The call&#39;s budget" in page  # the first-come check, in words
    assert "Reviews" not in page  # a Playground call has no reviewers
    hosts = re.search(r"<dt>Sites that can host it</dt><dd>([^<]+)</dd>", page)
    assert hosts and "AI Factory" in hosts.group(1) and "-aif" not in hosts.group(1)  # names
    listing = carol.get("/portal/proposals").text
    assert "awarded" in listing and "500 GPU-hours" in listing and "<time datetime=" in listing
    notes = carol.get("/portal/notifications")
    assert notes.status_code == 200
    assert f'href="/portal/proposals/{pid}"' in notes.text


def test_withdrawing_asks_for_a_reason_and_a_confirmation(h: Harness) -> None:
    open_call(h, "fl", "fast_lane")
    alice = portal(h, "alice")
    pid = drafted(alice, "fl", period_months="2")
    assert post(alice, f"/portal/proposals/{pid}/submit").status_code == 303
    assert "waiting for a site&#39;s technical check" in alice.get(f"/portal/proposals/{pid}").text
    confirm = alice.get(f"/portal/proposals/{pid}/withdraw")
    assert confirm.status_code == 200 and "Withdraw proposal" in confirm.text
    no_reason = post(alice, f"/portal/proposals/{pid}/withdraw", reason="  ")
    assert no_reason.status_code == 422 and 'aria-invalid="true"' in no_reason.text
    assert h.client("alice").get(f"/proposals/{pid}").json()["status"] == "technical_check"
    done = post(alice, f"/portal/proposals/{pid}/withdraw", reason="We found compute elsewhere.")
    assert done.status_code == 303
    page = alice.get(f"/portal/proposals/{pid}").text
    assert "is withdrawn" in page and "We found compute elsewhere." in page
    assert f"/portal/proposals/{pid}/withdraw" not in page
    again = alice.get(f"/portal/proposals/{pid}/withdraw")
    assert again.status_code == 303  # nothing to confirm any more: back, with why
    assert "can no longer be withdrawn" in alice.get(again.headers["location"]).text


def test_another_user_gets_404_for_every_page_and_action_as_from_the_api(h: Harness) -> None:
    open_call(h, "fl", "fast_lane")
    alice = portal(h, "alice")
    pid = drafted(alice, "fl", period_months="2")
    pages = (
        f"/portal/proposals/{pid}",
        f"/portal/proposals/{pid}/edit",
        f"/portal/proposals/{pid}/withdraw",
    )
    actions = (
        f"/portal/proposals/{pid}/edit",
        f"/portal/proposals/{pid}/submit",
        f"/portal/proposals/{pid}/withdraw",
    )

    def shut_out(user: str) -> None:
        assert h.client(user).get(f"/proposals/{pid}").status_code == 404  # the API's answer
        other = portal(h, user)
        for path in pages:
            answer = other.get(path)
            assert answer.status_code == 404, (user, path)
            assert "Vision models" not in answer.text
        for path in actions:
            answer = post(other, path, **GOOD_FORM, reason="mine now")
            assert answer.status_code == 404, (user, path)
        assert f"/portal/proposals/{pid}" not in other.get("/portal/proposals").text

    shut_out("bob")  # alice's own organisation: a draft is its applicant's alone
    shut_out("carol")
    assert post(alice, f"/portal/proposals/{pid}/submit").status_code == 303
    shut_out("bob")
    shut_out("carol")
    assert h.client("alice").get(f"/proposals/{pid}").json()["status"] == "technical_check"
    assert portal(h, "alice").get(f"/portal/proposals/{pid}").status_code == 200


def test_forms_without_the_csrf_token_change_nothing(h: Harness) -> None:
    open_call(h, "fl", "fast_lane")
    alice = portal(h, "alice")
    forged = alice.post("/portal/calls/fl/apply", data=GOOD_FORM)
    assert forged.status_code == 403 and "reload the page" in forged.text
    assert h.client("alice").get("/proposals").json() == []
    pid = drafted(alice, "fl", period_months="2")
    for path, data in (
        (f"/portal/proposals/{pid}/edit", {**GOOD_FORM, "title": "Forged title"}),
        (f"/portal/proposals/{pid}/submit", {}),
        (f"/portal/proposals/{pid}/withdraw", {"reason": "forged"}),
    ):
        assert alice.post(path, data=data).status_code == 403, path
        other_site = alice.post(
            path, data={**data, "csrf": csrf(alice)}, headers={"Origin": "https://evil.example"}
        )
        assert other_site.status_code == 403, path
    shown = h.client("alice").get(f"/proposals/{pid}").json()
    assert (shown["status"], shown["title"]) == ("draft", GOOD_FORM["title"])


def test_a_double_sent_application_makes_one_draft(h: Harness) -> None:
    open_call(h, "fl", "fast_lane")
    alice = portal(h, "alice")
    page = alice.get("/portal/calls/fl/apply").text
    key = re.search(r'name="form_key" value="([^"]+)"', page)
    assert key
    data = {**GOOD_FORM, "period_months": "2", "form_key": key.group(1), "csrf": csrf(alice)}
    first = alice.post("/portal/calls/fl/apply", data=data)
    second = alice.post("/portal/calls/fl/apply", data=data)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert len(h.client("alice").get("/proposals").json()) == 1


def test_notifications_are_the_callers_own_one_per_event(h: Harness) -> None:
    open_call(h, "fl", "fast_lane")
    alice = portal(h, "alice")
    pid = drafted(alice, "fl", period_months="2")
    assert post(alice, f"/portal/proposals/{pid}/submit").status_code == 303
    mine = alice.get("/portal/notifications")
    assert mine.status_code == 200
    assert mine.text.count(f"proposal {pid} received: technical check") == 1
    assert f'href="/portal/proposals/{pid}"' in mine.text and "by e-mail" in mine.text
    carol = portal(h, "carol").get("/portal/notifications").text
    assert f"proposal {pid} received" not in carol
    assert browser(h).get("/portal/notifications").status_code == 303  # sign in first


def test_a_proposal_id_out_of_range_is_a_page_not_a_crash(h: Harness) -> None:
    alice = portal(h, "alice")
    for path in ("/portal/proposals/99999999999", "/portal/proposals/abc", "/portal/proposals/0"):
        answer = alice.get(path)
        assert answer.status_code == 422, path
        assert answer.headers["content-type"].startswith("text/html")


def test_my_proposals_come_a_page_at_a_time_newest_first(h: Harness) -> None:
    open_call(h, "fl", "fast_lane")
    ids = [draft(h, "alice", "fl", period_months=2)["id"] for _ in range(PAGE + 2)]
    alice = portal(h, "alice")
    first = alice.get("/portal/proposals").text
    listed = [int(i) for i in re.findall(r'<a href="/portal/proposals/(\d+)">', first)]
    assert listed == sorted(ids, reverse=True)[:PAGE]
    older = re.search(r'href="/portal/proposals\?before=(\d+)">Older proposals', first)
    assert older and int(older.group(1)) == listed[-1]
    second = alice.get(f"/portal/proposals?before={older.group(1)}").text
    rest = [int(i) for i in re.findall(r'<a href="/portal/proposals/(\d+)">', second)]
    assert rest == sorted(ids, reverse=True)[PAGE:] and "Older proposals" not in second
    assert portal(h, "bob").get("/portal/proposals").text.count("<tr>") == 0  # none of his


def test_a_user_of_no_organisation_is_told_before_and_after_filling_the_form(h: Harness) -> None:
    open_call(h, "fl", "fast_lane")
    sam = portal(h, "sam")
    page = sam.get("/portal/calls/fl/apply").text
    assert "Your account belongs to no organisation" in page
    answer = apply(sam, "fl", period_months="2")
    assert answer.status_code == 422 and "proposals are made on behalf of one" in answer.text
    assert 'value="Vision models for warehouse robots"' in answer.text  # nothing lost

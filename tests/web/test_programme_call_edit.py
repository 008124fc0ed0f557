"""Editing an open call from the portal (services/programme/call_edits.py): title, dates,
cut-offs and budget change, with a reason in the audit log; what applicants rely on stays."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.api.harness import Harness
from tests.api.programme_helpers import DAY, open_call
from tests.api.test_award_runs import reviewed_round
from tests.api.test_reviews import peer_proposal
from tests.web.harness import csrf, portal


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _error(page: str, field: str) -> str:
    found = re.search(rf'id="f-{field}-error">([^<]+)<', page)
    assert found, f"no error next to {field}"
    return found.group(1)


def _form(h: Harness, call: str = "sci", **values: str) -> dict[str, str]:
    """The edit form as the page fills it, with ``values`` typed over it."""
    page = portal(h, "oscar").get(f"/portal/programme/calls/{call}/edit").text
    data = {
        name: value
        for name, value in re.findall(r'name="([a-z_.]+)" value="([^"]*)"', page)
        if name != "csrf"
    }
    cutoffs = re.search(r'name="cutoffs" rows="\d+"\s*[^>]*>([^<]*)</textarea>', page)
    assert cutoffs, "no cut-offs in the form"
    data["cutoffs"] = cutoffs.group(1)
    data.update(values)
    return data


def _call(h: Harness) -> None:
    now = h.clock.now()
    open_call(
        h,
        "sci",
        "ai_for_science",
        cutoffs=[now + 10 * DAY, now + 40 * DAY],
        budget_gpu_hours={"pool": 100_000.0},
    )


def test_an_open_call_is_edited_and_the_change_audited(h: Harness) -> None:
    _call(h)
    now = h.clock.now()
    oscar = portal(h, "oscar")
    form = _form(h)
    assert form["title"] == "ai_for_science call sci" and form["budget_gpu_hours.pool"] == "100000"
    assert form["cutoffs"].splitlines() == [_iso(now + 10 * DAY), _iso(now + 40 * DAY)]
    data = _form(
        h,
        title="AI for Science, spring round",
        closes_at=_iso(now + 90 * DAY),
        cutoffs=f"{_iso(now + 10 * DAY)}\n{_iso(now + 80 * DAY)}",
        reason="A later round agreed with the sites.",
        **{"budget_gpu_hours.pool": "150000"},
    )
    answer = oscar.post("/portal/programme/calls/sci/edit", data={"csrf": csrf(oscar), **data})
    assert answer.status_code == 303, answer.text
    assert "Call sci is saved." in oscar.get(answer.headers["location"]).text
    call = h.client("oscar").get("/calls/sci").json()
    assert call["title"] == "AI for Science, spring round"
    assert call["closes_at"] == now + 90 * DAY
    assert call["cutoffs"] == [now + 10 * DAY, now + 80 * DAY]
    assert call["budget_gpu_hours"] == {"pool": 150_000.0}
    entry = h.client("oscar").get("/audit", params={"action": "call.edit"}).json()[0]
    assert entry["reason"] == "A later round agreed with the sites."
    assert set(entry["details"]["changed"]) == {"title", "closes_at", "cutoffs", "budget_gpu_hours"}


def test_what_applicants_rely_on_stays_and_each_refusal_is_named(h: Harness) -> None:
    _call(h)
    now = h.clock.now()
    peer_proposal(h, "carol", "sci", "health")  # waits for the first cut-off
    oscar = portal(h, "oscar")

    def send(**values: str) -> str:
        answer = oscar.post(
            "/portal/programme/calls/sci/edit",
            data={"csrf": csrf(oscar), **_form(h, **{"reason": "tidy up", **values})},
        )
        assert answer.status_code == 422, answer.text
        return answer.text

    page = send(cutoffs=_iso(now + 40 * DAY))
    assert "proposals wait for the cut-off" in _error(page, "cutoffs")
    assert f">{_iso(now + 40 * DAY)}</textarea>" in page  # what was typed is kept
    assert "must be ahead" in _error(send(closes_at=_iso(now - DAY)), "closes_at")
    assert "reason" in _error(send(reason=""), "reason")
    assert "a number" in _error(send(**{"budget_gpu_hours.pool": "lots"}), "budget_gpu_hours-pool")
    assert "nothing changed" in send()
    h.clock.advance(11 * DAY)  # the first cut-off has passed: it stays
    oscar = portal(h, "oscar")
    page = send(cutoffs=_iso(now + 40 * DAY))
    assert "has passed" in _error(page, "cutoffs")
    assert h.client("oscar").get("/calls/sci").json()["cutoffs"] == [now + 10 * DAY, now + 40 * DAY]


def test_a_closed_call_is_not_edited_and_only_operators_edit(h: Harness) -> None:
    _call(h)
    for user in ("alice", "rita", "sam"):
        client = portal(h, user)
        assert client.get("/portal/programme/calls/sci/edit").status_code == 403
        answer = client.post(
            "/portal/programme/calls/sci/edit",
            data={"csrf": csrf(client), "title": "Mine now", "reason": "x"},
        )
        assert answer.status_code == 403
    assert h.client("oscar").post("/calls/sci/close", json={"reason": "done"}).status_code == 200
    oscar = portal(h, "oscar")
    page = oscar.get("/portal/programme/calls/sci").text
    assert "Edit the call" not in page
    answer = oscar.post(
        "/portal/programme/calls/sci/edit",
        data={"csrf": csrf(oscar), **_form(h, title="Reopened?", reason="try")},
    )
    assert answer.status_code == 422 and "a closed call cannot be edited" in answer.text
    assert h.client("oscar").get("/calls/sci").json()["title"] == "ai_for_science call sci"


def test_a_budget_line_stays_above_what_was_awarded_from_it(h: Harness) -> None:
    reviewed_round(h, budget_hours=150_000)
    oscar_api = h.client("oscar")
    run = oscar_api.post("/calls/ls/award-runs", json={}).json()
    assert oscar_api.post(f"/award-runs/{run['id']}/apply", json={"reason": "panel"}).is_success
    oscar = portal(h, "oscar")
    data = _form(h, "ls", reason="less money", **{"budget_gpu_hours.pool": "100000"})
    answer = oscar.post("/portal/programme/calls/ls/edit", data={"csrf": csrf(oscar), **data})
    assert answer.status_code == 422
    assert "awarded already" in _error(answer.text, "budget_gpu_hours-pool")
    assert oscar_api.get("/calls/ls").json()["budget_gpu_hours"] == {"pool": 150_000.0}
    data = _form(h, "ls", reason="more money", **{"budget_gpu_hours.pool": "200000"})
    answer = oscar.post("/portal/programme/calls/ls/edit", data={"csrf": csrf(oscar), **data})
    assert answer.status_code == 303
    left = oscar_api.get("/calls/ls").json()["budget_left_gpu_hours"]["pool"]
    assert abs(left - 50_000) < 2

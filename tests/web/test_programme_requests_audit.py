"""Allocation requests and the audit log in the portal, as a programme operator: decide a
PI's extension (applied at once) or refuse it with a reason; filter the audit log, page
through it, export it as CSV; everyone else is refused."""

from __future__ import annotations

import csv
import io
import re

from tests.api.harness import Harness
from tests.api.programme_helpers import open_call
from tests.web.harness import browser, csrf, portal


def _flash(page: str) -> str:
    found = re.search(r'<p class="flash [a-z]+" role="[a-z]+">([^<]*)</p>', page)
    assert found, "no message on the page"
    return found.group(1)


def _ask(h: Harness, hours: float = 100.0) -> tuple[int, int]:
    allocation = h.client("alice").get("/projects/aurora-vision/allocations").json()[0]
    created = h.client("alice").post(
        f"/allocations/{allocation['id']}/requests",
        json={"kind": "extension", "gpu_hours": hours, "justification": "pilot extended"},
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"]), int(allocation["id"])


def _granted_hours(h: Harness, allocation_id: int) -> float:
    listed = h.client("alice").get("/projects/aurora-vision/allocations").json()
    return float(next(a for a in listed if a["id"] == allocation_id)["granted_gpu_hours"])


def test_an_extension_is_approved_with_a_reason_and_applied_at_once(h: Harness) -> None:
    request_id, allocation_id = _ask(h)
    before = _granted_hours(h, allocation_id)
    oscar = portal(h, "oscar")
    page = oscar.get("/portal/programme/allocation-requests").text
    assert f"extension {request_id}" in page and "100 GPU-hours more" in page
    assert "pilot extended" in page and "aurora-vision" in page
    overview = oscar.get("/portal/programme").text
    assert "1 allocation request</a> wait" in overview
    path = f"/portal/programme/allocation-requests/{request_id}/decision"
    answer = oscar.post(path, data={"csrf": csrf(oscar), "decision": "approve"})
    assert "reason" in _flash(oscar.get(answer.headers["location"]).text)
    assert _granted_hours(h, allocation_id) == before
    answer = oscar.post(
        path, data={"csrf": csrf(oscar), "decision": "approve", "reason": "Fair use."}
    )
    assert "is approved" in _flash(oscar.get(answer.headers["location"]).text)
    assert _granted_hours(h, allocation_id) == before + 100
    assert "No request waits" in oscar.get("/portal/programme/allocation-requests").text
    done = oscar.get("/portal/programme/allocation-requests?status=approved").text
    assert "Fair use." in done and "oscar" in done
    # deciding again is refused in words
    answer = oscar.post(
        path, data={"csrf": csrf(oscar), "decision": "refuse", "reason": "Changed my mind."}
    )
    assert "is not decided" in _flash(oscar.get(answer.headers["location"]).text)


def test_a_refusal_keeps_the_allocation(h: Harness) -> None:
    request_id, allocation_id = _ask(h)
    before = _granted_hours(h, allocation_id)
    oscar = portal(h, "oscar")
    answer = oscar.post(
        f"/portal/programme/allocation-requests/{request_id}/decision",
        data={"csrf": csrf(oscar), "decision": "refuse", "reason": "Budget spent."},
    )
    assert "is refused" in _flash(oscar.get(answer.headers["location"]).text)
    assert _granted_hours(h, allocation_id) == before
    mine = h.client("alice").get("/allocation-requests").json()
    assert mine[0]["status"] == "refused" and mine[0]["decision_reason"] == "Budget spent."


def test_the_audit_log_is_filtered_paged_and_exported(h: Harness) -> None:
    for i in range(3):
        open_call(h, f"fl{i}", "fast_lane")
    oscar = portal(h, "oscar")
    page = oscar.get("/portal/programme/audit", params={"action": "call.*", "actor": "oscar"})
    assert page.status_code == 200
    assert page.text.count("<code>call.open</code>") == 3
    assert "<code>call:1</code>" in page.text and "mode</dt><dd>fast_lane" in page.text
    assert "{" not in page.text.split("<tbody>")[1].split("</tbody>")[0]  # no raw JSON
    nobody = oscar.get("/portal/programme/audit", params={"actor": "nobody"}).text
    assert "No entry matches." in nobody
    wrong = oscar.get("/portal/programme/audit", params={"since": "last week"})
    assert wrong.status_code == 422 and 'id="a-since-error"' in wrong.text
    assert 'value="last week"' in wrong.text
    # a later window holds none of them
    later = oscar.get("/portal/programme/audit", params={"since": "2099-01-01"}).text
    assert "No entry matches." in later

    # pages of 50: the 51st entry is on the next page
    for i in range(3, 52):
        open_call(h, f"fl{i}", "fast_lane")
    first = oscar.get("/portal/programme/audit", params={"action": "call.open"}).text
    assert first.count("<code>call.open</code>") == 50
    older = re.search(r'href="/portal/programme/audit\?([^"]+)" rel="next"', first)
    assert older, "no link to older entries"
    second = oscar.get("/portal/programme/audit?" + older.group(1).replace("&amp;", "&")).text
    assert second.count("<code>call.open</code>") == 2 and 'rel="next"' not in second

    export = oscar.get(
        "/portal/programme/audit/export", params={"action": "call.open", "format": "csv"}
    )
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 52 == int(export.headers["x-aif-rows"])
    assert {r["action"] for r in rows} == {"call.open"} and rows[0]["subject"] == "call:1"
    assert 'href="/portal/programme/audit/export?action=call.open&amp;format=csv"' in first


def test_no_one_but_a_programme_operator_decides_or_reads_the_log(h: Harness) -> None:
    request_id, allocation_id = _ask(h)
    before = _granted_hours(h, allocation_id)
    for user in ("alice", "rita", "sam"):  # alice is the PI who asked; sam a site operator
        client = portal(h, user)
        for path in (
            "/portal/programme/allocation-requests",
            "/portal/programme/audit",
            "/portal/programme/audit/export",
        ):
            assert client.get(path).status_code == 403, (user, path)
        answer = client.post(
            f"/portal/programme/allocation-requests/{request_id}/decision",
            data={"csrf": csrf(client), "decision": "approve", "reason": "mine"},
        )
        assert answer.status_code == 403, user
    for path in ("/portal/programme/allocation-requests", "/portal/programme/audit/export"):
        assert browser(h).get(path).status_code == 303
    oscar = portal(h, "oscar")
    forged = oscar.post(
        f"/portal/programme/allocation-requests/{request_id}/decision",
        data={"decision": "approve", "reason": "forged"},
    )
    assert forged.status_code == 403
    assert _granted_hours(h, allocation_id) == before
    assert h.client("oscar").get("/allocation-requests").json()[0]["status"] == "pending"

"""The project pages of PIs and members: balances against the ledger, allocations, use over
time, members and their caps, extension and transfer requests; and the role boundaries of the
API repeated through the portal (another project's member, a member, an operator, no CSRF)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from aifactories.db.models import AllocationRow, LedgerEntryRow, ProjectRow
from aifactories.executors.mock import MockExecutor
from aifactories.services.programme.project_views import UsageDay, UsageSeries
from aifactories.web import projects
from aifactories.web.project_chart import nice_ceiling, usage_chart
from aifactories.web.templating import gpu_hours
from tests.api.harness import Harness
from tests.api.programme_helpers import draft, open_call, submit
from tests.web.harness import csrf, portal

DAY = 86400.0


def _run_job(h: Harness, user: str, project: str, gpus: int, ran_s: float) -> dict[str, Any]:
    """A job submitted through the API, placed, run for ``ran_s`` and charged."""
    api = h.client(user)
    answer = api.post(
        "/jobs",
        json={"project": project, "gpus": gpus, "time_limit": "2:00:00", "command": ["train"]},
    )
    assert answer.status_code == 201, answer.text
    h.cycle(2)
    job = api.get(f"/jobs/{answer.json()['id']}").json()
    assert job["state"] == "running", job
    site = h.executors[job["site_id"]]
    assert isinstance(site, MockExecutor)
    site.finish(job["site_job_id"], elapsed_s=ran_s)
    h.cycle()
    job = api.get(f"/jobs/{job['id']}").json()
    assert job["state"] == "completed" and job["charged_gpu_seconds"] > 0, job
    return dict(job)


def _charged(h: Harness, project: str) -> int:
    """What the ledger's charge entries say the project used, in GPU-seconds."""
    with h.platform.ctx.sessions() as s:
        return int(
            s.scalar(
                select(func.coalesce(func.sum(LedgerEntryRow.gpu_seconds), 0))
                .join(AllocationRow, AllocationRow.id == LedgerEntryRow.allocation_id)
                .join(ProjectRow, ProjectRow.id == AllocationRow.project_id)
                .where(ProjectRow.code == project, LedgerEntryRow.kind == "charge")
            )
            or 0
        )


def _members(h: Harness, project: str) -> dict[str, Any]:
    body = h.client("oscar").get(f"/projects/{project}").json()
    return {m["username"]: m for m in body["members"]}


def _post(client: TestClient, path: str, data: dict[str, str] | None = None) -> Any:
    return client.post(path, data={"csrf": csrf(client), **(data or {})})


def _text(html: str) -> str:
    """The page's words, without tags and with single spaces (what a reader reads)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_list_shows_the_callers_projects_with_balances_from_the_ledger(h: Harness) -> None:
    job = _run_job(h, "alice", "aurora-vision", gpus=8, ran_s=1800)
    used = _charged(h, "aurora-vision")
    assert used == job["charged_gpu_seconds"]
    page = portal(h, "alice").get("/portal/projects")
    assert page.status_code == 200
    words = _text(page.text)
    assert "aurora-vision" in words and "you are the PI" in words
    assert f"{gpu_hours(used / 3600)} of 20,000 GPU-hours used" in words
    assert f"{gpu_hours((20_000 * 3600 - used) / 3600)} left" in words
    assert "granted directly" in words and "/portal/projects/aurora-vision/jobs" in page.text
    for other in ("kalevala-mri", "po-twin", "ejemplo-llm", "climat-downscale"):
        assert other not in page.text
    # bob, a member of the same project, sees the same figures
    bob = _text(portal(h, "bob").get("/portal/projects").text)
    assert "you are a member" in bob and f"{gpu_hours(used / 3600)} of 20,000" in bob


def test_an_operator_sees_every_project_as_the_api_lists_them(h: Harness) -> None:
    page = portal(h, "oscar").get("/portal/projects").text
    listed = [p["code"] for p in h.client("oscar").get("/projects").json()]
    assert len(listed) == 5
    for code in listed:
        assert f'href="/portal/projects/{code}"' in page
    assert "every project of the programme" in _text(page).lower()
    assert "you are the PI" not in page  # oscar is no member


def test_an_operator_pages_through_and_searches_every_project(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(projects, "PAGE_SIZE", 2)
    oscar = portal(h, "oscar")
    codes = sorted(p["code"] for p in h.client("oscar").get("/projects").json())
    seen = []
    for number in (1, 2, 3):
        page = oscar.get("/portal/projects", params={"page": number}).text
        seen += re.findall(r'<h2 id="project-\d+"><a href="/portal/projects/([^"]+)"', page)
        assert f"Page {number} of 3" in page
    assert seen == codes  # each project once, in code order
    first = oscar.get("/portal/projects").text
    assert "Projects 1 to 2 of 5." in first and 'href="/portal/projects?page=2"' in first
    assert 'rel="prev"' not in first
    past = oscar.get("/portal/projects", params={"page": 9}).text
    assert "Page 9 is past the last page (3)" in past
    found = oscar.get("/portal/projects", params={"q": "MRI"}).text
    assert re.findall(r'<h2 id="project-\d+"><a href="/portal/projects/([^"]+)"', found) == [
        "kalevala-mri"
    ]
    assert "whose code or title holds &ldquo;MRI&rdquo;" in found
    assert "No project's code or title" in oscar.get("/portal/projects?q=%25_").text
    # a member's search stays within their own projects
    assert "kalevala-mri" not in portal(h, "alice").get("/portal/projects?q=kalevala").text


def test_a_reserved_job_shows_in_the_gauge_until_it_is_charged(h: Harness) -> None:
    answer = h.client("dario").post(
        "/jobs",
        json={"project": "po-twin", "gpus": 4, "time_limit": "1:00:00", "command": ["x"]},
    )
    assert answer.status_code == 201
    h.cycle(2)
    balance = h.client("dario").get("/projects/po-twin/balance").json()["allocations"][0]
    reserved = balance["reserved_gpu_seconds"]
    assert reserved > 0
    words = _text(portal(h, "dario").get("/portal/projects/po-twin").text)
    assert f"{gpu_hours(reserved / 3600)} reserved" in words
    left = balance["left_gpu_seconds"]
    assert f"{gpu_hours(left / 3600)} left" in words


def test_the_project_page_shows_allocations_use_over_time_and_members(h: Harness) -> None:
    first = _run_job(h, "carol", "kalevala-mri", gpus=4, ran_s=3600)
    h.clock.advance(2 * DAY)
    second = _run_job(h, "carol", "kalevala-mri", gpus=2, ran_s=1800)
    used = _charged(h, "kalevala-mri")
    assert used == first["charged_gpu_seconds"] + second["charged_gpu_seconds"]
    page = portal(h, "carol").get("/portal/projects/kalevala-mri")
    assert page.status_code == 200
    html, words = page.text, _text(page.text)
    # both allocations, each with its balance as the API gives it
    for allocation in h.client("carol").get("/projects/kalevala-mri/allocations").json():
        assert f"Allocation {allocation['id']}:" in words
        granted = gpu_hours(allocation["granted_gpu_seconds"] / 3600)
        assert f"{gpu_hours(allocation['used_gpu_seconds'] / 3600)} of {granted} GPU-hours" in (
            words
        )
    assert "site lumi-aif" in words and "a pool: any site" in words
    # the chart: an image with a title and a description, axes in GPU-hours and dates
    assert re.search(r'<svg viewBox="0 0 640 280" role="img" aria-labelledby="usage-title', html)
    assert "GPU-hours used" in html and "Date (UTC)" in html
    assert re.search(r'<path class="line" d="M[\d.]+,[\d.]+(H[\d.]+V[\d.]+){2}H[\d.]+"', html)
    # and the same numbers in a table: one row per day with use, the running total
    table = html[html.index("The numbers, day by day") :]
    rows = re.findall(
        r'<tr><th scope="row">(\d{4}-\d\d-\d\d)</th><td class="num">([\d,.]+)</td>'
        r'<td class="num">([\d,.]+)</td></tr>',
        table,
    )
    assert len(rows) == 2, rows
    assert rows[0][1] == gpu_hours(first["charged_gpu_seconds"] / 3600)
    assert rows[1][2] == gpu_hours(used / 3600)
    assert "<caption>GPU-hours charged to kalevala-mri" in html
    # members with roles and caps; the link to the project's jobs
    assert re.search(r'<th scope="row">carol \(you\)</th>\s*<td>[^<]+</td>\s*<td>PI</td>', html)
    assert 'href="/portal/projects/kalevala-mri/jobs"' in html
    assert "{" not in words.replace("{{", "")  # no raw JSON or dict reprs


def test_a_member_sees_everything_but_changes_nothing(h: Harness) -> None:
    bob = portal(h, "bob")
    page = bob.get("/portal/projects/aurora-vision")
    assert page.status_code == 200
    words = _text(page.text)
    assert "alice" in words and "member" in words
    assert "Add a member" not in words and "/members" not in page.text.replace("#members", "")
    assert "/requests" not in page.text and "Extension and transfer requests" not in words
    allocation = h.client("bob").get("/projects/aurora-vision/allocations").json()[0]["id"]
    before = _members(h, "aurora-vision")
    forged = {
        "/portal/projects/aurora-vision/members": {"username": "dario"},
        "/portal/projects/aurora-vision/members/alice/cap": {"cap_gpu_hours": "1"},
        "/portal/projects/aurora-vision/members/alice/remove": {"reason": "coup"},
        f"/portal/projects/aurora-vision/allocations/{allocation}/requests": {
            "kind": "extension",
            "gpu_hours": "100",
            "justification": "more",
        },
    }
    for path, data in forged.items():
        answer = _post(bob, path, data)
        assert answer.status_code == 403, (path, answer.status_code)
        assert "PI" in answer.text
    # even a form that fails its checks tells a member no, not what was wrong with it
    assert _post(bob, "/portal/projects/aurora-vision/members", {"username": ""}).status_code == 403
    assert _members(h, "aurora-vision") == before
    assert h.client("alice").get("/allocation-requests").json() == []


def test_another_projects_member_learns_nothing_on_any_page_or_form(h: Harness) -> None:
    carol = portal(h, "carol")
    allocation = h.client("alice").get("/projects/aurora-vision/allocations").json()[0]["id"]
    for path in ("/portal/projects/aurora-vision", "/portal/projects/no-such-project"):
        answer = carol.get(path)
        assert answer.status_code == 404
        assert "Vision models for warehouse robots" not in answer.text
        assert "does not exist or you are not a member of it" in answer.text
    assert "aurora-vision" not in carol.get("/portal/projects").text
    before = _members(h, "aurora-vision")
    for path, data in {
        "/portal/projects/aurora-vision/members": {"username": "carol"},
        "/portal/projects/aurora-vision/members/bob/cap": {"cap_gpu_hours": "1"},
        "/portal/projects/aurora-vision/members/bob/remove": {"reason": "x"},
        f"/portal/projects/aurora-vision/allocations/{allocation}/requests": {
            "kind": "extension",
            "gpu_hours": "1",
            "justification": "x",
        },
        # carol is PI of kalevala-mri: aurora's allocation under her own project is no way in
        f"/portal/projects/kalevala-mri/allocations/{allocation}/requests": {
            "kind": "extension",
            "gpu_hours": "1",
            "justification": "x",
        },
    }.items():
        answer = _post(carol, path, data)
        assert answer.status_code == 404, (path, answer.status_code)
        assert "Vision models" not in answer.text
    assert _members(h, "aurora-vision") == before


def test_posts_without_this_sessions_csrf_token_change_nothing(h: Harness) -> None:
    alice = portal(h, "alice")
    before = _members(h, "aurora-vision")
    answer = alice.post("/portal/projects/aurora-vision/members", data={"username": "dario"})
    assert answer.status_code == 403 and "reload the page" in answer.text
    answer = alice.post(
        "/portal/projects/aurora-vision/members/bob/remove",
        data={"reason": "x", "csrf": csrf(portal(h, "dario"))},
    )
    assert answer.status_code == 403
    answer = alice.post(
        "/portal/projects/aurora-vision/members/bob/cap",
        data={"cap_gpu_hours": "5", "csrf": csrf(alice)},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403
    assert _members(h, "aurora-vision") == before


def test_the_pi_adds_a_member_sets_their_cap_and_removes_them(h: Harness) -> None:
    alice = portal(h, "alice")
    answer = _post(
        alice,
        "/portal/projects/aurora-vision/members",
        {"username": "dario", "role": "member", "cap_gpu_hours": "12.5"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/portal/projects/aurora-vision#members"
    page = alice.get("/portal/projects/aurora-vision")
    assert "dario is now a member of aurora-vision." in page.text
    assert re.search(r"<th scope=\"row\">dario</th>.{0,200}12\.50</td>", page.text, re.S)
    assert _members(h, "aurora-vision")["dario"]["cap_gpu_hours"] == 12.5
    # dario sees the project now, as the API lets him
    assert portal(h, "dario").get("/portal/projects/aurora-vision").status_code == 200

    answer = _post(
        alice, "/portal/projects/aurora-vision/members/dario/cap", {"cap_gpu_hours": "40"}
    )
    assert answer.status_code == 303
    assert (
        "dario has a cap of 40 GPU-hours now." in alice.get("/portal/projects/aurora-vision").text
    )
    assert _members(h, "aurora-vision")["dario"]["cap_gpu_hours"] == 40
    # the cap is the one submission checks: a job needing more is refused by the API
    refused = h.client("dario").post(
        "/jobs",
        json={"project": "aurora-vision", "gpus": 64, "time_limit": "1:00:00", "command": ["x"]},
    )
    assert refused.status_code == 409 and "member cap" in refused.json()["message"]
    answer = _post(alice, "/portal/projects/aurora-vision/members/dario/cap", {"cap_gpu_hours": ""})
    assert answer.status_code == 303
    assert _members(h, "aurora-vision")["dario"]["cap_gpu_hours"] is None
    audit = h.client("oscar").get("/audit", params={"action": "project.member.cap"}).json()
    assert [(e["actor"], e["reason"]) for e in audit] == [
        ("alice", "dario: no cap"),
        ("alice", "dario: a cap of 40.00 GPU-hours"),
    ] or sorted(e["reason"] for e in audit) == ["dario: a cap of 40.00 GPU-hours", "dario: no cap"]

    answer = _post(
        alice, "/portal/projects/aurora-vision/members/dario/remove", {"reason": "project moved"}
    )
    assert answer.status_code == 303
    assert "dario is no longer a member" in alice.get("/portal/projects/aurora-vision").text
    assert "dario" not in _members(h, "aurora-vision")
    assert portal(h, "dario").get("/portal/projects/aurora-vision").status_code == 404

    # a second PI, then alice leaves: back to her list, where the project is no more
    answer = _post(
        alice, "/portal/projects/aurora-vision/members", {"username": "elena", "role": "pi"}
    )
    assert answer.status_code == 303
    assert "elena is now a PI of aurora-vision." in alice.get("/portal/projects/aurora-vision").text
    answer = _post(
        alice, "/portal/projects/aurora-vision/members/alice/remove", {"reason": "moved"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/portal/projects"
    assert "aurora-vision" not in _text(alice.get("/portal/projects").text).replace(
        "alice is no longer a member of aurora-vision.", ""
    )
    assert alice.get("/portal/projects/aurora-vision").status_code == 404


def test_refused_changes_are_named_next_to_their_form_with_what_was_typed(h: Harness) -> None:
    alice = portal(h, "alice")
    path = "/portal/projects/aurora-vision/members"
    answer = _post(alice, path, {"username": "nobody", "cap_gpu_hours": "3"})
    assert answer.status_code == 422
    assert 'id="add-username"' in answer.text and 'aria-invalid="true"' in answer.text
    assert "no user &#39;nobody&#39;; they need an account first" in answer.text
    assert 'value="nobody"' in answer.text and 'value="3"' in answer.text
    answer = _post(alice, path, {"username": "bob"})
    assert answer.status_code == 409 and "bob is already a member of aurora-vision" in answer.text
    answer = _post(alice, path, {"username": "dario", "cap_gpu_hours": "lots"})
    assert answer.status_code == 422 and "is not a number of GPU-hours" in answer.text
    answer = _post(alice, path, {"username": "dario", "role": "boss"})
    assert answer.status_code == 422 and 'aria-describedby="add-role-error"' in answer.text
    cap = _post(alice, f"{path}/bob/cap", {"cap_gpu_hours": "-5"})
    assert cap.status_code == 422 and "more than 0" in cap.text
    assert re.search(r"<details open>\s*<summary>Change bob</summary>", cap.text)
    remove = _post(alice, f"{path}/bob/remove", {"reason": "  "})
    assert remove.status_code == 422 and "say why" in remove.text
    only_pi = _post(alice, f"{path}/alice/remove", {"reason": "leaving"})
    assert only_pi.status_code == 409 and "only PI of aurora-vision" in only_pi.text
    assert "dario" not in _members(h, "aurora-vision")
    assert _members(h, "aurora-vision")["bob"]["cap_gpu_hours"] is None


def test_an_operator_manages_members_but_asks_for_no_extension(h: Harness) -> None:
    oscar = portal(h, "oscar")
    page = oscar.get("/portal/projects/kalevala-mri")
    assert page.status_code == 200
    assert "Add a member" in page.text and "/requests" not in page.text
    assert "programme operator (not a member)" in _text(page.text)
    answer = _post(oscar, "/portal/projects/kalevala-mri/members", {"username": "elena"})
    assert answer.status_code == 303 and "elena" in _members(h, "kalevala-mri")


def test_the_pi_asks_for_an_extension_and_a_transfer(h: Harness) -> None:
    carol = portal(h, "carol")
    site, pool = (
        a["id"] for a in h.client("carol").get("/projects/kalevala-mri/allocations").json()
    )
    base = "/portal/projects/kalevala-mri/allocations"
    page = carol.get("/portal/projects/kalevala-mri").text
    assert f'action="{base}/{site}/requests"' in page
    answer = _post(
        carol,
        f"{base}/{site}/requests",
        {"kind": "extension", "gpu_hours": "500", "until": "", "justification": "a second model"},
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith("#requests")
    page = carol.get("/portal/projects/kalevala-mri").text
    assert "(extension of allocation" in page and "a second model" in page
    assert "500 more GPU-hours" in _text(page) and "waiting for the programme" in page
    asked = h.client("oscar").get("/allocation-requests").json()
    assert [(r["kind"], r["gpu_hours"], r["allocation_id"]) for r in asked] == [
        ("extension", 500, site)
    ]
    # a transfer of more than is left: the service's limit, next to the GPU-hours field
    answer = _post(
        carol,
        f"{base}/{site}/requests",
        {"kind": "transfer", "gpu_hours": "9000", "to_allocation": str(pool), "justification": "x"},
    )
    assert answer.status_code == 422
    assert f'id="hours-{site}"' in answer.text and f'aria-describedby="hours-{site}-error"' in (
        answer.text
    )
    assert "at most 8,000.00" in answer.text and 'value="9000"' in answer.text
    answer = _post(
        carol,
        f"{base}/{site}/requests",
        {"kind": "transfer", "gpu_hours": "100", "to_allocation": str(pool), "justification": ""},
    )
    assert answer.status_code == 422 and "justification" in answer.text
    answer = _post(
        carol,
        f"{base}/{site}/requests",
        {"kind": "transfer", "gpu_hours": "100", "to_allocation": str(pool), "justification": "y"},
    )
    assert answer.status_code == 303
    kinds = [r["kind"] for r in h.client("oscar").get("/allocation-requests").json()]
    assert kinds == ["extension", "transfer"]
    # a second extension while the first waits: the service's conflict, in words
    again = _post(
        carol,
        f"{base}/{site}/requests",
        {"kind": "extension", "gpu_hours": "5", "justification": "z"},
    )
    assert again.status_code == 409 and "still pending" in again.text


def test_a_project_from_a_call_shows_its_access_mode(h: Harness) -> None:
    open_call(h, "pg", "playground", budget_gpu_hours={"pool": 2000})
    proposal = draft(h, "fabien", "pg", domain="climate", industrial=False)
    code = submit(h, "fabien", proposal["id"])["project"]
    assert code
    words = _text(portal(h, "fabien").get("/portal/projects").text)
    assert "Playground" in words and code in words
    page = _text(portal(h, "fabien").get(f"/portal/projects/{code}").text)
    assert "Access mode Playground (call pg" in page
    assert "No GPU-hours charged yet" in page


def test_every_field_has_a_label_and_every_table_a_caption(h: Harness) -> None:
    _run_job(h, "carol", "kalevala-mri", gpus=1, ran_s=600)
    for user, path in (
        ("carol", "/portal/projects/kalevala-mri"),
        ("oscar", "/portal/projects/kalevala-mri"),
        ("carol", "/portal/projects"),
    ):
        html = portal(h, user).get(path).text
        labels = set(re.findall(r'<label for="([^"]+)"', html))
        fields = re.findall(r"<(?:input|select|textarea)\b([^>]*)>", html)
        named = [f for f in fields if 'type="hidden"' not in f]
        assert named or path == "/portal/projects"
        for attributes in named:
            found = re.search(r'id="([^"]+)"', attributes)
            assert found and found.group(1) in labels, (path, attributes)
        ids = re.findall(r'\bid="([^"]+)"', html)
        assert len(ids) == len(set(ids)), f"an id used twice on {path}"
        tables = html.count("<table")
        assert html.count("<caption>") == tables
        assert html.count('<th scope="col"') >= tables


def test_the_chart_reads_in_round_gpu_hours_and_whole_days() -> None:
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 3.7, 12, 240, 2600)] == [
        1,
        0.5,
        1,
        5,
        20,
        250,
        5000,
    ]
    start = 1_800_000_000.0 - 1_800_000_000.0 % DAY
    series = UsageSeries(
        starts_at=start + 3600,
        ends_at=start + 10 * DAY,
        granted_gpu_seconds=100 * 3600,
        days=(UsageDay(start + DAY, 7200, 7200), UsageDay(start + 4 * DAY, 3600, 10800)),
    )
    chart = usage_chart(series)
    assert chart.y_ticks[-1].label == "5" and chart.y_ticks[0].label == "0"
    labels = [t.label for t in chart.x_ticks]
    assert labels == sorted(set(labels)) and len(labels) >= 3
    assert chart.x_ticks[0].anchor == "start"
    assert chart.path.count("V") == 2
    assert chart.summary.startswith("3 GPU-hours used from")

"""Award runs in the portal: start one (the optimiser and the greedy rule side by side), read
it with the report of 'aif awards report' embedded, apply it after a confirmation; operators
only. The round is decided through the API as in tests/api/test_award_runs.py."""

from __future__ import annotations

import re

from tests.api.harness import Harness
from tests.api.programme_helpers import DAY, open_call
from tests.api.test_award_runs import reviewed_round
from tests.web.harness import csrf, portal


def _flash(page: str) -> str:
    found = re.search(r'<p class="flash [a-z]+" role="[a-z]+">([^<]*)</p>', page)
    assert found, "no message on the page"
    return found.group(1)


def _start(h: Harness, **data: str) -> tuple[int, str]:
    oscar = portal(h, "oscar")
    answer = oscar.post("/portal/programme/calls/ls/award-runs", data={"csrf": csrf(oscar), **data})
    assert answer.status_code == 303
    found = re.fullmatch(r"/portal/programme/award-runs/(\d+)", answer.headers["location"])
    assert found, answer.headers["location"]
    return int(found.group(1)), oscar.get(answer.headers["location"]).text


def test_a_run_is_proposed_read_side_by_side_and_applied_after_confirming(h: Harness) -> None:
    ids = reviewed_round(h, budget_hours=150_000)
    run_id, page = _start(h)
    assert "is proposed: nothing is granted" in _flash(page)
    run = h.client("oscar").get(f"/award-runs/{run_id}").json()
    assert run["method"] == "optimiser" and run["status"] == "proposed"
    # both plans, side by side, with the measures the API gives
    for cell in (row[1] for row in run["comparison"] if row[1]):
        assert f'<td class="num">{cell}</td>' in page.replace("&#43;", "+")
    assert '<th scope="col" class="num">greedy</th>' in page
    assert "150,000" in page and f"proposal {ids['carol']}" in page
    assert f'<iframe class="report" src="/portal/programme/award-runs/{run_id}/report"' in page
    assert 'sandbox="allow-scripts"' in page

    oscar = portal(h, "oscar")
    report = oscar.get(f"/portal/programme/award-runs/{run_id}/report")
    assert report.status_code == 200 and f"Award run {run_id} for call ls" in report.text
    policy = report.headers["content-security-policy"]
    assert "script-src 'unsafe-inline'" in policy and "default-src 'none'" in policy
    assert "connect-src" not in policy  # default-src 'none': the report asks no host
    assert "frame-ancestors 'self'" in policy and report.headers["cache-control"] == "no-store"

    # no confirmation, no reason: nothing is granted
    answer = oscar.post(
        f"/portal/programme/award-runs/{run_id}/apply", data={"csrf": csrf(oscar), "reason": "x"}
    )
    assert "Tick the confirmation" in _flash(oscar.get(answer.headers["location"]).text)
    answer = oscar.post(
        f"/portal/programme/award-runs/{run_id}/apply",
        data={"csrf": csrf(oscar), "confirm": "yes", "reason": ""},
    )
    assert "reason" in _flash(oscar.get(answer.headers["location"]).text)
    assert h.client("oscar").get(f"/award-runs/{run_id}").json()["status"] == "proposed"

    answer = oscar.post(
        f"/portal/programme/award-runs/{run_id}/apply",
        data={"csrf": csrf(oscar), "confirm": "yes", "reason": "Panel of 1 March."},
    )
    page = oscar.get(answer.headers["location"]).text
    assert f"Award run {run_id} is applied" in _flash(page) and "Apply this run" not in page
    applied = h.client("oscar").get(f"/award-runs/{run_id}").json()
    assert applied["status"] == "applied"
    for user in ("carol", "elena"):
        status = h.client(user).get(f"/proposals/{ids[user]}").json()["status"]
        assert status in ("awarded", "rejected")
    assert any(
        h.client(u).get(f"/proposals/{ids[u]}").json()["status"] == "awarded"
        for u in ("carol", "elena")
    )
    # applying twice is refused in words
    answer = oscar.post(
        f"/portal/programme/award-runs/{run_id}/apply",
        data={"csrf": csrf(oscar), "confirm": "yes", "reason": "again"},
    )
    assert "only a proposed run can be applied" in _flash(
        oscar.get(answer.headers["location"]).text
    )
    overview = oscar.get("/portal/programme").text
    assert f'href="/portal/programme/award-runs/{run_id}"' in overview


def test_the_greedy_rule_and_weights_are_chosen_in_the_form(h: Harness) -> None:
    reviewed_round(h, budget_hours=1_000_000)
    run_id, _page = _start(h, method="greedy", **{"weights.rank": "3", "weights.industrial": "0.5"})
    run = h.client("oscar").get(f"/award-runs/{run_id}").json()
    assert run["method"] == "greedy" and run["weights"]["rank"] == 3.0
    oscar = portal(h, "oscar")
    answer = oscar.post(
        "/portal/programme/calls/ls/award-runs",
        data={"csrf": csrf(oscar), "weights.request_exponent": "4"},
    )
    assert "request_exponent" in _flash(oscar.get(answer.headers["location"]).text)
    listing = oscar.get("/portal/programme/calls/ls/award-runs").text
    assert f"Run {run_id}</a>" in listing and listing.count("<tr>") == 2  # header and one run


def test_a_call_with_nothing_accepted_says_so(h: Harness) -> None:
    open_call(h, "ls", "large_scale", cutoffs=[h.clock.now() + DAY])
    oscar = portal(h, "oscar")
    answer = oscar.post("/portal/programme/calls/ls/award-runs", data={"csrf": csrf(oscar)})
    assert answer.headers["location"] == "/portal/programme/calls/ls/award-runs"
    assert "no accepted proposal" in _flash(oscar.get(answer.headers["location"]).text)


def test_only_a_programme_operator_sees_runs_reports_or_applies(h: Harness) -> None:
    reviewed_round(h, budget_hours=150_000)
    run = h.client("oscar").post("/calls/ls/award-runs", json={}).json()
    for user in ("alice", "rita", "sam", "carol"):  # carol applied in this round
        client = portal(h, user)
        for path in (
            "/portal/programme/calls/ls/award-runs",
            f"/portal/programme/award-runs/{run['id']}",
            f"/portal/programme/award-runs/{run['id']}/report",
        ):
            assert client.get(path).status_code == 403, (user, path)
        token = csrf(client)
        answer = client.post(
            f"/portal/programme/award-runs/{run['id']}/apply",
            data={"csrf": token, "confirm": "yes", "reason": "mine"},
        )
        assert answer.status_code == 403, user
        start = client.post("/portal/programme/calls/ls/award-runs", data={"csrf": token})
        assert start.status_code == 403, user
    assert h.client("oscar").get(f"/award-runs/{run['id']}").json()["status"] == "proposed"
    assert len(h.client("oscar").get("/calls/ls/award-runs").json()) == 1

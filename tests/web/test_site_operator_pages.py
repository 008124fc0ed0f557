"""The site operator's pages: technical checks to do at their sites, each site's partitions,
usage and jobs, maintenance down and up; nothing of a site they do not operate."""

from __future__ import annotations

import re

from tests.api.harness import Harness
from tests.api.programme_helpers import draft, open_call, submit
from tests.web.harness import browser, csrf, portal


def _waiting(h: Harness) -> int:
    """dario's Fast Lane proposal that only it4lia (sam's) can host, waiting for its check."""
    open_call(h, "fl", "fast_lane", budget_gpu_hours={"it4lia": 40_000, "lumi-aif": 40_000})
    wanted = draft(
        h, "dario", "fl", title="Robot arm twin", requested_gpu_hours=20_000, gpu_model="A100",
        residency=["IT"],
    )  # fmt: skip
    assert submit(h, "dario", wanted["id"])["status"] == "technical_check"
    return int(wanted["id"])


def _job_at_it4lia(h: Harness) -> int:
    """A job of po-twin (an it4lia allocation only), placed and started by the broker."""
    answer = h.client("dario").post(
        "/jobs",
        json={"project": "po-twin", "gpus": 4, "time_limit": "2:00:00", "command": ["sleep"],
              "name": "twin-train"},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    h.cycle(2)
    return int(answer.json()["id"])


def test_the_overview_lists_checks_to_do_and_the_operated_sites(h: Harness) -> None:
    proposal = _waiting(h)
    page = portal(h, "sam").get("/portal/site")
    assert page.status_code == 200
    assert "Robot arm twin" in page.text and f'action="/portal/site/checks/{proposal}"' in page.text
    assert 'name="site_id" value="it4lia"' in page.text  # the one site of sam's that can host it
    for site in ("bsc-aif", "it4lia", "lumi-aif"):
        assert f'href="/portal/site/{site}"' in page.text
    assert 'href="/portal/site/brain-plus-plus"' not in page.text
    # oscar operates brain-plus-plus, which cannot host it: no check for him here
    oscar = portal(h, "oscar").get("/portal/site")
    assert oscar.status_code == 200 and "Robot arm twin" not in oscar.text
    assert 'href="/portal/site/brain-plus-plus"' in oscar.text


def test_a_technical_check_passes_with_a_reason_and_errors_are_named(h: Harness) -> None:
    proposal = _waiting(h)
    sam = portal(h, "sam")
    page = sam.post(
        f"/portal/site/checks/{proposal}",
        data={"csrf": csrf(sam), "outcome": "accept", "reason": " ", "site_id": "it4lia"},
    )
    assert page.status_code == 422 and 'id="reason-error"' in page.text
    assert "the applicant reads it" in page.text
    page = sam.post(
        f"/portal/site/checks/{proposal}",
        data={"csrf": csrf(sam), "reason": "Fits our A100 nodes.", "site_id": "it4lia"},
    )
    assert page.status_code == 422 and 'id="outcome-error"' in page.text
    assert "choose one: pass, ask for a revision, or fail" in page.text
    assert "Fits our A100 nodes." in page.text  # kept
    done = sam.post(
        f"/portal/site/checks/{proposal}",
        data={"csrf": csrf(sam), "outcome": "accept", "reason": "Fits.", "site_id": "it4lia"},
    )
    assert done.status_code == 303 and done.headers["location"] == "/portal/site"
    after = sam.get("/portal/site").text
    assert f"proposal {proposal} is passed: the proposal is awarded" in after
    assert "Robot arm twin" not in after
    assert h.client("dario").get(f"/proposals/{proposal}").json()["status"] == "awarded"


def test_a_site_shows_partitions_usage_and_jobs(h: Harness) -> None:
    job = _job_at_it4lia(h)
    h.clock.advance(1800)
    page = portal(h, "sam").get("/portal/site/it4lia")
    assert page.status_code == 200
    assert "booster" in page.text and "twin-train" in page.text and "po-twin" in page.text
    assert re.search(rf"<th scope=\"row\">{job}</th>", page.text)
    assert "1 running" in page.text
    # 4 GPUs for half an hour so far: 2 GPU-hours delivered
    assert re.search(
        r"<th scope=\"row\">po-twin</th><td class=\"num\">1</td><td class=\"num\">2</td>", page.text
    ), page.text


def test_a_partition_goes_down_for_maintenance_and_back_up(h: Harness) -> None:
    sam = portal(h, "sam")
    path = "/portal/site/it4lia/partitions/booster"
    page = sam.post(path, data={"csrf": csrf(sam), "action": "down", "reason": ""})
    assert page.status_code == 422 and 'id="reason-error"' in page.text
    done = sam.post(path, data={"csrf": csrf(sam), "action": "down", "reason": "Firmware upgrade."})
    assert done.status_code == 303 and done.headers["location"] == "/portal/site/it4lia"
    shown = sam.get("/portal/site/it4lia").text
    assert "Partition it4lia/booster is down for maintenance." in shown
    assert "down for maintenance" in shown and "Firmware upgrade." in shown
    assert "Bring booster back up" in shown
    again = sam.post(path, data={"csrf": csrf(sam), "action": "down", "reason": "Twice."})
    assert again.status_code == 303
    assert "down for maintenance already" in sam.get("/portal/site/it4lia").text
    up = sam.post(path, data={"csrf": csrf(sam), "action": "up", "reason": "Upgraded."})
    assert up.status_code == 303
    shown = sam.get("/portal/site/it4lia").text
    assert "is back up" in shown and "Take booster down for maintenance" in shown
    entries = h.client("oscar").get("/audit", params={"action": "partition.*"}).json()
    assert sorted((e["action"], e["reason"], e["actor"], e["subject"]) for e in entries) == [
        ("partition.down", "Firmware upgrade.", "sam", "partition:it4lia/booster"),
        ("partition.up", "Upgraded.", "sam", "partition:it4lia/booster"),
    ]


def test_only_the_sites_operators_reach_a_site(h: Harness) -> None:
    _job_at_it4lia(h)
    oscar = portal(h, "oscar")
    assert oscar.get("/portal/site/it4lia").status_code == 403
    assert "twin-train" not in oscar.get("/portal/site/it4lia").text
    answer = oscar.post(
        "/portal/site/it4lia/partitions/booster",
        data={"csrf": csrf(oscar), "action": "down", "reason": "Not mine."},
    )
    assert answer.status_code == 403
    assert portal(h, "sam").get("/portal/site/brain-plus-plus").status_code == 403
    assert portal(h, "sam").get("/portal/site/atlantis").status_code == 404
    for user in ("alice", "rita"):
        client = portal(h, user)
        assert client.get("/portal/site").status_code == 403, user
        assert client.get("/portal/site/it4lia").status_code == 403, user
    anonymous = browser(h).get("/portal/site/it4lia")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith(
        "/portal/login"
    )
    assert "Firmware" not in portal(h, "sam").get("/portal/site/it4lia").text
    assert "Take booster down" in portal(h, "sam").get("/portal/site/it4lia").text


def test_checks_by_someone_who_cannot_host_it_are_refused(h: Harness) -> None:
    proposal = _waiting(h)
    for user, status in (("alice", 403), ("rita", 403)):
        client = portal(h, user)
        answer = client.post(
            f"/portal/site/checks/{proposal}",
            data={"csrf": csrf(client), "outcome": "accept", "reason": "x"},
        )
        assert answer.status_code == status, user
    assert h.client("dario").get(f"/proposals/{proposal}").json()["status"] == "technical_check"


def test_site_forms_without_csrf_change_nothing(h: Harness) -> None:
    proposal = _waiting(h)
    sam = portal(h, "sam")
    for path, body in (
        (f"/portal/site/checks/{proposal}", {"outcome": "accept", "reason": "x"}),
        ("/portal/site/it4lia/partitions/booster", {"action": "down", "reason": "x"}),
    ):
        answer = sam.post(path, data=body)
        assert answer.status_code == 403 and "reload the page" in answer.text, path
    assert h.client("dario").get(f"/proposals/{proposal}").json()["status"] == "technical_check"
    assert "Take booster down" in sam.get("/portal/site/it4lia").text

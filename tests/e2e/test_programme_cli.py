"""The access programme as its users run it: ``aif up --demo`` as a process, then an operator
opens a Playground call and a Fast Lane call with ``aif calls open``, applicants draft and
submit with ``aif proposals``, a site operator checks, and the awarded projects run jobs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path, f"sqlite:///{tmp_path / 'aif.db'}")
    srv.start("--demo")
    yield srv
    srv.stop()


def aif_as(server: Server, user: str, *args: str) -> tuple[int, str, str]:
    server.extra_env["AIFACTORIES_TOKEN"] = server.token(user)
    done = server.aif(*args)
    return done.returncode, done.stdout, done.stderr


def test_playground_and_fast_lane_from_the_command_line(server: Server, tmp_path: Path) -> None:
    closes = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400))
    code, out, err = aif_as(
        server, "alice", "calls", "open", "--code", "pg", "--title", "Playground",
        "--mode", "playground", "--closes", closes, "--budget", "pool=5000",
    )  # fmt: skip
    assert code == 4 and "programme operator" in err  # applicants cannot open calls
    code, out, err = aif_as(
        server, "oscar", "calls", "open", "--code", "pg", "--title", "Playground",
        "--mode", "playground", "--closes", closes, "--budget", "pool=5000",
        "--rule", "max_gpu_hours=1000",
    )  # fmt: skip
    assert code == 0, err
    assert "1,000 GPU-hours" in out

    (tmp_path / "proposal.yaml").write_text(
        "title: Segmenting knee MRI\n"
        "abstract: A first model for knee MRI segmentation on anonymised scans.\n"
        "domain: health\nindustrial: true\nrequested_gpu_hours: 2000\nperiod_months: 1\n"
        "members: [bob]\n"
    )
    code, out, err = aif_as(
        server, "carol", "proposals", "draft", "pg", "-f", "proposal.yaml", "--json"
    )
    assert code == 0, err
    proposal = json.loads(out)
    code, out, err = aif_as(server, "carol", "proposals", "submit", str(proposal["id"]))
    assert code == 1 and "FAIL" in out and "request_within_limits" in out
    code, out, err = aif_as(
        server, "carol", "proposals", "edit", str(proposal["id"]), "--gpu-hours", "400"
    )
    assert code == 0, err
    code, out, err = aif_as(server, "carol", "proposals", "submit", str(proposal["id"]), "--json")
    assert code == 0, err
    awarded = json.loads(out)
    assert awarded["status"] == "awarded"
    project = awarded["project"]

    # bob, a team member, runs a job in the new project at once
    code, out, err = aif_as(
        server, "bob", "submit", "-A", project, "--gpus", "1", "--time", "0:10:00",
        "--runtime", "5", "--json", "--", "true",
    )  # fmt: skip
    assert code == 0, err
    job_id = json.loads(out)["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = json.loads(aif_as(server, "bob", "job", str(job_id), "--json")[1])["state"]
        if state in ("running", "completed"):
            break
        time.sleep(0.3)
    assert state in ("running", "completed")
    code, out, err = aif_as(server, "carol", "balance", "-A", project)
    assert code == 0 and "400" in out

    # Fast Lane: the site operator's technical check from the command line
    code, out, err = aif_as(
        server, "oscar", "calls", "open", "--code", "fl", "--title", "Fast Lane",
        "--mode", "fast_lane", "--closes", closes, "--budget", "it4lia=30000",
    )  # fmt: skip
    assert code == 0, err
    code, out, err = aif_as(
        server, "dario", "proposals", "draft", "fl", "--title", "Machining twin",
        "--abstract", "A digital twin of a machining line for predictive maintenance.",
        "--domain", "manufacturing", "--industrial", "--gpu-hours", "10000", "--months", "3",
        "--gpu-model", "A100", "--residency", "IT", "--json",
    )  # fmt: skip
    assert code == 0, err
    fast = json.loads(out)["id"]
    assert aif_as(server, "dario", "proposals", "submit", str(fast))[0] == 0
    code, out, err = aif_as(server, "sam", "proposals", "list", "--status", "technical_check")
    assert code == 0 and "Machining twin" in out
    code, out, err = aif_as(
        server, "sam", "proposals", "check", str(fast), "--accept", "--reason", "fits"
    )
    assert code == 0, err
    assert "awarded" in out and "it4lia" in out


def test_peer_review_and_award_run_from_the_command_line(server: Server) -> None:
    # A Large Scale call whose cut-off is a minute away: proposals submitted before it are
    # reviewed, decided by the call's rule after it (tests/api/test_reviews.py shows that
    # nothing is decided before), and awarded by the optimiser.
    cutoff_at = time.time() + 60  # the proposals are in before it even on a busy machine
    cutoff = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(cutoff_at))
    closes = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400))
    code, out, err = aif_as(
        server, "oscar", "calls", "open", "--code", "ls", "--title", "Large Scale",
        "--mode", "large_scale", "--closes", closes, "--cutoff", cutoff,
        "--budget", "pool=150000", "--rule", "min_average_score=6",
        "--rule", "reviewers_per_proposal=2",
    )  # fmt: skip
    assert code == 0, err
    asked = {"carol": ("health", "100000"), "elena": ("language", "80000")}
    asked["dario"] = ("manufacturing", "120000")
    ids: dict[str, int] = {}
    for user, (domain, hours) in asked.items():
        code, out, err = aif_as(
            server, user, "proposals", "draft", "ls", "--title", f"{domain} foundation model",
            "--abstract", f"Training a foundation model for {domain} on European data.",
            "--domain", domain, "--gpu-hours", hours, "--months", "6", "--json",
        )  # fmt: skip
        assert code == 0, err
        ids[user] = int(json.loads(out)["id"])
        code, out, err = aif_as(server, user, "proposals", "submit", str(ids[user]), "--json")
        assert code == 0, err
        assert json.loads(out)["status"] == "under_review"

    code, out, err = aif_as(server, "oscar", "reviews", "assign", "ls", "--json")
    assert code == 0, err
    assigned = json.loads(out)["assigned"]
    assert {a["proposal_id"] for a in assigned} == set(ids.values())
    # before the decision an applicant reads no reviews, not even who reviews
    code, out, err = aif_as(server, "carol", "reviews", "proposal", str(ids["carol"]))
    assert code == 4 and "once it is decided" in err
    for a in assigned:
        good = a["proposal_id"] != ids["dario"]
        scores = ["excellence=9", "impact=8", "feasibility=7"] if good else ["excellence=4",
                  "impact=5", "feasibility=6"]  # fmt: skip
        code, out, err = aif_as(
            server, a["reviewer"], "reviews", "score", str(a["review_id"]),
            *[x for s in scores for x in ("--score", s)], "--comment", "clear plan", "--json",
        )  # fmt: skip
        assert code == 0, err

    time.sleep(max(0.0, cutoff_at - time.time()) + 1)
    code, out, err = aif_as(server, "oscar", "reviews", "decide", "ls", "--rule", "--json")
    assert code == 0, err
    outcome = {d["proposal_id"]: d["outcome"] for d in json.loads(out)["decided"]}
    assert outcome == {ids["carol"]: "accept", ids["elena"]: "accept", ids["dario"]: "reject"}

    code, out, err = aif_as(server, "oscar", "awards", "propose", "ls", "--json")
    assert code == 0, err
    run = json.loads(out)
    assert abs(run["plan"]["awarded_gpu_hours"] - 150_000) < 1  # the whole pool
    code, out, err = aif_as(server, "oscar", "awards", "apply", str(run["id"]), "--reason", "p1")
    assert code == 0, err
    code, out, err = aif_as(server, "carol", "proposals", "show", str(ids["carol"]), "--json")
    assert code == 0, err
    view = json.loads(out)
    assert view["status"] == "awarded" and view["project"]
    code, out, err = aif_as(server, "carol", "reviews", "proposal", str(ids["carol"]), "--json")
    assert code == 0, err
    reviews = json.loads(out)
    assert reviews["score"] is not None
    assert {r["reviewer"] for r in reviews["reviews"]} == {"Reviewer 1", "Reviewer 2"}
    code, out, err = aif_as(server, "carol", "balance", "-A", view["project"])
    assert code == 0 and "GPU" in out, err

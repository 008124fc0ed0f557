"""The REST API end to end (in-process), on SQLite and PostgreSQL, with mock sites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from aifactories.db.models import JobRow, LedgerEntryRow
from aifactories.executors.mock import MockExecutor
from tests.api.harness import Harness, make_harness


@pytest.fixture
def harness(tmp_path: Path, database_url: str) -> Harness:
    h = make_harness(tmp_path, database_url)
    yield h  # type: ignore[misc]
    h.platform.stop()


def _job_count(h: Harness) -> int:
    with h.platform.ctx.sessions() as s:
        return int(s.execute(select(func.count(JobRow.id))).scalar_one())


def _left(h: Harness, user: str, project: str) -> int:
    body = h.client(user).get(f"/projects/{project}/balance").json()
    return sum(a["left_gpu_seconds"] for a in body["allocations"])


def test_submit_place_run_charge(harness: Harness) -> None:
    alice = harness.client("alice")
    granted = _left(harness, "alice", "aurora-vision")
    response = alice.post(
        "/jobs",
        json={
            "project": "aurora-vision",
            "gpus": 8,
            "time_limit": "2:00:00",
            "command": ["python", "t.py"],
        },
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["state"] == "pending" and response.headers["location"] == f"/jobs/{job['id']}"

    harness.cycle()
    assert alice.get(f"/jobs/{job['id']}").json()["state"] == "submitted"
    harness.cycle()  # the next reconcile sees it started (the mock starts what fits at once)
    job = alice.get(f"/jobs/{job['id']}").json()
    assert job["state"] == "running"
    assert job["site_id"] and job["partition_id"].startswith(job["site_id"] + "/")
    assert job["allocated_gpus"] == 8
    reserved = job["reserved_gpu_hours"]
    assert reserved > 0
    assert _left(harness, "alice", "aurora-vision") == granted - round(reserved * 3600)

    site = harness.executors[job["site_id"]]
    assert isinstance(site, MockExecutor)
    site.finish(job["site_job_id"], elapsed_s=1800)
    harness.cycle()
    job = alice.get(f"/jobs/{job['id']}").json()
    assert job["state"] == "completed"
    weight = harness.platform.catalogue.partition(job["partition_id"]).billing_weight  # type: ignore[union-attr]
    assert job["charged_gpu_seconds"] == round(8 * 1800 * weight)
    balance = alice.get("/projects/aurora-vision/balance").json()
    pool = balance["allocations"][0]
    assert pool["used_gpu_seconds"] == job["charged_gpu_seconds"]
    assert pool["reserved_gpu_seconds"] == 0
    assert pool["left_gpu_seconds"] == granted - job["charged_gpu_seconds"]
    # a second reconcile of the same final state charges nothing more
    harness.cycle(rounds=2)
    again = alice.get("/projects/aurora-vision/balance").json()["allocations"][0]
    assert again["used_gpu_seconds"] == pool["used_gpu_seconds"]


BAD_INPUT: list[tuple[str, dict[str, Any], int, str, str | None]] = [
    ("too many GPUs", {"gpus": 100_000}, 422, "gpus", "at most"),
    ("unknown model", {"gpu_model": "TPUv9"}, 422, "gpu_model", "one of: any"),
    ("negative time", {"time_limit": -5}, 422, "time_limit", "between 1 s"),
    ("absurd time", {"time_limit": "400-00:00:00"}, 422, "time_limit", "between 1 s"),
    ("unreadable time", {"time_limit": "two hours"}, 422, "time_limit", None),
    ("no GPUs", {"gpus": 0}, 422, "gpus", "at least 1"),
    (
        "too much memory",
        {"gpu_model": "A100", "min_gpu_memory_gb": 500},
        422,
        "min_gpu_memory_gb",
        "at most 64 GB",
    ),
    ("residency nowhere", {"countries": ["XX"]}, 422, "countries", "matching partitions"),
    ("bad country", {"countries": ["Germany"]}, 422, "countries", "alpha-2"),
    ("uneven nodes", {"gpus": 6, "nodes": 4}, 422, "nodes", None),
    (
        "malformed script",
        {"command": [], "script": "#!/bin/bash\n#SBATCH --gpus=lots\nrun\n"},
        422,
        "script",
        None,
    ),
    (
        "unknown directive",
        {"command": [], "script": "#SBATCH --frobnicate=1\nrun\n"},
        422,
        "script",
        None,
    ),
    ("unknown project", {"project": "no-such-project"}, 404, "", None),
    (
        "exhausted budget",
        {
            "project": "climat-downscale",
            "gpus": 64,
            "time_limit": "7-00:00:00",
            "gpu_model": "A100",
        },
        409,
        "",
        None,
    ),
    ("wrong type", {"gpus": "eight"}, 422, "gpus", None),
    ("unknown field", {"colour": "blue"}, 422, "colour", None),
]


@pytest.mark.parametrize(
    ("label", "change", "status", "field", "limit"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT]
)
def test_bad_input_is_refused_and_nothing_written(
    harness: Harness,
    label: str,
    change: dict[str, Any],
    status: int,
    field: str,
    limit: str | None,
) -> None:
    user = "fabien" if change.get("project") == "climat-downscale" else "alice"
    body = {
        "project": "aurora-vision",
        "gpus": 4,
        "time_limit": "1:00:00",
        "command": ["true"],
        **change,
    }
    response = harness.client(user).post("/jobs", json=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["message"], label
    if field:
        assert error["field"] == field
        assert error["message"].startswith(field)
    if limit:
        assert limit in (error["limit"] or "")
    if status == 409:
        assert error["error"] == "budget_exceeded"
        assert error["needed_gpu_seconds"] > error["left_gpu_seconds"]
        assert "GPU-hours" in error["message"]
    assert _job_count(harness) == 0
    with harness.platform.ctx.sessions() as s:
        assert s.execute(select(func.count(LedgerEntryRow.id))).scalar_one() == 0


def test_script_directives_are_used(harness: Harness) -> None:
    script = (
        "#!/bin/bash\n#SBATCH --job-name=finetune\n#SBATCH --gres=gpu:H100:4\n"
        "#SBATCH --nodes=2\n#SBATCH --time=0:30:00\n#SBATCH --output=out.txt\n"
        "#AIF --countries=ES\npython train.py\n"
    )
    response = harness.client("alice").post(
        "/jobs", json={"project": "aurora-vision", "script": script}
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert (job["name"], job["gpus"], job["nodes"], job["gpu_model"], job["time_limit_s"]) == (
        "finetune",
        8,
        2,
        "H100",
        1800,
    )
    harness.cycle()
    job = harness.client("alice").get(f"/jobs/{job['id']}").json()
    assert job["partition_id"] == "bsc-aif/acc"  # the only H100 partition, in ES
    assert job["allocated_gpus"] == 8


def test_cancel_pending_and_running(harness: Harness) -> None:
    alice = harness.client("alice")
    first = alice.post(
        "/jobs",
        json={"project": "aurora-vision", "gpus": 1, "time_limit": 600, "command": ["true"]},
    ).json()
    cancelled = alice.delete(f"/jobs/{first['id']}").json()
    assert cancelled["state"] == "cancelled"
    second = alice.post(
        "/jobs",
        json={"project": "aurora-vision", "gpus": 1, "time_limit": 600, "command": ["true"]},
    ).json()
    harness.cycle(rounds=2)
    assert alice.get(f"/jobs/{second['id']}").json()["state"] == "running"
    harness.clock.advance(60)
    assert alice.delete(f"/jobs/{second['id']}").json()["cancel_requested"] is True
    harness.cycle()
    harness.cycle()
    job = alice.get(f"/jobs/{second['id']}").json()
    assert job["state"] == "cancelled"
    assert job["reserved_gpu_hours"] == 0
    balance = alice.get("/projects/aurora-vision/balance").json()["allocations"][0]
    assert balance["reserved_gpu_seconds"] == 0
    assert balance["used_gpu_seconds"] == job["charged_gpu_seconds"]


def test_sites_shows_catalogue_and_free_gpus(harness: Harness) -> None:
    harness.cycle()
    sites = harness.client("bob").get("/sites").json()
    by_id = {s["id"]: s for s in sites}
    assert by_id["mimer"]["status"] == "planned" and by_id["mimer"]["partitions"] == []
    jaif = by_id["jaif"]["partitions"][0]
    assert (jaif["gpu_model"], jaif["total_gpus"], jaif["free_gpus"], jaif["available"]) == (
        "GH200",
        24_000,
        24_000,
        True,
    )
    assert by_id["jaif"]["sources"]


def test_job_waits_with_a_reason_when_nothing_fits(harness: Harness) -> None:
    alice = harness.client("alice")
    job = alice.post(
        "/jobs",
        json={
            "project": "aurora-vision",
            "gpus": 32,
            "gpu_model": "H200",
            "time_limit": 600,
            "command": ["true"],
        },
    ).json()
    other = alice.post(
        "/jobs",
        json={
            "project": "aurora-vision",
            "gpus": 8,
            "gpu_model": "H200",
            "time_limit": 600,
            "command": ["true"],
        },
    ).json()
    harness.cycle(rounds=2)
    assert alice.get(f"/jobs/{job['id']}").json()["state"] == "running"
    waiting = alice.get(f"/jobs/{other['id']}").json()
    assert waiting["state"] == "pending"
    assert waiting["reason"] and "brain-plus-plus" in waiting["reason"]

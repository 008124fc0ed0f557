"""The README's user journey: ``aif up --demo`` as a process, then the ``aif`` commands, on
SQLite and PostgreSQL, with the emulated sites running real processes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.slow

SCRIPT = """#!/bin/bash
#SBATCH --job-name=e2e-script
#SBATCH --gres=gpu:A100:4
#SBATCH --time=01:00:00
#AIF --countries=SI
echo "hello from $AIF_SITE with GPUs $CUDA_VISIBLE_DEVICES"
"""


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    srv = Server(tmp_path, database_url, extra_env={"AIFACTORIES_EMULATED_TIME_FACTOR": "60"})
    srv.start("--demo")
    yield srv
    srv.stop()


def _wait_final(server: Server, job_id: int, timeout_s: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, object] = json.loads(server.aif("job", str(job_id), "--json").stdout)
        if job["state"] in {"completed", "failed", "cancelled", "timeout"}:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not end in {timeout_s} s")


def test_user_journey(server: Server, tmp_path: Path) -> None:
    sites = server.aif("sites")
    assert sites.returncode == 0, sites.stderr
    assert "jaif" in sites.stdout and "GH200" in sites.stdout and "mimer" not in sites.stdout
    assert "mimer" in server.aif("sites", "--all").stdout

    (tmp_path / "job.sh").write_text(SCRIPT)
    submitted = server.aif("submit", "--json", "job.sh")
    assert submitted.returncode == 0, submitted.stderr
    script_job = json.loads(submitted.stdout)
    command = server.aif(
        "submit",
        "--gpus",
        "8",
        "--gpu-model",
        "any",
        "--time",
        "2:00:00",
        "--json",
        "--",
        "python3",
        "-c",
        "print('trained')",
    )
    assert command.returncode == 0, command.stderr
    command_job = json.loads(command.stdout)

    done = _wait_final(server, script_job["id"])
    assert done["state"] == "completed" and done["partition_id"] == "slaif/gpu"
    assert done["charged_gpu_seconds"] > 0
    other = _wait_final(server, command_job["id"])
    assert other["state"] == "completed" and other["allocated_gpus"] == 8

    listing = server.aif("jobs")
    assert listing.returncode == 0
    assert "e2e-script" in listing.stdout and "completed" in listing.stdout

    balance = json.loads(server.aif("balance", "--json").stdout)
    pool = balance["allocations"][0]
    assert pool["used_gpu_seconds"] == done["charged_gpu_seconds"] + other["charged_gpu_seconds"]
    assert pool["reserved_gpu_seconds"] == 0
    assert "aurora-vision" in server.aif("balance").stdout

    # a long job, cancelled while it runs
    long = json.loads(
        server.aif(
            "submit", "--gpus", "1", "--time", "10:00:00", "--json", "--", "sleep", "600"
        ).stdout
    )
    deadline = time.monotonic() + 30
    while json.loads(server.aif("job", str(long["id"]), "--json").stdout)["state"] != "running":
        assert time.monotonic() < deadline, "the long job never started"
        time.sleep(0.2)
    assert server.aif("cancel", str(long["id"])).returncode == 0
    assert _wait_final(server, long["id"])["state"] == "cancelled"


def test_cli_errors_are_clear(server: Server) -> None:
    too_big = server.aif("submit", "--gpus", "100000", "--time", "1:00:00", "--", "true")
    assert too_big.returncode == 2
    assert "gpus" in too_big.stderr and "more than any matching partition" in too_big.stderr
    unknown = server.aif("submit", "--project", "nope", "--gpus", "1", "--time", "10", "--", "true")
    assert unknown.returncode == 3 and "nope" in unknown.stderr
    no_job = server.aif("job", "999999")
    assert no_job.returncode == 3
    logged_out = server.aif("sites")
    assert logged_out.returncode == 0
    bad_token = Server(
        server.home,
        server.database_url,
        port=server.port,
        extra_env={"AIFACTORIES_TOKEN": "aif_wrong"},
    )
    refused = bad_token.aif("jobs")
    assert refused.returncode == 4 and "token" in refused.stderr


def test_login_with_another_users_token(server: Server) -> None:
    result = server.aif(
        "login",
        "--server",
        server.url,
        "--token",
        server.token("carol"),
        "--project",
        "kalevala-mri",
    )
    assert result.returncode == 0, result.stderr
    assert "carol" in result.stdout
    assert "kalevala-mri" in server.aif("balance").stdout
    assert server.aif("balance", "--project", "aurora-vision").returncode == 3

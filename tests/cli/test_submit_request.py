"""What ``aif submit``, ``aif job`` and ``aif cancel`` send: the request body and path, seen
by a small HTTP server standing for the API (tests/cli/fake_api.py). In-process (Typer's
runner) for most cases, and as real processes for the lines a shell hands over."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactories.cli.main import app
from tests.cli.fake_api import FakeApi, fake_api, run_aif

SCRIPT = """#!/bin/bash
#SBATCH --account=p-script
#SBATCH --partition=standard-g
#SBATCH --nodes=2
srun python train.py
"""
JOB = {"id": 7, "state": "pending", "warnings": []}


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    monkeypatch.chdir(tmp_path)
    with fake_api() as fake:
        fake.answer("POST", "/jobs", JOB, status=201)
        yield fake


def aif(api: FakeApi, home: Path, *args: str, **env: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=api.env(home, **env))
    return result.exit_code, result.stdout, result.stderr


def test_a_script_with_sbatch_options_on_the_command_line(api: FakeApi, tmp_path: Path) -> None:
    (tmp_path / "job.sh").write_text(SCRIPT)
    code, out, err = aif(
        api,
        tmp_path,
        "submit",
        *("--partition=standard-g", "-N", "2", "--ntasks-per-node", "4", "--exclusive"),
        *("--mem=0", "-c8", "job.sh"),
        AIFACTORIES_PROJECT="p-profile",
    )
    assert code == 0, err
    assert "submitted job 7 (pending)" in out
    (request,) = api.requests
    assert (request.method, request.path) == ("POST", "/jobs")
    assert request.body == {
        "workdir": str(tmp_path),  # sbatch runs a job where it was submitted from
        "options": [
            "--partition=standard-g",
            "--nodes=2",
            "--ntasks-per-node=4",
            "--exclusive",
            "--mem=0",
            "--cpus-per-task=8",
        ],
        "script": SCRIPT,
        # the script's --account wins over it: the server decides
        "default_project": "p-profile",
    }
    assert request.headers.get("Authorization") == "Bearer aif_test_token"
    assert request.headers.get("Idempotency-Key")  # a lost reply is retried, not re-submitted


def test_the_account_on_the_command_line_is_an_option(api: FakeApi, tmp_path: Path) -> None:
    code, _out, err = aif(
        api, tmp_path, "submit", "-A", "p-cli", "-G", "1", "--", "python", "-c", "print(1)",
        AIFACTORIES_PROJECT="p-profile",
    )  # fmt: skip
    assert code == 0, err
    (request,) = api.requests
    assert request.body == {
        "workdir": str(tmp_path),
        "options": ["--gpus=1", "--account=p-cli"],
        "command": ["python", "-c", "print(1)"],
    }


def test_without_a_profile_project_no_default_is_sent(api: FakeApi, tmp_path: Path) -> None:
    code, _out, err = aif(api, tmp_path, "submit", "--time=10", "--", "true")
    assert code == 0, err
    assert "default_project" not in api.requests[0].body


def test_a_missing_script_is_said_so_and_nothing_is_sent(api: FakeApi, tmp_path: Path) -> None:
    code, _out, err = aif(api, tmp_path, "submit", "-N", "2", "train.py")
    assert code == 2
    assert "no such script: train.py" in err and "-- train.py" in err
    assert api.requests == []


def test_an_unknown_option_is_refused_before_any_request(api: FakeApi, tmp_path: Path) -> None:
    code, _out, err = aif(api, tmp_path, "submit", "--nodse=2", "--", "true")
    assert code == 2
    assert "unknown option --nodse" in err and "--nodes" in err
    assert api.requests == []


def test_nothing_to_run_is_refused(api: FakeApi, tmp_path: Path) -> None:
    code, _out, err = aif(api, tmp_path, "submit", "-G", "1")
    assert code == 2 and "a command after --" in err
    assert api.requests == []


def test_the_servers_warnings_go_to_standard_error(api: FakeApi, tmp_path: Path) -> None:
    api.answer(
        "POST",
        "/jobs",
        {**JOB, "warnings": ["--qos=high accepted but not acted on", "--hint: a site matter"]},
        status=201,
    )
    code, out, err = aif(api, tmp_path, "submit", "--qos=high", "--", "true")
    assert code == 0, err
    assert "warning: --qos=high accepted but not acted on" in err
    assert "warning: --hint: a site matter" in err
    assert "warning" not in out


def test_a_job_array_is_reported_as_one(api: FakeApi, tmp_path: Path) -> None:
    answer = {**JOB, "id": 123, "array_job_id": 123, "array_task_id": 0, "array_task_count": 10}
    api.answer("POST", "/jobs", answer, status=201)
    code, out, err = aif(api, tmp_path, "submit", "--array=0-9", "--", "true")
    assert code == 0, err
    assert "submitted job array 123 (10 tasks)" in out
    assert api.requests[0].body["options"] == ["--array=0-9"]


def test_json_output_is_the_answer(api: FakeApi, tmp_path: Path) -> None:
    code, out, _err = aif(api, tmp_path, "submit", "--json", "--", "true")
    assert code == 0 and '"id": 7' in out and "submitted" not in out


@pytest.mark.parametrize(("command", "method"), [("job", "GET"), ("cancel", "DELETE")])
@pytest.mark.parametrize("job_id", ["123", "123_4"])
def test_job_and_cancel_take_slurm_ids(
    api: FakeApi, tmp_path: Path, command: str, method: str, job_id: str
) -> None:
    api.answer(method, f"/jobs/{job_id}", _job_view(job_id))
    code, out, err = aif(api, tmp_path, command, job_id)
    assert code == 0, err
    assert [(r.method, r.path) for r in api.requests] == [(method, f"/jobs/{job_id}")]
    if command == "cancel":
        assert f"job {job_id}: cancelled" in out


@pytest.mark.parametrize("job_id", ["12x", "1_2_3", "../sites", "-1"])
def test_a_malformed_job_id_is_refused(api: FakeApi, tmp_path: Path, job_id: str) -> None:
    code, _out, err = aif(api, tmp_path, "cancel", "--", job_id)
    assert code == 2 and "is not a job id" in err
    assert api.requests == []


def _job_view(ref: str) -> dict[str, object]:
    """A job as GET /jobs/{id} shows it, enough for the CLI's views."""
    return {
        "id": int(ref.split("_")[0]),
        "ref": ref,
        "project": "p1",
        "name": "train",
        "state": "cancelled",
        "reason": None,
        "gpus": 1,
        "nodes": None,
        "gpu_model": "any",
        "min_gpu_memory_gb": 0,
        "time_limit_s": 600,
        "countries": [],
        "command": ["true"],
        "has_script": False,
        "site_id": None,
        "partition_id": None,
        "allocated_gpus": None,
        "submitted_at": "2026-01-01T00:00:00+00:00",
        "placed_at": None,
        "started_at": None,
        "ended_at": "2026-01-01T00:01:00+00:00",
        "elapsed_s": None,
        "exit_code": None,
        "site_job_id": None,
        "reserved_gpu_hours": 0.0,
        "charged_gpu_hours": 0.0,
        "charged_gpu_seconds": 0,
        "requeues": 0,
        "cancel_requested": True,
        "array_job_id": None,
        "array_task_id": None,
        "options": {},
        "warnings": [],
    }


@pytest.mark.slow
def test_a_shells_line_as_a_process(api: FakeApi, tmp_path: Path) -> None:
    """The same through a real ``aif`` process: nothing between the shell and the parser."""
    (tmp_path / "job.sh").write_text(SCRIPT)
    line = ("submit", "-Ap1", "-N2", "--job-name", "-x", "--wait", "--json", "job.sh")
    done = run_aif(api.env(tmp_path), *line, cwd=tmp_path)
    # --wait follows the job: the fake server knows no /jobs/7, which ends the command
    assert [(r.method, r.path) for r in api.requests][:2] == [("POST", "/jobs"), ("GET", "/jobs/7")]
    assert api.requests[0].body["options"] == ["--nodes=2", "--job-name=-x", "--account=p1"]
    assert done.returncode == 3 and "no /jobs/7 here" in done.stderr
    missing = run_aif(api.env(tmp_path), "submit", "nosuch.sh", cwd=tmp_path)
    assert missing.returncode == 2 and "no such script: nosuch.sh" in missing.stderr

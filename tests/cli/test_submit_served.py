"""``aif submit`` against the real API (a served platform with mock sites and a manual clock):
the script's directives and the command line's sbatch options read by the server, the command
line winning, the project chosen as sbatch chooses it, warnings and job arrays shown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactories.cli.main import app
from tests.api.harness import Harness, make_harness
from tests.api.served import served

LUMI_SCRIPT = """#!/bin/bash -l
#SBATCH --job-name=lumi-train
#SBATCH --account=aurora-vision
#SBATCH --partition=standard-g
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=7
#SBATCH --mem=0
#SBATCH --time=00:10:00
srun python3 train.py
"""


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, database_url)
    yield harness
    harness.platform.stop()


@pytest.fixture
def url(h: Harness) -> Iterator[str]:
    from aifactories.api.app import create_app

    with served(create_app(h.platform.settings, platform=h.platform)) as base:
        yield base


def aif(h: Harness, url: str, *args: str, project: str | None = None) -> tuple[int, str, str]:
    env = {
        "AIFACTORIES_SERVER": url,
        "AIFACTORIES_TOKEN": h.tokens["alice"],
        "AIFACTORIES_CONFIG": "/nonexistent/profile.json",
        "NO_COLOR": "1",
        "COLUMNS": "250",
    }
    if project is not None:
        env["AIFACTORIES_PROJECT"] = project  # the profile's project
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def _job_id(out: str) -> str:
    found = re.search(r"submitted job (?:array )?(\d+)", out)
    assert found, out
    return found.group(1)


def _job(h: Harness, job_id: str) -> dict[str, object]:
    answer = h.client("alice").get(f"/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    job: dict[str, object] = answer.json()
    return job


def test_a_lumi_script_is_placed_where_its_directives_say(
    h: Harness, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.sh").write_text(LUMI_SCRIPT)
    # the profile names a project alice is not in: the script's --account must win over it
    code, out, err = aif(h, url, "submit", "job.sh", project="kalevala-mri")
    assert code == 0, err
    job = _job(h, _job_id(out))
    assert job["project"] == "aurora-vision" and job["name"] == "lumi-train"
    h.cycle(2)
    assert str(_job(h, str(job["id"]))["partition_id"]).startswith("lumi-aif/")


def test_the_command_line_wins_over_the_script(
    h: Harness, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.sh").write_text(LUMI_SCRIPT)
    code, out, err = aif(
        h, url, "submit", "-p", "boost_usr_prod", "-c", "8", "-J", "moved", "job.sh"
    )
    assert code == 0, err
    job_id = _job_id(out)
    assert _job(h, job_id)["name"] == "moved"
    h.cycle(2)
    assert str(_job(h, job_id)["partition_id"]).startswith("it4lia/")


def test_the_profiles_project_is_the_default_only(h: Harness, url: str) -> None:
    code, out, err = aif(
        h, url, "submit", "-G", "1", "-t", "10", "--", "true", project="aurora-vision"
    )
    assert code == 0, err
    assert _job(h, _job_id(out))["project"] == "aurora-vision"
    # -A on the command line wins over the profile's project
    code, _out, err = aif(
        h,
        url,
        "submit",
        "-A",
        "kalevala-mri",
        "-G",
        "1",
        "-t",
        "10",
        "--",
        "true",
        project="aurora-vision",
    )
    assert code != 0 and "kalevala-mri" in err  # alice is not in it: refused by name


def test_hints_are_accepted_with_a_warning(h: Harness, url: str) -> None:
    code, out, err = aif(
        h, url, "submit", "-A", "aurora-vision", "-G", "1", "-t", "10", "--qos=high", "--", "true"
    )
    assert code == 0, err
    assert "warning:" in err and "--qos" in err
    assert "submitted job" in out


def test_an_array_is_submitted_shown_and_cancelled_by_task(h: Harness, url: str) -> None:
    code, out, err = aif(
        h, url, "submit", "-A", "aurora-vision", "-G", "1", "-t", "10", "-a", "0-3", "--", "true"
    )
    assert code == 0, err
    assert re.search(r"submitted job array \d+ \(4 tasks\)", out), out
    array_id = _job_id(out)
    code, out, err = aif(h, url, "cancel", f"{array_id}_2")
    assert code == 0, err
    assert f"job {array_id}_2: cancelled" in out
    code, out, err = aif(h, url, "job", f"{array_id}_2", "--json")
    assert code == 0 and '"state": "cancelled"' in out
    code, out, err = aif(h, url, "job", f"{array_id}_1", "--json")
    assert code == 0 and '"state": "cancelled"' not in out  # the other tasks run on

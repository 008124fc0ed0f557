"""What people read from the CLI, run for real against a served platform (harness: migrated
database, demo data, mock sites, manual clock): codes rather than ids, plurals, units, local
times with their zone, one clock in a job's view, and no JSON, list or dict reprs anywhere."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactories.cli.main import app as cli
from aifactories.domain.jobs import JobState
from aifactories.executors.mock import MockExecutor
from tests.api.harness import Harness, make_harness
from tests.api.served import served

# A raw structure in human output: a JSON object or a Python dict/list repr.
RAW = re.compile(r"\{\s*['\"]|\['|\[\d|': |\":|\+00:00|\bNone\b|\bTrue\b|\bFalse\b")


@pytest.fixture
def paris(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The user's time zone: Paris (CET, an hour ahead of UTC in January)."""
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


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


def aif(h: Harness, url: str, user: str, *args: str) -> str:
    env = {
        "AIFACTORIES_SERVER": url,
        "AIFACTORIES_TOKEN": h.tokens[user],
        "AIFACTORIES_CONFIG": "/nonexistent/profile.json",
        "NO_COLOR": "1",
        "COLUMNS": "250",
    }
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    assert not RAW.search(result.output), result.output
    return result.output


def test_whoami_names_projects_by_code_and_role(h: Harness, url: str) -> None:
    assert aif(h, url, "alice", "whoami").strip() == "alice (PI of aurora-vision)"
    assert aif(h, url, "bob", "whoami").strip() == "bob (member of aurora-vision)"
    assert aif(h, url, "oscar", "whoami").strip() == "oscar (operator)"
    assert aif(h, url, "rita", "whoami").strip() == "rita (in no project)"


def _finished_job(h: Harness, gpus: int, wall_s: float, site_s: float) -> int:
    """A job that ran ``wall_s`` on the (manual) wall clock while its site counted ``site_s``,
    as an emulated site with a time factor does."""
    body = {"project": "aurora-vision", "gpus": gpus, "time_limit": 7200, "command": ["train"]}
    response = h.client("alice").post("/jobs", json=body)
    assert response.status_code == 201, response.text
    job_id = int(response.json()["id"])
    h.cycle(2)
    job = h.client("alice").get(f"/jobs/{job_id}").json()
    assert job["state"] == "running", job
    h.clock.advance(wall_s)
    site = h.executors[job["site_id"]]
    assert isinstance(site, MockExecutor)
    site.finish(job["site_job_id"], JobState.COMPLETED, elapsed_s=site_s)
    h.cycle(2)
    return job_id


def test_job_view_has_one_clock_said_which(h: Harness, url: str, paris: None) -> None:
    job_id = _finished_job(h, gpus=1, wall_s=120, site_s=7200)
    out = aif(h, url, "alice", "job", str(job_id))
    assert "times on the wall clock, in CET" in out
    # the manual clock starts at 2026-01-01 00:00 UTC: 01:00 in Paris
    assert re.search(r"started[\s│]+2026-01-01 01:0\d:\d\d CET", out), out
    assert re.search(r"ran for[\s│]+2 min\b", out), out
    assert "2 h at the site, whose emulated clock runs about 60 times faster" in out
    assert "1 GPU of" in out and "1 GPUs" not in out
    assert re.search(r"charged[\s│]+\d[\d,]*\.\d\d h", out), out

    out = aif(h, url, "alice", "jobs")
    assert "1 GPU " in out and "wall clock, in CET" in out
    assert re.search(r"\d\.\d\d h", out), out


def test_plural_gpus_in_tables(h: Harness, url: str) -> None:
    _finished_job(h, gpus=2, wall_s=60, site_s=60)
    out = aif(h, url, "alice", "jobs")
    assert "2 GPUs" in out
    out = aif(h, url, "alice", "sites")
    assert " GB" in out and " GPUs" in out


def test_balance_and_allocations_carry_units(h: Harness, url: str, paris: None) -> None:
    out = aif(h, url, "alice", "balance", "-A", "aurora-vision")
    assert "20,000.00 h" in out
    out = aif(h, url, "carol", "allocations", "list", "-A", "kalevala-mri")
    assert "8,000.00 h" in out and "0.0 %" in out


def test_audit_details_are_readable_text(h: Harness, url: str, paris: None) -> None:
    pool = h.client("oscar").get("/projects/climat-downscale/allocations").json()[0]["id"]
    response = h.client("oscar").post(f"/allocations/{pool}/close", json={"reason": "ended"})
    assert response.status_code == 200, response.text
    out = aif(h, url, "oscar", "audit", "list")
    assert "allocation.closed" in out or "allocation" in out
    assert re.search(r"\w[\w -]*: \S", out), out  # "key: value" lines
    assert "CET" in out


def test_projects_and_tokens(h: Harness, url: str, paris: None) -> None:
    out = aif(h, url, "alice", "projects", "list")
    assert "aurora-vision" in out and " h" in out
    out = aif(h, url, "alice", "projects", "show", "aurora-vision")
    assert "GPU-hours used" in out
    out = aif(h, url, "alice", "tokens", "list")
    assert "CET" in out


def test_programme_commands(h: Harness, url: str, paris: None) -> None:
    aif(
        h, url, "oscar", "calls", "open", "--code", "pg-1", "--title", "Playground", "--mode",
        "playground", "--closes", "2027-12-31", "--budget", "pool=20000",
        "--rule", "max_gpu_hours=1000",
    )  # fmt: skip
    out = aif(h, url, "carol", "calls", "show", "pg-1")
    assert "pool: 20,000 h" in out and "month" in out
    assert "pool: 20,000 h" in aif(h, url, "carol", "calls", "list")
    aif(
        h, url, "carol", "proposals", "draft", "pg-1", "--title", "Knee MRI", "--domain",
        "health", "--industrial", "--abstract", "A first segmentation model.", "--gpu-hours",
        "400", "--months", "1", "--site", "lumi-aif", "--site", "it4lia",
    )  # fmt: skip
    out = aif(h, url, "carol", "proposals", "submit", "1")
    assert "over 1 month" in out and "preferred lumi-aif, it4lia" in out
    assert re.search(r"largest job \d+ GPUs?\b", out), out
    out = aif(h, url, "carol", "proposals", "list")
    assert "400 h" in out
    out = aif(h, url, "oscar", "audit", "list")
    assert "proposal" in out and "CET" in out

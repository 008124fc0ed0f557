"""``aif simulate`` from the command line: progress, comparison table, CSV files, errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactories.cli.main import app
from aifactories.services.simulate import MIXTURE_GPU_HOURS_PER_JOB, jobs_per_hour

CATALOGUE = """
sites:
  - {id: a, name: A, country: IT, supercomputer: A, status: operational,
     partitions: [{name: p, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4, nodes: 4}]}
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "catalogue.yaml").write_text(CATALOGUE)
    return {
        "AIFACTORIES_CATALOGUE": str(tmp_path / "catalogue.yaml"),
        "AIFACTORIES_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "200",
    }


def test_simulate_compares_policies_and_writes_results(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--jobs",
            "80",
            "--load",
            "2",
            "--seed",
            "4",
            "--policy",
            "first_fit,fair_share",
            "--out",
            str(out),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "first_fit" in result.output and "fair_share" in result.output
    with (out / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["policy"] for r in rows] == ["first_fit", "fair_share"]
    assert all(int(r["completed"]) == 80 for r in rows)
    assert all(float(r["wait_mean"]) > 0 for r in rows)  # load 2 on 16 GPUs: jobs queue
    with (out / "jobs.csv").open() as handle:
        jobs = list(csv.DictReader(handle))
    assert len(jobs) == 160 and {j["site_id"] for j in jobs} == {"a"}
    report = (out / "index.html").read_text()
    assert "plotly" in report.lower()
    for title in (
        "Job completion time (CDF)",
        "Mean wait by organisation kind",
        "GPUs busy over time",
        "Energy and carbon",
    ):
        assert title in report
    assert report.count("first_fit") >= 2 and "fair_share" in report


def test_simulate_refuses_unknown_policy(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["simulate", "--policy", "magic"], env=env)
    assert result.exit_code == 2
    assert "magic" in result.output and "first_fit" in result.output


def test_load_sets_the_arrival_rate() -> None:
    # load 1.0 offers exactly the federation's GPU-hours per hour
    assert jobs_per_hour(1.0, 1000) * MIXTURE_GPU_HOURS_PER_JOB == pytest.approx(1000)
    per_job = MIXTURE_GPU_HOURS_PER_JOB
    assert per_job == pytest.approx(31.87, abs=0.05)

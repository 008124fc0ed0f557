"""``aif simulate`` from the command line: progress, comparison table, CSV files, errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactories.cli.main import app
from aifactories.domain.errors import InvalidInput
from aifactories.services.simulate import (
    MIXTURE_GPU_HOURS_PER_JOB,
    jobs_per_hour,
    parse_sweep,
    saturation_load,
)

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


def test_sweep_finds_the_knee_and_writes_the_curve(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "sweep"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--jobs",
            "120",
            "--policy",
            "first_fit",
            "--sweep",
            "load=0.5:4.5:2",
            "--out",
            str(out),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    with (out / "sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["load"]) for r in rows] == [0.5, 2.5, 4.5]
    jct = [float(r["jct_mean"]) for r in rows]
    assert jct[0] < jct[1] < jct[2]  # queueing grows with load on 16 GPUs
    assert "saturation load" in result.output
    assert "Mean job completion time against offered load" in (out / "sweep.html").read_text()


@pytest.mark.parametrize(
    ("text", "loads"),
    [("load=0.5:1.3:0.4", [0.5, 0.9, 1.3]), ("load=1:1:0.1", [1.0])],
)
def test_parse_sweep(text: str, loads: list[float]) -> None:
    assert parse_sweep(text) == pytest.approx(loads)


@pytest.mark.parametrize(
    "text", ["jobs=1:2:1", "load=1:2", "load=a:2:1", "load=2:1:0.1", "load=0.1:100:0.01"]
)
def test_bad_sweeps_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_sweep(text)
    assert error.value.field == "sweep" and error.value.limit


def test_saturation_is_where_mean_jct_doubles() -> None:
    assert saturation_load([(0.5, 10.0), (0.7, 15.0), (0.9, 21.0), (1.1, 80.0)]) == 0.9
    assert saturation_load([(0.5, 10.0), (0.7, 12.0)]) is None
    assert saturation_load([]) is None

"""``aif simulate`` from the command line: progress, comparison table, CSV files, errors."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from aifactories.cli.main import app
from aifactories.domain.errors import InvalidInput
from aifactories.services.twin.simulate import MIXTURE_GPU_HOURS_PER_JOB, jobs_per_hour
from aifactories.services.twin.sweep import parse_sweep, saturation_load

TWO_SITES = """
sites:
  - {id: x, name: X, country: DE, supercomputer: X, status: operational,
     partitions: [{name: p, gpu_model: H100, gpu_memory_gb: 80, gpus_per_node: 4, nodes: 2}]}
  - {id: y, name: Y, country: FR, supercomputer: Y, status: operational,
     partitions: [{name: q, gpu_model: A100, gpu_memory_gb: 40, gpus_per_node: 8, nodes: 2}]}
"""

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
    out = out / "latest"  # its own folder: --out holds one per run
    assert "first_fit" in result.output and "fair_share" in result.output
    # summary.csv: the steady-state window (or the whole run when there is none, said so in
    # the console); summary_whole_run.csv: every job, warm-up and drain included.
    with (out / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["policy"] for r in rows] == ["first_fit", "fair_share"]
    assert {r["scope"] for r in rows} <= {"steady state", "whole run"}
    assert ("steady state: the jobs submitted" in result.output) == (
        rows[0]["scope"] != "whole run"
    )
    with (out / "summary_whole_run.csv").open() as handle:
        whole = list(csv.DictReader(handle))
    assert all(int(r["completed"]) == 80 for r in whole)
    assert all(float(r["wait_mean"]) > 0 for r in whole)  # load 2 on 16 GPUs: jobs queue
    with (out / "jobs.csv").open() as handle:
        jobs = list(csv.DictReader(handle))
    assert len(jobs) == 160 and {j["site_id"] for j in jobs} == {"a"}
    report = (out / "index.html").read_text()
    assert "plotly" in report.lower()
    for title in (
        "Job completion time (CDF)",
        "Mean wait by organisation kind",
        "GPUs busy over time",
        "GPUs busy over time per site",
        "Energy and carbon",
    ):
        assert title in report
    assert report.count("First fit") >= 2 and "Fair share" in report  # full names
    # The same tables as Parquet, typed; and the run's resolved scenario.
    parquet = pl.read_parquet(out / "jobs.parquet")
    assert parquet.height == 160 and parquet.columns == list(jobs[0])
    assert parquet.schema["gpus"] == pl.Int64 and parquet.schema["start_s"] == pl.Float64
    summary = pl.read_parquet(out / "summary.parquet")
    assert summary["policy"].to_list() == ["first_fit", "fair_share"]
    assert summary.schema["completed"] == pl.Int64 and summary.schema["jct_mean"] == pl.Float64
    assert yaml.safe_load((out / "scenario.yaml").read_text())["seed"] == 4


def test_utilisation_is_written_per_site_one_row_per_change(
    tmp_path: Path, env: dict[str, str]
) -> None:
    out = tmp_path / "report"
    sites = tmp_path / "two.yaml"
    sites.write_text(TWO_SITES)
    args = ["simulate", "--sites", str(sites), "--jobs", "120", "--load", "1.5"]
    result = CliRunner().invoke(app, [*args, "--policy", "fifo", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    out = out / "latest"  # its own folder: --out holds one per run
    frame = pl.read_parquet(out / "utilisation.parquet")
    assert frame.columns == ["policy", "time_s", "site_id", "busy_gpus", "total_gpus"]
    assert set(frame["site_id"]) == {"x", "y"}  # --sites, not the configured catalogue
    assert dict(zip(frame["site_id"], frame["total_gpus"], strict=True)) == {"x": 8, "y": 16}
    assert frame["busy_gpus"].max() == 16 and frame["busy_gpus"].min() == 0
    for _key, group in frame.group_by("site_id"):
        pairs = list(zip(group["busy_gpus"], group["total_gpus"], strict=True))
        assert all(a != b for a, b in itertools.pairwise(pairs))  # repeats left out
    with (out / "utilisation.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == frame.height
    assert {"x", "y"} <= set(pl.read_parquet(out / "jobs.parquet")["site_id"])
    report = (out / "index.html").read_text()
    assert '"legendgroup":"x"' in report and '"legendgroup":"y"' in report


def test_never_started_jobs_are_nulls_in_parquet(tmp_path: Path, env: dict[str, str]) -> None:
    # A budget of 1 GPU-hour per project: most jobs cannot reserve their time and never start.
    scenario = tmp_path / "tight.yaml"
    scenario.write_text(
        "policies: [first_fit]\nworkload: {generator: {jobs: 40}}\n"
        "mapping: {default_gpu_hours: 1}\n"
    )
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app, ["simulate", "--scenario", str(scenario), "--out", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    out = out / "latest"  # its own folder: --out holds one per run
    jobs = pl.read_parquet(out / "jobs.parquet")
    never = jobs.filter(pl.col("start_s").is_null())
    assert never.height > 0 and never["end_s"].null_count() == never.height
    assert never["site_id"].null_count() == never.height
    assert jobs.schema["start_s"] == pl.Float64 and jobs.schema["site_id"] == pl.String
    with (out / "jobs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sum(r["start_s"] == "" for r in rows) == never.height


def test_sites_refuses_a_missing_or_invalid_file(tmp_path: Path, env: dict[str, str]) -> None:
    missing = CliRunner().invoke(app, ["simulate", "--sites", str(tmp_path / "no.yaml")], env=env)
    assert missing.exit_code == 2
    assert "no catalogue file" in missing.output and "no.yaml" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("sites: [{id: x}]\n")
    invalid = CliRunner().invoke(app, ["simulate", "--sites", str(bad)], env=env)
    assert invalid.exit_code == 2
    assert "bad.yaml: invalid catalogue" in invalid.output and "name" in invalid.output


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
    out = out / "latest"  # its own folder: --out holds one per run
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


def test_load_scales_a_trace_s_arrivals(tmp_path: Path) -> None:
    from aifactories.twin.traces.model import Trace, TraceJob
    from aifactories.twin.traces.transform import scale_load

    trace = Trace(
        name="t",
        source=None,
        jobs=tuple(
            TraceJob(job_id=str(i), submit_s=100.0 * i, runtime_s=50.0, gpus=1) for i in range(4)
        ),
    )
    faster = scale_load(trace, 2.0)
    assert [j.submit_s for j in faster.jobs] == [0.0, 50.0, 100.0, 150.0]
    assert [j.runtime_s for j in faster.jobs] == [50.0] * 4
    assert "arrivals scaled to load 2" in faster.summary()
    assert scale_load(trace, 1.0) is trace
    with pytest.raises(InvalidInput, match="load"):
        scale_load(trace, 0.0)

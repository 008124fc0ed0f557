"""Units that fit the trace (minutes for the NASA log's jobs, hours for Philly's), named in
every axis and header; policies by their full names in the report and the console, by their
identifiers in the files."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from aifactories.cli.main import app
from aifactories.scheduling.policies import POLICY_NAMES
from aifactories.scheduling.preemptive_policies import PREEMPTIVE_POLICY_NAMES
from aifactories.twin.policy_titles import policy_title
from aifactories.twin.units import DAYS, HOURS, MINUTES, SECONDS, clock_unit, job_time_unit
from tests.twin.traces.support import SHARED_TRACES

NASA = SHARED_TRACES / "pwa-nasa-ipsc-1993" / "NASA-iPSC-1993-3.1-cln.swf.gz"
PHILLY = SHARED_TRACES / "philly-pollux" / "philly.csv"
IPSC = """
sites:
  - {id: ipsc, name: NASA Ames iPSC/860, country: US, supercomputer: iPSC/860,
     status: operational,
     partitions: [{name: cube, gpu_model: A100, gpu_memory_gb: 8, gpus_per_node: 1,
                   nodes: 128}]}
"""
EIGHT_GPU_NODES = """
sites:
  - {id: a, name: A, country: IT, supercomputer: A, status: operational,
     partitions: [{name: p, gpu_model: V100, gpu_memory_gb: 32, gpus_per_node: 8, nodes: 8}]}
"""
TWO_MB = 2 * 1024 * 1024
BANNER = re.compile(r"\* plotly\.js .*v\d+\.\d+\.\d+")


def test_the_job_unit_follows_the_mean_runtime() -> None:
    assert job_time_unit([5.0, 30.0, 100.0]) == SECONDS
    assert job_time_unit([14.0, 86.0, 1480.0, 3000.0]) == MINUTES  # mean 19 min
    assert job_time_unit([61.0, 1144.0, 40_000.0]) == HOURS  # short median, long mean
    assert job_time_unit([]) == HOURS
    assert [clock_unit(s) for s in (3000, 20 * 3600, 50 * 86400)] == [MINUTES, HOURS, DAYS]
    assert MINUTES.of(90) == 1.5 and HOURS.symbol == "h" and DAYS.word == "days"


def test_every_policy_has_a_full_name() -> None:
    for name in (*POLICY_NAMES, *PREEMPTIVE_POLICY_NAMES):
        assert policy_title(name) != name, f"{name} has no full name in twin/policy_titles.py"
    assert policy_title("easy_backfill") == "EASY backfill"
    assert policy_title("slurm_siblings") == "Slurm siblings"
    assert policy_title("gavel_las") == "Gavel LAS (heterogeneity-aware)"
    assert policy_title("big.yaml: fifo") == "big.yaml: FIFO (no backfill)"
    assert policy_title("not_a_policy") == "not_a_policy"


def simulate(tmp_path: Path, sites: str, *args: str) -> tuple[str, Path]:
    (tmp_path / "sites.yaml").write_text(sites)
    env = {"AIFACTORIES_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "220"}
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        ["simulate", "--sites", str(tmp_path / "sites.yaml"), *args, "--out", str(out)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    return result.output, out / "latest"


def check_names(output: str, run: Path, ids: list[str], titles: list[str]) -> str:
    """The console and the report name the policies in full, the files by identifier; the
    report is under 2 MB with one plotly.js. Returns the report."""
    page = (run / "index.html").read_text(encoding="utf-8")
    assert (run / "index.html").stat().st_size < TWO_MB and len(BANNER.findall(page)) == 1
    for title in titles:
        assert title in output and title in page
    with (run / "summary.csv").open() as handle:
        assert [row["policy"] for row in csv.DictReader(handle)] == ids
    assert pl.read_parquet(run / "summary.parquet")["policy"].to_list() == ids
    assert set(pl.read_parquet(run / "jobs.parquet")["policy"]) == set(ids)
    return page


def test_nasa_jobs_are_measured_in_minutes(tmp_path: Path) -> None:
    if not NASA.is_file():
        pytest.skip(f"NASA log not found at {NASA} (the shared folder beside the repo)")
    args = ["--trace", str(NASA), "--format", "swf", "--limit", "2000"]
    output, run = simulate(tmp_path, IPSC, *args, "--policy", "fifo,easy_backfill")
    page = check_names(
        output, run, ["fifo", "easy_backfill"], ["FIFO (no backfill)", "EASY backfill"]
    )
    for header in ("mean wait (min)", "mean JCT (min)", "p99 JCT (min)"):
        assert header in page
    assert "(min)" in output and "(h)" not in output  # the console wraps its headers
    assert "median wait (min)" in page  # the report's table has more columns
    assert "Job times in minutes, the unit in which the jobs' mean runtime (10.2 min)" in page
    for axis in ("job completion time (minutes)", "wait before start (minutes)"):
        assert axis in page
    assert "mean wait (minutes)" in page  # the bars by organisation kind, domain, country
    assert "simulated time (days)" in page  # 2,000 jobs over about two weeks
    assert "(h)</th>" not in page and "(hours)" not in page  # no hours left anywhere


def test_philly_jobs_are_measured_in_hours(tmp_path: Path) -> None:
    if not PHILLY.is_file():
        pytest.skip(f"Philly trace not found at {PHILLY} (the shared folder beside the repo)")
    args = ["--trace", str(PHILLY), "--format", "philly", "--limit", "600"]
    output, run = simulate(tmp_path, EIGHT_GPU_NODES, *args, "--policy", "first_fit,fair_share")
    page = check_names(output, run, ["first_fit", "fair_share"], ["First fit", "Fair share"])
    for header in ("mean wait (h)", "mean JCT (h)", "p99 JCT (h)"):
        assert header in page
    assert "(h)" in output and "(min)" not in output
    assert "job completion time (hours)" in page and "wait before start (hours)" in page
    assert "(min)</th>" not in page and "(minutes)" not in page

"""``aif simulate`` sized by hours of arrivals, and what it says about its measured window."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactories.cli.main import app

# 128 GPUs: the generator fills it in about a week of arrivals, with a few jobs an hour.
CATALOGUE = """
sites:
  - {id: a, name: A, country: IT, supercomputer: A, status: operational,
     partitions: [{name: p, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 8, nodes: 16}]}
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "catalogue.yaml").write_text(CATALOGUE)
    return {
        "AIFACTORIES_CATALOGUE": str(tmp_path / "catalogue.yaml"),
        "AIFACTORIES_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "200",
    }


def _simulate(env: dict[str, str], out: Path, *args: str) -> str:
    result = CliRunner().invoke(
        app, ["simulate", "--policy", "fifo", "--seed", "1", "--out", str(out), *args], env=env
    )
    assert result.exit_code == 0, result.output
    return result.output


def _rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / "latest" / name).open() as handle:
        return list(csv.DictReader(handle))


def test_a_steady_run_states_its_window_and_keeps_the_whole_run(
    tmp_path: Path, env: dict[str, str]
) -> None:
    out = tmp_path / "r"
    output = _simulate(env, out, "--hours", "600", "--load", "0.7")
    assert "steady state: the jobs submitted after the warm-up (MSER-5" in output
    assert "warning" not in output
    (steady,) = _rows(out, "summary.csv")
    (whole,) = _rows(out, "summary_whole_run.csv")
    assert steady["scope"] == "steady state" and steady["steady"] == "1"
    assert 0 < int(steady["jobs"]) < int(whole["jobs"])
    assert float(steady["window_start_h"]) > 0
    # The empty start and the drain are left out: the GPUs are busier in the window.
    assert float(steady["utilisation"]) > float(whole["utilisation"])
    assert "steady state: the jobs submitted" in (out / "latest" / "index.html").read_text()
    # Every job arriving in 600 h, and none after.
    with (out / "latest" / "jobs.csv").open() as handle:
        submits = [float(j["submit_s"]) for j in csv.DictReader(handle)]
    assert len(submits) == int(whole["jobs"]) and max(submits) <= 600 * 3600


def test_an_idle_bottleneck_is_said_in_the_console_and_the_report(
    tmp_path: Path, env: dict[str, str]
) -> None:
    out = tmp_path / "r"
    output = _simulate(env, out, "--hours", "600", "--load", "0.1")
    assert "busiest site (a) is only" in output and "raise --load" in output
    report = (out / "latest" / "index.html").read_text()
    assert "warning: FIFO (no backfill): the busiest site (a) is only" in report


def test_an_overload_says_there_is_no_steady_state(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "r"
    output = _simulate(env, out, "--hours", "200", "--load", "3")
    assert "no steady state" in " ".join(output.split())
    (row,) = _rows(out, "summary.csv")
    assert row["scope"] == "whole run" and row["steady"] == "0"
    assert "no steady state" in (out / "latest" / "index.html").read_text()


def test_hours_and_jobs_together_are_refused(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["simulate", "--hours", "5", "--jobs", "10"], env=env)
    assert result.exit_code == 2
    assert "--hours" in result.output and "give one of the two" in result.output


def test_an_arrival_window_too_large_is_refused_with_the_bound(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["simulate", "--hours", "90000", "--load", "100"], env=env)
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "--hours" in text and "more than the twin runs in one go" in text and "at most" in text

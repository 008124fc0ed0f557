"""Each run in its own folder: ``--out DIR`` holds one folder per run, a rerun never
overwrites or mixes with an earlier one, ``--run-dir`` names the folder itself."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactories.cli.main import app
from aifactories.domain.errors import InvalidInput
from aifactories.services.twin.run_folders import (
    LATEST,
    exact_run_folder,
    new_run_folder,
    run_name,
)

CATALOGUE = """
sites:
  - {id: a, name: A, country: IT, supercomputer: A, status: operational,
     partitions: [{name: p, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4, nodes: 2}]}
"""
RUN = ["simulate", "--jobs", "30", "--load", "1.5", "--policy", "fifo"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "catalogue.yaml").write_text(CATALOGUE)
    return {
        "AIFACTORIES_CATALOGUE": str(tmp_path / "catalogue.yaml"),
        "AIFACTORIES_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "200",
    }


def runs_in(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())


def test_run_names_come_from_the_scenario_or_the_trace() -> None:
    assert run_name("Two sites, one outage!", None) == "two-sites-one-outage"
    assert run_name(None, Path("/x/NASA-iPSC-1993-3.1-cln.swf.gz")) == "nasa-ipsc-1993-3.1-cln"
    assert run_name(None, None) == "generator"
    assert run_name(None, None, sweep=True) == "generator-sweep"
    assert len(run_name("x" * 300, None)) == 40


def test_two_runs_in_the_same_second_get_two_folders(tmp_path: Path) -> None:
    now = datetime(2026, 12, 6, 21, 5, 9)
    first = new_run_folder(tmp_path / "runs", "nasa", now)
    second = new_run_folder(tmp_path / "runs", "nasa", now)
    assert (first.name, second.name) == ("20261206-210509-nasa", "20261206-210509-nasa-2")
    assert (tmp_path / "runs" / LATEST).resolve() == second.resolve()
    assert runs_in(tmp_path / "runs") == [first, second]


def test_a_folder_called_latest_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / LATEST).mkdir()
    (tmp_path / LATEST / "mine.txt").write_text("keep")
    new_run_folder(tmp_path, "x")
    assert (tmp_path / LATEST / "mine.txt").read_text() == "keep"


def test_run_dir_must_be_new_or_empty(tmp_path: Path) -> None:
    assert exact_run_folder(tmp_path / "new").is_dir()
    assert exact_run_folder(tmp_path / "new") == tmp_path / "new"  # still empty
    (tmp_path / "new" / "summary.csv").write_text("policy\n")
    with pytest.raises(InvalidInput, match="already holds files") as error:
        exact_run_folder(tmp_path / "new")
    assert error.value.limit and "--out" in error.value.limit


def test_rerunning_a_command_keeps_the_earlier_results(tmp_path: Path, env: dict[str, str]) -> None:
    root = tmp_path / "report"
    first = CliRunner().invoke(app, [*RUN, "--out", str(root)], env=env)
    assert first.exit_code == 0, first.output
    [run_one] = runs_in(root)
    assert f"results of this run in {run_one}/" in first.output
    before = {p.name: p.read_bytes() for p in run_one.iterdir()}
    assert {"index.html", "jobs.csv", "summary.parquet", "scenario.yaml"} <= set(before)

    second = CliRunner().invoke(app, [*RUN, "--seed", "9", "--out", str(root)], env=env)
    assert second.exit_code == 0, second.output
    run_one_again, run_two = runs_in(root)
    assert run_one_again == run_one and run_two != run_one
    assert {p.name: p.read_bytes() for p in run_one.iterdir()} == before  # untouched
    assert (root / LATEST).resolve() == run_two.resolve()

    # The written scenario reruns the run without --out: into a third folder beside them.
    again = CliRunner().invoke(
        app, ["simulate", "--scenario", str(root / LATEST / "scenario.yaml")], env=env
    )
    assert again.exit_code == 0, again.output
    *_, run_three = runs_in(root)
    assert len(runs_in(root)) == 3
    assert (run_three / "jobs.csv").read_bytes() == (run_two / "jobs.csv").read_bytes()


def test_run_dir_is_the_folder_itself_and_refuses_a_used_one(
    tmp_path: Path, env: dict[str, str]
) -> None:
    folder = tmp_path / "exactly-here"
    result = CliRunner().invoke(app, [*RUN, "--run-dir", str(folder)], env=env)
    assert result.exit_code == 0, result.output
    assert (folder / "summary.csv").is_file() and not (folder / LATEST).exists()
    summary = (folder / "summary.csv").read_bytes()
    refused = CliRunner().invoke(app, [*RUN, "--seed", "3", "--run-dir", str(folder)], env=env)
    assert refused.exit_code == 2
    assert "already holds files" in refused.output and "--out" in refused.output
    assert (folder / "summary.csv").read_bytes() == summary


def test_a_sweep_has_a_folder_of_its_own(tmp_path: Path, env: dict[str, str]) -> None:
    root = tmp_path / "report"
    one = CliRunner().invoke(app, [*RUN, "--out", str(root)], env=env)
    assert one.exit_code == 0, one.output
    sweep = CliRunner().invoke(
        app, [*RUN, "--sweep", "load=0.5:1:0.5", "--out", str(root)], env=env
    )
    assert sweep.exit_code == 0, sweep.output
    run, swept = runs_in(root)
    assert swept.name.endswith("generator-sweep") and run.name.endswith("generator")
    assert {p.name for p in swept.iterdir()} == {"sweep.csv", "sweep.html"}
    assert "sweep.csv" not in {p.name for p in run.iterdir()}
    # its table and curve name the unit and the policy in full
    assert "(h)" in sweep.output and "FIFO (no" in sweep.output  # headers wrap in columns
    assert "mean JCT (hours)" in (swept / "sweep.html").read_text()

"""A twin sweep as Slurm jobs: dask-jobqueue's SLURMCluster submits its Dask workers with
sbatch to a real local Slurm site, the points run there, and every row equals the serial
sweep's."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aifactories.catalogue.loader import Catalogue
from aifactories.cli.main import app
from aifactories.domain.errors import InvalidInput
from aifactories.localslurm import LocalSlurm
from aifactories.services.twin.sweep import SweepSpec, simulated, sweep
from aifactories.services.twin.sweep_engines import (
    EngineChoice,
    Serial,
    SlurmOptions,
    open_engine,
)
from aifactories.twin.scenario import Scenario, validate_spec
from tests.twin.inline_sites import one_site

SITES = one_site()


def no_catalogue() -> Catalogue:
    raise AssertionError("the scenario names its sites")


@pytest.mark.slow
def test_a_sweep_runs_as_slurm_jobs_and_equals_the_serial_sweep(
    tmp_path: Path, slurm_cluster: LocalSlurm, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = next(iter(slurm_cluster.sites.values()))
    # sbatch and scancel (called by dask-jobqueue) find the local site as they would the
    # cluster's own configuration on a login node
    monkeypatch.setenv("SLURM_CONF", str(site.slurm_conf))
    data = {"sites": SITES, "workload": {"generator": {"jobs": 60}}}
    scenario = Scenario(validate_spec(data, "small.yaml"), "small.yaml")
    spec = SweepSpec((scenario,), policies=("first_fit", "fifo"), loads=(0.5, 2.0), seeds=(0, 1))
    logs = tmp_path / "logs"
    options = SlurmOptions(
        jobs=2,
        partition=site.partition,
        memory="1GB",
        walltime="00:10:00",
        interface="lo",  # loopback only: the scheduler and the workers on this machine
        log_directory=str(logs),
        start_timeout_s=120,
    )
    with open_engine(EngineChoice("slurm", slurm=options)) as engine:
        on_slurm = sweep(spec, no_catalogue, engine)
    serial = sweep(spec, no_catalogue, Serial())
    assert [repr(simulated(r)) for r in on_slurm] == [repr(simulated(r)) for r in serial]
    assert len(on_slurm) == 8
    # The workers were Slurm jobs of that site: named, logged, and ended when the sweep did.
    listed = subprocess.run(
        ["squeue", "-h", "-t", "all", "-n", "aif-sweep", "-o", "%i %T"],
        env=slurm_cluster.env(site),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    jobs = [line.split() for line in listed if line.strip()]
    assert len(jobs) >= 1, listed
    assert all(state in {"CANCELLED", "COMPLETED", "COMPLETING"} for _id, state in jobs), jobs
    assert any(logs.glob("aif-sweep-*.err"))


@pytest.mark.slow
def test_aif_simulate_sweeps_on_slurm_from_a_cluster_file(
    tmp_path: Path, slurm_cluster: LocalSlurm, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = next(iter(slurm_cluster.sites.values()))
    monkeypatch.setenv("SLURM_CONF", str(site.slurm_conf))
    (tmp_path / "sites.yaml").write_text(yaml.safe_dump(SITES))
    (tmp_path / "small.yaml").write_text("sites: sites.yaml\nworkload: {generator: {jobs: 60}}\n")
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(
        yaml.safe_dump(
            {
                "slurm": {
                    "partition": site.partition,
                    "jobs": 2,
                    "memory": "1GB",
                    "walltime": "00:10:00",
                    "interface": "lo",
                    "start_timeout_s": 120,
                }
            }
        )
    )
    out = tmp_path / "out"
    work = tmp_path / "work"  # where the user types the command: no job log may land here
    work.mkdir()
    monkeypatch.chdir(work)
    args = ["simulate", "--scenario", str(tmp_path / "small.yaml"), "--policy", "fifo"]
    result = CliRunner().invoke(
        app,
        [*args, "--sweep", "load=0.5,2", "--cluster", str(cluster), "--out", str(out)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "sweep on 2 Slurm worker jobs" in result.output
    (written,) = out.rglob("sweep.csv")
    with written.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["load"], r["policy"]) for r in rows] == [("0.5", "fifo"), ("2.0", "fifo")]
    assert list(work.iterdir()) == []
    assert list((written.parent / "worker-logs").iterdir()), "worker logs beside the results"


def test_a_partition_slurm_does_not_have_is_refused_before_any_job(
    slurm_cluster: LocalSlurm, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = next(iter(slurm_cluster.sites.values()))
    monkeypatch.setenv("SLURM_CONF", str(site.slurm_conf))
    options = SlurmOptions(partition="nowhere", interface="lo", start_timeout_s=600)
    with pytest.raises(InvalidInput) as error, open_engine(EngineChoice("slurm", slurm=options)):
        pass
    assert error.value.field == "--cluster"
    assert "Slurm refuses the sweep's worker job" in error.value.message
    assert "partition" in error.value.message.lower()
    listed = subprocess.run(
        ["squeue", "-h", "-t", "all", "-p", "nowhere", "-o", "%i"],
        env=slurm_cluster.env(site),
        capture_output=True,
        text=True,
    )
    assert listed.stdout.strip() == ""

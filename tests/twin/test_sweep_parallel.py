"""Sweeps over policies x loads x seeds on every local engine: local processes and a Dask
cluster over TCP return, run for run, what the serial sweep returns."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aifactories.catalogue.loader import Catalogue
from aifactories.cli.main import app
from aifactories.domain.errors import AifError, InvalidInput
from aifactories.services.twin import sweep_engines
from aifactories.services.twin.sweep import (
    SweepSpec,
    at,
    parse_axes,
    points_of,
    simulated,
    sweep,
)
from aifactories.services.twin.sweep_engines import (
    Dask,
    EngineChoice,
    Processes,
    Serial,
    SlurmOptions,
    choose_engine,
    open_engine,
)
from aifactories.twin.metrics.summary import Row
from aifactories.twin.scenario import Scenario, default_scenario, validate_spec
from tests.twin.inline_sites import one_site

SITES = one_site()


def small(jobs: int = 60, **spec: object) -> Scenario:
    data = {"sites": SITES, "workload": {"generator": {"jobs": jobs}}, **spec}
    return Scenario(validate_spec(data, "small.yaml"), "small.yaml")


def no_catalogue() -> Catalogue:
    raise AssertionError("the scenarios name their sites")


SPEC = SweepSpec((small(),), policies=("first_fit", "fifo"), loads=(0.5, 2.0), seeds=(0, 1))


def as_compared(rows: list[Row]) -> list[str]:
    # repr: exact floats, and NaN equal to NaN (an unmeasurable figure on both sides)
    return [repr(simulated(row)) for row in rows]


@pytest.fixture(scope="module")
def serial_rows() -> list[Row]:
    return sweep(SPEC, no_catalogue, Serial())


def test_the_serial_sweep_covers_every_run_in_the_specs_order(serial_rows: list[Row]) -> None:
    keys = [(r["load"], r["seed"], r["policy"]) for r in serial_rows]
    assert keys == [
        (load, seed, policy)
        for load in (0.5, 2.0)
        for seed in (0, 1)
        for policy in ("first_fit", "fifo")
    ]
    assert {r["scenario"] for r in serial_rows} == {"small"}
    # the axes reach the runs: another seed draws other jobs, a higher load queues longer
    by = {(r["load"], r["seed"], r["policy"]): r for r in serial_rows}
    assert by[(0.5, 0, "fifo")]["jct_mean"] != by[(0.5, 1, "fifo")]["jct_mean"]
    assert float(by[(2.0, 0, "fifo")]["wait_mean"]) > float(by[(0.5, 0, "fifo")]["wait_mean"])


@pytest.mark.slow
def test_local_processes_give_the_serial_results(serial_rows: list[Row]) -> None:
    finished: list[tuple[float, int]] = []
    rows = sweep(
        SPEC, no_catalogue, Processes(2), lambda p, _d, _t: finished.append((p.load, p.seed))
    )
    assert as_compared(rows) == as_compared(serial_rows)
    assert sorted(finished) == [(0.5, 0), (0.5, 1), (2.0, 0), (2.0, 1)]


@pytest.fixture
def dask_scheduler() -> Iterator[str]:
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    )
    try:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.mark.slow
def test_a_dask_cluster_over_tcp_gives_the_serial_results(
    dask_scheduler: str, serial_rows: list[Row]
) -> None:
    choice = choose_engine(dask_scheduler, None)
    assert choice.kind == "dask"
    with open_engine(choice) as engine:
        rows = sweep(SPEC, no_catalogue, engine)
        assert isinstance(engine, Dask)
        workers = engine.client.scheduler_info()["workers"]
    assert len(workers) == 2
    assert as_compared(rows) == as_compared(serial_rows)


@pytest.mark.slow
def test_an_error_in_a_worker_process_reaches_the_caller_whole() -> None:
    outage = {"outages": [{"site": "nowhere", "start_h": 1, "end_h": 2}]}
    bad = SweepSpec((small(events=outage),), loads=(0.5, 1.0))
    with pytest.raises(InvalidInput) as error:
        sweep(bad, no_catalogue, Processes(2))
    assert error.value.field == "small.yaml: events.outages[0].site"
    assert "nowhere" in error.value.message and error.value.limit


def test_sweep_axes_from_the_command_line() -> None:
    files, spec = parse_axes(
        ["load=0.5:0.9:0.2", "seed=0:2", "policy=fifo,easy_backfill"], default_scenario()
    )
    assert files is None and len(spec.scenarios) == 1
    assert spec.loads == pytest.approx((0.5, 0.7, 0.9))
    assert spec.seeds == (0, 1, 2) and spec.policies == ("fifo", "easy_backfill")
    assert parse_axes(["seed=3,7", "load=1,2"], default_scenario())[1].seeds == (3, 7)


@pytest.mark.parametrize(
    "texts",
    [["load=0.5:1:0.5", "load=1:2:1"], ["jobs=1:2:1"], ["seed=2:1"], ["seed=a"], ["policy="]],
)
def test_bad_sweep_axes_are_refused(texts: list[str]) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_axes(texts, default_scenario())
    assert error.value.field == "sweep" and error.value.limit


def test_a_policy_the_twin_does_not_know_fails_before_anything_runs() -> None:
    with pytest.raises(InvalidInput) as error:
        points_of(SweepSpec((small(),), policies=("magic",)), no_catalogue)
    assert "magic" in error.value.message


def test_engine_choices(tmp_path: Path) -> None:
    assert choose_engine(None, 1).kind == "serial"
    assert choose_engine("local", 3) == choose_engine(None, 3)
    assert choose_engine(None, 3).workers == 3
    assert choose_engine("slurm", 5).slurm is not None
    with pytest.raises(InvalidInput, match="--workers"):
        choose_engine("tcp://127.0.0.1:8786", 2)
    with pytest.raises(InvalidInput) as error:
        choose_engine("kubernetes", None)
    assert "tcp://" in str(error.value.limit)
    good = tmp_path / "cluster.yaml"
    good.write_text("slurm: {partition: gpu, jobs: 4, walltime: '00:30:00'}\n")
    options = choose_engine(str(good), None).slurm
    assert options is not None and (options.partition, options.jobs) == ("gpu", 4)
    typo = tmp_path / "typo.yaml"
    typo.write_text("slurm: {partiton: gpu}\n")
    with pytest.raises(InvalidInput) as error:
        choose_engine(str(typo), None)
    assert error.value.field.endswith("slurm.partiton") and "partition" in str(error.value.limit)


def test_no_scheduler_at_the_address_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_engines, "CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises(AifError) as error, open_engine(choose_engine("tcp://127.0.0.1:1", None)):
        pass
    assert "no Dask scheduler answers at tcp://127.0.0.1:1" in error.value.message


@pytest.mark.skipif(shutil.which("sbatch") is None, reason="needs Slurm's sbatch on PATH")
def test_a_slurm_memory_dask_cannot_read_is_refused() -> None:
    bad = EngineChoice("slurm", slurm=SlurmOptions(memory="lots"))
    with pytest.raises(InvalidInput) as error, open_engine(bad):
        pass
    assert error.value.field == "--cluster" and "lots" in error.value.message


@pytest.mark.slow
def test_the_cli_sweeps_seeds_on_local_processes(tmp_path: Path) -> None:
    (tmp_path / "sites.yaml").write_text(yaml.safe_dump(SITES))
    scenario = tmp_path / "small.yaml"
    scenario.write_text("sites: sites.yaml\nworkload: {generator: {jobs: 60}}\n")
    out = tmp_path / "out"
    args = ["simulate", "--scenario", str(scenario), "--policy", "first_fit,fifo", "--out"]
    result = CliRunner().invoke(
        app,
        [*args, str(out), "--sweep", "load=0.5:2:1.5", "--sweep", "seed=0:1", "--workers", "2"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "sweep on 2 local processes" in result.output
    assert "(mean over 2 seeds)" in result.output
    (written,) = out.rglob("sweep.csv")
    with written.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["load"], r["seed"], r["policy"]) for r in rows] == [
        (load, seed, policy)
        for load in ("0.5", "2.0")
        for seed in ("0", "1")
        for policy in ("first_fit", "fifo")
    ]
    one = CliRunner().invoke(app, [*args, str(out), "--workers", "2"], env={"COLUMNS": "200"})
    assert one.exit_code == 2 and "--workers" in one.output and "--sweep" in one.output


def test_a_load_sweeps_a_traces_arrivals_and_not_a_workload_without_a_load() -> None:
    data = {"sites": SITES, "workload": {"trace": {"path": "/t.swf", "format": "swf"}}}
    trace = Scenario(validate_spec(data, "t.yaml"), "t.yaml")
    faster = at(trace, ["fifo"], 2.0, 3)
    assert faster.spec.workload.trace is not None and faster.spec.workload.trace.load == 2.0
    assert (faster.spec.policies, faster.spec.seed) == (["fifo"], 3)
    gavel = {"gavel": {"throughputs": "/g.json", "jobs_per_hour": 2.0}}
    fixed = Scenario(validate_spec({"sites": SITES, "workload": gavel}, "g.yaml"), "g.yaml")
    with pytest.raises(InvalidInput, match="a gavel workload has no offered load"):
        at(fixed, ["fifo"], 2.0, 0)
    assert at(fixed, ["fifo"], None, 4).spec.seed == 4  # seeds and policies still sweep


def test_a_sweep_without_a_load_axis_reports_the_mixtures_default_load() -> None:
    # 16 GPUs hold no 4,096-GPU job: 'auto' is Gavel's mixture, whose default load is 0.9.
    rows = sweep(SweepSpec((small(20),), policies=("fifo",), seeds=(0, 1)), no_catalogue, Serial())
    assert [r["load"] for r in rows] == [0.9, 0.9]


def test_a_sweep_that_cannot_start_leaves_no_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep_engines, "CONNECT_TIMEOUT_S", 1.0)
    (tmp_path / "sites.yaml").write_text(yaml.safe_dump(SITES))
    scenario = tmp_path / "small.yaml"
    scenario.write_text("sites: sites.yaml\nworkload: {generator: {jobs: 20}}\n")
    out = tmp_path / "out"
    args = ["simulate", "--scenario", str(scenario), "--out", str(out), "--sweep", "seed=0:1"]
    result = CliRunner().invoke(app, [*args, "--cluster", "tcp://127.0.0.1:1"])
    assert result.exit_code != 0 and "no Dask scheduler answers" in result.output
    assert not out.exists()  # neither an empty run folder nor a 'latest' pointing at one

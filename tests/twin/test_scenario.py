"""Scenario files: the format, its errors, command-line overrides, and reproducible runs."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from aifactories.catalogue.loader import parse_catalogue
from aifactories.cli.main import app
from aifactories.domain.errors import InvalidInput
from aifactories.services.twin.scenario import events_of, projects_of, setup_of
from aifactories.twin.events import CapacityChange, SiteOutage
from aifactories.twin.federation import DEFAULT_SPEED, UNLIMITED_GPU_SECONDS, projects_for
from aifactories.twin.scenario import (
    Overrides,
    ScenarioSpec,
    default_scenario,
    read_scenario,
    with_overrides,
)
from aifactories.twin.scenario_generator import DEFAULT_GENERATOR_HOURS
from aifactories.twin.traces.synthetic import generate_gavel_mixture

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "scenarios" / "two-site-outage.yaml"
PHILLY = (ROOT / ".." / "shared" / "traces" / "philly-pollux" / "philly.csv").resolve()

TWO_SITES = {
    "sites": [
        {
            "id": "a",
            "name": "A",
            "country": "IT",
            "supercomputer": "A",
            "status": "operational",
            "partitions": [
                {
                    "name": "p",
                    "gpu_model": "A100",
                    "gpu_memory_gb": 64,
                    "gpus_per_node": 4,
                    "nodes": 4,
                },
            ],
        },
        {
            "id": "b",
            "name": "B",
            "country": "FI",
            "supercomputer": "B",
            "status": "operational",
            "carbon_g_per_kwh": 80.5,
            "partitions": [
                {
                    "name": "q",
                    "gpu_model": "H100",
                    "gpu_memory_gb": 80,
                    "gpus_per_node": 4,
                    "nodes": 2,
                    "billing_weight": 2.0,
                },
            ],
        },
    ]
}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "catalogue.yaml").write_text(yaml.safe_dump(TWO_SITES))
    return {
        "AIFACTORIES_CATALOGUE": str(tmp_path / "catalogue.yaml"),
        "AIFACTORIES_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "200",
    }


def write(folder: Path, data: object, name: str = "scenario.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def run(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(app, ["simulate", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def refused(env: dict[str, str], *args: str) -> str:
    """The error line of a refused run (exit code 2, one line, no traceback)."""
    result = CliRunner().invoke(app, ["simulate", *args], env=env)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


# -- the example ------------------------------------------------------------------------------


def test_example_scenario_runs_and_its_outage_bites(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "example"
    output = run(env, "--scenario", str(EXAMPLE), "--out", str(out))
    out = out / "latest"  # its own folder: --out holds one per run
    assert "first_fit" in output and "fair_share" in output
    for name in ("jobs", "summary", "utilisation"):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.parquet").is_file()
    assert "two sites, one outage" in (out / "index.html").read_text()
    # The outage (south down from 400 h to 424 h, in the file) reaches the twin as seconds.
    down = pl.read_parquet(out / "utilisation.parquet").filter(
        (pl.col("site_id") == "south") & pl.col("time_s").is_between(400 * 3600, 424 * 3600, "left")
    )
    assert down.height > 0 and down["total_gpus"].max() == 0
    jobs = pl.read_parquet(out / "jobs.parquet")
    started_while_down = jobs.filter(
        (pl.col("site_id") == "south")
        & pl.col("start_s").is_between(400 * 3600, 424 * 3600, "left")
    )
    assert started_while_down.height == 0
    assert jobs["restarts"].sum() > 0  # jobs running at south when it failed were requeued
    grown = pl.read_parquet(out / "utilisation.parquet").filter(
        (pl.col("site_id") == "north") & (pl.col("time_s") >= 500 * 3600)
    )
    assert grown["total_gpus"].max() == 24 * 4  # the capacity change at 500 h


# -- reproducibility ----------------------------------------------------------------------------


def test_the_written_scenario_reproduces_the_run(tmp_path: Path, env: dict[str, str]) -> None:
    scenario = write(
        tmp_path / "in",
        {
            "policies": ["first_fit", "fair_share"],
            "seed": 11,
            "workload": {"generator": {"jobs": 150, "load": 1.5}},
            "mapping": {"groups": {"academia": {"domain": "science", "gpu_hours": 900}}},
            "speed": {"H100": 2.5},
            "restart_cost_s": 10,
            "events": {"outages": [{"site": "b", "start_h": 5, "end_h": 9.5}]},
        },
    )
    first, second = tmp_path / "first", tmp_path / "second"
    run(env, "--scenario", str(scenario), "--out", str(first))
    resolved = yaml.safe_load((first / "latest" / "scenario.yaml").read_text())
    assert resolved["out"] == str(first)  # the folder of runs: a rerun makes a new folder in it
    assert resolved["sites"]["sites"][1]["carbon_g_per_kwh"] == 80.5  # inline, not "catalogue"
    assert resolved["speed"] == {**DEFAULT_SPEED, "H100": 2.5}
    assert resolved["time_limit_factor"] == 1.5 and resolved["mapping"]["rule"] == "hashed"
    # The catalogue may change after the run: the resolved file does not depend on it.
    (tmp_path / "catalogue.yaml").write_text("sites: []\n")
    run(env, "--scenario", str(first / "latest" / "scenario.yaml"), "--out", str(second))
    first, second_root, second = first / "latest", second, second / "latest"
    assert (first / "jobs.csv").read_bytes() == (second / "jobs.csv").read_bytes()
    assert (first / "utilisation.csv").read_bytes() == (second / "utilisation.csv").read_bytes()
    again = yaml.safe_load((second / "scenario.yaml").read_text())
    assert again == {**resolved, "out": str(second_root)}


def test_a_trace_scenario_reproduces_with_the_trace_pinned(
    tmp_path: Path, env: dict[str, str]
) -> None:
    if not PHILLY.is_file():
        pytest.skip(f"Philly trace not found at {PHILLY} (the shared folder beside the repo)")
    shutil.copy(PHILLY, tmp_path / "philly.csv")
    scenario = write(
        tmp_path / "scenarios",
        {
            "policies": ["first_fit"],
            "workload": {"trace": {"path": "../philly.csv", "format": "philly", "limit": 120}},
        },
    )
    first, second = tmp_path / "out" / "first", tmp_path / "second"
    run(env, "--scenario", str(scenario), "--out", str(first))
    first = first / "latest"  # its own folder: --out holds one per run
    trace = yaml.safe_load((first / "scenario.yaml").read_text())["workload"]["trace"]
    assert trace["path"] == "../../../philly.csv"  # relative to the resolved file's folder
    assert len(trace["sha256"]) == 64
    run(env, "--scenario", str(first / "scenario.yaml"), "--out", str(second))
    assert (first / "jobs.csv").read_bytes() == (second / "latest" / "jobs.csv").read_bytes()
    with (tmp_path / "philly.csv").open("a") as handle:
        handle.write("2017-12-31 00:00:00,60.0,1,60.0,abc\n")
    line = refused(env, "--scenario", str(first / "scenario.yaml"), "--out", str(second))
    assert "workload.trace.sha256" in line and "remove sha256" in line


# -- command-line overrides ---------------------------------------------------------------------


def test_options_given_override_the_scenario(tmp_path: Path, env: dict[str, str]) -> None:
    scenario = write(
        tmp_path,
        {"policies": ["fifo"], "seed": 3, "workload": {"generator": {"jobs": 50}}, "out": "x"},
    )
    out = tmp_path / "given"
    run(env, "--scenario", str(scenario), "--seed", "5", "--jobs", "40", "--out", str(out))
    resolved = yaml.safe_load((out / "latest" / "scenario.yaml").read_text())
    assert resolved["seed"] == 5 and resolved["policies"] == ["fifo"]
    # --jobs replaces the arrival window: the resolved scenario states the one it used.
    assert resolved["workload"]["generator"] == {
        "mixture": "gavel",  # auto, on a federation without a 4,096-GPU partition
        "hours": None,
        "jobs": 40,
        "load": 0.9,
    }
    assert resolved["out"] == str(out)
    with (out / "latest" / "jobs.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 40


def test_overrides_switch_the_workload_to_a_trace() -> None:
    chosen = with_overrides(
        default_scenario(), Overrides(trace=Path("t.csv"), trace_format="sacct", limit=9)
    )
    trace = chosen.spec.workload.trace
    assert chosen.spec.workload.generator is None and trace is not None
    assert (trace.format, trace.limit, Path(trace.path)) == ("sacct", 9, Path.cwd() / "t.csv")


@pytest.mark.parametrize(
    ("given", "option", "words"),
    [
        (Overrides(trace=Path("t.csv")), "--format", "required with --trace"),
        (Overrides(limit=5), "--limit", "add --trace"),
        (Overrides(trace=Path("t.csv"), trace_format="sacct", jobs=5), "--jobs", "generator"),
        (Overrides(trace=Path("t.csv"), trace_format="sacct", hours=5), "--hours", "generator"),
        (Overrides(jobs=5, hours=2.0), "--jobs", "give one of the two"),
        (Overrides(load=-1.0), "--load", "greater than 0"),
        (Overrides(policies=("fifo", "magic")), "--policy", "magic"),
    ],
)
def test_bad_overrides_name_the_option(given: Overrides, option: str, words: str) -> None:
    with pytest.raises(InvalidInput) as error:
        with_overrides(default_scenario(), given)
    assert error.value.field == option
    assert words in error.value.message + str(error.value.limit)


# -- the mapping, the events, the setup ---------------------------------------------------------


def test_mapping_overrides_replace_the_default_rule() -> None:
    catalogue = parse_catalogue(TWO_SITES, "test")
    trace = generate_gavel_mixture(200, 10.0, seed=2)
    spec = ScenarioSpec.model_validate(
        {
            "seed": 2,
            "mapping": {
                "default_gpu_hours": 50,
                "weights": {"critical_domain": 3.0, "industrial": 1.0},
                "groups": {
                    "academia": {
                        "kind": "startup",
                        "domain": "health",
                        "country": "DE",
                        "gpu_hours": 7.5,
                    }
                },
            },
        }
    )
    projects = projects_of(spec, trace, catalogue)
    default = projects_for(trace, ["FI", "IT"], 2)
    assert projects.keys() == default.keys()
    academia = projects["academia"]
    assert (academia.organisation_kind, academia.domain, academia.country) == (
        "startup",
        "health",
        "DE",
    )
    assert academia.priority_weight == 3.0  # critical domain x 3, industrial x 1
    assert academia.granted_gpu_seconds == 27000
    public = projects["public"]
    assert public.country == default["public"].country
    assert public.granted_gpu_seconds == 50 * 3600
    assert default["public"].granted_gpu_seconds == UNLIMITED_GPU_SECONDS


def test_events_are_hours_in_the_file_and_seconds_in_the_setup() -> None:
    spec = ScenarioSpec.model_validate(
        {
            "events": {
                "capacity_changes": [{"site": "a", "partition": "p", "at_h": 2, "nodes": 0}],
                "outages": [{"site": "b", "start_h": 0.5, "end_h": 1.25}],
            },
            "speed_by_class": {"resnet": {"H100": 3.0}},
            "half_life_h": 24,
        }
    )
    assert events_of(spec) == (SiteOutage("b", 1800.0, 4500.0), CapacityChange("a", "p", 7200.0, 0))
    setup = setup_of(spec, parse_catalogue(TWO_SITES, "test"), "fifo")
    assert setup.events == events_of(spec) and setup.half_life_s == 86400
    assert setup.speed_by_class == {"resnet": {"H100": 3.0}}
    assert setup.speed == DEFAULT_SPEED


def test_paths_are_relative_to_the_scenario_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "deep",
        {"sites": "cat.yaml", "workload": {"trace": {"path": "t/x.csv", "format": "swf"}}},
    )
    spec = read_scenario(path).spec
    assert spec.sites == str(tmp_path / "deep" / "cat.yaml")
    assert spec.workload.trace is not None
    assert spec.workload.trace.path == str(tmp_path / "deep" / "t" / "x.csv")


def test_an_empty_scenario_is_every_default(tmp_path: Path) -> None:
    spec = read_scenario(write(tmp_path, "")).spec
    assert spec == ScenarioSpec()
    assert spec.policies == ["first_fit", "earliest_start", "fair_share"]
    generator = spec.workload.generator
    assert generator is not None and generator.jobs is None
    assert generator.mixture == "auto" and generator.hours is None and generator.load is None
    # auto: the AI-factory mixture where a partition holds its 4,096-GPU jobs, else Gavel's
    big, small = generator.concrete(24_000), generator.concrete(96)
    assert (big.mixture, big.hours, big.load) == ("ai-factory", 672.0, 1.4)
    assert (small.mixture, small.hours, small.load) == ("gavel", DEFAULT_GENERATOR_HOURS, 0.9)
    assert generator.model_copy(update={"jobs": 10}).concrete(24_000).hours is None
    assert spec.sites == "auto" and math.isclose(spec.pue, 1.2)


# -- errors: one line, the file, the key, what to do ---------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("polices: [fifo]\n", ["polices", "unknown key", "did you mean 'policies'", "expected"]),
        (
            "workload: {generator: {jobs: 10, lod: 2}}\n",
            ["workload.generator.lod", "did you mean 'load'", "jobs, load"],
        ),
        (
            "mapping: {groups: {academia: {budget: 3}}}\n",
            ["mapping.groups.academia.budget", "kind, domain, country, gpu_hours"],
        ),
        (
            "workload: {trace: {path: x.csv, format: phily}}\n",
            ["workload.trace.format", "'phily'", "'philly'"],
        ),
        ("workload: {}\n", ["workload", "exactly one of 'generator' and 'trace'"]),
        (
            "events: {outages: [{site: a, start_h: 3, end_h: 2}]}\n",
            ["events.outages[0]", "not after start_h"],
        ),
        ("policies: [fifo, magic]\n", ["policies[1]", "unknown policy 'magic'", "first_fit"]),
        ("seed: -1\n", ["seed", "greater than or equal to 0", "-1"]),
        ("[1, 2]\n", ["a mapping of keys", "policies"]),
        ("a: [\n", ["not valid YAML at line 2"]),
        (
            "events: {outages: [{site: nowhere, start_h: 1, end_h: 2}]}\n",
            ["events.outages[0].site", "'nowhere'", "one of a, b"],
        ),
        (
            "events: {capacity_changes: [{site: a, partition: gpu, at_h: 1, nodes: 2}]}\n",
            ["events.capacity_changes[0].partition", "'gpu'", "one of p"],
        ),
        (
            "mapping: {groups: {bank: {kind: sme}}}\n",
            ["mapping.groups.bank", "no job of the workload", "academia"],
        ),
        ("speed: {H10: 2.0}\n", ["speed.H10", "no site has this GPU model", "H100"]),
        ("speed_by_class: {resnet: {A100: 1.0}}\n", ["speed_by_class.resnet", "none"]),
        ("sites: nowhere.yaml\n", ["sites", "no catalogue file", "nowhere.yaml"]),
        (
            "sites: {sites: [{id: a}]}\n",
            ["sites: invalid catalogue", "Field required"],
        ),
    ],
)
def test_scenario_errors_say_what_and_where(
    tmp_path: Path, env: dict[str, str], content: str, words: list[str]
) -> None:
    path = write(tmp_path, content, "bad.yaml")  # each fails before any simulation
    result = CliRunner().invoke(app, ["simulate", "--scenario", str(path)], env=env)
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert text.startswith("error: ")
    assert "bad.yaml" in text or "no catalogue file" in text
    for word in words:
        assert word in text, text
    if "invalid catalogue" not in text:  # the catalogue loader lists its problems one a line
        assert len(text.splitlines()) == 1, text


def test_a_missing_scenario_file_is_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    line = refused(env, "--scenario", str(tmp_path / "nope.yaml"))
    assert "nope.yaml: cannot read the scenario file" in line and "examples/scenarios" in line


def test_cli_overrides_are_checked_against_the_scenario(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = write(tmp_path, {"workload": {"trace": {"path": "t.csv", "format": "philly"}}})
    assert "--jobs" in refused(env, "--scenario", str(path), "--jobs", "10")
    generator = write(tmp_path, {"workload": {"generator": {"jobs": 10}}}, "gen.yaml")
    assert "--format" in refused(env, "--scenario", str(generator), "--format", "swf")


def test_the_documented_scenario_is_every_default(tmp_path: Path) -> None:
    docs = (ROOT / "docs" / "twin.md").read_text()
    block = next(b for b in docs.split("```yaml\n")[1:] if b.startswith("version: 1\n"))
    path = write(tmp_path, block.split("```")[0])
    assert read_scenario(path).spec == ScenarioSpec()


def test_a_generator_is_sized_by_hours_or_by_jobs_never_both(tmp_path: Path) -> None:
    by_jobs = read_scenario(write(tmp_path, {"workload": {"generator": {"jobs": 10}}})).spec
    assert by_jobs.workload.generator is not None and by_jobs.workload.generator.hours is None
    both = write(tmp_path, {"workload": {"generator": {"jobs": 10, "hours": 5}}}, "both.yaml")
    with pytest.raises(InvalidInput) as error:
        read_scenario(both)
    assert "workload.generator" in error.value.field
    assert "one of 'hours' and 'jobs'" in error.value.message
    # --hours over a scenario's jobs (and back): one size replaces the other.
    jobs = write(tmp_path, {"workload": {"generator": {"jobs": 10, "load": 2}}}, "jobs.yaml")
    chosen = with_overrides(read_scenario(jobs), Overrides(hours=7))
    generator = chosen.spec.workload.generator
    assert generator is not None and (generator.hours, generator.jobs) == (7.0, None)
    assert generator.load == 2.0

"""Use case: run the twin on a scenario's workload for several policies and write the results
(CSV and Parquet, the resolved scenario); the HTML report is :mod:`aifactories.twin.report`."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import get_args, get_type_hints

import polars as pl

from aifactories.catalogue.loader import Catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.services.twin.dl_workload import with_profile_speeds
from aifactories.services.twin.gavel_workload import gavel_workload, with_gavel_speeds
from aifactories.services.twin.scenario import catalogue_of, check, projects_of, resolved, setup_of
from aifactories.twin.federation import TwinProject
from aifactories.twin.metrics.constraints import with_violations
from aifactories.twin.metrics.results import JobResult, PolicyRun
from aifactories.twin.metrics.steady_state import steady_rows
from aifactories.twin.metrics.summary import Row, compare
from aifactories.twin.scenario import Scenario, dump_scenario
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces import read_trace
from aifactories.twin.traces.federation_year import generate_ai_factory_mixture
from aifactories.twin.traces.federation_year import jobs_per_hour as ai_factory_jobs_per_hour
from aifactories.twin.traces.model import Trace
from aifactories.twin.traces.synthetic import generate_gavel_mixture
from aifactories.twin.traces.transform import scale_load

# Mean GPU-hours of one job of the Gavel/Philly mixture, from its definition: 1.9 GPUs on
# average x E[runtime] = 0.8 x E[10^U(1.5,3)] + 0.2 x E[10^U(3,4)] minutes (about 16.8 h).
_MEAN_GPUS = 0.7 * 1 + 0.1 * 2 + 0.15 * 4 + 0.05 * 8


def _mean_log_uniform_minutes(low: float, high: float) -> float:
    return (10**high - 10**low) / ((high - low) * math.log(10))


MIXTURE_GPU_HOURS_PER_JOB = (
    _MEAN_GPUS
    * (0.8 * _mean_log_uniform_minutes(1.5, 3) + 0.2 * _mean_log_uniform_minutes(3, 4))
    / 60
)


MAX_GENERATED_JOBS = 5_000_000
"""The most jobs an arrival window may make: beyond it a run outgrows an ordinary machine's
memory (every job's result, for every policy)."""


@dataclass(frozen=True)
class Prepared:
    """A scenario made runnable: its sites, its workload, its projects and one setup per
    policy, all checked."""

    scenario: Scenario
    catalogue: Catalogue
    trace: Trace
    trace_sha256: str | None  # of the trace file; None for the generator
    projects: dict[str, TwinProject]
    setups: tuple[TwinSetup, ...]

    @property
    def title(self) -> str:
        return f"aifactories twin: {self.scenario.spec.name or self.trace.name}"


def jobs_per_hour(load: float, total_gpus: int) -> float:
    """The arrival rate at which the mixture offers ``load`` times the federation's GPUs."""
    return load * total_gpus / MIXTURE_GPU_HOURS_PER_JOB


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_workload(scenario: Scenario, catalogue: Catalogue) -> tuple[Trace, str | None]:
    """The scenario's jobs (the generator sized on ``catalogue``, or its trace) and the trace
    file's SHA-256, checked against the one the scenario pins."""
    spec = scenario.spec
    generator, given = spec.workload.generator, spec.workload.trace
    if generator is not None:
        total = sum(p.total_gpus for p in catalogue.operational_partitions)
        if total == 0:
            raise InvalidInput(
                f"{scenario.source}: sites",
                "no operational site has GPUs, so the generator has no load to size",
                limit="at least one operational site with partitions",
            )
        largest = max(p.total_gpus for p in catalogue.operational_partitions)
        generator = generator.concrete(largest)
        assert generator.load is not None
        gavel = generator.mixture == "gavel"
        rate = (
            jobs_per_hour(generator.load, total)
            if gavel
            else ai_factory_jobs_per_hour(generator.load, total)
        )
        if generator.hours is not None and rate * generator.hours > MAX_GENERATED_JOBS:
            raise InvalidInput(
                "--hours",
                f"{generator.hours:g} h at load {generator.load:g} over {total:,} GPUs is about "
                f"{rate * generator.hours:,.0f} jobs, more than the twin runs in one go",
                limit=f"at most {MAX_GENERATED_JOBS / rate:,.0f} h at this load over these GPUs",
            )
        generate = generate_gavel_mixture if gavel else generate_ai_factory_mixture
        trace = generate(generator.jobs, rate, spec.seed, hours=generator.hours)
        return trace, None
    if spec.workload.gavel is not None:
        return gavel_workload(scenario)
    assert given is not None  # the schema asks for exactly one of the three
    read = read_trace(
        given.path,
        given.format,
        limit=given.limit,
        profiles=given.profiles,
        gpu_profile=given.gpu_profile,
    )
    trace = scale_load(read, given.load)
    digest = _sha256(Path(given.path))
    if given.sha256 is not None and digest != given.sha256:
        raise InvalidInput(
            f"{scenario.source}: workload.trace.sha256",
            f"{given.path} has SHA-256 {digest[:12]}..., the scenario pins {given.sha256[:12]}...",
            limit="the trace the scenario was written for, or remove sha256 to accept this one",
        )
    return trace, digest


def prepare(scenario: Scenario, configured: Callable[[], Catalogue]) -> Prepared:
    """Resolve ``scenario`` (``configured`` gives the platform's catalogue for ``sites:
    catalogue``) and check every name in it; raises AifError before anything runs."""
    catalogue = catalogue_of(scenario, configured)
    trace, digest = load_workload(scenario, catalogue)
    check(scenario, catalogue, trace)
    spec = scenario.spec
    return Prepared(
        scenario=scenario,
        catalogue=catalogue,
        trace=trace,
        trace_sha256=digest,
        projects=projects_of(spec, trace, catalogue),
        setups=tuple(
            with_profile_speeds(
                scenario, with_gavel_speeds(scenario, setup_of(spec, catalogue, policy))
            )
            for policy in spec.policies
        ),
    )


def simulate(
    prepared: Prepared, progress: Callable[[str, int, int], None] | None = None
) -> tuple[list[PolicyRun], list[Row]]:
    runs = []
    for setup in prepared.setups:

        def report(done: int, total: int, policy: str = setup.policy) -> None:
            if progress is not None:
                progress(policy, done, total)

        runs.append(Simulation(prepared.trace, prepared.projects, setup).run(report))
    return runs, with_violations(steady_rows(runs), runs, prepared.trace, prepared.catalogue.sites)


# -- outputs ----------------------------------------------------------------------------------

_POLARS: dict[type, pl.DataType] = {str: pl.String(), int: pl.Int64(), float: pl.Float64()}
# JobResult's columns and their Parquet types, from its annotations: a field added there
# shows up here, and "float | None" (a job that never started) is a nullable Float64.
_JOB_COLUMNS: dict[str, pl.DataType] = {
    "policy": pl.String(),
    **{
        name: _POLARS[next(a for a in get_args(hint) or (hint,) if a is not type(None))]
        for name, hint in get_type_hints(JobResult).items()
    },
}
_UTILISATION_COLUMNS: dict[str, pl.DataType] = {
    "policy": pl.String(),
    "time_s": pl.Float64(),
    "site_id": pl.String(),
    "busy_gpus": pl.Int64(),
    "total_gpus": pl.Int64(),
}


def _summary_type(values: Sequence[object]) -> pl.DataType:
    if all(isinstance(v, str) for v in values):
        return pl.String()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pl.Int64()
    return pl.Float64()  # NaN stays NaN: "not measurable", as in the CSV


def utilisation_rows(runs: Sequence[PolicyRun]) -> list[tuple[str, float, str, int, int]]:
    """Each site's busy and total GPUs, one row per change: the state holds until the next
    row of that site (or the end of the run). Repeats carry no information and would
    multiply the file by the number of sites."""
    rows = []
    for run in runs:
        last: dict[str, tuple[int, int]] = {}
        for time_s, site, busy, total in run.utilisation_samples:
            if last.get(site) != (busy, total):
                last[site] = (busy, total)
                rows.append((run.policy, time_s, site, busy, total))
    return rows


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(["" if v is None else v for v in row] for row in rows)


def write_results(out: Path, runs: Sequence[PolicyRun], rows: Sequence[Row]) -> list[Path]:
    """Per-job results, the comparison (``rows``: the steady state; and the whole run) and the
    sites' utilisation in ``out``, each as CSV (for people and spreadsheets) and Parquet
    (typed, for dataframes)."""
    out.mkdir(parents=True, exist_ok=True)
    names = [f.name for f in dataclasses.fields(JobResult)]
    jobs = [(run.policy, *(getattr(r, n) for n in names)) for run in runs for r in run.results]
    columns = list(rows[0]) if rows else ["policy"]
    summary = [[row[c] for c in columns] for row in rows]
    summary_types = {c: _summary_type([row[c] for row in rows]) for c in columns}
    # The whole run (warm-up and drain included) beside the steady state of ``rows``.
    whole = compare(runs)
    whole_columns = list(whole[0]) if whole else ["policy"]
    whole_types = {c: _summary_type([row[c] for row in whole]) for c in whole_columns}
    tables: list[tuple[str, dict[str, pl.DataType], Sequence[Sequence[object]]]] = [
        ("jobs", _JOB_COLUMNS, jobs),
        ("summary", summary_types, summary),
        ("summary_whole_run", whole_types, [[row[c] for c in whole_columns] for row in whole]),
        ("utilisation", _UTILISATION_COLUMNS, utilisation_rows(runs)),
    ]
    written = []
    for name, schema, data in tables:
        _write_csv(out / f"{name}.csv", list(schema), data)
        frame = pl.DataFrame(data, schema=schema, orient="row")
        frame.write_parquet(out / f"{name}.parquet")
        written += [out / f"{name}.csv", out / f"{name}.parquet"]
    return written


def write_scenario(out: Path, prepared: Prepared) -> Path:
    """``out/scenario.yaml``: the resolved scenario, which reproduces this run."""
    spec = resolved(prepared.scenario, prepared.catalogue, prepared.trace_sha256, out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "scenario.yaml"
    path.write_text(dump_scenario(spec), encoding="utf-8")
    return path

"""Use case: run the twin on a trace for several policies and write the results."""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aifactories.catalogue.loader import Catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.scheduling import POLICY_NAMES
from aifactories.twin.federation import projects_for
from aifactories.twin.metrics.results import PolicyRun
from aifactories.twin.metrics.summary import Row, compare
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces import FORMATS, read_trace
from aifactories.twin.traces.model import Trace
from aifactories.twin.traces.synthetic import generate_gavel_mixture

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


@dataclass(frozen=True)
class SimulationRequest:
    policies: Sequence[str]
    seed: int = 0
    jobs: int = 2000
    load: float = 1.0  # offered GPU-hours per hour / GPUs of the federation (generator only)
    trace: Path | None = None
    trace_format: str | None = None
    limit: int | None = None


def jobs_per_hour(load: float, total_gpus: int) -> float:
    """The arrival rate at which the mixture offers ``load`` times the federation's GPUs."""
    return load * total_gpus / MIXTURE_GPU_HOURS_PER_JOB


def load_workload(request: SimulationRequest, catalogue: Catalogue) -> Trace:
    unknown = [p for p in request.policies if p not in POLICY_NAMES]
    if unknown or not request.policies:
        raise InvalidInput(
            "policy",
            f"unknown or missing: {', '.join(unknown) or 'none'}",
            limit="one or more of " + ", ".join(POLICY_NAMES),
        )
    if request.trace is None:
        if not 0 < request.load <= 100:
            raise InvalidInput("load", f"{request.load}", limit="above 0, at most 100")
        if not 1 <= request.jobs <= 1_000_000:
            raise InvalidInput("jobs", f"{request.jobs}", limit="1 to 1,000,000")
        total = sum(p.total_gpus for p in catalogue.operational_partitions)
        return generate_gavel_mixture(
            request.jobs, jobs_per_hour(request.load, total), request.seed
        )
    if request.trace_format not in FORMATS:
        raise InvalidInput(
            "format", f"{request.trace_format!r}", limit="one of " + ", ".join(FORMATS)
        )
    return read_trace(request.trace, request.trace_format, limit=request.limit)


def simulate(
    request: SimulationRequest,
    catalogue: Catalogue,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Trace, list[PolicyRun], list[Row]]:
    trace = load_workload(request, catalogue)
    countries = sorted({s.country for s in catalogue.operational_sites})
    projects = projects_for(trace, countries, request.seed)
    runs = []
    for policy in request.policies:
        setup = TwinSetup(catalogue.sites, policy)

        def report(done: int, total: int, policy: str = policy) -> None:
            if progress is not None:
                progress(policy, done, total)

        runs.append(Simulation(trace, projects, setup).run(report))
    return trace, runs, compare(runs)


def write_results(out: Path, runs: Sequence[PolicyRun], rows: Sequence[Row]) -> list[Path]:
    """Per-job results and the comparison, as CSV files in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    jobs = out / "jobs.csv"
    with jobs.open("w", newline="", encoding="utf-8") as handle:
        fields = (
            ["policy", *(f.name for f in dataclasses.fields(runs[0].results[0]))]
            if (runs and runs[0].results)
            else ["policy"]
        )
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for run in runs:
            for result in run.results:
                writer.writerow({"policy": run.policy, **dataclasses.asdict(result)})
    written.append(jobs)
    summary = out / "summary.csv"
    with summary.open("w", newline="", encoding="utf-8") as handle:
        columns = list(rows[0]) if rows else []
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    written.append(summary)
    return written


def parse_sweep(text: str) -> list[float]:
    """``load=START:STOP:STEP`` (STOP included) as a list of loads."""
    name, _, spec = text.partition("=")
    parts = spec.split(":")
    if name.strip() != "load" or len(parts) != 3:
        raise InvalidInput(
            "sweep", f"{text!r}", limit="load=START:STOP:STEP, e.g. load=0.5:1.3:0.1"
        )
    try:
        start, stop, step = (float(p) for p in parts)
    except ValueError:
        raise InvalidInput(
            "sweep", f"{text!r} has a non-number", limit="load=START:STOP:STEP"
        ) from None
    if not (0 < start <= stop and step > 0) or (stop - start) / step > 200:
        raise InvalidInput("sweep", f"{text!r}", limit="0 < START <= STOP, STEP > 0, <= 200 steps")
    count = round((stop - start) / step) + 1
    return [round(start + i * step, 10) for i in range(count)]


def saturation_load(points: Sequence[tuple[float, float]]) -> float | None:
    """The knee of a policy's mean-JCT curve: the first load whose mean JCT is more than twice
    the mean JCT at the lowest load (where queueing starts to dominate run time). None if the
    curve never doubles in the swept range."""
    finite = [(load, jct) for load, jct in sorted(points) if math.isfinite(jct)]
    if not finite:
        return None
    base = finite[0][1]
    return next((load for load, jct in finite if jct > 2 * base), None)


def sweep(
    request: SimulationRequest,
    catalogue: Catalogue,
    loads: Sequence[float],
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Row]:
    """Each policy at each load (the generator), one summary row per (load, policy)."""
    if request.trace is not None:
        raise InvalidInput("sweep", "a load sweep uses the generator", limit="omit --trace")
    rows: list[Row] = []
    for load in loads:

        def report(policy: str, done: int, total: int, load: float = load) -> None:
            if progress is not None:
                progress(f"{policy} @ {load:g}", done, total)

        _trace, _runs, compared = simulate(
            dataclasses.replace(request, load=load), catalogue, report
        )
        rows.extend({"load": load, **row} for row in compared)
    return rows

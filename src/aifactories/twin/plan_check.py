"""An investment plan checked in the twin: today's federation and the federation with the
plan's new capacity, over the same year of demand, with the same policy.

The demand is the AI-factory mixture (``traces.federation_year``) sized to a stated number of
GPU-hours a year, in A100-hours (the catalogue's unit of work: a job of one A100-hour runs
half an hour on an H100 at speed 2.0); both federations face exactly the same jobs. The new
capacity is in service for the whole checked year: the year checked is the first full year
after every taken investment is commissioned (a plan that builds over several years is
checked at its end state).

Jobs larger than any partition of today's federation never start there; they are counted
(``never_started``) rather than dropped, since unmet demand is what an investment answers.
Waits are those of the jobs that started; GPU-hours are physical GPU time delivered.

Time to access per access mode (``time_to_access``): each job stands for a project's first
job and is in an access mode by a stated rule; its time to access is its mode's time from
submission to decision (a figure given: the published targets by default, the programme's
measured medians when the service passes them) plus its wait in the twin
(twin/plan_access.py says why every job, not only the demand's projects' first). The wait of
the demand's own projects' first jobs, by organisation kind, is ``first_wait_h``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from aifactories.domain.errors import InvalidInput
from aifactories.domain.sites import Site
from aifactories.domain.units import HOURS_PER_YEAR, SECONDS_PER_HOUR
from aifactories.twin.federation import (
    DEFAULT_GPU_POWER_KW,
    DEFAULT_PUE,
    DEFAULT_SPEED,
    projects_for,
)
from aifactories.twin.metrics.results import JobResult, PolicyRun
from aifactories.twin.metrics.stats import percentile
from aifactories.twin.metrics.utilisation import utilisation
from aifactories.twin.plan_access import (
    AccessTime,
    DecisionTime,
    check_decision_times,
    job_modes,
    mode_counts,
    published_decision_times,
    time_to_access,
)
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces.federation_year import (
    generate_federation_year,
    mean_gpu_hours_per_job,
)
from aifactories.twin.traces.model import Trace

MAX_JOBS = 1_200_000
"""Above this many jobs a year, jobs are made larger (``size_factor``) rather than more
numerous: the year at gigafactory scale stays within minutes and a few GB."""

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class FederationYear:
    """What one federation did with the demand."""

    label: str
    gpus: int
    gpus_by_model: Mapping[str, int]
    jobs: int
    never_started: int
    mean_wait_h: float
    p90_wait_h: float
    utilisation: float
    gpu_hours: float  # physical GPU time delivered
    work_a100_hours: float  # the work it was: GPU-hours x each GPU's speed
    energy_mwh: float
    carbon_t: float
    share_by_kind: Mapping[str, float]  # share of the delivered GPU-hours
    share_by_domain: Mapping[str, float]
    share_by_country: Mapping[str, float]
    first_wait_h: Mapping[str, float]  # median wait of projects' first jobs, by kind
    time_to_access: Mapping[str, AccessTime]  # by access mode: decision + first-job wait


@dataclass(frozen=True)
class PlanCheck:
    days: float
    demand_a100_hours_per_year: float
    size_factor: int
    jobs: int
    policy: str
    before: FederationYear
    after: FederationYear
    mode_jobs: Mapping[str, int]  # how many jobs each access mode has
    decision_times: Mapping[str, DecisionTime]  # by access mode, with their basis


def size_factor_for(jobs_per_period: float) -> int:
    """The smallest job-size multiplier that keeps the period's jobs within ``MAX_JOBS``."""
    return max(1, math.ceil(jobs_per_period / MAX_JOBS))


def demand_trace(
    demand_a100_hours_per_year: float, reference_gpus: int, days: float, seed: int
) -> tuple[Trace, int]:
    """The period's jobs: the mixture at the rate that offers the stated demand; the
    generator's load is relative to ``reference_gpus`` (only a scale: the same jobs follow
    for any reference)."""
    if not (math.isfinite(demand_a100_hours_per_year) and demand_a100_hours_per_year > 0):
        raise InvalidInput(
            "demand", f"{demand_a100_hours_per_year}", limit="A100-hours a year, above 0"
        )
    per_job = mean_gpu_hours_per_job(1)
    # Sized on a year's jobs whatever the period, so a short check has the same jobs.
    size = size_factor_for(demand_a100_hours_per_year / per_job)
    # At least the GPUs the demand would keep busy, so that the load stays within the
    # generator's range however far demand outgrows today's federation.
    reference = max(reference_gpus, math.ceil(demand_a100_hours_per_year / HOURS_PER_YEAR))
    load = demand_a100_hours_per_year / (reference * HOURS_PER_YEAR)
    trace = generate_federation_year(reference, days=days, load=load, seed=seed, size_factor=size)
    return trace, size


def check_plan(
    today: Sequence[Site],
    added: Sequence[Site],
    *,
    demand_a100_hours_per_year: float,
    days: float = 365.0,
    seed: int = 0,
    policy: str = "easy_backfill",
    speed: Mapping[str, float] | None = None,
    gpu_power_kw: Mapping[str, float] | None = None,
    pue: float = DEFAULT_PUE,
    decision_times: Mapping[str, DecisionTime] | None = None,
    progress: Progress | None = None,
) -> PlanCheck:
    """Run the same demand on ``today`` and on ``today + added``; their figures side by side.
    ``decision_times``: each access mode's time from submission to decision (default: the
    published targets)."""
    if not today:
        raise InvalidInput("sites", "no operational site today", limit="at least one")
    decisions = dict(decision_times or published_decision_times())
    check_decision_times(decisions)
    today_gpus = sum(p.total_gpus for s in today for p in s.partitions)
    trace, size = demand_trace(demand_a100_hours_per_year, today_gpus, days, seed)
    after = (*today, *added)
    countries = sorted({s.country for s in after})
    projects = projects_for(trace, countries, seed)
    kinds = {name: p.organisation_kind for name, p in projects.items()}
    modes = job_modes(trace, kinds, seed, size)
    figures = []
    for label, sites in (("today", tuple(today)), ("with the plan", after)):
        setup = TwinSetup(
            sites,
            policy,
            speed={**DEFAULT_SPEED, **(speed or {})},
            gpu_power_kw={**DEFAULT_GPU_POWER_KW, **(gpu_power_kw or {})},
            pue=pue,
            seed=seed,
        )
        simulation = Simulation(trace, projects, setup)
        report: Callable[[int, int], None] | None = None
        if progress is not None:
            report = _named(progress, label)
        run = simulation.run(report)
        figures.append(
            _figures(label, sites, run, setup.speed, time_to_access(run.results, modes, decisions))
        )
    return PlanCheck(
        days=days,
        demand_a100_hours_per_year=demand_a100_hours_per_year,
        size_factor=size,
        jobs=len(trace.jobs),
        policy=policy,
        before=figures[0],
        after=figures[1],
        mode_jobs=mode_counts(modes),
        decision_times=decisions,
    )


def _named(progress: Progress, label: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        progress(label, done, total)

    return report


def _figures(
    label: str,
    sites: Sequence[Site],
    run: PolicyRun,
    speed: Mapping[str, float],
    access: Mapping[str, AccessTime],
) -> FederationYear:
    results = run.results
    started = [r for r in results if r.start_s is not None]
    waits_h = [_wait_h(r) for r in started]
    by_model: dict[str, int] = defaultdict(int)
    for site in sites:
        for partition in site.partitions:
            by_model[partition.gpu_model] += partition.total_gpus
    gpu_hours = math.fsum(r.gpu_seconds for r in results) / SECONDS_PER_HOUR
    return FederationYear(
        label=label,
        gpus=sum(by_model.values()),
        gpus_by_model=dict(sorted(by_model.items())),
        jobs=len(results),
        never_started=len(results) - len(started),
        mean_wait_h=math.fsum(waits_h) / len(waits_h) if waits_h else math.nan,
        p90_wait_h=percentile(waits_h, 90.0) if waits_h else math.nan,
        utilisation=utilisation(run.utilisation_samples, run.horizon_start_s, run.horizon_end_s),
        gpu_hours=gpu_hours,
        work_a100_hours=math.fsum(
            r.gpu_seconds * speed.get(r.gpu_model or "", 1.0) for r in results
        )
        / SECONDS_PER_HOUR,
        energy_mwh=math.fsum(r.energy_kwh for r in results) / 1000.0,
        carbon_t=math.fsum(r.carbon_kg for r in results) / 1000.0,
        share_by_kind=_shares(results, lambda r: r.organisation_kind),
        share_by_domain=_shares(results, lambda r: r.domain),
        share_by_country=_shares(results, lambda r: r.country),
        first_wait_h=_first_waits(started),
        time_to_access=access,
    )


def _wait_h(job: JobResult) -> float:
    assert job.start_s is not None  # only started jobs are asked
    return (job.start_s - job.submit_s) / SECONDS_PER_HOUR


def _shares(results: Iterable[JobResult], key: Callable[[JobResult], str]) -> dict[str, float]:
    hours: dict[str, float] = defaultdict(float)
    for r in results:
        hours[key(r)] += r.gpu_seconds
    total = math.fsum(hours.values())
    return {k: (v / total if total else 0.0) for k, v in sorted(hours.items())}


def _first_waits(started: Sequence[JobResult]) -> dict[str, float]:
    first: dict[str, JobResult] = {}
    for r in started:
        known = first.get(r.project)
        if known is None or r.submit_s < known.submit_s:
            first[r.project] = r
    by_kind: dict[str, list[float]] = defaultdict(list)
    for r in first.values():
        by_kind[r.organisation_kind].append(_wait_h(r))
    return {kind: percentile(waits, 50.0) for kind, waits in sorted(by_kind.items())}

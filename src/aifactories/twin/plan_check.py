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

import dataclasses
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


def check_demand(demand_a100_hours_per_year: float) -> None:
    if not (math.isfinite(demand_a100_hours_per_year) and demand_a100_hours_per_year > 0):
        raise InvalidInput(
            "demand", f"{demand_a100_hours_per_year}", limit="A100-hours a year, above 0"
        )


def demand_trace(
    demand_a100_hours_per_year: float, reference_gpus: int, days: float, seed: int
) -> tuple[Trace, int]:
    """The period's jobs: the mixture at the rate that offers the stated demand; the
    generator's load is relative to ``reference_gpus`` (only a scale: the same jobs follow
    for any reference)."""
    check_demand(demand_a100_hours_per_year)
    per_job = mean_gpu_hours_per_job(1)
    # Sized on a year's jobs whatever the period, so a short check has the same jobs.
    size = size_factor_for(demand_a100_hours_per_year / per_job)
    # At least the GPUs the demand would keep busy, so that the load stays within the
    # generator's range however far demand outgrows today's federation.
    reference = max(reference_gpus, math.ceil(demand_a100_hours_per_year / HOURS_PER_YEAR))
    load = demand_a100_hours_per_year / (reference * HOURS_PER_YEAR)
    trace = generate_federation_year(reference, days=days, load=load, seed=seed, size_factor=size)
    return trace, size


@dataclass(frozen=True)
class FederationTask:
    """All one federation's run needs, small and picklable: the run makes its own copy of the
    jobs from the seed (the same jobs for both federations), so a process running it is sent
    no jobs."""

    label: str
    sites: tuple[Site, ...]
    demand_a100_hours_per_year: float
    reference_gpus: int  # today's GPUs: the generator's scale, the same for both federations
    countries: tuple[str, ...]  # the projects' home countries, the same for both federations
    days: float
    seed: int
    policy: str
    speed: Mapping[str, float]
    gpu_power_kw: Mapping[str, float]
    pue: float
    decision_times: Mapping[str, DecisionTime]


@dataclass(frozen=True)
class FederationRun:
    """One federation's figures and what the report needs of its jobs (the same for both)."""

    year: FederationYear
    jobs: int
    size_factor: int
    mode_jobs: Mapping[str, int]


def plan_tasks(
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
) -> tuple[FederationTask, FederationTask]:
    """The two runs of a plan check, today's and with the plan, checked before any runs."""
    if not today:
        raise InvalidInput("sites", "no operational site today", limit="at least one")
    check_demand(demand_a100_hours_per_year)
    decisions = dict(decision_times or published_decision_times())
    check_decision_times(decisions)
    after = (*today, *added)
    first = FederationTask(
        label="today",
        sites=tuple(today),
        demand_a100_hours_per_year=demand_a100_hours_per_year,
        reference_gpus=sum(p.total_gpus for s in today for p in s.partitions),
        countries=tuple(sorted({s.country for s in after})),
        days=days,
        seed=seed,
        policy=policy,
        speed={**DEFAULT_SPEED, **(speed or {})},
        gpu_power_kw={**DEFAULT_GPU_POWER_KW, **(gpu_power_kw or {})},
        pue=pue,
        decision_times=decisions,
    )
    return first, dataclasses.replace(first, label="with the plan", sites=after)


def run_federation(
    task: FederationTask, progress: Callable[[int, int], None] | None = None
) -> FederationRun:
    """One federation over the period's jobs; ``progress(jobs done, jobs)`` as it goes and
    once at the end (every job then ran or is counted as never started)."""
    trace, size = demand_trace(
        task.demand_a100_hours_per_year, task.reference_gpus, task.days, task.seed
    )
    projects = projects_for(trace, task.countries, task.seed)
    kinds = {name: p.organisation_kind for name, p in projects.items()}
    modes = job_modes(trace, kinds, task.seed, size)
    setup = TwinSetup(
        task.sites,
        task.policy,
        speed=task.speed,
        gpu_power_kw=task.gpu_power_kw,
        pue=task.pue,
        seed=task.seed,
    )
    run = Simulation(trace, projects, setup).run(progress)
    if progress is not None:
        progress(len(run.results), len(run.results))
    access = time_to_access(run.results, modes, task.decision_times)
    year = _figures(task.label, task.sites, run, setup.speed, access)
    return FederationRun(year, len(trace.jobs), size, mode_counts(modes))


def plan_check_of(tasks: Sequence[FederationTask], runs: Sequence[FederationRun]) -> PlanCheck:
    """The two runs side by side (today's first), as :func:`plan_tasks` made them."""
    (today, _), (before, after) = tasks, runs
    # Both made their jobs from the same seed: a difference would be a bug, not a figure.
    assert (before.jobs, before.size_factor) == (after.jobs, after.size_factor)
    return PlanCheck(
        days=today.days,
        demand_a100_hours_per_year=today.demand_a100_hours_per_year,
        size_factor=before.size_factor,
        jobs=before.jobs,
        policy=today.policy,
        before=before.year,
        after=after.year,
        mode_jobs=before.mode_jobs,
        decision_times=today.decision_times,
    )


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
    """Run the same demand on ``today`` and on ``today + added``, one after the other in this
    process; their figures side by side. ``decision_times``: each access mode's time from
    submission to decision (default: the published targets). Two processes at once:
    services/fund/plan_processes.py, over :func:`plan_tasks` and :func:`run_federation`."""
    tasks = plan_tasks(
        today,
        added,
        demand_a100_hours_per_year=demand_a100_hours_per_year,
        days=days,
        seed=seed,
        policy=policy,
        speed=speed,
        gpu_power_kw=gpu_power_kw,
        pue=pue,
        decision_times=decision_times,
    )
    runs = [
        run_federation(task, None if progress is None else named_progress(progress, task.label))
        for task in tasks
    ]
    return plan_check_of(tasks, runs)


def named_progress(progress: Progress, label: str) -> Callable[[int, int], None]:
    """``progress(label, done, total)`` as a run's own ``progress(done, total)``."""

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

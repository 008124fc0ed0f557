"""The AI-factory mixture: seeded federation work, from a fortnight on the catalogue (the
default workload of ``aif simulate``) to a year at gigafactory scale (the scale benchmark:
a million jobs and more over half a million accelerators).

No public trace covers a federation of AI factories and gigafactories, so this workload is
this project's assumption, stated here so that a report can quote it:

- GPUs per job: 1, 8, 64, 512 or 4,096 with probabilities 0.35, 0.35, 0.18, 0.10, 0.02
  (notebooks and fine-tuning on one node up to foundation-model pre-training; the shape of
  the Philly, Helios and Acme size distributions, stretched to the largest jobs
  gigafactories are built for);
- runtime: log-uniform from 10 minutes to 7 days (a pre-training run chains its jobs for a
  week; most sites' MaxTime is one or two days);
- arrivals: a Poisson process whose rate makes the offered GPU-hours ``load`` times the
  federation's GPUs over the period (``load`` 1.0: exactly full on average);
- who: ``group`` is one of ``projects`` projects per organisation kind, kinds and domains as
  in the Gavel mixture (:data:`~aifactories.twin.traces.synthetic.KIND_MIX`, ``DOMAIN_MIX``).

Draws come from NumPy's PCG64 with the given seed, one array per quantity, so a million
jobs take a second and the same seed gives the same trace on every platform.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from aifactories.domain.errors import InvalidInput
from aifactories.twin.traces.model import Trace, TraceJob
from aifactories.twin.traces.synthetic import DOMAIN_MIX, KIND_MIX

SIZE_MIX: tuple[tuple[int, float], ...] = (
    (1, 0.35),
    (8, 0.35),
    (64, 0.18),
    (512, 0.10),
    (4096, 0.02),
)
RUNTIME_S = (600.0, 7 * 86400.0)  # log-uniform bounds
_T = TypeVar("_T")


def mean_gpu_hours_per_job(size_factor: int = 1) -> float:
    """E[GPUs] x E[runtime] (independent draws), in GPU-hours."""
    gpus = size_factor * sum(size * p for size, p in SIZE_MIX)
    low, high = RUNTIME_S
    runtime_h = (high - low) / math.log(high / low) / 3600
    return gpus * runtime_h


def jobs_per_hour(load: float, total_gpus: int, size_factor: int = 1) -> float:
    """The arrival rate at which the mixture offers ``load`` x ``total_gpus`` GPU-hours."""
    return load * total_gpus / mean_gpu_hours_per_job(size_factor)


def generate_federation_year(
    total_gpus: int,
    *,
    days: float = 365.0,
    load: float = 0.85,
    seed: int = 0,
    projects: int = 40,
    size_factor: int = 1,
) -> Trace:
    """Every job arriving within ``days`` at the rate that offers ``load`` x ``total_gpus``;
    ``size_factor`` multiplies every job's GPUs (gigafactories run jobs several times the
    size of today's largest)."""
    if total_gpus < 1:
        raise InvalidInput("total_gpus", f"{total_gpus}", limit="1 or more")
    if not (math.isfinite(days) and 0 < days <= 3660):
        raise InvalidInput("days", f"{days}", limit="above 0, at most 3660")
    if not (math.isfinite(load) and 0 < load <= 10):
        raise InvalidInput("load", f"{load}", limit="above 0, at most 10")
    if size_factor < 1:
        raise InvalidInput("size_factor", f"{size_factor}", limit="1 or more")
    rate = jobs_per_hour(load, total_gpus, size_factor)
    trace = generate_ai_factory_mixture(
        None, rate, seed, hours=days * 24, projects=projects, size_factor=size_factor
    )
    name = (
        f"federation-year(days={days:g}, load={load:g}, gpus={total_gpus}, "
        f"size_factor={size_factor}, seed={seed})"
    )
    return dataclasses.replace(trace, name=name)


def generate_ai_factory_mixture(
    n_jobs: int | None,
    jobs_per_hour: float,
    seed: int,
    *,
    hours: float | None = None,
    projects: int = 40,
    size_factor: int = 1,
) -> Trace:
    """Jobs of the mixture (see module) arriving at ``jobs_per_hour``: the first ``n_jobs``,
    or every job that arrives within ``hours`` (give exactly one)."""
    if (n_jobs is None) == (hours is None):
        raise InvalidInput("generator", "give exactly one of n_jobs and hours")
    if n_jobs is not None and n_jobs < 0:
        raise InvalidInput("n_jobs", f"{n_jobs}", limit="0 or more")
    if hours is not None and not (math.isfinite(hours) and hours >= 0):
        raise InvalidInput("hours", f"{hours}", limit="0 or more")
    if not (math.isfinite(jobs_per_hour) and jobs_per_hour > 0):
        raise InvalidInput("jobs_per_hour", f"{jobs_per_hour}", limit="above 0")
    if projects < 1:
        raise InvalidInput("projects", f"{projects}", limit="1 or more")
    if size_factor < 1:
        raise InvalidInput("size_factor", f"{size_factor}", limit="1 or more")
    rng = np.random.Generator(np.random.PCG64(seed))
    jobs_per_s = jobs_per_hour / 3600
    if n_jobs is not None:
        draws = n_jobs
        horizon_s = math.inf
    else:
        assert hours is not None
        horizon_s = hours * 3600.0
        expected = jobs_per_s * horizon_s
        # Draw a few standard deviations more gaps than expected, then cut at the horizon.
        draws = int(expected + 6 * math.sqrt(expected) + 10)
    submits = np.round(np.cumsum(rng.exponential(1.0 / jobs_per_s, draws)), 3)
    count = int(np.searchsorted(submits, horizon_s, side="right"))
    submits = submits[:count]
    low, high = RUNTIME_S
    runtimes = np.round(np.exp(rng.uniform(math.log(low), math.log(high), count)), 3)
    sizes = _draw([s for s, _ in SIZE_MIX], [p for _, p in SIZE_MIX], rng, count)
    kinds = _draw([k.value for k, _ in KIND_MIX], [p for _, p in KIND_MIX], rng, count)
    domains = _draw([d.value for d, _ in DOMAIN_MIX], [p for _, p in DOMAIN_MIX], rng, count)
    project = rng.integers(0, projects, count)
    width = len(str(count))
    jobs = [
        TraceJob(
            job_id=f"year-{i:0{width}d}",
            submit_s=float(submits[i]),
            runtime_s=float(runtimes[i]),
            gpus=int(sizes[i]) * size_factor,
            group=f"{kinds[i]}-{int(project[i]):03d}",
            extra=(("domain", str(domains[i])), ("organisation_kind", str(kinds[i]))),
        )
        for i in range(count)
    ]
    # Two arrivals in the same millisecond: the later one moves by a millisecond, so the
    # trace stays strictly ordered (Trace requires it) without reordering anyone.
    for i in range(1, count):
        if jobs[i].submit_s <= jobs[i - 1].submit_s:
            jobs[i] = _at(jobs[i], round(jobs[i - 1].submit_s + 0.001, 3))
    size = f"n={n_jobs}" if n_jobs is not None else f"hours={hours:g}"
    return Trace(
        name=f"ai-factory-mixture({size}, jobs_per_hour={jobs_per_hour:g}, seed={seed})",
        source=None,
        jobs=tuple(jobs),
    )


def _draw(
    values: Sequence[_T], weights: Sequence[float], rng: np.random.Generator, n: int
) -> list[_T]:
    index = rng.choice(len(values), size=n, p=np.asarray(weights) / sum(weights))
    return [values[i] for i in index]


def _at(job: TraceJob, submit_s: float) -> TraceJob:
    return dataclasses.replace(job, submit_s=submit_s)

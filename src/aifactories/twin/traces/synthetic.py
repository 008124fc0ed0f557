"""The embedded default trace: a seeded generator written from published distributions.

:func:`generate_gavel_mixture` draws the Philly-fitted workload that Gavel's simulator uses
(Narayanan et al., OSDI'20; stanford-futuredata/gavel, ``scheduler/``), as summarised in the
shared gavel-throughputs/README.md:

- runtime: with probability 0.8, ``60 x 10^U(1.5, 3)`` seconds (31.6 to 1,000 minutes); with
  probability 0.2, ``60 x 10^U(3, 4)`` seconds (1,000 to 10,000 minutes);
- GPUs: 1, 2, 4 or 8 with probabilities 0.7, 0.1, 0.15, 0.05;
- arrivals: a Poisson process of ``jobs_per_hour`` (exponential inter-arrival times, mean
  ``3600 / jobs_per_hour`` seconds); the first job arrives after one such gap, not at 0. The
  workload is either a number of jobs or every job arriving within a number of hours (how
  the twin sizes it: a federation needs about a week of arrivals before its GPUs are in
  balance, the longest jobs run 10,000 minutes, whatever the number of jobs that makes).

Who submits is this project's assumption, not a published figure, and is stated here so a report
can quote it: the organisation kind follows :data:`KIND_MIX` (startup 0.2, SME 0.2, industry
0.2, academia 0.3, public 0.1) and the application domain :data:`DOMAIN_MIX`, independently of
each other and of the job's size. The kind is the job's ``group`` and both are in ``extra``
(``organisation_kind``, ``domain``).

Every draw comes from ``random.Random(seed).random()`` (Mersenne Twister, the same stream on
every platform) in a fixed order per job (gap, runtime branch, runtime exponent, GPUs, kind,
domain) and is transformed here rather than by ``expovariate`` or ``choices``, whose algorithms
Python does not promise to keep. Times are rounded to the millisecond, so a last-bit difference
between C libraries' ``log`` or ``pow`` cannot show: the same seed gives the same trace.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TypeVar

from aifactories.domain.errors import InvalidInput
from aifactories.domain.organisations import Domain, OrganisationKind
from aifactories.twin.traces.model import Trace, TraceJob

LONG_JOB_PROBABILITY = 0.2
SHORT_EXPONENT = (1.5, 3.0)
LONG_EXPONENT = (3.0, 4.0)
"""Runtime exponents: runtime = 60 x 10^U(low, high) seconds."""

GPU_MIX: tuple[tuple[int, float], ...] = ((1, 0.7), (2, 0.1), (4, 0.15), (8, 0.05))

KIND_MIX: tuple[tuple[OrganisationKind, float], ...] = (
    (OrganisationKind.STARTUP, 0.2),
    (OrganisationKind.SME, 0.2),
    (OrganisationKind.INDUSTRY, 0.2),
    (OrganisationKind.ACADEMIA, 0.3),
    (OrganisationKind.PUBLIC, 0.1),
)

DOMAIN_MIX: tuple[tuple[Domain, float], ...] = (
    (Domain.HEALTH, 0.15),
    (Domain.ENERGY, 0.08),
    (Domain.CLIMATE, 0.08),
    (Domain.MOBILITY, 0.06),
    (Domain.MANUFACTURING, 0.10),
    (Domain.AGRI_FOOD, 0.04),
    (Domain.SECURITY, 0.04),
    (Domain.PUBLIC_SECTOR, 0.05),
    (Domain.LANGUAGE, 0.12),
    (Domain.SCIENCE, 0.14),
    (Domain.FINANCE, 0.05),
    (Domain.MEDIA, 0.03),
    (Domain.EDUCATION, 0.03),
    (Domain.OTHER, 0.03),
)
"""An illustrative mix weighted towards the programme's critical domains (health, energy,
climate, mobility, manufacturing, agri-food, security, public sector: 60%)."""

_T = TypeVar("_T")


def generate_gavel_mixture(
    n_jobs: int | None,
    jobs_per_hour: float,
    seed: int,
    *,
    hours: float | None = None,
    kind_mix: Sequence[tuple[OrganisationKind, float]] = KIND_MIX,
    domain_mix: Sequence[tuple[Domain, float]] = DOMAIN_MIX,
) -> Trace:
    """Jobs of the Gavel/Philly mixture arriving at ``jobs_per_hour`` (see module): the first
    ``n_jobs``, or every job that arrives within ``hours`` (give exactly one).

    Both draw from one stream, so the jobs of ``hours`` are the first jobs of a long enough
    ``n_jobs`` with the same seed and rate."""
    if (n_jobs is None) == (hours is None):
        raise InvalidInput("generator", "give exactly one of n_jobs and hours")
    if n_jobs is not None and n_jobs < 0:
        raise InvalidInput("n_jobs", f"must be >= 0, got {n_jobs}")
    if hours is not None and not (math.isfinite(hours) and hours >= 0):
        raise InvalidInput("hours", f"must be >= 0, got {hours}")
    if not (math.isfinite(jobs_per_hour) and jobs_per_hour > 0):
        raise InvalidInput("jobs_per_hour", f"must be > 0, got {jobs_per_hour}")
    _check_mix("kind_mix", kind_mix)
    _check_mix("domain_mix", domain_mix)
    rng = random.Random(seed)
    mean_gap_s = 3600.0 / jobs_per_hour
    horizon_s = math.inf if hours is None else hours * 3600.0
    count = n_jobs if n_jobs is not None else math.ceil(hours * jobs_per_hour) if hours else 0
    # Ids as wide as the expected count, so they sort in arrival order as text too.
    width = max(6, len(str(count)))
    now = 0.0
    jobs: list[TraceJob] = []
    i = 0
    while n_jobs is None or i < n_jobs:
        # 1 - u lies in (0, 1], so the logarithm is finite.
        now += -math.log(1.0 - rng.random()) * mean_gap_s
        if round(now, 3) > horizon_s:
            break
        low, high = LONG_EXPONENT if rng.random() < LONG_JOB_PROBABILITY else SHORT_EXPONENT
        runtime_s = 60.0 * 10.0 ** (low + (high - low) * rng.random())
        gpus = _pick(GPU_MIX, rng.random())
        kind = _pick(kind_mix, rng.random())
        domain = _pick(domain_mix, rng.random())
        jobs.append(
            TraceJob(
                job_id=f"gavel-{i:0{width}d}",
                submit_s=round(now, 3),
                runtime_s=round(runtime_s, 3),
                gpus=gpus,
                group=kind.value,
                extra=(("domain", domain.value), ("organisation_kind", kind.value)),
            )
        )
        i += 1
    size = f"n={n_jobs}" if n_jobs is not None else f"hours={hours:g}"
    return Trace(
        name=f"gavel-mixture({size}, jobs_per_hour={jobs_per_hour:g}, seed={seed})",
        source=None,
        jobs=tuple(jobs),
    )


def _pick(mix: Sequence[tuple[_T, float]], u: float) -> _T:
    """The item whose cumulative-probability interval holds ``u`` in [0, 1)."""
    cumulative = 0.0
    for item, probability in mix:
        cumulative += probability
        if u < cumulative:
            return item
    # Rounding can leave the total a hair under 1; the last item takes the remainder.
    return mix[-1][0]


def _check_mix(field: str, mix: Sequence[tuple[object, float]]) -> None:
    if not mix:
        raise InvalidInput(field, "must list at least one item")
    if any(not (p >= 0) for _, p in mix):
        raise InvalidInput(field, "probabilities must be >= 0")
    total = math.fsum(p for _, p in mix)
    if abs(total - 1.0) > 1e-9:
        raise InvalidInput(field, f"probabilities must sum to 1, got {total:g}")

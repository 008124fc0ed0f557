"""What the federation delivered: GPU-hours, energy and carbon, in total and per site."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from aifactories.domain.units import SECONDS_PER_HOUR
from aifactories.twin.metrics.results import JobResult


@dataclass(frozen=True)
class Totals:
    """Sums over jobs: GPU-hours delivered, energy in kWh, carbon in kg CO2e, and restarts.

    GPU-hours are physical GPU time (``gpu_seconds / 3600``), not billing-weighted: they measure
    the work the sites did, the programme's "GPU-hours delivered" KPI.
    """

    jobs: int
    gpu_hours: float
    energy_kwh: float
    carbon_kg: float
    restarts: int


def totals(results: Iterable[JobResult]) -> Totals:
    """:class:`Totals` over every job of the run, finished or not (unfinished jobs used GPUs too).

    Sums use ``math.fsum`` so the result does not depend on the order of the jobs.
    """
    jobs = list(results)
    return Totals(
        jobs=len(jobs),
        gpu_hours=math.fsum(r.gpu_seconds for r in jobs) / SECONDS_PER_HOUR,
        energy_kwh=math.fsum(r.energy_kwh for r in jobs),
        carbon_kg=math.fsum(r.carbon_kg for r in jobs),
        restarts=sum(r.restarts for r in jobs),
    )


def totals_by_site(results: Iterable[JobResult]) -> dict[str, Totals]:
    """:class:`Totals` per site, sites sorted by id.

    A job with no site never ran, so it has nothing to attribute and is left out here (it still
    counts in :func:`totals`'s ``jobs``).
    """
    by_site: dict[str, list[JobResult]] = {}
    for r in results:
        if r.site_id is not None:
            by_site.setdefault(r.site_id, []).append(r)
    return {site: totals(by_site[site]) for site in sorted(by_site)}

"""Cluster utilisation and queue length, integrated from the run's samples as step functions.

A sample holds from its time until the next sample of the same site (or of the queue), and the
last one holds until the end of the horizon. Samples at the same time apply in the order given, so
the last one wins. Before a site's first sample the site is taken as idle with the capacity that
sample reports, and the queue as empty: the simulator records a change when one happens, and
nothing has happened yet. Samples before the horizon set the state it starts in; samples after it
are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from aifactories.twin.metrics.results import QueueSample, UtilisationSample
from aifactories.twin.metrics.stats import NAN


@dataclass(frozen=True)
class SiteUsage:
    """Busy and available GPU-seconds of one site over the horizon, and their ratio."""

    busy_gpu_seconds: float
    capacity_gpu_seconds: float

    @property
    def utilisation(self) -> float:
        """Busy over available GPU-seconds; NaN when the site had no capacity in the horizon."""
        if self.capacity_gpu_seconds <= 0:
            return NAN
        return self.busy_gpu_seconds / self.capacity_gpu_seconds


def site_usage(
    samples: Iterable[UtilisationSample], start_s: float, end_s: float
) -> dict[str, SiteUsage]:
    """Busy and available GPU-seconds per site over ``[start_s, end_s]``, sites sorted by id."""
    by_site: dict[str, list[tuple[float, int, int]]] = {}
    for time_s, site_id, busy, total in samples:
        by_site.setdefault(site_id, []).append((time_s, busy, total))
    usage: dict[str, SiteUsage] = {}
    for site_id in sorted(by_site):
        # A stable sort keeps same-time samples in the order the simulator wrote them.
        steps = sorted(by_site[site_id], key=lambda s: s[0])
        initial_total = float(steps[0][2])
        busy_s = _integrate([(t, float(b)) for t, b, _ in steps], 0.0, start_s, end_s)
        capacity_s = _integrate([(t, float(c)) for t, _, c in steps], initial_total, start_s, end_s)
        usage[site_id] = SiteUsage(busy_gpu_seconds=busy_s, capacity_gpu_seconds=capacity_s)
    return usage


def utilisation_by_site(
    samples: Iterable[UtilisationSample], start_s: float, end_s: float
) -> dict[str, float]:
    """Per site: busy GPU-seconds / available GPU-seconds over the horizon.

    With a constant number of GPUs the denominator is ``total GPUs x horizon``; a site whose
    capacity changes (outage, expansion) is measured against what it actually had.
    """
    return {site: use.utilisation for site, use in site_usage(samples, start_s, end_s).items()}


def utilisation(samples: Iterable[UtilisationSample], start_s: float, end_s: float) -> float:
    """Federation utilisation: all sites' busy GPU-seconds / all sites' available GPU-seconds.

    The GPU-weighted average of the sites' utilisation (allocated GPU time over capacity, the
    cluster efficiency figure of Philly, Jeon et al., ATC 2019, and of Gavel). NaN with no samples
    or an empty horizon.
    """
    usage = site_usage(samples, start_s, end_s).values()
    busy = math.fsum(u.busy_gpu_seconds for u in usage)
    capacity = math.fsum(u.capacity_gpu_seconds for u in usage)
    return busy / capacity if capacity > 0 else NAN


def mean_queue_length(samples: Iterable[QueueSample], start_s: float, end_s: float) -> float:
    """Time-average number of queued jobs over the horizon; NaN for an empty horizon."""
    if not end_s > start_s:
        return NAN
    steps = sorted(((t, float(q)) for t, q in samples), key=lambda s: s[0])
    return _integrate(steps, 0.0, start_s, end_s) / (end_s - start_s)


def max_queue_length(samples: Iterable[QueueSample], start_s: float, end_s: float) -> int:
    """Most jobs queued at once within ``[start_s, end_s)`` (0 with no samples).

    Only values that held for some time count: of several samples at one instant the last wins,
    as in the integrals.
    """
    at: dict[float, int] = {}
    for time_s, queued in samples:
        at[time_s] = queued  # a later sample at the same time replaces an earlier one
    opening = 0
    peak = 0
    for time_s in sorted(at):
        if time_s <= start_s:
            opening = at[time_s]  # the state the horizon opens with
        elif time_s < end_s:
            peak = max(peak, at[time_s])
    return max(peak, opening)


def _integrate(
    steps: list[tuple[float, float]], initial: float, start_s: float, end_s: float
) -> float:
    """Integral over ``[start_s, end_s]`` of the step function that is ``initial`` before the
    first step and takes each step's value from its time on; ``steps`` sorted by time."""
    if not end_s > start_s:
        return 0.0
    parts: list[float] = []
    value = initial
    cursor = start_s
    for time_s, new_value in steps:
        if time_s >= end_s:
            break
        if time_s > cursor:
            parts.append(value * (time_s - cursor))
            cursor = time_s
        value = new_value
    parts.append(value * (end_s - cursor))
    return math.fsum(parts)

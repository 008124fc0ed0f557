"""The policy's own cost: wall-clock time per scheduling cycle.

Gavel and Kueue report it because a policy that is fair but takes a minute per cycle cannot run a
federation that schedules every few seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aifactories.twin.metrics.stats import describe


@dataclass(frozen=True)
class CycleStats:
    """Number of cycles and their mean, median, 99th percentile and maximum, in milliseconds.

    NaN times when no cycle ran.
    """

    cycles: int
    mean_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float


def cycle_stats(cycle_runtimes_s: Iterable[float]) -> CycleStats:
    """:class:`CycleStats` of cycle wall times given in seconds (percentiles as in
    :func:`~aifactories.twin.metrics.stats.percentile`).

    These are the only wall-clock figures of a run, so unlike the others they vary between
    machines and runs; keep them out of byte-identical comparisons.
    """
    ms = [t * 1000.0 for t in cycle_runtimes_s]
    stats = describe(ms)
    return CycleStats(
        cycles=stats.count,
        mean_ms=stats.mean,
        p50_ms=stats.median,
        p99_ms=stats.p99,
        max_ms=stats.max,
    )

"""Metrics of a twin run, as the GPU-scheduling literature reports them.

Every function is pure and deterministic: it reads :class:`JobResult` records and samples of a
:class:`PolicyRun` and returns numbers. NaN means "not measurable" (no completed job, an empty
horizon), never "zero". Start from :func:`summarise` and :func:`compare`; the rest is the parts.
"""

from aifactories.twin.metrics.breakdowns import (
    GroupStats,
    by_country,
    by_domain,
    by_organisation_kind,
    group_stats,
)
from aifactories.twin.metrics.cycles import CycleStats, cycle_stats
from aifactories.twin.metrics.fairness import (
    FinishTimeFairness,
    finish_time_fairness,
    jain_index,
    mean_contention,
    per_share,
    project_gpu_seconds,
    project_mean_slowdown,
)
from aifactories.twin.metrics.jobs import (
    SLOWDOWN_TAU_S,
    Window,
    bounded_slowdown,
    completed,
    in_window,
    jct_stats,
    makespan,
    slowdown_stats,
    wait_stats,
)
from aifactories.twin.metrics.results import JobResult, PolicyRun, QueueSample, UtilisationSample
from aifactories.twin.metrics.stats import Stats, describe, mean, percentile
from aifactories.twin.metrics.summary import Row, Summary, compare, summarise
from aifactories.twin.metrics.totals import Totals, totals, totals_by_site
from aifactories.twin.metrics.utilisation import (
    SiteUsage,
    max_queue_length,
    mean_queue_length,
    site_usage,
    utilisation,
    utilisation_by_site,
)

__all__ = [
    "SLOWDOWN_TAU_S",
    "CycleStats",
    "FinishTimeFairness",
    "GroupStats",
    "JobResult",
    "PolicyRun",
    "QueueSample",
    "Row",
    "SiteUsage",
    "Stats",
    "Summary",
    "Totals",
    "UtilisationSample",
    "Window",
    "bounded_slowdown",
    "by_country",
    "by_domain",
    "by_organisation_kind",
    "compare",
    "completed",
    "cycle_stats",
    "describe",
    "finish_time_fairness",
    "group_stats",
    "in_window",
    "jain_index",
    "jct_stats",
    "makespan",
    "max_queue_length",
    "mean",
    "mean_contention",
    "mean_queue_length",
    "per_share",
    "percentile",
    "project_gpu_seconds",
    "project_mean_slowdown",
    "site_usage",
    "slowdown_stats",
    "summarise",
    "totals",
    "totals_by_site",
    "utilisation",
    "utilisation_by_site",
    "wait_stats",
]

"""One policy run in one row: the headline figures, and a table comparing policies."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aifactories.twin.metrics.breakdowns import (
    GroupStats,
    by_country,
    by_domain,
    by_organisation_kind,
)
from aifactories.twin.metrics.cycles import CycleStats, cycle_stats
from aifactories.twin.metrics.fairness import (
    FinishTimeFairness,
    finish_time_fairness,
    jain_index,
    per_share,
    project_gpu_seconds,
    project_mean_slowdown,
)
from aifactories.twin.metrics.jobs import (
    SLOWDOWN_TAU_S,
    Window,
    in_window,
    jct_stats,
    makespan,
    slowdown_stats,
    wait_stats,
)
from aifactories.twin.metrics.results import PolicyRun
from aifactories.twin.metrics.stats import NAN, Stats
from aifactories.twin.metrics.totals import Totals, totals, totals_by_site
from aifactories.twin.metrics.utilisation import (
    max_queue_length,
    mean_queue_length,
    utilisation,
    utilisation_by_site,
)

Row = dict[str, float | str]


@dataclass(frozen=True)
class Summary:
    """The headline figures of one run.

    Job figures (``jobs``, ``completed``, ``wait``, ``jct``, ``slowdown``, ``fairness``, Jain's
    indices, breakdowns) cover the jobs in ``window``; run figures (makespan, utilisation, queue,
    totals, cycles) cover the whole run, since the federation's state is not a per-job quantity;
    utilisation and queue length cover the ``horizon`` :func:`summarise` is given, if any.
    ``unfinished`` counts the jobs in the window that did not complete. NaN means "not
    measurable" (no completed job, empty horizon, no shares given).
    """

    policy: str
    window: Window | None
    jobs: int
    completed: int
    unfinished: int
    wait: Stats
    jct: Stats
    slowdown: Stats
    fairness: FinishTimeFairness
    jain_slowdown: float
    jain_share: float
    makespan_s: float
    utilisation: float
    utilisation_by_site: dict[str, float]
    mean_queue_length: float
    max_queue_length: int
    totals: Totals
    totals_by_site: dict[str, Totals]
    cycles: CycleStats
    by_organisation_kind: dict[str, GroupStats]
    by_domain: dict[str, GroupStats]
    by_country: dict[str, GroupStats]

    def as_row(self) -> Row:
        """The scalar figures as one row of a comparison table (times in seconds, cycle times
        in milliseconds), with one ``utilisation[site]`` column per site."""
        row: Row = {
            "policy": self.policy,
            "window": "all" if self.window is None else f"{self.window[0]}..{self.window[1]}",
            "jobs": self.jobs,
            "completed": self.completed,
            "unfinished": self.unfinished,
        }
        for name, stats in (("wait", self.wait), ("jct", self.jct), ("slowdown", self.slowdown)):
            row[f"{name}_mean"] = stats.mean
            row[f"{name}_median"] = stats.median
            row[f"{name}_p95"] = stats.p95
            row[f"{name}_p99"] = stats.p99
        row.update(
            {
                "ftf_worst": self.fairness.worst,
                "ftf_share_unfair": self.fairness.share_unfair,
                "jain_slowdown": self.jain_slowdown,
                "jain_share": self.jain_share,
                "makespan_s": self.makespan_s,
                "utilisation": self.utilisation,
                "mean_queue_length": self.mean_queue_length,
                "max_queue_length": self.max_queue_length,
                "gpu_hours": self.totals.gpu_hours,
                "energy_kwh": self.totals.energy_kwh,
                "carbon_kg": self.totals.carbon_kg,
                "restarts": self.totals.restarts,
                "cycles": self.cycles.cycles,
                "cycle_mean_ms": self.cycles.mean_ms,
                "cycle_p50_ms": self.cycles.p50_ms,
                "cycle_p99_ms": self.cycles.p99_ms,
                "cycle_max_ms": self.cycles.max_ms,
            }
        )
        for site, value in self.utilisation_by_site.items():
            row[f"utilisation[{site}]"] = value
        return row


def summarise(
    run: PolicyRun,
    window: Window | None = None,
    *,
    tau_s: float = SLOWDOWN_TAU_S,
    shares: Mapping[str, float] | None = None,
    horizon: tuple[float, float] | None = None,
) -> Summary:
    """The :class:`Summary` of ``run``, job figures restricted to ``window`` if given, and
    utilisation and queue figures to ``horizon`` (seconds) instead of the run's own.

    ``jain_slowdown`` is Jain's index over projects of their mean bounded slowdown: equal delay
    relative to service received, whatever each project asked for. ``jain_share`` is Jain's index
    of GPU-seconds received per unit of ``shares`` (e.g. allocated GPU-hours), over projects that
    have a share and submitted jobs; NaN when no shares are given.
    """
    results = run.results
    measured = in_window(results, window)
    done = sum(1 for r in measured if r.completed)
    start, end = horizon if horizon is not None else (run.horizon_start_s, run.horizon_end_s)
    if shares is None:
        jain_share = NAN
    else:
        jain_share = jain_index(per_share(project_gpu_seconds(results, window), shares).values())
    return Summary(
        policy=run.policy,
        window=window,
        jobs=len(measured),
        completed=done,
        unfinished=len(measured) - done,
        wait=wait_stats(results, window),
        jct=jct_stats(results, window),
        slowdown=slowdown_stats(results, window, tau_s),
        fairness=finish_time_fairness(results, window),
        jain_slowdown=jain_index(project_mean_slowdown(results, window, tau_s).values()),
        jain_share=jain_share,
        makespan_s=makespan(results),
        utilisation=utilisation(run.utilisation_samples, start, end),
        utilisation_by_site=utilisation_by_site(run.utilisation_samples, start, end),
        mean_queue_length=mean_queue_length(run.queue_samples, start, end),
        max_queue_length=max_queue_length(run.queue_samples, start, end),
        totals=totals(results),
        totals_by_site=totals_by_site(results),
        cycles=cycle_stats(run.cycle_runtimes_s),
        by_organisation_kind=by_organisation_kind(results, window, tau_s),
        by_domain=by_domain(results, window, tau_s),
        by_country=by_country(results, window, tau_s),
    )


def compare(
    runs: Iterable[PolicyRun],
    window: Window | None = None,
    *,
    tau_s: float = SLOWDOWN_TAU_S,
    shares: Mapping[str, float] | None = None,
) -> list[Row]:
    """One :meth:`Summary.as_row` per run, in the order given, all with the same columns.

    Runs over different sites get each other's ``utilisation[site]`` columns as NaN, so the rows
    print as one table.
    """
    rows = [summarise(run, window, tau_s=tau_s, shares=shares).as_row() for run in runs]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return [{c: row.get(c, math.nan) for c in columns} for row in rows]

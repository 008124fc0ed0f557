"""The steady-state window of a run: the warm-up and the drain left out, by a stated rule.

A run starts with an empty federation and, when arrivals stop, empties again. Figures taken
over the whole run mix these two transients with the state the federation settles into, and
on a large federation they are most of it (the generator's longest jobs run for a week, so
its GPUs take a week to fill). The rule (:data:`RULE`):

- **Drain:** everything after the last arrival is left out; the window ends there.
- **Warm-up:** MSER-5 (White, "An effective truncation heuristic for bias reduction in
  simulation output", Simulation 69(6), 1997; White, Cobb and Spratt, WSC 2000) applied to
  the GPUs that jobs in the system hold or wait for (submitted, not yet ended), as a
  fraction of the federation's GPUs: the arrival window cut into :data:`OBSERVATIONS` equal
  spans, each span's time average one observation, means of batches of 5; the truncation
  ``d`` minimises ``sum_{i>d} (Y_i - mean_d)^2 / (m - d)^2``. That series rises while the
  GPUs fill and is flat once they are in balance; when the queue keeps growing, it keeps
  rising.
- **No steady state:** the truncation is searched in the first half of the batches; when
  the best one is at the half-way mark (the series still rising: MSER's own sign that the
  run is too short or not stationary, White 1997), the run never settled. When no run
  settled, the figures are the whole run's, with a warning.

Policies are compared on one window: the latest warm-up among the runs that settled, so that
every policy is measured on the same jobs (those submitted in the window, as Gavel measures
jobs 4,000 to 5,000 of a stream, Narayanan et al., OSDI 2020). A bottleneck (the busiest
site in the window) under :data:`BOTTLENECK_MIN` busy means the policies hardly compete for
anything, which is said too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aifactories.twin.metrics.results import PolicyRun
from aifactories.twin.metrics.summary import Row, summarise
from aifactories.twin.metrics.utilisation import utilisation_by_site
from aifactories.twin.policy_titles import policy_title

OBSERVATIONS = 500
BATCH = 5
BOTTLENECK_MIN = 0.30

RULE = (
    "steady state: the jobs submitted after the warm-up (MSER-5 truncation, White 1997) "
    "and before the drain (the last arrival)"
)


@dataclass(frozen=True)
class Truncation:
    """Where one run's warm-up ends, from MSER-5 over its arrival window."""

    arrivals_start_s: float
    arrivals_end_s: float
    warm_up_end_s: float
    steady: bool  # False: the best truncation is in the second half (never settled)


def occupancy(run: PolicyRun, start_s: float, end_s: float, count: int) -> list[float]:
    """The time average, over each of ``count`` equal spans of ``[start_s, end_s]``, of the
    GPUs held or waited for by the jobs in the system (submitted, not ended), as a fraction
    of the federation's GPUs. A job that never ended stays in the system."""
    if not end_s > start_s or count < 1:
        return []
    capacity = _capacity(run)
    width = (end_s - start_s) / count
    events: list[tuple[float, int]] = []
    for job in run.results:
        events.append((job.submit_s, job.gpus))
        if job.end_s is not None:
            events.append((job.end_s, -job.gpus))
    events.sort()
    # One sweep over the events and the span edges: the level (GPUs in the system) is a step
    # function, each span gets its integral.
    gpu_seconds = [0.0] * count
    level = 0
    cursor, span = start_s, 0
    for time_s, delta in events:
        if time_s > cursor:
            stop = min(time_s, end_s)
            while span < count and cursor < stop:
                edge = min(start_s + (span + 1) * width, stop)
                gpu_seconds[span] += level * (edge - cursor)
                cursor = edge
                if edge >= start_s + (span + 1) * width:
                    span += 1
            if time_s >= end_s:
                break
        level += delta
    while span < count:
        edge = start_s + (span + 1) * width
        gpu_seconds[span] += level * (edge - cursor)
        cursor, span = edge, span + 1
    scale = capacity * width if capacity > 0 else math.inf
    return [value / scale for value in gpu_seconds]


def _capacity(run: PolicyRun) -> int:
    """The federation's GPUs: each site's largest size in the run (an outage does not shrink
    the yardstick, so a site down shows as demand it cannot serve)."""
    largest: dict[str, int] = {}
    for _time_s, site, _busy, total in run.utilisation_samples:
        largest[site] = max(largest.get(site, 0), total)
    return sum(largest.values())


def mser(series: Sequence[float], batch: int = BATCH) -> tuple[int, bool]:
    """MSER-``batch``: the number of leading observations to drop, and whether the run
    settled.

    The search covers the first half of the batches only: over the second half the statistic
    falls for want of data (few batches left, whatever they hold), and a truncation there is
    MSER's own sign that the run is too short or never settles (White 1997). A best cut on
    the half-way boundary, as a rising series gives, counts as not settled; so does a series
    too short for four batches."""
    batches = len(series) // batch
    if batches < 4:
        return 0, False
    means = [math.fsum(series[i * batch : (i + 1) * batch]) / batch for i in range(batches)]
    # Sums from the end, so each truncation costs O(1): sum and sum of squares of the rest.
    tail = [(0.0, 0.0)] * (batches + 1)
    for i in range(batches - 1, -1, -1):
        total, squares = tail[i + 1]
        tail[i] = (total + means[i], squares + means[i] * means[i])
    half = batches // 2
    best, best_d = math.inf, 0
    for d in range(half + 1):
        rest = batches - d
        total, squares = tail[d]
        statistic = max(0.0, squares - total * total / rest) / (rest * rest)
        if statistic < best * (1 - 1e-12):  # ties keep the earlier cut
            best, best_d = statistic, d
    return best_d * batch, best_d < half


def truncation(run: PolicyRun, observations: int = OBSERVATIONS) -> Truncation | None:
    """The warm-up of ``run`` by MSER-5 over its arrival window; None with under two jobs or
    all jobs arriving at once (no window to look at)."""
    submits = [job.submit_s for job in run.results]
    if len(submits) < 2 or not max(submits) > min(submits):
        return None
    start, end = min(submits), max(submits)
    drop, steady = mser(occupancy(run, start, end, observations))
    warm_up_end = start + (end - start) * drop / observations
    return Truncation(start, end, warm_up_end, steady)


@dataclass(frozen=True)
class SteadyWindow:
    """The window every policy is measured on, and how each run fared."""

    start_s: float
    end_s: float
    first_rank: int
    stop_rank: int
    settled: dict[str, bool]  # per policy: did its run reach a steady state


def common_window(runs: Sequence[PolicyRun]) -> SteadyWindow | None:
    """The latest warm-up end among the runs that settled, to the last arrival; None when no
    run settled (then only whole-run figures mean anything)."""
    cuts = {run.policy: truncation(run) for run in runs}
    settled = {policy: cut is not None and cut.steady for policy, cut in cuts.items()}
    steady = [cut for cut in cuts.values() if cut is not None and cut.steady]
    if not steady:
        return None
    start = max(cut.warm_up_end_s for cut in steady)
    end = max(cut.arrivals_end_s for cut in steady)
    submits = sorted(job.submit_s for job in runs[0].results)
    # Ranks in submission order, as metrics.jobs.in_window counts them: the jobs in [start, end].
    first = sum(1 for s in submits if s < start)
    stop = sum(1 for s in submits if s <= end)
    return SteadyWindow(start, end, first, stop, settled)


def bottleneck(run: PolicyRun, start_s: float, end_s: float) -> tuple[str, float]:
    """The busiest site over ``[start_s, end_s]`` and its utilisation ('' and NaN with none)."""
    by_site = {
        site: value
        for site, value in utilisation_by_site(run.utilisation_samples, start_s, end_s).items()
        if not math.isnan(value)
    }
    if not by_site:
        return "", math.nan
    site = max(by_site, key=lambda s: (by_site[s], s))
    return site, by_site[site]


def steady_rows(runs: Sequence[PolicyRun]) -> list[Row]:
    """One row per run, as :func:`~aifactories.twin.metrics.summary.compare` gives, over the
    common steady-state window (whole run when none), with the window and its checks:
    ``scope`` ('steady state' or 'whole run'), ``steady`` (1 if that run settled),
    ``window_start_h``, ``window_end_h``, ``bottleneck`` and ``bottleneck_utilisation``."""
    window = common_window(runs)
    rows: list[Row] = []
    for run in runs:
        if window is None:
            start, end = run.horizon_start_s, run.horizon_end_s
            summary = summarise(run)
            scope, steady = "whole run", 0
        else:
            start, end = window.start_s, window.end_s
            summary = summarise(run, (window.first_rank, window.stop_rank), horizon=(start, end))
            scope, steady = "steady state", int(window.settled[run.policy])
        site, busy = bottleneck(run, start, end)
        row: Row = {"policy": run.policy, "scope": scope, "steady": steady}
        row.update(summary.as_row())
        row.update(
            {
                "window_start_h": start / 3600,
                "window_end_h": end / 3600,
                "bottleneck": site,
                "bottleneck_utilisation": busy,
            }
        )
        rows.append(row)
    return _same_columns(rows)


def warnings(rows: Iterable[Row]) -> list[str]:
    """What a reader must know before trusting the rows' figures, one sentence each."""
    said: list[str] = []
    for row in rows:
        policy = policy_title(str(row.get("policy")))
        if row.get("scope") == "whole run":
            said.append(
                f"{policy}: no steady state (the GPUs in demand never level off): the figures "
                "are the whole run's, warm-up and drain included; give a longer arrival "
                "window (--hours) or a load the federation can serve (--load)"
            )
        elif row.get("steady") == 0:
            said.append(
                f"{policy}: never reached a steady state (its queue keeps growing): its "
                "figures depend on how long the run is; lower --load"
            )
        busy = row.get("bottleneck_utilisation")
        if isinstance(busy, float) and busy < BOTTLENECK_MIN:
            said.append(
                f"{policy}: the busiest site ({row.get('bottleneck')}) is only {busy:.0%} busy, "
                f"under {BOTTLENECK_MIN:.0%}: the policies hardly compete; raise --load"
            )
    return said


def _same_columns(rows: list[Row]) -> list[Row]:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return [{c: row.get(c, math.nan) for c in columns} for row in rows]

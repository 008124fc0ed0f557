"""Per-job time metrics: completion time, wait, bounded slowdown, makespan, and the measurement
window that restricts them to a steady state.

All job statistics are taken over *completed* jobs (started and ended within the run). Jobs left
unfinished when the run stops are counted separately (see ``Summary.unfinished``): including them
with a made-up end would bias every policy towards whatever that end was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aifactories.domain.errors import InvalidInput
from aifactories.twin.metrics.results import JobResult
from aifactories.twin.metrics.stats import NAN, Stats, describe

Window = tuple[int, int]
"""``(first, stop)``: the jobs ranked ``first <= rank < stop`` in submission order (0-based)."""

SLOWDOWN_TAU_S = 10.0
"""The bound of bounded slowdown: jobs shorter than this count as if they ran this long."""


def in_window(results: Iterable[JobResult], window: Window | None) -> list[JobResult]:
    """The jobs whose submission rank lies in ``window``; all jobs, in submission order, if None.

    Ranks follow ``(submit_s, job_id)``, so ties break the same way whatever order the simulator
    listed the results in. The window is half-open like a Python slice: ``(4000, 5000)`` is the
    thousand jobs from the 4001st submitted, the steady-state window Gavel measures (Narayanan et
    al., OSDI 2020, sec. 7). A window that reaches past the last job is cut to the jobs there are.
    """
    ordered = sorted(results, key=lambda r: (r.submit_s, r.job_id))
    if window is None:
        return ordered
    first, stop = window
    if first < 0 or stop < first:
        raise InvalidInput("window", f"need 0 <= first <= stop, got {window}")
    return ordered[first:stop]


def completed(results: Iterable[JobResult]) -> list[JobResult]:
    """The jobs that started and ended within the run, in the order given."""
    return [r for r in results if r.completed]


def jct_stats(results: Iterable[JobResult], window: Window | None = None) -> Stats:
    """Job completion time ``JCT = end - submit`` over the completed jobs (in ``window``).

    JCT, also called response or turnaround time, is the headline metric of Tiresias (Gu et al.,
    NSDI 2019) and Gavel; the tails (p95, p99) show what the mean hides.
    """
    return describe(_jct(r) for r in completed(in_window(results, window)))


def wait_stats(results: Iterable[JobResult], window: Window | None = None) -> Stats:
    """Queueing delay ``wait = start - submit`` over the completed jobs (in ``window``)."""
    return describe(_start(r) - r.submit_s for r in completed(in_window(results, window)))


def bounded_slowdown(job: JobResult, tau_s: float = SLOWDOWN_TAU_S) -> float:
    """``max(1, (end - submit) / max(run, tau))`` for a completed job (Feitelson et al., "Theory
    and practice in parallel job scheduling", JSSPP 1997; Feitelson, "Metrics for parallel job
    scheduling and their convergence", JSSPP 2001).

    ``run`` is ``runtime_s``, the time the job actually ran: slowdown measures the delay a user
    sees relative to the service received. The numerator is the response time ``end - submit``,
    which is ``wait + run`` for a job that ran uninterrupted and also counts the time lost to
    restarts for one that did not. ``tau`` (10 s by convention) keeps a job of a few seconds
    that waited a minute from dominating the mean with a slowdown in the tens.
    """
    if not tau_s > 0:
        raise InvalidInput("tau_s", f"must be a positive number of seconds, got {tau_s}")
    return max(1.0, _jct(job) / max(job.runtime_s, tau_s))


def slowdown_stats(
    results: Iterable[JobResult], window: Window | None = None, tau_s: float = SLOWDOWN_TAU_S
) -> Stats:
    """:func:`bounded_slowdown` over the completed jobs (in ``window``)."""
    return describe(bounded_slowdown(r, tau_s) for r in completed(in_window(results, window)))


def makespan(results: Sequence[JobResult]) -> float:
    """Last end minus first submission, over the whole run; NaN if no job completed.

    If some jobs did not complete the figure is a lower bound of the true makespan; read it with
    the number of unfinished jobs beside it.
    """
    ends = [r.end_s for r in results if r.end_s is not None and r.start_s is not None]
    if not ends:
        return NAN
    return max(ends) - min(r.submit_s for r in results)


def _start(job: JobResult) -> float:
    # Callers pass completed jobs only; the check narrows the type for mypy and guards misuse.
    if job.start_s is None:
        raise InvalidInput("start_s", f"job {job.job_id} did not start")
    return job.start_s


def _jct(job: JobResult) -> float:
    if job.end_s is None or job.start_s is None:
        raise InvalidInput("end_s", f"job {job.job_id} did not complete")
    return job.end_s - job.submit_s

"""Fairness: finish-time fairness per job (Themis, Gavel) and Jain's index over projects."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from aifactories.domain.errors import InvalidInput
from aifactories.twin.metrics.jobs import SLOWDOWN_TAU_S, Window, bounded_slowdown, in_window
from aifactories.twin.metrics.results import JobResult
from aifactories.twin.metrics.stats import NAN, mean


@dataclass(frozen=True)
class FinishTimeFairness:
    """Finish-time fairness ``rho`` of each measured job, and the two figures papers report.

    ``rho`` maps job id to rho, in submission order. ``worst`` is the largest rho and
    ``share_unfair`` the fraction of measured jobs with rho > 1 (finished later than on their
    fair share); both NaN when no job could be measured.
    """

    rho: dict[str, float]
    worst: float
    share_unfair: float


def mean_contention(results: Sequence[JobResult]) -> dict[str, float]:
    """For each completed job, the time-average number of jobs in the system over its lifetime.

    A job is in the system from its submission to its end (for ever, if it did not end), whether
    queued or running; the job itself counts, so the average is at least 1. This is the
    ``N_avg`` of Themis (Mahajan et al., NSDI 2020, sec. 3). A job of zero lifetime gets 1.
    """
    deltas: dict[float, int] = {}
    for r in results:
        deltas[r.submit_s] = deltas.get(r.submit_s, 0) + 1
        if r.end_s is not None:
            deltas[r.end_s] = deltas.get(r.end_s, 0) - 1
    times = sorted(deltas)
    # The count is a step function, so its integral from the first event is piecewise linear,
    # known exactly at every event time; each job's lifetime starts and ends on event times.
    integral = [0.0]
    in_system = 0
    for before, after in pairwise(times):
        in_system += deltas[before]
        integral.append(integral[-1] + in_system * (after - before))
    contention: dict[str, float] = {}
    for r in results:
        if r.start_s is None or r.end_s is None:
            continue
        lifetime = r.end_s - r.submit_s
        if lifetime <= 0:
            contention[r.job_id] = 1.0
            continue
        area = integral[bisect_left(times, r.end_s)] - integral[bisect_left(times, r.submit_s)]
        contention[r.job_id] = area / lifetime
    return contention


def finish_time_fairness(
    results: Sequence[JobResult],
    window: Window | None = None,
    isolated_jct: Mapping[str, float] | None = None,
) -> FinishTimeFairness:
    """``rho_j = JCT_shared / JCT_isolated`` over the completed jobs (in ``window``).

    The finish-time fairness of Themis (Mahajan et al., NSDI 2020) that Gavel optimises
    (Narayanan et al., OSDI 2020): a job is treated fairly if it finishes no later than it would
    have on its own 1/N share of the federation, so rho <= 1 is fair.

    Unless ``isolated_jct`` gives each measured job's isolated completion time, it is Themis's
    ``T_isolated = T_alone x N_avg``: ``T_alone`` is ``requested_runtime_s`` (the run time at
    reference speed) and ``N_avg`` is :func:`mean_contention`, computed over all jobs of the run,
    not only those in the window. This assumes a job alone would run N times slower on 1/N of the
    federation; for a job much smaller than its share that is generous, so read low rho with that
    in mind. Jobs with no positive isolated time cannot be measured and are left out.
    """
    measured = [r for r in in_window(results, window) if r.completed]
    if isolated_jct is not None:
        missing = [r.job_id for r in measured if r.job_id not in isolated_jct]
        if missing:
            raise InvalidInput(
                "isolated_jct",
                f"no isolated completion time for {len(missing)} jobs: {missing[:5]}",
            )
        isolated = {r.job_id: isolated_jct[r.job_id] for r in measured}
    else:
        contention = mean_contention(results)
        isolated = {r.job_id: r.requested_runtime_s * contention[r.job_id] for r in measured}
    rho: dict[str, float] = {}
    for r in measured:
        jct = r.jct_s
        if jct is not None and isolated[r.job_id] > 0:
            rho[r.job_id] = jct / isolated[r.job_id]
    if not rho:
        return FinishTimeFairness(rho={}, worst=NAN, share_unfair=NAN)
    values = list(rho.values())
    return FinishTimeFairness(
        rho=rho,
        worst=max(values),
        share_unfair=sum(1 for v in values if v > 1.0) / len(values),
    )


def jain_index(values: Iterable[float]) -> float:
    """Jain's fairness index ``J = (sum x)^2 / (n * sum x^2)`` of non-negative amounts.

    Jain, Chiu and Hawe, "A quantitative measure of fairness and discrimination for resource
    allocation in shared computer systems", DEC-TR-301, 1984. ``J`` is 1 when all ``x`` are equal
    and ``1/n`` when one party gets everything. NaN for no values, or when all are 0 (nobody
    received anything, so equality is undefined rather than perfect).
    """
    items = list(values)
    if any(x < 0 or math.isnan(x) for x in items):
        raise InvalidInput("values", "Jain's index needs non-negative numbers")
    squares = math.fsum(x * x for x in items)
    if not items or squares == 0:
        return NAN
    return math.fsum(items) ** 2 / (len(items) * squares)


def project_gpu_seconds(
    results: Iterable[JobResult], window: Window | None = None
) -> dict[str, float]:
    """GPU-seconds each project received (all its jobs, finished or not), projects sorted."""
    totals: dict[str, list[float]] = {}
    for r in in_window(results, window):
        totals.setdefault(r.project, []).append(r.gpu_seconds)
    return {p: math.fsum(totals[p]) for p in sorted(totals)}


def project_mean_slowdown(
    results: Iterable[JobResult], window: Window | None = None, tau_s: float = SLOWDOWN_TAU_S
) -> dict[str, float]:
    """Mean bounded slowdown of each project's completed jobs; projects with none are left out."""
    by_project: dict[str, list[float]] = {}
    for r in in_window(results, window):
        if r.completed:
            by_project.setdefault(r.project, []).append(bounded_slowdown(r, tau_s))
    return {p: mean(by_project[p]) for p in sorted(by_project)}


def per_share(received: Mapping[str, float], shares: Mapping[str, float]) -> dict[str, float]:
    """Each project's amount divided by its share, over projects present in both mappings.

    A project with no jobs in the run asked for nothing, so its absence from ``received`` must
    not read as unfairness; a project that asked and got nothing appears with 0 and does.
    """
    bad = sorted(p for p, s in shares.items() if not s > 0)
    if bad:
        raise InvalidInput("shares", f"shares must be positive: {bad[:5]}")
    return {p: received[p] / shares[p] for p in sorted(received) if p in shares}

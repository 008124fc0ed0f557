"""Job statistics broken down by who ran them: organisation kind, domain, home country.

The programme must show that priority for industry and critical domains is visible and does not
starve anyone; these tables are where that shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aifactories.twin.metrics.jobs import SLOWDOWN_TAU_S, Window, bounded_slowdown, in_window
from aifactories.twin.metrics.results import JobResult
from aifactories.twin.metrics.stats import Stats, describe


@dataclass(frozen=True)
class GroupStats:
    """One group's job count, completed count, and wait, JCT and bounded-slowdown statistics
    (over its completed jobs; NaN statistics when none completed)."""

    jobs: int
    completed: int
    wait: Stats
    jct: Stats
    slowdown: Stats


def group_stats(
    results: Iterable[JobResult],
    key: Callable[[JobResult], str],
    window: Window | None = None,
    tau_s: float = SLOWDOWN_TAU_S,
) -> dict[str, GroupStats]:
    """:class:`GroupStats` per value of ``key``, groups sorted by name.

    Only groups with at least one job (in ``window``) appear: an absent group had no demand.
    """
    groups: dict[str, list[JobResult]] = {}
    for r in in_window(results, window):
        groups.setdefault(key(r), []).append(r)
    return {name: _stats(groups[name], tau_s) for name in sorted(groups)}


def by_organisation_kind(
    results: Iterable[JobResult], window: Window | None = None, tau_s: float = SLOWDOWN_TAU_S
) -> dict[str, GroupStats]:
    """:func:`group_stats` by ``organisation_kind`` (startup, SME, industry, academia, public)."""
    return group_stats(results, lambda r: r.organisation_kind, window, tau_s)


def by_domain(
    results: Iterable[JobResult], window: Window | None = None, tau_s: float = SLOWDOWN_TAU_S
) -> dict[str, GroupStats]:
    """:func:`group_stats` by application ``domain`` (health, energy, climate, ...)."""
    return group_stats(results, lambda r: r.domain, window, tau_s)


def by_country(
    results: Iterable[JobResult], window: Window | None = None, tau_s: float = SLOWDOWN_TAU_S
) -> dict[str, GroupStats]:
    """:func:`group_stats` by the project's home ``country``."""
    return group_stats(results, lambda r: r.country, window, tau_s)


def _stats(jobs: list[JobResult], tau_s: float) -> GroupStats:
    done = [r for r in jobs if r.completed]
    return GroupStats(
        jobs=len(jobs),
        completed=len(done),
        wait=describe(r.wait_s for r in done if r.wait_s is not None),
        jct=describe(r.jct_s for r in done if r.jct_s is not None),
        slowdown=describe(bounded_slowdown(r, tau_s) for r in done),
    )

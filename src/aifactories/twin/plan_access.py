"""Time to access per access mode in the plan check: a job's access mode, its mode's time
from submission to decision, and the job's wait in the twin.

The twin simulates no calls and no reviews, so a mode's decision is one stated figure
(:class:`DecisionTime`) added to what the twin measures: time to access = the mode's decision
time + the wait of a project's first job. The pure part takes the decision times it is given;
by default the published targets (:func:`published_decision_times`); the service may pass the
programme's own medians, measured in its books (services/fund/plan_decisions.py).

**Every job stands for a project's first job.** The demand's projects (40 per organisation
kind, trace groups) are streams of work that stand for the programme's many projects: each
submits its first job within the period's first hours, on an empty federation, so their own
first jobs wait next to nothing whatever the plan (that figure is ``first_wait_h``, by kind).
A project that gets access later in the year meets the federation as any job arriving then
does, so the twin reads each job as the first job of a project arriving at its submission:
its time to access is its mode's decision time + its wait.

**A job's mode** (:func:`job_modes`), a stated rule, deterministic for a trace and a seed:

1. Its size is its work in A100-hours (GPUs x run time at reference speed), divided by the
   trace's ``size_factor`` (a job made larger for scale stands for that many of the
   mixture's jobs).
2. Its mode is the smallest of Playground, Fast Lane and Large Scale whose largest grant
   (programme/access_modes.yaml: 2,000, 50,000 and 5,000,000 GPU-hours) holds it: a project
   cannot have asked less than its first job needs. A lower bound, as the twin's jobs carry no
   request.
3. A job of an academic or public organisation not in Playground and within AI for Science's
   bounds goes to AI for Science for half of such jobs, picked by a seeded hash of its id (AI
   for Science is peer-reviewed research; the programme publishes no split between it and
   the other modes for research, so one half is this module's assumption).

Education is left out: it is for courses, which the twin's demand does not hold. A job that
never started is a project of its mode with no access (``no_access``).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aifactories.domain.errors import InvalidInput
from aifactories.domain.organisations import OrganisationKind
from aifactories.domain.units import SECONDS_PER_HOUR
from aifactories.programme.modes import AccessMode, mode_defaults
from aifactories.twin.metrics.results import JobResult
from aifactories.twin.metrics.stats import percentile
from aifactories.twin.traces.model import Trace

TWIN_MODES: tuple[AccessMode, ...] = (
    AccessMode.PLAYGROUND,
    AccessMode.FAST_LANE,
    AccessMode.LARGE_SCALE,
    AccessMode.AI_FOR_SCIENCE,
)
# Grants bound these three by size, smallest first; AI for Science overlaps them.
_BY_SIZE = (AccessMode.PLAYGROUND, AccessMode.FAST_LANE, AccessMode.LARGE_SCALE)
SCIENCE_KINDS = frozenset({OrganisationKind.ACADEMIA.value, OrganisationKind.PUBLIC.value})
SCIENCE_SHARE = 0.5  # assumption: see rule 3 of the module
# A target in working days, as calendar time: five working days a week of seven.
CALENDAR_DAYS_PER_WORKING_DAY = 7 / 5


@dataclass(frozen=True)
class DecisionTime:
    """A mode's time from submission to decision and where the figure comes from."""

    hours: float
    basis: str


@dataclass(frozen=True)
class AccessTime:
    """One mode's time to access (hours): decision + first-job wait, over its jobs."""

    jobs: int  # started jobs of the mode (each a project's first job)
    no_access: int  # jobs of the mode that never started
    decision_h: float
    median_h: float  # NaN when no project of the mode got access
    p90_h: float


def published_decision_times() -> dict[str, DecisionTime]:
    """Each mode's target (programme/access_modes.yaml, ``target_working_days``) as calendar
    hours: the published access-mode targets (about 2, 4 and 10 working days for Playground,
    Fast Lane and Large Scale); AI for Science has none published, so the file's peer-review
    figure, as Large Scale's."""
    times = {}
    for mode in TWIN_MODES:
        days = mode_defaults(mode).target_working_days
        what = "published target" if mode in _BY_SIZE else "no published target: the file's"
        times[mode.value] = DecisionTime(
            days * CALENDAR_DAYS_PER_WORKING_DAY * 24.0,
            f"{what} {days} working days (access_modes.yaml) x 7/5 calendar days",
        )
    return times


def check_decision_times(times: Mapping[str, DecisionTime]) -> None:
    """Every mode of the twin has a finite, non-negative decision time."""
    for mode in TWIN_MODES:
        found = times.get(mode.value)
        if found is None:
            raise InvalidInput(
                "decision_times",
                f"no decision time for {mode.value}",
                limit=", ".join(m.value for m in TWIN_MODES),
            )
        if not 0.0 <= found.hours < float("inf"):
            raise InvalidInput(
                "decision_times", f"{mode.value}: {found.hours} h", limit="0 or more hours"
            )


def job_modes(
    trace: Trace, kinds: Mapping[str, str], seed: int, size_factor: int = 1
) -> dict[str, str]:
    """Each job's access mode (see the module's rule); ``kinds`` maps a job's group (its
    project) to its organisation kind."""
    bounds = {mode: mode_defaults(mode) for mode in TWIN_MODES}
    science = bounds[AccessMode.AI_FOR_SCIENCE]
    modes = {}
    for job in trace.jobs:
        hours = job.gpus * job.runtime_s / SECONDS_PER_HOUR / size_factor
        mode = next(
            (m for m in _BY_SIZE if hours <= bounds[m].max_gpu_hours), AccessMode.LARGE_SCALE
        )
        if (
            mode is not AccessMode.PLAYGROUND
            and kinds.get(job.group or "default") in SCIENCE_KINDS
            and science.min_gpu_hours <= hours <= science.max_gpu_hours
            and _draw(f"science:{job.job_id}", seed) < SCIENCE_SHARE
        ):
            mode = AccessMode.AI_FOR_SCIENCE
        modes[job.job_id] = mode.value
    return modes


def time_to_access(
    results: Iterable[JobResult],
    modes: Mapping[str, str],
    decisions: Mapping[str, DecisionTime],
) -> dict[str, AccessTime]:
    """Per mode of the twin: its decision time + the wait of each of its jobs (each a
    project's first job), median and 90th percentile."""
    waits: dict[str, list[float]] = defaultdict(list)
    no_access: dict[str, int] = defaultdict(int)
    for r in results:
        mode = modes[r.job_id]
        if r.start_s is None:
            no_access[mode] += 1
        else:
            waits[mode].append((r.start_s - r.submit_s) / SECONDS_PER_HOUR)
    out = {}
    for mode in TWIN_MODES:
        decision = decisions[mode.value].hours
        total = [decision + w for w in waits[mode.value]]
        out[mode.value] = AccessTime(
            jobs=len(total),
            no_access=no_access[mode.value],
            decision_h=decision,
            median_h=percentile(total, 50.0),
            p90_h=percentile(total, 90.0),
        )
    return out


def mode_counts(modes: Mapping[str, str]) -> dict[str, int]:
    """How many jobs each mode of the twin has."""
    counts = dict.fromkeys((m.value for m in TWIN_MODES), 0)
    for mode in modes.values():
        counts[mode] += 1
    return counts


def mode_titles() -> dict[str, str]:
    """Each mode's title as the programme shows it (Playground, Fast Lane, ...)."""
    return {m.value: mode_defaults(m).title for m in TWIN_MODES}


def _draw(key: str, seed: int) -> float:
    """A number in [0, 1) from a hash of the seed and ``key``: the same on every platform."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64

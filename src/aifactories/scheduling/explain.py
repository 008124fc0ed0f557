"""Turn the decision loop's notes into wait reasons, after all decisions of the cycle.

Reasons are written from the final working state. That state only ever shrank during the
cycle, so whatever kept a job out when it was decided still keeps it out. Whatever does not
depend on the job's project (capacity text, expected start per partition) is computed once
per requirement key (:class:`~aifactories.scheduling.working.Entry`); per job there is one
budget test per partition it could start on, usually one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from aifactories.domain.ids import JobId
from aifactories.domain.jobs import PendingJob
from aifactories.scheduling.estimate import Releases
from aifactories.scheduling.reasons import budget_text, capacity_text, format_in, held_text
from aifactories.scheduling.snapshot import Wait
from aifactories.scheduling.working import Budgets, Entry, Failure, Hold, Note, Option, View

_DECLINED = "the policy left it pending although a partition can take it now"
_NOT_TESTED = (
    "not considered this cycle: the policy tests only its first jobs per cycle "
    "(bf_max_job_test), in priority order"
)
_UNKNOWN_END = (
    "; no start can be estimated: the GPUs it needs are held by jobs whose end is unknown"
)


def explain_waits(
    failed: Sequence[Failure],
    reserved: Mapping[JobId, Hold],
    blocked_by: PendingJob | None,
    budgets: Budgets,
    releases: Releases,
    now: float,
) -> list[Wait]:
    """One :class:`Wait` per job the loop could not place, in decision order."""
    waits: list[Wait] = []
    append = waits.append
    orders_of, known_orders = budgets.orders, budgets.known_orders
    left, ceil, covers = budgets.left, math.ceil, budgets.covers
    held: dict[tuple[JobId, int], str] = {}
    for job, entry, note, hold in failed:
        if entry.never is not None:
            append(Wait(job.id, entry.never))
            continue
        if note is Note.HELD and hold is not None:  # one text per hold and time limit
            limit = job.spec.time_limit_s
            text = held.get((hold.job_id, limit))
            if text is None:
                text = held[hold.job_id, limit] = held_text(
                    hold.slot.id, hold.job_id, hold.start - now, limit
                )
            own = reserved.get(job.id)
            append(Wait(job.id, text) if own is None else _reserved(job, entry, own, now))
            continue
        if note is Note.BEHIND and blocked_by is not None:
            append(Wait(job.id, _behind(blocked_by)))
            continue
        if note is Note.NOT_TESTED:
            append(Wait(job.id, _NOT_TESTED))
            continue
        own = reserved.get(job.id)
        if own is not None:
            append(_reserved(job, entry, own, now))
            continue
        if note is not Note.NO_CANDIDATE:
            append(Wait(job.id, _DECLINED))
            continue
        project = job.project_id
        # Only partitions at sites where the project holds an allocation can explain the
        # wait; projects covering the same sites (most: all of them) share one view.
        cover = covers(project)
        view = entry.views.get(cover)
        if view is None:
            options = entry.options
            if cover is not None:
                options = tuple(o for o in options if o.slot.site_id in cover)
            view = entry.views[cover] = View(options)
        if not view.options:
            if view.capacity is None:  # here: the sites that would do, for the reason
                view.capacity = _sites(entry)
            append(
                Wait(
                    job.id,
                    f"budget: project {project} has no open allocation usable at "
                    f"{view.capacity} now",
                )
            )
            continue
        time_limit = job.spec.time_limit_s
        if view.room:  # there is capacity where it could pay, so the budget refused it
            option = view.room[0]
            need = ceil(option.gpus * time_limit * option.slot.bw)
            append(Wait(job.id, budget_text(project, option.slot, need, budgets)))
            continue
        cap = view.capacity
        if cap is None:
            cap = view.capacity = capacity_text(job.spec, view.options)
        orders = known_orders.get(project) or orders_of(project)
        starts = entry.starts
        if starts is None:
            starts = _starts(entry, releases, now)
        for start, order, option in starts:  # soonest first: where could it start, and pay?
            slot = option.slot
            need = ceil(option.gpus * time_limit * slot.bw)
            for allocation in orders[slot.site_id]:
                if left[allocation] >= need:
                    append(Wait(job.id, cap + entry.texts[order], start))
                    break
            else:
                continue
            break
        else:
            append(_unpayable(job, entry, view.options, cap, budgets))
    return waits


def _starts(entry: Entry, releases: Releases, now: float) -> list[tuple[float, int, Option]]:
    """Expected start per option of ``entry``, soonest first, each with its reason's ending."""
    starts: list[tuple[float, int, Option]] = []
    for option in entry.options:
        start = releases.expected_start(option.slot, option.gpus)
        if start is not None:
            order = option.slot.order
            starts.append((start, order, option))
            where = option.slot.id
            entry.texts[order] = f"; expected to start around {format_in(start - now)} at {where}"
    starts.sort(key=lambda s: (s[0], s[1]))
    entry.starts = starts
    entry.unknown = tuple(o for o in entry.options if o.slot.order not in entry.texts)
    return starts


def _unpayable(
    job: PendingJob, entry: Entry, options: tuple[Option, ...], cap: str, budgets: Budgets
) -> Wait:
    """No partition with a known start is payable: one without an estimate, or the budget."""
    time_limit = job.spec.time_limit_s
    for option in entry.unknown:  # those with a known start were tried by the caller
        need = math.ceil(option.gpus * time_limit * option.slot.bw)
        if budgets.find(job.project_id, option.slot.site_id, need) is not None:
            return Wait(job.id, cap + _UNKNOWN_END)
    first = next((o for _, _, o in entry.starts or () if o in options), options[0])
    need = math.ceil(first.gpus * time_limit * first.slot.bw)
    return Wait(job.id, budget_text(job.project_id, first.slot, need, budgets))


def _sites(entry: Entry) -> str:
    sites = list(dict.fromkeys(o.slot.site_id for o in entry.options))
    return ", ".join(sites[:4]) + (f" and {len(sites) - 4} more sites" if len(sites) > 4 else "")


def _behind(blocked_by: PendingJob) -> str:
    return (
        f"waits behind job {blocked_by.id}, which cannot start yet: this policy starts jobs "
        "strictly in order, with no backfill"
    )


def _reserved(job: PendingJob, entry: Entry, hold: Hold, now: float) -> Wait:
    """The job holds a reservation of its own."""
    cap = capacity_text(job.spec, entry.options)
    return Wait(
        job.id,
        f"{cap}; expected to start around {format_in(hold.start - now)} at {hold.slot.id} "
        "(capacity is held for it)",
        hold.start,
    )

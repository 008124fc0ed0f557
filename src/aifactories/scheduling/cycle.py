"""One scheduling cycle: ``run_cycle(snapshot, pending, policy, now) -> CycleResult``.

Pure and deterministic: it reads nothing but its arguments. The rules every policy obeys
are enforced here, before the policy is asked (see :mod:`aifactories.scheduling.policy`):

* only available partitions; hardware (model, memory); data residency;
* gang shape (:func:`~aifactories.domain.jobs.shape_on`): single-node jobs go best fit on
  one node, multi-node jobs take whole free nodes, all at one partition;
* budget: an allocation usable at the site must cover the reservation (site-specific before
  pool, then lowest id); placements use up a working copy of capacity and budgets;
* the EASY-style reservation of the first job blocked for capacity, for policies that ask
  for it: later jobs may take capacity on its partition only if they end before its
  expected start (:mod:`aifactories.scheduling.estimate`).

The twin (``explain`` False, a deep :class:`StandingQueue`) reads the queue by fit class and
passes over a whole class once none of its jobs can start or reserve in the cycle
(:func:`_class_passed_over`); the placements are those of reading every job.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

from aifactories.domain.errors import InvalidInput
from aifactories.domain.ids import JobId
from aifactories.domain.jobs import JobSpec, PendingJob
from aifactories.domain.units import reservation_gpu_seconds
from aifactories.scheduling.backfill import Backfill, BackfillRule
from aifactories.scheduling.estimate import Releases
from aifactories.scheduling.explain import explain_waits
from aifactories.scheduling.policy import Candidate, CycleContext, Policy
from aifactories.scheduling.reasons import never_reason
from aifactories.scheduling.reservations import Reservations
from aifactories.scheduling.snapshot import CycleResult, Placement, Snapshot
from aifactories.scheduling.standing_queue import MergedRead, StandingQueue
from aifactories.scheduling.working import (
    Budgets,
    Entry,
    Failure,
    Hold,
    Note,
    Option,
    Slot,
    SpecKey,
    options_for,
)

_UNWRITTEN = "no partition can ever take it"  # a cycle without waits writes no reason


def run_cycle(
    snapshot: Snapshot,
    pending: Sequence[PendingJob],
    policy: Policy,
    now: float,
    *,
    explain: bool = True,
    ordered: Iterable[PendingJob] | None = None,
) -> CycleResult:
    """Decide which pending jobs start where, now; every pending job is placed or waits.

    ``explain`` False leaves out the waits (their reasons cost more than the decisions) and
    stops reading the queue where no later job can start: behind a blocked job under
    ``STRICT``, or once every partition is full and the reservation is made. The twin runs
    so; the placements are the same either way (tests/scheduling/test_cycle_lazy.py).

    ``ordered``, the pending jobs already in the policy's order (a :class:`StandingQueue`
    the caller keeps sorted by the policy's ``standing_key``), is read lazily, so a cycle
    costs what it reads, not the length of the queue. Without it the policy orders
    ``pending``.
    """
    if ordered is None and len(pending) == 1:
        ordered = pending  # one job has one order: the policy need not rank the projects
    elif ordered is None:
        ordered = policy.order(pending, snapshot, now)
        _check_order(pending, ordered, policy.name)
    untested = len(pending)
    rule = policy.backfill
    slots = [Slot(state, i) for i, state in enumerate(snapshot.partitions) if state.available]
    slot_at = {slot.order: slot for slot in slots}
    budgets = Budgets(
        snapshot.allocations,
        now,
        (slot.site_id for slot in slots),
        snapshot.allocations_by_project,
    )
    releases = Releases(snapshot.active_jobs, now, snapshot.active_by_partition)
    reservations = Reservations(releases, now)
    context = CycleContext(now=now, snapshot=snapshot)
    entries: dict[SpecKey, Entry] = {}
    # Where a partition has a MaxTime, the time limit decides the fit too.
    timed = any(slot.partition.max_time_limit_s is not None for slot in slots)
    placements: list[Placement] = []
    failed: list[Failure] = []
    blocked_by: PendingJob | None = None  # STRICT: the first job that could not start
    looking_for_head = rule.kind is Backfill.EASY
    reserving = rule.reserves
    if rule.max_job_test is not None:
        untested = rule.max_job_test
    free_left = sum(slot.free for slot in slots)  # once 0, nothing later can start
    # The loop below runs for every pending job and every partition it could use: it reads
    # locals, inlines Budgets.find and reservation_gpu_seconds, and builds candidates with
    # tuple.__new__ (what Candidate(...) does, minus a Python-level call).
    orders_of, known_orders = budgets.orders, budgets.known_orders
    left, choose, blocking = budgets.left, policy.choose, reservations.blocking
    ceil, new = math.ceil, tuple.__new__

    # Without reasons to write, a job that needs more GPUs than are free in all partitions
    # together is passed over at once, where its failure changes nothing: the rule makes no
    # reservation for it (greedy, or EASY once its one reservation is made).
    skip_rules = (Backfill.NONE, Backfill.EASY) if not explain else ()
    # Under those rules a job that cannot start has no effect once EASY's reservation is
    # made, so a standing queue is read by fit class and a class left behind as a whole
    # once it cannot start (capacity only shrinks in a cycle). Not with max_job_test: the
    # jobs passed over would have counted among those tested.
    read: MergedRead | None = None
    classes: dict[SpecKey, Entry] | None = {} if timed else None
    if rule.kind in skip_rules and rule.max_job_test is None and isinstance(ordered, StandingQueue):
        ordered = read = ordered.read()
    for job in ordered:
        spec = job.spec
        if skip_rules:
            if free_left <= 0:
                break  # reservations only keep capacity from later jobs: none is left
            if spec.gpus > free_left and not looking_for_head and rule.kind in skip_rules:
                if read is not None:
                    read.drop(spec.fit_key)  # every job of its class needs as many GPUs
                continue
        key = (spec.fit_key, spec.time_limit_s) if timed else spec.fit_key
        entry = entries.get(key)
        if entry is None:
            options = options_for(spec, slots, key)
            never = None
            if not options:  # its reason is only written with the waits
                never = never_reason(spec, snapshot.partitions) if explain else _UNWRITTEN
            entry = entries[key] = Entry(options, never)
        if blocked_by is not None or untested <= 0:
            if not explain:
                break
            failed.append(
                (job, entry, Note.BEHIND if blocked_by is not None else Note.NOT_TESTED, None)
            )
            continue
        untested -= 1
        if entry.live:
            time_limit = spec.time_limit_s
            ends_at = now + time_limit
            orders = known_orders.get(job.project_id) or orders_of(job.project_id)
            candidates: list[Candidate] = []
            room = False
            held: Hold | None = None
            full: list[Option] = []
            for option in entry.live:
                slot = option.slot
                # Cheap tests first: most partitions are full late in a big cycle.
                if (
                    slot.free < option.gpus
                    or (option.exclusive and slot.hist[slot.gpn] < option.nodes)
                    or slot.max_block < option.per_node
                ):
                    full.append(option)
                    continue
                room = True
                need = ceil(option.gpus * time_limit * slot.bw)  # reservation_gpu_seconds
                for allocation in orders[slot.site_id]:  # Budgets.find
                    if left[allocation] >= need:
                        break
                else:
                    continue
                if slot.holds and ends_at > slot.holds[0].start:
                    blocker = blocking(slot, option.gpus, ends_at)
                    if blocker is not None:
                        held = held or blocker
                        continue
                candidates.append(
                    new(
                        Candidate,
                        (
                            slot.state,
                            slot.order,
                            option.shape,
                            allocation,
                            need,
                            slot.free,
                            slot.total,
                            slot.bw,
                            now,
                        ),
                    )
                )
            for option in full:  # capacity only shrinks in a cycle: never look at it again
                entry.live.remove(option)
            if candidates:
                choice = choose(job, candidates, context)
                if choice is None:
                    failed.append((job, entry, Note.DECLINED, None))
                    continue
                for offered in candidates:  # identity: equality would compare whole states
                    if offered is choice:
                        break
                else:
                    raise InvalidInput("policy", f"{policy.name} chose a partition not offered")
                slot = slot_at[choice.order]
                slot.take(choice.shape, ends_at)
                free_left -= choice.shape.allocated_gpus
                if slot.holds:
                    reservations.placed(slot, ends_at, choice.shape.allocated_gpus)
                left[choice.allocation_id] -= choice.reserved_gpu_seconds
                placements.append(
                    Placement(
                        job.id,
                        slot.site_id,
                        slot.id,
                        choice.shape,
                        choice.allocation_id,
                        slot.bw,
                        choice.reserved_gpu_seconds,
                    )
                )
                continue
            if room and held is None:  # capacity now, but no budget: it blocks nobody
                failed.append((job, entry, Note.NO_CANDIDATE, None))
                continue
            if held is not None:
                failed.append((job, entry, Note.HELD, held))
            else:
                failed.append((job, entry, Note.NO_CANDIDATE, None))
        else:
            failed.append((job, entry, Note.NO_CANDIDATE, None))
        if entry.never is None:
            if rule.kind is Backfill.STRICT:
                blocked_by = job
            elif reserving and (looking_for_head or rule.kind is not Backfill.EASY):
                payable = _reserve(job, entry, rule, budgets, reservations, now)
                if rule.kind is Backfill.EASY:
                    # EASY reserves for one job: the first blocked one its budget could pay
                    # for; if its start cannot be estimated, nobody gets a reservation.
                    looking_for_head = not payable
        if (
            read is not None
            and not entry.live
            and _class_passed_over(spec, entry, slots, classes, looking_for_head)
        ):
            read.drop(spec.fit_key)

    blocked = blocked_by is not None
    if not explain:
        return CycleResult(placements=tuple(placements), waits=(), blocked=blocked)
    waits = explain_waits(failed, reservations.by_job, blocked_by, budgets, releases, now)
    return CycleResult(placements=tuple(placements), waits=tuple(waits), blocked=blocked)


def _class_passed_over(
    spec: JobSpec,
    entry: Entry,
    slots: Sequence[Slot],
    classes: dict[SpecKey, Entry] | None,
    looking_for_head: bool,
) -> bool:
    """Whether no later job of ``spec``'s fit class can start or reserve in this cycle,
    after one of them (``entry``) found every partition it may use full.

    Where no partition has a MaxTime, the entry is the class's: all its jobs see the same
    partitions full. Otherwise (``classes``) the class's partitions are those of its
    shortest possible job (a shorter limit fits wherever a longer one does), kept in an
    entry per class whose full partitions are dropped as the cycle goes. A job that finds
    every partition full still makes EASY's reservation while the cycle looks for one,
    unless it can use no partition at all.
    """
    whole = entry
    if classes is not None:
        known = classes.get(spec.fit_key)
        if known is None:
            shortest = dataclasses.replace(spec, time_limit_s=0)
            options = options_for(shortest, slots, (spec.fit_key, 0))
            known = classes[spec.fit_key] = Entry(options, None)
        known.live = [option for option in known.live if option.slot.fits(option)]
        if known.live:
            return False
        whole = known
    return not looking_for_head or not whole.options


def _check_order(pending: Sequence[PendingJob], ordered: Sequence[PendingJob], name: str) -> None:
    ids = {job.id for job in pending}
    if len(ids) != len(pending):
        seen: set[JobId] = set()
        for job in pending:
            if job.id in seen:
                break
            seen.add(job.id)
        raise InvalidInput("pending", f"job {job.id} is pending twice; each job must appear once")
    if len(ordered) != len(pending) or {job.id for job in ordered} != ids:
        raise InvalidInput("policy", f"{name}.order must return each pending job exactly once")


def _reserve(
    job: PendingJob,
    entry: Entry,
    rule: BackfillRule,
    budgets: Budgets,
    reservations: Reservations,
    now: float,
) -> bool:
    """Reserve capacity for ``job``, blocked, as ``rule`` says; False if it cannot pay.

    EASY and CONSERVATIVE reserve once, where the job is expected to start soonest (ties
    to the earlier partition); PER_PARTITION reserves on every partition that has no
    reservation yet, as each site's own scheduler would for its first blocked job.
    """
    spec = job.spec
    per_partition = rule.kind is Backfill.PER_PARTITION
    latest = now + rule.window_s
    best: Hold | None = None
    payable = False
    for option in entry.options:  # catalogue order, so ties go to the earlier partition
        slot = option.slot
        if per_partition and slot.holds:
            continue
        need = reservation_gpu_seconds(option.gpus, spec.time_limit_s, slot.bw)
        if budgets.find(job.project_id, slot.site_id, need) is None:
            continue
        payable = True
        start = reservations.earliest(
            slot, option.gpus, spec.time_limit_s, latest, rule.resolution_s
        )
        if start is None:
            continue
        hold = Hold(slot, start, start + spec.time_limit_s, option.gpus, job.id)
        if per_partition:
            reservations.add(hold)
        elif best is None or start < best.start:
            best = hold
    if best is not None:
        reservations.add(best)
    return payable

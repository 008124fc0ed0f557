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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from aifactories.domain.errors import InvalidInput
from aifactories.domain.ids import JobId
from aifactories.domain.jobs import PendingJob
from aifactories.domain.units import reservation_gpu_seconds
from aifactories.scheduling.estimate import Releases
from aifactories.scheduling.explain import explain_waits
from aifactories.scheduling.policy import Candidate, CycleContext, Policy
from aifactories.scheduling.reasons import never_reason
from aifactories.scheduling.snapshot import CycleResult, Placement, Snapshot
from aifactories.scheduling.working import (
    Budgets,
    Entry,
    Hold,
    Note,
    Option,
    Slot,
    SpecKey,
    options_for,
)


def run_cycle(
    snapshot: Snapshot, pending: Sequence[PendingJob], policy: Policy, now: float
) -> CycleResult:
    """Decide which pending jobs start where, now; every pending job is placed or waits."""
    ordered = policy.order(pending, snapshot, now)
    _check_order(pending, ordered, policy.name)
    slots = [Slot(state, i) for i, state in enumerate(snapshot.partitions) if state.available]
    slot_at = {slot.order: slot for slot in slots}
    budgets = Budgets(snapshot.allocations, now, (slot.site_id for slot in slots))
    releases = Releases(snapshot.active_jobs, now)
    context = CycleContext(now=now, snapshot=snapshot)
    entries: dict[SpecKey, Entry] = {}
    placements: list[Placement] = []
    failed: list[tuple[PendingJob, Entry, Note]] = []
    hold: Hold | None = None
    looking_for_head = policy.reserve_for_head
    # The loop below runs for every pending job and every partition it could use: it reads
    # locals, inlines Budgets.find and reservation_gpu_seconds, and builds candidates with
    # tuple.__new__ (what Candidate(...) does, minus a Python-level call).
    orders_of, known_orders = budgets.orders, budgets.known_orders
    left, choose = budgets.left, policy.choose
    ceil, new = math.ceil, tuple.__new__

    for job in ordered:
        spec = job.spec
        key = (spec.gpu_model, spec.min_gpu_memory_gb, spec.countries, spec.gpus, spec.nodes)
        entry = entries.get(key)
        if entry is None:
            options = options_for(spec, slots)
            never = None if options else never_reason(spec, snapshot.partitions)
            entry = entries[key] = Entry(options, never)
        if entry.live:
            time_limit = spec.time_limit_s
            orders = known_orders.get(job.project_id) or orders_of(job.project_id)
            candidates: list[Candidate] = []
            room = held = False
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
                if hold is not None and slot is hold.slot and now + time_limit > hold.start:
                    held = True
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
                    failed.append((job, entry, Note.DECLINED))
                    continue
                for offered in candidates:  # identity: equality would compare whole states
                    if offered is choice:
                        break
                else:
                    raise InvalidInput("policy", f"{policy.name} chose a partition not offered")
                slot = slot_at[choice.order]
                slot.take(choice.shape, now + time_limit)
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
            if room:
                failed.append((job, entry, Note.HELD if held else Note.NO_CANDIDATE))
                continue
        failed.append((job, entry, Note.NO_CANDIDATE))
        if looking_for_head and entry.never is None:
            hold, looking_for_head = _reserve(job, entry, budgets, releases)

    waits = explain_waits(failed, hold, budgets, releases, now)
    return CycleResult(placements=tuple(placements), waits=tuple(waits))


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
    job: PendingJob, entry: Entry, budgets: Budgets, releases: Releases
) -> tuple[Hold | None, bool]:
    """Try to reserve for ``job``, blocked for capacity. Returns (hold, keep looking).

    Only the first blocked job its budget could pay for is the head (EASY backfill reserves
    for one job); if its start cannot be estimated, nobody gets a reservation this cycle.
    That also bounds the cost: release profiles are built for one job only.
    """
    best: Hold | None = None
    payable = False
    for option in entry.options:  # catalogue order, so ties go to the earlier partition
        slot = option.slot
        need = reservation_gpu_seconds(option.gpus, job.spec.time_limit_s, slot.bw)
        if budgets.find(job.project_id, slot.site_id, need) is None:
            continue
        payable = True
        start = releases.expected_start(slot, option.gpus)
        if start is not None and (best is None or start < best.start):
            best = Hold(slot, start, job.id)
    return best, not payable

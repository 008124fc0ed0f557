"""A cycle without reasons, reading a standing queue, decides exactly as a full one.

The twin runs ``run_cycle(..., explain=False, ordered=queue)``: no wait reasons, the queue
read lazily and left where no later job can start. Its placements must equal those of the
cycle the broker runs (reasons written, the policy ordering the whole queue), for every
policy, on random federations, queues, running jobs and budgets.
"""

from __future__ import annotations

import copy
import dataclasses
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from aifactories.domain.ids import JobId, PartitionId, ProjectId, SiteId
from aifactories.domain.jobs import ActiveJob, JobState, PendingJob, Shape
from aifactories.domain.projects import Allocation
from aifactories.scheduling import POLICY_NAMES, get_policy, run_cycle
from aifactories.scheduling.backfill import Backfill, BackfillRule
from aifactories.scheduling.snapshot import PartitionState, Snapshot
from aifactories.scheduling.standing_queue import StandingQueue, standing_key_of

from .builders import HOUR, T0, allocation, job, partition, snapshot, state


@st.composite
def federations(draw: st.DrawFn) -> tuple[Snapshot, list[PendingJob]]:
    states: list[PartitionState] = []
    active: list[ActiveJob] = []
    for index in range(draw(st.integers(1, 3))):
        gpn = draw(st.sampled_from([1, 2, 4]))
        nodes = draw(st.integers(1, 6))
        p = partition(f"s{index}", "gpu", gpus_per_node=gpn, nodes=nodes)
        free = [draw(st.integers(0, gpn)) for _ in range(nodes)]
        states.append(state(p, free))
        busy = sum(gpn - f for f in free)
        if busy:  # what holds the busy GPUs, and when it ends: for the reservations
            active.append(
                ActiveJob(
                    id=JobId(1000 + index),
                    project_id=ProjectId(9),
                    site_id=SiteId(f"s{index}"),
                    partition_id=PartitionId(f"s{index}/gpu"),
                    shape=Shape(1, busy, False),
                    state=JobState.RUNNING,
                    started_at=T0 - HOUR,
                    time_limit_s=draw(st.integers(HOUR + 60, 8 * HOUR)),
                )
            )
    pending = [
        job(
            i,
            gpus=draw(st.sampled_from([1, 1, 2, 3, 4, 8])),
            project=draw(st.integers(1, 2)),
            hours=draw(st.sampled_from([0.25, 0.5, 1, 2, 6])),
            submitted_at=T0 - draw(st.integers(0, 5)) * 100,
        )
        for i in range(1, draw(st.integers(0, 25)) + 1)
    ]
    budgets = [
        allocation(1, project=1),
        allocation(2, project=2, gpu_hours=draw(st.sampled_from([1, 8, 1000]))),
    ]
    return snapshot(states, allocations=budgets, active=active), pending


@settings(max_examples=150, deadline=None)
@given(federations(), st.sampled_from(POLICY_NAMES))
def test_lazy_cycle_places_as_the_full_one(
    case: tuple[Snapshot, list[PendingJob]], name: str
) -> None:
    picture, pending = case
    policy = get_policy(name)
    full = run_cycle(picture, pending, policy, T0)
    lazy = run_cycle(picture, pending, policy, T0, explain=False)
    assert lazy.placements == full.placements
    assert lazy.waits == ()
    grouped: dict[ProjectId, tuple[Allocation, ...]] = {}
    for budget in picture.allocations:
        grouped[budget.project_id] = (*grouped.get(budget.project_id, ()), budget)
    by_partition: dict[PartitionId, tuple[ActiveJob, ...]] = {}
    for running in picture.active_jobs:
        by_partition[running.partition_id] = (*by_partition.get(running.partition_id, ()), running)
    kept = dataclasses.replace(  # as the twin hands them: grouped by project and partition
        picture, allocations_by_project=grouped, active_by_partition=by_partition
    )
    assert run_cycle(kept, pending, policy, T0, explain=False).placements == full.placements
    key = standing_key_of(policy)
    if key is not None:
        queue = StandingQueue(key)
        for pending_job in reversed(pending):
            queue.add(pending_job)
        read = run_cycle(picture, queue, policy, T0, explain=False, ordered=queue)
        assert read.placements == full.placements


def test_standing_queue_keeps_submission_order_as_jobs_come_and_go() -> None:
    policy = get_policy("fifo")
    key = standing_key_of(policy)
    assert key is not None
    queue = StandingQueue(key)
    jobs = [job(i, submitted_at=T0 + (i % 3)) for i in range(1, 8)]
    for pending_job in jobs:
        queue.add(pending_job)
    queue.remove(JobId(4))
    expected = [j for j in policy.order(jobs, snapshot([]), T0) if j.id != 4]
    assert list(queue) == expected
    assert len(queue) == 6 and queue[0] == expected[0]
    assert standing_key_of(get_policy("fair_share")) is None  # its order moves with usage


# -- reading the standing queue by fit class ---------------------------------------------
# The twin's cycle reads a StandingQueue as a merge of its fit classes and leaves a whole
# class behind once none of its jobs can start (MergedRead.drop). The federations below
# give it every reason to be wrong: fragments, several gang shapes (multi-node exclusive
# ones too), residency, jobs no partition takes, a partition that is down, a partition
# with a MaxTime (the same class then sees different partitions by time limit), running
# jobs that EASY's reservation waits for, time limits that the reservation holds, and a
# project whose budget pays for small jobs only.


@st.composite
def deep_federations(draw: st.DrawFn) -> tuple[Snapshot, list[PendingJob]]:
    states: list[PartitionState] = []
    active: list[ActiveJob] = []
    for index in range(draw(st.integers(1, 4))):
        gpn = draw(st.sampled_from([1, 2, 4, 8]))
        nodes = draw(st.integers(1, 8))
        p = partition(f"s{index}", "gpu", gpus_per_node=gpn, nodes=nodes)
        if draw(st.booleans()):
            p = dataclasses.replace(p, max_time_limit_s=draw(st.sampled_from([HOUR, 3 * HOUR])))
        free = [draw(st.integers(0, gpn)) for _ in range(nodes)]
        country = draw(st.sampled_from(["DE", "DE", "FR"]))
        states.append(state(p, free, country=country, available=draw(st.integers(0, 5)) > 0))
        busy = sum(gpn - f for f in free)
        if busy:
            active.append(
                ActiveJob(
                    id=JobId(1000 + index),
                    project_id=ProjectId(9),
                    site_id=SiteId(f"s{index}"),
                    partition_id=PartitionId(f"s{index}/gpu"),
                    shape=Shape(1, busy, False),
                    state=JobState.RUNNING,
                    started_at=T0 - HOUR,
                    time_limit_s=draw(st.integers(HOUR + 60, 8 * HOUR)),
                )
            )
    pending = []
    for i in range(1, draw(st.integers(0, 60)) + 1):
        gpus, nodes = draw(
            st.sampled_from(
                [(1, None), (1, None), (2, None), (3, None), (4, 1), (8, 2), (64, None)]
            )
        )
        pending.append(
            job(
                i,
                gpus=gpus,
                nodes=nodes,
                project=draw(st.integers(1, 3)),
                hours=draw(st.sampled_from([0.1, 0.5, 1, 2, 4, 12])),
                countries=draw(st.sampled_from([(), (), ("FR",), ("IT",)])),
                submitted_at=T0 - draw(st.integers(0, 30)) * 100,
            )
        )
    budgets = [
        allocation(1, project=1),
        allocation(2, project=2, gpu_hours=draw(st.sampled_from([1, 8, 1000]))),
        allocation(3, project=3, site="s0"),
    ]
    return snapshot(states, allocations=budgets, active=active), pending


STANDING = [name for name in POLICY_NAMES if standing_key_of(get_policy(name)) is not None]


@settings(max_examples=200, deadline=None)
@given(deep_federations(), st.sampled_from(STANDING), st.randoms(use_true_random=False))
def test_reading_by_fit_class_places_as_the_full_cycle(
    case: tuple[Snapshot, list[PendingJob]], name: str, rnd: random.Random
) -> None:
    picture, pending = case
    policy = get_policy(name)
    full = run_cycle(picture, pending, policy, T0)
    key = standing_key_of(policy)
    assert key is not None
    queue = StandingQueue(key)
    for pending_job in rnd.sample(pending, len(pending)):  # any arrival order
        queue.add(pending_job)
    read = run_cycle(picture, queue, policy, T0, explain=False, ordered=queue)
    assert read.placements == full.placements


def test_a_class_is_not_left_behind_for_its_longest_jobs() -> None:
    # One partition with a MaxTime of an hour and room, one without and full: a 12-hour
    # job of the class finds every partition it may use full, a half-hour one behind it
    # (same fit class) still starts on the first.
    short_only = dataclasses.replace(partition("s0", "gpu", nodes=2), max_time_limit_s=HOUR)
    full_one = partition("s1", "gpu", nodes=2)
    picture = snapshot([state(short_only), state(full_one, [0, 0])])
    long_job, short_job = job(1, hours=12), job(2, hours=0.5)
    queue = _queue("first_fit", [long_job, short_job])
    placed = run_cycle(picture, queue, get_policy("first_fit"), T0, explain=False, ordered=queue)
    assert [p.job_id for p in placed.placements] == [short_job.id]


def test_a_class_is_read_on_while_easy_looks_for_its_head() -> None:
    # EASY: the first blocked job of a class reserves only if its project can pay; the
    # next job of the same class, whose project can, must still get the reservation, which
    # then keeps a long job behind it out.
    p = partition("s0", "gpu", gpus_per_node=4, nodes=2)
    running = ActiveJob(
        id=JobId(100),
        project_id=ProjectId(9),
        site_id=SiteId("s0"),
        partition_id=PartitionId("s0/gpu"),
        shape=Shape(1, 4, False),
        state=JobState.RUNNING,
        started_at=T0 - HOUR,
        time_limit_s=2 * HOUR,
    )
    broke = allocation(2, project=2, gpu_hours=0.001)
    picture = snapshot([state(p, [0, 4])], allocations=[allocation(1), broke], active=[running])
    unpaid, head = job(1, gpus=8, project=2), job(2, gpus=8, project=1)
    long_job, short_job = job(3, gpus=2, hours=6), job(4, gpus=2, hours=0.5)
    policy = get_policy("easy_backfill")
    full = run_cycle(picture, [unpaid, head, long_job, short_job], policy, T0)
    queue = _queue("easy_backfill", [unpaid, head, long_job, short_job])
    read = run_cycle(picture, queue, policy, T0, explain=False, ordered=queue)
    assert [p.job_id for p in read.placements] == [short_job.id]
    assert read.placements == full.placements


def test_a_class_is_read_on_past_a_job_its_budget_cannot_pay() -> None:
    p = partition("s0", "gpu", gpus_per_node=4, nodes=1)
    picture = snapshot(
        [state(p)], allocations=[allocation(1), allocation(2, project=2, gpu_hours=0.001)]
    )
    unpaid, paid = job(1, gpus=2, project=2), job(2, gpus=2, project=1)
    for name in ("first_fit", "easy_backfill"):
        queue = _queue(name, [unpaid, paid])
        read = run_cycle(picture, queue, get_policy(name), T0, explain=False, ordered=queue)
        assert [p.job_id for p in read.placements] == [paid.id]


def test_easy_with_a_job_test_limit_reads_every_job() -> None:
    # bf_max_job_test counts the jobs tested: passing a class over would change the count.
    policy = copy.copy(get_policy("easy_backfill"))
    policy.backfill = BackfillRule(Backfill.EASY, max_job_test=3)  # type: ignore[misc]
    p = partition("s0", "gpu", gpus_per_node=4, nodes=2)
    picture = snapshot([state(p, [2, 2])])
    # The head, then two jobs of a class no node can take (tested, counted), then one that
    # fits but comes fourth: the cycle must not reach it.
    jobs = [job(1, gpus=8), job(2, gpus=3), job(3, gpus=3), job(4, gpus=1)]
    full = run_cycle(picture, jobs, policy, T0)
    assert full.placements == ()
    queue = _queue("easy_backfill", jobs)
    read = run_cycle(picture, queue, policy, T0, explain=False, ordered=queue)
    assert read.placements == full.placements


def test_merged_read_gives_the_queue_order_less_the_dropped_classes() -> None:
    jobs = [job(i, gpus=(1, 2, 4)[i % 3], submitted_at=T0 + (i * 7) % 5) for i in range(1, 13)]
    queue = _queue("fifo", jobs)
    assert list(queue.read()) == list(queue)
    read = queue.read()
    seen = []
    for pending_job in read:
        seen.append(pending_job)
        if pending_job.spec.gpus == 2:
            read.drop(pending_job.spec.fit_key)
    first_two = next(j for j in queue if j.spec.gpus == 2)
    assert seen == [j for j in queue if j.spec.gpus != 2 or j is first_two]
    queue.remove(first_two.id)
    assert list(queue.read()) == list(queue)


def _queue(name: str, jobs: list[PendingJob]) -> StandingQueue:
    key = standing_key_of(get_policy(name))
    assert key is not None
    queue = StandingQueue(key)
    for pending_job in jobs:
        queue.add(pending_job)
    return queue

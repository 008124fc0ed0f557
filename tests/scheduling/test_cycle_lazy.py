"""A cycle without reasons, reading a standing queue, decides exactly as a full one.

The twin runs ``run_cycle(..., explain=False, ordered=queue)``: no wait reasons, the queue
read lazily and left where no later job can start. Its placements must equal those of the
cycle the broker runs (reasons written, the policy ordering the whole queue), for every
policy, on random federations, queues, running jobs and budgets.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from aifactories.domain.ids import JobId, PartitionId, ProjectId, SiteId
from aifactories.domain.jobs import ActiveJob, JobState, PendingJob, Shape
from aifactories.domain.projects import Allocation
from aifactories.scheduling import POLICY_NAMES, get_policy, run_cycle
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

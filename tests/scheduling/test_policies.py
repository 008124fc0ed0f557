"""What distinguishes the policies: order, choice among candidates, the head-job reservation."""

from __future__ import annotations

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.domain.ids import JobId, PartitionId, ProjectId, SiteId
from aifactories.domain.jobs import ActiveJob, JobState, Shape
from aifactories.scheduling import POLICY_NAMES, ProjectShare, get_policy, run_cycle
from aifactories.scheduling.policies import fair_share_factors, fair_share_priority

from .builders import HOUR, T0, World, allocation, job, partition, snapshot, state


def test_policy_names_and_unknown_policy() -> None:
    assert POLICY_NAMES == (
        "first_fit",
        "earliest_start",
        "fair_share",
        "fifo",
        "easy_backfill",
        "slurm_multifactor",
        "slurm_siblings",
        "random",
        "expected_completion",
    )
    assert [get_policy(n).name for n in POLICY_NAMES] == list(POLICY_NAMES)
    assert get_policy("Fair-Share").name == "fair_share"
    with pytest.raises(InvalidInput) as caught:
        get_policy("lottery")
    assert caught.value.field == "policy"
    assert "known: first_fit, earliest_start, fair_share, fifo" in caught.value.message


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # a: 50% free, b: 75% free and dearer, c: 75% free and cheaper (catalogue order a, b, c)
        ("first_fit", "a/gpu"),
        ("earliest_start", "c/gpu"),
        ("fair_share", "c/gpu"),
    ],
)
def test_choice_among_partitions_where_the_job_fits_now(policy: str, expected: str) -> None:
    parts = [
        state(partition("a", "gpu", nodes=2), [4, 0]),
        state(partition("b", "gpu", nodes=4, billing_weight=2.0), [4, 4, 4, 0]),
        state(partition("c", "gpu", nodes=4, billing_weight=1.5), [4, 4, 4, 0]),
    ]
    result = run_cycle(snapshot(parts), [job(1)], get_policy(policy), T0)
    assert [p.partition_id for p in result.placements] == [expected]


def test_earliest_start_spreads_load_within_a_cycle() -> None:
    parts = [state(partition("a", "gpu", nodes=4)), state(partition("b", "gpu", nodes=4))]
    pending = [job(i, gpus=4) for i in range(1, 5)]
    spread = run_cycle(snapshot(parts), pending, get_policy("earliest_start"), T0)
    assert [p.partition_id for p in spread.placements] == ["a/gpu", "b/gpu", "a/gpu", "b/gpu"]
    packed = run_cycle(snapshot(parts), pending, get_policy("first_fit"), T0)
    assert [p.partition_id for p in packed.placements] == ["a/gpu"] * 4


def _running(job_id: int, site: str, gpus_per_node: int, nodes: int, ends_in: float) -> ActiveJob:
    return ActiveJob(
        id=JobId(job_id),
        project_id=ProjectId(9),
        site_id=SiteId(site),
        partition_id=PartitionId(f"{site}/gpu"),
        shape=Shape(nodes, gpus_per_node, nodes > 1),
        state=JobState.RUNNING,
        started_at=T0 - HOUR,
        time_limit_s=round(HOUR + ends_in),
    )


def test_expected_start_is_in_the_wait_reason() -> None:
    # "a" frees its 8 GPUs in 2 h, "b" in 65 min: the job is expected to start on "b".
    parts = [
        state(partition("a", "gpu", nodes=2), [0, 0]),
        state(partition("b", "gpu", nodes=2), [0, 0]),
    ]
    active = [
        _running(100, "a", 4, 2, 2 * HOUR),
        _running(101, "b", 4, 1, 65 * 60),
        _running(102, "b", 4, 1, 65 * 60),
    ]
    snap = snapshot(parts, active=active)
    result = run_cycle(snap, [job(1, gpus=8, hours=3)], get_policy("first_fit"), T0)
    (wait,) = result.waits
    assert wait.reason == (
        "no partition has 2 whole free nodes for 8 GPUs of any model now "
        "(most whole free nodes: 0 at a/gpu, needs 2); "
        "expected to start around +1h05m at b/gpu"
    )
    assert wait.expected_start == T0 + 65 * 60


def test_no_estimate_when_the_busy_gpus_have_no_known_end() -> None:
    snap = snapshot([state(partition("a", "gpu", nodes=1), [0])])  # busy, but not by us
    result = run_cycle(snap, [job(1, gpus=4)], get_policy("earliest_start"), T0)
    assert result.waits[0].reason.endswith(
        "no start can be estimated: the GPUs it needs are held by jobs whose end is unknown"
    )
    assert result.waits[0].expected_start is None


def test_head_job_reservation_lets_only_short_jobs_backfill() -> None:
    # Node 0 is busy for one more hour, node 1 is free. The big job (both nodes) is first in
    # line and is expected to start in 1 h: a 2 h job may not take node 1, a 30 min job may.
    p = partition("a", "gpu", nodes=2)
    snap = snapshot([state(p, [0, 4])], active=[_running(100, "a", 4, 1, HOUR)])
    pending = [job(1, gpus=8, hours=4), job(2, gpus=4, hours=2), job(3, gpus=4, hours=0.5)]
    result = run_cycle(snap, pending, get_policy("earliest_start"), T0)
    assert [p.job_id for p in result.placements] == [3]
    why = {w.job_id: w for w in result.waits}
    assert why[1].expected_start == T0 + HOUR
    assert "(capacity is held for it)" in why[1].reason
    assert why[2].reason == (
        "a/gpu is held for job 1, expected to start around +1h00m; "
        "this job's time limit (02:00:00) would end after that, "
        "and the GPUs it needs are reserved then"
    )
    # first_fit has no reservation: the 2 h job takes node 1 and delays the big job.
    greedy = run_cycle(snap, pending, get_policy("first_fit"), T0)
    assert [p.job_id for p in greedy.placements] == [2]


def _stream(policy: str) -> World:
    """A big job first in line, then a 2-hour 4-GPU job arriving every hour, for 8 hours."""
    world = World(
        [state(partition("a", "gpu", nodes=2))],
        [allocation(1, project=1)],
    )
    world.occupy("a/gpu", {0: 4}, _running(100, "a", 4, 1, HOUR))
    pending = [job(1, gpus=8, hours=3, submitted_at=T0 - 10)]
    for hour in range(8):
        pending.append(job(10 + hour, gpus=4, hours=2, submitted_at=world.now))
        result = run_cycle(world.snapshot(), pending, get_policy(policy), world.now)
        pending = world.apply(result, pending)
        world.advance(HOUR)
    return world


def test_reservation_prevents_starvation_of_a_big_job() -> None:
    fair = _stream("earliest_start")
    assert fair.started[JobId(1)] == T0 + HOUR  # as soon as the running job ends
    # the small jobs queue behind it and start once it is done (3 h later)
    assert min(t for j, t in fair.started.items() if j != 1) == T0 + 4 * HOUR
    starved = _stream("first_fit")
    # without the reservation a small job starts every hour and the big one never does
    assert sorted(starved.started.values()) == [T0 + h * HOUR for h in range(8)]
    assert JobId(1) not in starved.started


def test_fair_share_priority_formula() -> None:
    assert fair_share_priority(1.5, 0.0, 0.2) == 1.5
    assert fair_share_priority(1.0, 0.2, 0.2) == 0.5  # used exactly its share
    assert fair_share_priority(1.0, 0.4, 0.2) == 0.25
    assert fair_share_priority(2.0, 0.1, 0.0) == 0.0  # no open allocation, no priority


def _two_projects():
    shares = [
        ProjectShare(ProjectId(1), priority_weight=1.0, decayed_usage_gpu_seconds=900_000),
        ProjectShare(ProjectId(2), priority_weight=1.5, decayed_usage_gpu_seconds=100_000),
    ]
    allocs = [allocation(1, project=1, gpu_hours=500), allocation(2, project=2, gpu_hours=500)]
    return snapshot([state(partition(nodes=1))], allocs, shares)


def test_fair_share_factors_are_inspectable() -> None:
    factors = fair_share_factors(_two_projects(), T0)
    heavy, light = factors[ProjectId(1)], factors[ProjectId(2)]
    assert (heavy.share_fraction, light.share_fraction) == (0.5, 0.5)
    assert (heavy.usage_fraction, light.usage_fraction) == (0.9, 0.1)
    assert heavy.priority == pytest.approx(1.0 * 2 ** (-0.9 / 0.5))
    assert light.priority == pytest.approx(1.5 * 2 ** (-0.1 / 0.5))


def test_fair_share_puts_a_light_critical_project_before_a_heavy_user() -> None:
    snap = _two_projects()
    # The heavy user submitted first; one node has room for only one of the two jobs.
    pending = [
        job(1, gpus=4, project=1, submitted_at=T0 - 600),
        job(2, gpus=4, project=2, submitted_at=T0),
    ]
    fair = run_cycle(snap, pending, get_policy("fair_share"), T0)
    assert [p.job_id for p in fair.placements] == [2]
    fifo = run_cycle(snap, pending, get_policy("first_fit"), T0)
    assert [p.job_id for p in fifo.placements] == [1]


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_expected_start_counts_this_cycles_own_placements(name: str) -> None:
    # One idle node: job 1 takes it for 2 h, so job 2 is expected to start when job 1 ends,
    # unless the running job on the other partition frees its node sooner (it does not).
    parts = [
        state(partition("a", "gpu", nodes=1)),
        state(partition("b", "gpu", nodes=1), [0]),
    ]
    snap = snapshot(parts, active=[_running(100, "b", 4, 1, 3 * HOUR)])
    # job 1 waited 2 h: first in every policy's order (expected completion's too)
    pending = [job(1, gpus=4, hours=2, submitted_at=T0 - 2 * HOUR), job(2, gpus=4, hours=1)]
    result = run_cycle(snap, pending, get_policy(name), T0)
    assert [p.partition_id for p in result.placements] == ["a/gpu"]
    (wait,) = result.waits
    assert wait.expected_start == T0 + 2 * HOUR
    assert "expected to start around +2h00m at a/gpu" in wait.reason

"""The backfill rules run_cycle enforces: strict FIFO, EASY with extra GPUs, per-partition
reservations (siblings), conservative backfill with Slurm's parameters; and the new policies."""

from __future__ import annotations

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.domain.ids import JobId, PartitionId, ProjectId, SiteId
from aifactories.domain.jobs import ActiveJob, JobState, Shape
from aifactories.scheduling import get_policy, run_cycle
from aifactories.scheduling.backfill import Backfill, BackfillRule
from aifactories.scheduling.policies import RandomPlacement, SlurmMultifactor
from aifactories.scheduling.policies.random_placement import draw

from .builders import HOUR, T0, allocation, job, partition, snapshot, state


def _running(job_id: int, site: str, gpus: int, ends_in: float, gpn: int = 1) -> ActiveJob:
    nodes = max(1, gpus // gpn)
    return ActiveJob(
        id=JobId(job_id),
        project_id=ProjectId(9),
        site_id=SiteId(site),
        partition_id=PartitionId(f"{site}/cpu"),
        shape=Shape(nodes, gpus // nodes, nodes > 1),
        state=JobState.RUNNING,
        started_at=T0 - HOUR,
        time_limit_s=round(HOUR + ends_in),
    )


def _ten(site: str = "a", busy: int = 6, ends_in: float = HOUR) -> tuple[object, list[ActiveJob]]:
    """A 10-node, 1-GPU-per-node partition with ``busy`` nodes held until ``ends_in``."""
    p = partition(site, "cpu", gpus_per_node=1, nodes=10)
    free = [0] * busy + [1] * (10 - busy)
    return state(p, free), [_running(100, site, busy, ends_in)]


def _placed(policy: str, pending: list, parts: list, active: list) -> list[int]:
    result = run_cycle(snapshot(parts, active=active), pending, get_policy(policy), T0)
    return [int(p.job_id) for p in result.placements]


def test_fifo_starts_nothing_behind_a_blocked_job() -> None:
    part, active = _ten()  # 4 free now, 6 more in 1 h
    pending = [job(1, gpus=8, hours=2), job(2, gpus=1, hours=0.5), job(3, gpus=2, hours=5)]
    result = run_cycle(snapshot([part], active=active), pending, get_policy("fifo"), T0)
    assert result.placements == ()
    why = {int(w.job_id): w.reason for w in result.waits}
    assert why[2].startswith("waits behind job 1, which cannot start yet")
    # jobs before the blocked one do start
    assert _placed("fifo", [job(4, gpus=3, submitted_at=T0 - 5000), *pending], [part], active) == [
        4
    ]


def test_easy_backfills_short_jobs_and_jobs_on_extra_gpus() -> None:
    # Head needs 8: free 4 now, 10 at +1h, so 2 are "extra" at the shadow time.
    part, active = _ten()
    pending = [
        job(1, gpus=8, hours=2),  # head, reserved at +1h
        job(2, gpus=3, hours=0.5),  # ends before the shadow time: backfills
        job(3, gpus=1, hours=5),  # long, but fits in the 2 extra GPUs: backfills
        job(4, gpus=1, hours=5),  # long, and the extra GPUs are used by job 3... one left
        job(5, gpus=1, hours=5),  # nothing extra left: waits for the head
    ]
    placed = _placed("easy_backfill", pending, [part], active)
    assert placed == [2, 3]
    # after job 2 took 3 of the 4 free GPUs, 1 is free now; job 3 uses 1 extra; job 4 would
    # need a free GPU now: none. With fewer short jobs, two long ones pass on extra GPUs.
    assert _placed(
        "easy_backfill", [pending[0], pending[2], pending[3], pending[4]], [part], active
    ) == [3, 4]


def test_easy_head_is_not_delayed_by_backfill() -> None:
    part, active = _ten()
    pending = [job(1, gpus=8, hours=2), *(job(i, gpus=1, hours=5) for i in range(2, 8))]
    result = run_cycle(snapshot([part], active=active), pending, get_policy("easy_backfill"), T0)
    long_gpus = sum(p.shape.allocated_gpus for p in result.placements)
    assert long_gpus == 2  # 10 - 8: whatever runs past +1h leaves the head its 8 GPUs
    head = next(w for w in result.waits if int(w.job_id) == 1)
    assert head.expected_start == T0 + HOUR and "capacity is held for it" in head.reason


def test_first_fit_is_greedy_and_delays_the_head() -> None:
    part, active = _ten()
    pending = [job(1, gpus=8, hours=2), *(job(i, gpus=1, hours=5) for i in range(2, 8))]
    assert _placed("first_fit", pending, [part], active) == [2, 3, 4, 5]


def test_conservative_backfill_reserves_for_every_blocked_job() -> None:
    part, active = _ten()
    # Two big jobs blocked: job 1 (8 GPUs) at +1h for 2 h, then job 2 (6 GPUs) at +3h.
    pending = [job(1, gpus=8, hours=2), job(2, gpus=6, hours=1), job(3, gpus=4, hours=3.5)]
    # EASY only protects job 1: job 3 (ends +3.5h, 4 GPUs) breaks it? 10 - 8 = 2 < 4: held.
    assert _placed("easy_backfill", pending, [part], active) == []
    policy = SlurmMultifactor(bf_resolution_s=0)
    result = run_cycle(snapshot([part], active=active), pending, policy, T0)
    starts = {int(w.job_id): w.expected_start for w in result.waits}
    assert starts[1] == T0 + HOUR
    assert starts[2] == T0 + 3 * HOUR  # after job 1's reservation ends
    short = [job(1, gpus=8, hours=2), job(2, gpus=6, hours=1), job(3, gpus=4, hours=0.9)]
    assert [
        int(p.job_id)
        for p in run_cycle(snapshot([part], active=active), short, policy, T0).placements
    ] == [3]


def test_conservative_backfill_window_resolution_and_max_job_test() -> None:
    part, active = _ten(ends_in=HOUR + 17)
    pending = [job(1, gpus=8, hours=2), job(2, gpus=1, hours=0.1), job(3, gpus=1, hours=0.1)]
    rounded = run_cycle(
        snapshot([part], active=active), pending, SlurmMultifactor(bf_resolution_s=60), T0
    )
    head = next(w for w in rounded.waits if int(w.job_id) == 1)
    assert head.expected_start is not None and head.expected_start == T0 + HOUR + 60
    # a window shorter than the expected start: no reservation, so nothing is protected
    narrow = SlurmMultifactor(bf_window_s=1800)
    result = run_cycle(snapshot([part], active=active), pending, narrow, T0)
    assert "capacity is held" not in next(w for w in result.waits if int(w.job_id) == 1).reason
    # only the first two jobs (by priority) are tried
    tested = SlurmMultifactor(bf_max_job_test=2)
    result = run_cycle(snapshot([part], active=active), pending, tested, T0)
    why = {int(w.job_id): w.reason for w in result.waits}
    assert any("bf_max_job_test" in reason for reason in why.values())
    assert len(result.placements) == 1


def test_backfill_rule_validation() -> None:
    with pytest.raises(InvalidInput, match="bf_window"):
        BackfillRule(Backfill.CONSERVATIVE, window_s=0)
    with pytest.raises(InvalidInput, match="bf_max_job_test"):
        BackfillRule(Backfill.CONSERVATIVE, max_job_test=0)


def test_multifactor_orders_by_fair_share_qos_age_and_size() -> None:
    p = partition("a", "gpu", nodes=4)
    allocations = [allocation(1, project=1), allocation(2, project=2)]
    snap = snapshot([state(p)], allocations=allocations)
    policy = SlurmMultifactor()
    old = job(1, project=1, submitted_at=T0 - 6 * 86400)
    new = job(2, project=1, submitted_at=T0 - 10)
    big = job(3, project=1, gpus=16, submitted_at=T0 - 10)
    prio = policy.priorities([old, new, big], snap, T0)
    assert prio[1] > prio[2]  # age
    assert prio[3] > prio[2]  # size
    assert [int(j.id) for j in policy.order([new, big, old], snap, T0)] == [3, 1, 2]


def test_siblings_reserve_at_every_site() -> None:
    a, active_a = _ten("a")
    b, active_b = _ten("b", ends_in=2 * HOUR)
    pending = [job(1, gpus=8, hours=1), job(2, gpus=3, hours=3)]
    # Job 1 is blocked at both sites and holds both: job 2 (3 GPUs for 3 h) fits 4 free GPUs
    # at a and b, but 10 - 8 = 2 extra: it passes at neither.
    assert _placed("slurm_siblings", pending, [a, b], active_a + active_b) == []
    # EASY reserves only at a (sooner), so job 2 runs at b.
    result = run_cycle(
        snapshot([a, b], active=active_a + active_b), pending, get_policy("easy_backfill"), T0
    )
    assert [(int(p.job_id), p.site_id) for p in result.placements] == [(2, "b")]


def test_random_placement_is_reproducible_and_spreads() -> None:
    parts = [state(partition(s, "gpu", nodes=4)) for s in "abcd"]
    pending = [job(i) for i in range(1, 41)]
    one = run_cycle(snapshot(parts), pending, RandomPlacement(seed=3), T0)
    two = run_cycle(snapshot(parts), pending, RandomPlacement(seed=3), T0)
    assert one.placements == two.placements
    assert len({p.site_id for p in one.placements}) == 4
    other = run_cycle(snapshot(parts), pending, RandomPlacement(seed=4), T0)
    assert [p.site_id for p in other.placements] != [p.site_id for p in one.placements]
    assert all(0 <= draw(7, i, 3) < 3 for i in range(100))

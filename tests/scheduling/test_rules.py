"""The rules run_cycle enforces for every policy: hardware, gang shape, residency, budget."""

from __future__ import annotations

import dataclasses
import random

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.domain.ids import JobId, PartitionId, ProjectId, SiteId
from aifactories.domain.jobs import ActiveJob, JobState, Shape
from aifactories.domain.projects import AllocationStatus
from aifactories.domain.units import reservation_gpu_seconds
from aifactories.scheduling import POLICY_NAMES, CycleResult, get_policy, run_cycle
from aifactories.scheduling.backfill import GREEDY

from .builders import T0, allocation, job, partition, snapshot, state

ALL = [get_policy(name) for name in POLICY_NAMES]


def where(result: CycleResult) -> dict[int, str]:
    return {p.job_id: p.partition_id for p in result.placements}


def reasons(result: CycleResult) -> dict[int, str]:
    return {w.job_id: w.reason for w in result.waits}


@pytest.mark.parametrize("policy", ALL, ids=POLICY_NAMES)
def test_best_fit_keeps_the_emptier_node_for_a_bigger_job(policy) -> None:
    # One node with 2 free GPUs, one with 4. Best fit puts the 2-GPU job on the first,
    # so the 4-GPU job still fits; worst fit would strand it.
    p = partition(nodes=2)
    snap = snapshot([state(p, [2, 4])])
    result = run_cycle(snap, [job(1, gpus=2), job(2, gpus=4)], policy, T0)
    assert where(result) == {1: "jaif/booster", 2: "jaif/booster"}
    shapes = {int(pl.job_id): pl.shape for pl in result.placements}
    assert shapes == {1: Shape(1, 2, False), 2: Shape(1, 4, False)}


@pytest.mark.parametrize("policy", ALL, ids=POLICY_NAMES)
def test_multi_node_jobs_take_whole_free_nodes_only(policy) -> None:
    p = partition(nodes=4)
    # 9 free GPUs in total, but only one whole free node: an 8-GPU job cannot start.
    scattered = run_cycle(snapshot([state(p, [3, 3, 3, 0])]), [job(1, gpus=8)], policy, T0)
    assert scattered.placements == ()
    assert "whole free nodes" in scattered.waits[0].reason
    # Two whole free nodes: 6 GPUs take 2 exclusive nodes and are charged for all 8 GPUs.
    whole = run_cycle(snapshot([state(p, [4, 4, 0, 0])]), [job(1, gpus=6, hours=2)], policy, T0)
    (placement,) = whole.placements
    assert placement.shape == Shape(2, 4, True)
    assert placement.reserved_gpu_seconds == reservation_gpu_seconds(8, 2 * 3600, 1.0)


@pytest.mark.parametrize(
    ("wanted", "memory", "expected"),
    [
        ("H100", 0, {"bsc-aif/acc"}),
        ("h100", 0, {"bsc-aif/acc"}),  # model names are case-insensitive
        ("any", 0, {"bsc-aif/acc", "jaif/booster", "lumi-aif/lumi-g"}),
        ("any", 96, {"jaif/booster", "lumi-aif/lumi-g"}),
        ("any", 100, {"lumi-aif/lumi-g"}),
        ("GH200", 128, set()),
    ],
)
def test_gpu_model_and_memory_filters(wanted: str, memory: int, expected: set[str]) -> None:
    parts = [
        state(partition("bsc-aif", "acc", "H100", 64)),
        state(partition("jaif", "booster", "GH200", 96)),
        state(partition("lumi-aif", "lumi-g", "MI250X", 128)),
    ]
    pending = [job(i, model=wanted, memory_gb=memory) for i in range(1, 31)]
    result = run_cycle(snapshot(parts), pending, get_policy("earliest_start"), T0)
    assert set(where(result).values()) == expected
    if not expected:
        assert "no partition of model GH200 with >= 128 GB GPU memory (largest: 96 GB)" in (
            result.waits[0].reason
        )


def test_unknown_model_names_the_models_there_are() -> None:
    snap = snapshot([state(partition(model="GH200"))])
    result = run_cycle(snap, [job(1, model="TPUv5")], get_policy("first_fit"), T0)
    assert reasons(result) == {
        1: "no partition has GPU model TPUv5 (models in the federation: GH200)"
    }


def test_residency_beats_load_and_is_explained() -> None:
    busy_fi = state(partition("lumi-aif", "lumi-g", "MI250X"), [1, 0, 0, 0], country="FI")
    idle_de = state(partition("jaif"), country="DE")
    down_se = state(partition("mimer", "gpu"), country="SE", available=False)
    snap = snapshot([busy_fi, idle_de, down_se])
    pending = [
        job(1, countries={"FI"}),
        job(2),
        job(3, countries={"FI"}),
        job(4, countries={"SE"}),
        job(5, countries={"PL", "CZ"}),
    ]
    result = run_cycle(snap, pending, get_policy("earliest_start"), T0)
    assert where(result) == {1: "lumi-aif/lumi-g", 2: "jaif/booster"}
    why = reasons(result)
    assert why[3].startswith("no partition has 1 free GPU on one node of any model in FI now")
    assert why[4] == "residency: no available partition in SE (mimer/gpu unavailable)"
    assert why[5] == "residency: no partition of any model in CZ, PL"


def test_unavailable_partitions_are_never_used() -> None:
    down = state(partition("jaif"), available=False)
    up = state(partition("bsc-aif", "acc", "H100"), [0, 0, 0, 1])
    result = run_cycle(snapshot([down, up]), [job(1), job(2)], get_policy("first_fit"), T0)
    assert where(result) == {1: "bsc-aif/acc"}
    assert reasons(result)[2].startswith("no partition has 1 free GPU on one node")


def test_a_job_that_can_never_fit_says_so() -> None:
    snap = snapshot([state(partition(nodes=4))])
    result = run_cycle(
        snap, [job(1, gpus=9999), job(2, gpus=6, nodes=4)], get_policy("first_fit"), T0
    )
    why = reasons(result)
    assert why[1].startswith("no partition can ever fit 9999 GPUs of any model")
    assert "largest: 16 GPUs in 4 nodes at jaif/booster" in why[1]
    assert "divide evenly" in why[2]


def test_budget_refusal_names_need_and_remainder() -> None:
    snap = snapshot(
        [state(partition(billing_weight=2.0))],
        [allocation(3, project=1, gpu_hours=10, used_gpu_hours=7.5)],
    )
    # 8 GPUs x 1 h x weight 2.0 = 16 GPU-h needed, 2.5 GPU-h left.
    result = run_cycle(snap, [job(1, gpus=8, nodes=2)], get_policy("first_fit"), T0)
    assert result.placements == ()
    assert reasons(result) == {
        1: "budget: needs 16.0 GPU-h at jaif/booster, allocation 3 has 2.5 GPU-h left"
    }


def test_project_without_allocation_at_the_site_waits_for_budget() -> None:
    snap = snapshot([state(partition())], [allocation(1, project=1, site="bsc-aif")])
    result = run_cycle(snap, [job(1, project=1), job(2, project=2)], get_policy("first_fit"), T0)
    assert reasons(result) == {
        1: "budget: project 1 has no open allocation usable at jaif now",
        2: "budget: project 2 has no open allocation usable at jaif now",
    }


@pytest.mark.parametrize(
    ("allocations", "expected"),
    [
        ([allocation(1), allocation(2, site="jaif")], 2),  # site-specific before pool
        ([allocation(5), allocation(3)], 3),  # then lowest id
        ([allocation(1, site="jaif", gpu_hours=0.5), allocation(2)], 2),  # site one too small
        ([allocation(1, site="bsc-aif"), allocation(9)], 9),  # another site's is not usable
        ([allocation(1, status=AllocationStatus.CLOSED), allocation(4)], 4),
        ([allocation(1, ends_at=T0), allocation(4)], 4),  # expired at "now"
        ([allocation(1, starts_at=T0 + 1), allocation(4)], 4),  # not started yet
    ],
)
def test_allocation_choice(allocations, expected: int) -> None:
    snap = snapshot([state(partition())], allocations)
    result = run_cycle(snap, [job(1)], get_policy("first_fit"), T0)
    assert [p.allocation_id for p in result.placements] == [expected]


def test_two_jobs_of_one_cycle_never_overdraw_a_budget() -> None:
    # 5 GPU-h left; each job reserves 4 GPU-h: only the first may go.
    snap = snapshot([state(partition())], [allocation(1, gpu_hours=5)])
    result = run_cycle(snap, [job(1, gpus=4), job(2, gpus=4)], get_policy("first_fit"), T0)
    assert where(result) == {1: "jaif/booster"}
    assert reasons(result)[2] == (
        "budget: needs 4.0 GPU-h at jaif/booster, allocation 1 has 1.0 GPU-h left"
    )


def test_two_jobs_of_one_cycle_never_overfill_a_partition() -> None:
    snap = snapshot([state(partition(nodes=2), [4, 0])])
    result = run_cycle(snap, [job(1, gpus=4), job(2, gpus=1)], get_policy("earliest_start"), T0)
    assert where(result) == {1: "jaif/booster"}
    assert 2 in reasons(result)


@pytest.mark.parametrize("policy", ALL, ids=POLICY_NAMES)
def test_reservation_uses_the_domain_formula(policy) -> None:
    snap = snapshot([state(partition(billing_weight=2.2))])
    result = run_cycle(snap, [job(1, gpus=3, hours=1.7)], policy, T0)
    (p,) = result.placements
    assert p.billing_weight == 2.2
    assert p.reserved_gpu_seconds == reservation_gpu_seconds(3, round(1.7 * 3600), 2.2)


def _random_case(seed: int):
    rng = random.Random(seed)
    parts = [
        state(
            partition("jaif", "booster", "GH200", 96, 4, 6), [rng.randint(0, 4) for _ in range(6)]
        ),
        state(
            partition("czai", "acc", "A100", 40, 8, 3), [rng.randint(0, 8) for _ in range(3)], "CZ"
        ),
        state(partition("lumi-aif", "lumi-g", "MI250X", 128, 4, 5), country="FI"),
    ]
    allocs = [allocation(i, project=i % 4, gpu_hours=rng.choice((2, 20, 200))) for i in range(1, 7)]
    pending = [
        job(
            i,
            gpus=rng.choice((1, 2, 4, 8, 12)),
            project=rng.randrange(5),
            hours=rng.choice((0.5, 1, 4)),
            model=rng.choice(("any", "A100", "GH200")),
            countries=rng.choice(((), ("FI",), ("DE", "CZ"))),
            submitted_at=T0 - rng.randrange(100),
        )
        for i in range(1, 41)
    ]
    return snapshot(parts, allocs), pending


@pytest.mark.parametrize("policy", ALL, ids=POLICY_NAMES)
@pytest.mark.parametrize("seed", range(5))
def test_every_pending_job_appears_exactly_once_and_deterministically(policy, seed) -> None:
    snap, pending = _random_case(seed)
    result = run_cycle(snap, pending, policy, T0)
    ids = [p.job_id for p in result.placements] + [w.job_id for w in result.waits]
    assert sorted(ids) == sorted(j.id for j in pending)
    assert all(w.reason for w in result.waits)
    assert run_cycle(snap, pending, policy, T0) == result
    shuffled = list(pending)
    random.Random(seed).shuffle(shuffled)
    assert run_cycle(snap, shuffled, policy, T0) == result  # input order does not matter


def test_duplicate_pending_jobs_are_refused() -> None:
    with pytest.raises(InvalidInput, match="job 1 is pending twice"):
        run_cycle(snapshot([state(partition())]), [job(1), job(1)], get_policy("first_fit"), T0)


def test_a_malformed_histogram_is_refused() -> None:
    bad = dataclasses.replace(state(partition()), free_nodes_by_free_gpus=(1, 2))
    with pytest.raises(InvalidInput, match="must have 5 non-negative counts"):
        run_cycle(snapshot([bad]), [job(1)], get_policy("first_fit"), T0)


class _Rogue:
    """A policy that breaks the contract, to check run_cycle does not trust it."""

    name = "rogue"
    backfill = GREEDY

    def __init__(self, drop: bool) -> None:
        self.drop = drop

    def order(self, pending, snapshot, now):
        return list(pending)[1:] if self.drop else list(pending)

    def choose(self, job, candidates, context):
        return candidates[0]._replace(reserved_gpu_seconds=0)


@pytest.mark.parametrize(
    ("drop", "message"),
    [(True, "must return each pending job exactly once"), (False, "not offered")],
)
def test_a_policy_cannot_drop_jobs_or_invent_candidates(drop: bool, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        run_cycle(snapshot([state(partition())]), [job(1), job(2)], _Rogue(drop), T0)


def test_the_reason_looks_at_sites_where_the_project_can_pay() -> None:
    # Project 1 may only spend at jaif, which is full; bsc-aif has room but is no use to it.
    full_jaif = state(partition("jaif", nodes=1), [0])
    idle_bsc = state(partition("bsc-aif", "acc", "H100"))
    running = ActiveJob(
        id=JobId(100),
        project_id=ProjectId(9),
        site_id=SiteId("jaif"),
        partition_id=PartitionId("jaif/booster"),
        shape=Shape(1, 4, False),
        state=JobState.RUNNING,
        started_at=T0,
        time_limit_s=2 * 3600,
    )
    snap = snapshot(
        [full_jaif, idle_bsc], [allocation(1, project=1, site="jaif")], active=[running]
    )
    result = run_cycle(snap, [job(1, project=1), job(2, project=2)], get_policy("first_fit"), T0)
    why = reasons(result)
    assert why[1] == (
        "no partition has 1 free GPU on one node of any model now "
        "(largest free block: none); expected to start around +2h00m at jaif/booster"
    )
    assert why[2] == "budget: project 2 has no open allocation usable at jaif, bsc-aif now"

"""Many rounds on a node-level toy federation: decisions must always be placeable on real
nodes, within budget, and account for every pending job, whatever the policy."""

from __future__ import annotations

import random

import pytest

from aifactories.scheduling import POLICY_NAMES, ProjectShare, get_policy, run_cycle

from .builders import HOUR, World, allocation, job, partition, state


@pytest.mark.parametrize("name", POLICY_NAMES)
@pytest.mark.parametrize("seed", range(4))
def test_rounds_never_overfill_nor_overdraw_and_jobs_finish(name: str, seed: int) -> None:
    rng = random.Random(seed)
    world = World(
        [
            state(partition("jaif", "booster", "GH200", 96, 4, 8)),
            state(partition("czai", "acc", "A100", 40, 8, 3), country="CZ"),
            state(partition("lumi-aif", "lumi-g", "MI250X", 128, 4, 6, 0.8), country="FI"),
        ],
        [
            allocation(i, project=i % 5, gpu_hours=rng.choice((30, 300)), site=site)
            for i, site in enumerate((None, None, "jaif", None, "czai", None, "lumi-aif"), 1)
        ],
        [
            ProjectShare(
                p,
                priority_weight=rng.choice((1.0, 1.5)),
                decayed_usage_gpu_seconds=rng.uniform(0, 1e6),
            )
            for p in range(5)
        ],
    )
    policy = get_policy(name)
    pending = []
    next_id = 1
    for _ in range(24):
        for _ in range(rng.randrange(6)):
            pending.append(
                job(
                    next_id,
                    gpus=rng.choice((1, 2, 4, 8, 16)),
                    project=rng.randrange(5),
                    hours=rng.choice((0.5, 1, 3)),
                    runtime_hours=rng.choice((0.25, 0.5, 1)),
                    model=rng.choice(("any", "any", "A100", "GH200")),
                    submitted_at=world.now,
                )
            )
            next_id += 1
        before = {j.id for j in pending}
        result = run_cycle(world.snapshot(), pending, policy, world.now)
        decided = [p.job_id for p in result.placements] + [w.job_id for w in result.waits]
        assert sorted(decided) == sorted(before)
        pending = world.apply(result, pending)  # asserts nodes and budgets hold
        for a in world.allocations.values():
            assert a.left_gpu_seconds >= 0
        world.advance(HOUR / 2)
    assert len(world.finished) > 20  # the federation did run jobs, round after round

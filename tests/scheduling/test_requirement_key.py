"""Jobs share their placement options in a cycle only when every requirement that decides
where they fit is the same: the partitions asked for, whole nodes, tasks, cores and memory,
and the time limit where a partition has a MaxTime. Two jobs alike in GPUs but not in
these must each go where they may."""

from __future__ import annotations

import dataclasses

from aifactories.domain.ids import PartitionId
from aifactories.scheduling import get_policy, run_cycle

from .builders import T0, job, partition, snapshot, state


def _two_partitions(max_time_s: int | None = None) -> list:
    a = partition("a", "gpu", gpus_per_node=4, nodes=2)
    b = dataclasses.replace(
        partition("b", "gpu", gpus_per_node=4, nodes=2), max_time_limit_s=max_time_s
    )
    return [state(a), state(b)]


def _placed(pending: list, parts: list) -> dict[int, str]:
    result = run_cycle(snapshot(parts), pending, get_policy("first_fit"), T0)
    return {int(p.job_id): str(p.partition_id) for p in result.placements}


def test_jobs_asking_for_different_partitions_each_get_theirs() -> None:
    first = job(1, gpus=1)
    to_b = dataclasses.replace(
        job(2, gpus=1),
        spec=dataclasses.replace(job(2).spec, partitions=frozenset({PartitionId("b/gpu")})),
    )
    assert _placed([first, to_b], _two_partitions()) == {1: "a/gpu", 2: "b/gpu"}


def test_a_whole_node_job_is_not_placed_as_a_shared_one() -> None:
    shared = job(1, gpus=1)
    whole = dataclasses.replace(
        job(2, gpus=1), spec=dataclasses.replace(job(2).spec, exclusive=True)
    )
    result = run_cycle(snapshot(_two_partitions()), [shared, whole], get_policy("first_fit"), T0)
    shapes = {int(p.job_id): p.shape for p in result.placements}
    assert shapes[1].exclusive is False
    assert shapes[2].exclusive is True and shapes[2].allocated_gpus == 4


def test_a_job_longer_than_a_partitions_max_time_is_not_placed_there() -> None:
    parts = _two_partitions(max_time_s=3600)[::-1]  # b (MaxTime 1 h) first in catalogue order
    short, long = job(1, gpus=1, hours=0.5), job(2, gpus=1, hours=2)
    assert _placed([short, long], parts) == {1: "b/gpu", 2: "a/gpu"}

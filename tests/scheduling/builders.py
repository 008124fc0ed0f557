"""Small builders for scheduling tests, and a node-level toy federation for multi-round tests.

:class:`World` keeps every node's free GPUs, so applying the cycle's placements to it checks
that the histogram-level decisions of ``run_cycle`` are really placeable on nodes, and lets
tests advance time, finish jobs and run the next cycle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from types import MappingProxyType

from aifactories.domain.ids import AllocationId, JobId, ProjectId, SiteId, UserId
from aifactories.domain.jobs import ActiveJob, JobSpec, JobState, PendingJob
from aifactories.domain.projects import Allocation, AllocationStatus
from aifactories.domain.sites import Partition
from aifactories.domain.units import charge_gpu_seconds
from aifactories.scheduling import CycleResult, PartitionState, ProjectShare, Snapshot

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HOUR = 3600
YEAR = 365 * 86400


def partition(
    site: str = "jaif",
    name: str = "booster",
    model: str = "GH200",
    memory_gb: int = 96,
    gpus_per_node: int = 4,
    nodes: int = 4,
    billing_weight: float = 1.0,
) -> Partition:
    return Partition(
        site_id=SiteId(site),
        name=name,
        gpu_model=model,
        gpu_memory_gb=memory_gb,
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        billing_weight=billing_weight,
    )


def histogram(p: Partition, free_per_node: Sequence[int] | None = None) -> tuple[int, ...]:
    """Nodes by free GPUs; ``free_per_node`` None means an idle partition."""
    counts = [0] * (p.gpus_per_node + 1)
    for free in free_per_node if free_per_node is not None else [p.gpus_per_node] * p.nodes:
        counts[free] += 1
    return tuple(counts)


def state(
    p: Partition,
    free_per_node: Sequence[int] | None = None,
    country: str = "DE",
    available: bool = True,
) -> PartitionState:
    return PartitionState(p, country, available, histogram(p, free_per_node))


def allocation(
    id: int,
    project: int = 1,
    site: str | None = None,
    gpu_hours: float = 1_000_000,
    used_gpu_hours: float = 0,
    status: AllocationStatus = AllocationStatus.OPEN,
    starts_at: float = T0 - 86400,
    ends_at: float = T0 + YEAR,
) -> Allocation:
    return Allocation(
        id=AllocationId(id),
        project_id=ProjectId(project),
        site_id=SiteId(site) if site is not None else None,
        granted_gpu_seconds=round(gpu_hours * HOUR),
        reserved_gpu_seconds=0,
        used_gpu_seconds=round(used_gpu_hours * HOUR),
        starts_at=starts_at,
        ends_at=ends_at,
        status=status,
    )


def job(
    id: int,
    gpus: int = 1,
    project: int = 1,
    hours: float = 1,
    model: str = "any",
    memory_gb: int = 0,
    nodes: int | None = None,
    countries: Iterable[str] = (),
    submitted_at: float | None = None,
    runtime_hours: float | None = None,
) -> PendingJob:
    spec = JobSpec(
        gpus=gpus,
        time_limit_s=round(hours * HOUR),
        gpu_model=model,
        min_gpu_memory_gb=memory_gb,
        nodes=nodes,
        countries=frozenset(countries),
        runtime_s=round(runtime_hours * HOUR) if runtime_hours is not None else None,
    )
    return PendingJob(
        id=JobId(id),
        project_id=ProjectId(project),
        user_id=UserId(1),
        spec=spec,
        submitted_at=submitted_at if submitted_at is not None else T0 - 1000 + id,
    )


def snapshot(
    states: Sequence[PartitionState],
    allocations: Sequence[Allocation] = (),
    shares: Iterable[ProjectShare] = (),
    active: Sequence[ActiveJob] = (),
    now: float = T0,
) -> Snapshot:
    """A snapshot; without allocations, project 1 gets a large pool allocation (id 1)."""
    return Snapshot(
        taken_at=now,
        partitions=tuple(states),
        allocations=tuple(allocations) if allocations else (allocation(1),),
        projects=MappingProxyType({s.project_id: s for s in shares}),
        active_jobs=tuple(active),
    )


@dataclasses.dataclass
class _Running:
    active: ActiveJob
    nodes: list[tuple[int, int]]  # (node index, GPUs held there)
    ends_at: float
    allocation_id: AllocationId
    reserved: int
    billing_weight: float


class World:
    """A toy federation at node level: apply placements, advance time, take snapshots."""

    def __init__(
        self,
        states: Sequence[PartitionState],
        allocations: Sequence[Allocation],
        shares: Iterable[ProjectShare] = (),
        now: float = T0,
    ) -> None:
        self.now = now
        self.states = list(states)
        self.free: dict[str, list[int]] = {}
        for s in self.states:
            per_node = [k for k, n in enumerate(s.free_nodes_by_free_gpus) for _ in range(n)]
            self.free[s.id] = per_node
        self.allocations = {a.id: a for a in allocations}
        self.shares = {s.project_id: s for s in shares}
        self.running: dict[JobId, _Running] = {}
        self.finished: dict[JobId, float] = {}  # job -> end time
        self.started: dict[JobId, float] = {}

    def occupy(self, partition_id: str, gpus_by_node: dict[int, int], active: ActiveJob) -> None:
        """Put a job that is already running (outside the pending queue) on given nodes."""
        for index, gpus in gpus_by_node.items():
            self.free[partition_id][index] -= gpus
            assert self.free[partition_id][index] >= 0
        self.running[active.id] = _Running(
            active,
            list(gpus_by_node.items()),
            active.expected_end(self.now),
            AllocationId(0),
            0,
            1.0,
        )

    def snapshot(self) -> Snapshot:
        states = tuple(
            dataclasses.replace(s, free_nodes_by_free_gpus=histogram(s.partition, self.free[s.id]))
            for s in self.states
        )
        return Snapshot(
            taken_at=self.now,
            partitions=states,
            allocations=tuple(self.allocations.values()),
            projects=MappingProxyType(dict(self.shares)),
            active_jobs=tuple(r.active for r in self.running.values()),
        )

    def apply(self, result: CycleResult, pending: Sequence[PendingJob]) -> list[PendingJob]:
        """Start every placement on real nodes; return the jobs still pending."""
        by_id = {j.id: j for j in pending}
        for placement in result.placements:
            spec = by_id[placement.job_id].spec
            free = self.free[placement.partition_id]
            shape = placement.shape
            if shape.exclusive:
                chosen = [i for i, f in enumerate(free) if f == shape.gpus_per_node][: shape.nodes]
                assert len(chosen) == shape.nodes, "not enough whole free nodes"
                nodes = [(i, shape.gpus_per_node) for i in chosen]
            else:
                fitting = [i for i, f in enumerate(free) if f >= shape.gpus_per_node]
                assert fitting, f"no node has {shape.gpus_per_node} free GPUs"
                best = min(fitting, key=lambda i: (free[i], i))
                nodes = [(best, shape.gpus_per_node)]
            for index, gpus in nodes:
                free[index] -= gpus
                assert free[index] >= 0, "capacity exceeded"
            alloc = self.allocations[placement.allocation_id]
            assert alloc.left_gpu_seconds >= placement.reserved_gpu_seconds, "budget overdrawn"
            self.allocations[alloc.id] = dataclasses.replace(
                alloc,
                reserved_gpu_seconds=alloc.reserved_gpu_seconds + placement.reserved_gpu_seconds,
            )
            runtime = spec.runtime_s if spec.runtime_s is not None else spec.time_limit_s
            active = ActiveJob(
                id=placement.job_id,
                project_id=by_id[placement.job_id].project_id,
                site_id=placement.site_id,
                partition_id=placement.partition_id,
                shape=shape,
                state=JobState.RUNNING,
                started_at=self.now,
                time_limit_s=spec.time_limit_s,
            )
            self.running[placement.job_id] = _Running(
                active,
                nodes,
                self.now + min(runtime, spec.time_limit_s),
                placement.allocation_id,
                placement.reserved_gpu_seconds,
                placement.billing_weight,
            )
            self.started[placement.job_id] = self.now
        placed = {p.job_id for p in result.placements}
        return [j for j in pending if j.id not in placed]

    def advance(self, seconds: float) -> None:
        """Move time on; jobs whose run is over free their nodes and are charged."""
        self.now += seconds
        for job_id, run in sorted(self.running.items(), key=lambda item: item[1].ends_at):
            if run.ends_at > self.now:
                continue
            for index, gpus in run.nodes:
                self.free[run.active.partition_id][index] += gpus
            if run.allocation_id in self.allocations:
                alloc = self.allocations[run.allocation_id]
                elapsed = run.ends_at - (run.active.started_at or run.ends_at)
                charge = charge_gpu_seconds(
                    run.active.shape.allocated_gpus, elapsed, run.billing_weight
                )
                self.allocations[alloc.id] = dataclasses.replace(
                    alloc,
                    reserved_gpu_seconds=alloc.reserved_gpu_seconds - run.reserved,
                    used_gpu_seconds=alloc.used_gpu_seconds + min(charge, run.reserved),
                )
            self.finished[job_id] = run.ends_at
            del self.running[job_id]

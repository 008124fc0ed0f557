"""The immutable picture of the federation that one scheduling cycle decides on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from aifactories.domain.ids import AllocationId, JobId, PartitionId, ProjectId, SiteId
from aifactories.domain.jobs import ActiveJob, Shape
from aifactories.domain.projects import Allocation
from aifactories.domain.sites import Partition
from aifactories.scheduling.speeds import SpeedTable


@dataclass(frozen=True, slots=True)
class PartitionState:
    """A partition as the cycle sees it.

    ``free_nodes_by_free_gpus[k]`` is the number of nodes with exactly ``k`` free GPUs
    (``k`` from 0 to ``gpus_per_node``): enough to place single-node jobs best-fit and
    multi-node jobs on whole free nodes, without a per-node list for 6,000-node partitions.
    """

    partition: Partition
    country: str
    available: bool  # site operational, reachable, and accepting jobs
    free_nodes_by_free_gpus: tuple[int, ...]

    @property
    def id(self) -> PartitionId:
        return self.partition.id

    @property
    def site_id(self) -> SiteId:
        return self.partition.site_id

    @property
    def free_gpus(self) -> int:
        return sum(k * n for k, n in enumerate(self.free_nodes_by_free_gpus))


@dataclass(frozen=True, slots=True)
class ProjectShare:
    """What fair share needs to know of a project."""

    project_id: ProjectId
    priority_weight: float = 1.0  # visible programme weight (critical domain, industrial)
    decayed_usage_gpu_seconds: float = 0.0  # recent usage, halved every half-life


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken_at: float
    partitions: tuple[PartitionState, ...]
    allocations: tuple[Allocation, ...] = ()
    projects: Mapping[ProjectId, ProjectShare] = field(default_factory=lambda: MappingProxyType({}))
    active_jobs: tuple[ActiveJob, ...] = ()
    # How fast each GPU model runs each workload class; empty: every GPU the same.
    speeds: SpeedTable = field(default_factory=SpeedTable)
    # The same allocations grouped by project, when the caller keeps them so (the twin, for
    # hundreds of projects at every cycle); None: the cycle groups them itself.
    allocations_by_project: Mapping[ProjectId, tuple[Allocation, ...]] | None = None
    # The same active jobs by partition, when the caller keeps them so (the twin: a release
    # estimate then reads one partition's jobs, not the federation's); None: grouped here.
    active_by_partition: Mapping[PartitionId, tuple[ActiveJob, ...]] | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """The broker's decision: run ``job_id`` on ``partition_id`` charged to ``allocation_id``."""

    job_id: JobId
    site_id: SiteId
    partition_id: PartitionId
    shape: Shape
    allocation_id: AllocationId
    billing_weight: float
    reserved_gpu_seconds: int


@dataclass(frozen=True, slots=True)
class Wait:
    """A job left pending this cycle, with the reason shown to its owner.

    ``expected_start`` (epoch seconds) is set when the job waits for capacity and a start
    can be estimated; the reason says the same in words, relative to the cycle's time.
    """

    job_id: JobId
    reason: str
    expected_start: float | None = None


@dataclass(frozen=True, slots=True)
class CycleResult:
    """Placements in the order they were decided, and the waits."""

    placements: tuple[Placement, ...]
    waits: tuple[Wait, ...]
    # Under STRICT: the queue stopped at a job waiting for capacity, so until capacity
    # frees nothing behind it can start (a job that never fits, or has no budget, blocks
    # nobody and does not count).
    blocked: bool = False

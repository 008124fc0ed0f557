"""Sites (AI factories) and their partitions (one kind of GPU each)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from aifactories.domain.ids import PartitionId, SiteId, partition_id


class SiteStatus(StrEnum):
    OPERATIONAL = "operational"
    PLANNED = "planned"  # listed in the catalogue, never given jobs


@dataclass(frozen=True, slots=True)
class Partition:
    """One kind of GPU at a site: ``nodes`` nodes of ``gpus_per_node`` GPUs each."""

    site_id: SiteId
    name: str
    gpu_model: str
    gpu_memory_gb: int
    nodes: int
    gpus_per_node: int
    billing_weight: float = 1.0
    # the names a site's own users write in --partition (LUMI's standard-g, small-g, ...)
    aliases: tuple[str, ...] = ()
    # per node, where published; None: the platform does not check that resource
    cpus_per_node: int | None = None
    mem_per_node_gb: int | None = None
    max_time_limit_s: int | None = None  # the partition's own MaxTime
    # "site/name", stored once: every scheduling cycle reads it for every partition
    id: PartitionId = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", partition_id(self.site_id, self.name))

    def answers_to(self, name: str) -> bool:
        """Whether ``--partition=name`` means this partition: its name, its id or an alias."""
        wanted = name.strip().lower()
        return wanted in {self.name.lower(), self.id.lower()} | {a.lower() for a in self.aliases}

    @property
    def total_gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def largest_job_gpus(self) -> int:
        return self.total_gpus


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    """Which back-end drives a site and its options (for example ``slurm_cli`` with
    ``slurm_conf``), as the catalogue file states them. A site without one uses the
    platform's default back-end."""

    kind: str
    options: tuple[tuple[str, str | int | float | bool], ...] = ()

    def as_dict(self) -> dict[str, str | int | float | bool]:
        return dict(self.options)


@dataclass(frozen=True, slots=True)
class Site:
    """One AI factory around a supercomputer. ``sources`` keeps where each figure came from."""

    id: SiteId
    name: str
    country: str
    supercomputer: str
    status: SiteStatus
    partitions: tuple[Partition, ...] = ()
    carbon_g_per_kwh: float | None = None
    sources: tuple[str, ...] = field(default=())
    executor: ExecutorConfig | None = None

    @property
    def operational(self) -> bool:
        return self.status is SiteStatus.OPERATIONAL

"""Assemble a :class:`Snapshot` from plain domain values: shared by the broker and the twin, so
that both feed ``run_cycle`` the very same picture (DESIGN: share the whole cycle)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

from aifactories.domain.ids import PartitionId, ProjectId, SiteId
from aifactories.domain.jobs import ActiveJob
from aifactories.domain.projects import Allocation
from aifactories.domain.sites import Site
from aifactories.scheduling.snapshot import PartitionState, ProjectShare, Snapshot
from aifactories.scheduling.speeds import SpeedTable
from aifactories.scheduling.usage import DecayedUsage, decayed_usage


def assemble_snapshot(
    *,
    now: float,
    sites: Iterable[Site],
    free_nodes: Mapping[str, tuple[int, ...]],
    available_sites: frozenset[SiteId],
    allocations: Iterable[Allocation],
    priority_weights: Mapping[ProjectId, float],
    charges: Iterable[tuple[ProjectId, float, int]] | DecayedUsage,
    half_life_s: float,
    active_jobs: Iterable[ActiveJob],
    allocations_by_project: Mapping[ProjectId, tuple[Allocation, ...]] | None = None,
    active_by_partition: Mapping[PartitionId, tuple[ActiveJob, ...]] | None = None,
    speeds: SpeedTable | None = None,
) -> Snapshot:
    """``free_nodes`` maps partition id to its histogram of nodes by free GPUs; a partition of
    an available site that reported nothing is taken as full (never guess free capacity).

    ``charges`` are ``(project, charged at, GPU-seconds)`` (the broker reads them from the
    ledger), or a :class:`DecayedUsage` kept up to date by a caller that sees every charge
    as it happens (the twin); both give the same decayed usage.

    ``speeds``: how fast each GPU model runs each workload class (the broker's from the
    catalogue, the twin's from its setup); None makes every GPU the same.
    """
    partitions: list[PartitionState] = []
    for site in sites:
        if not site.operational:
            continue
        for partition in site.partitions:
            histogram = free_nodes.get(partition.id)
            available = site.id in available_sites and histogram is not None
            partitions.append(
                PartitionState(
                    partition=partition,
                    country=site.country,
                    available=available,
                    free_nodes_by_free_gpus=histogram
                    if histogram is not None
                    else (partition.nodes,) + (0,) * partition.gpus_per_node,
                )
            )
    shares: Mapping[ProjectId, ProjectShare]
    if isinstance(charges, DecayedUsage):
        shares = _DecayedShares(priority_weights, charges, now)
    else:
        by_project: dict[ProjectId, list[tuple[float, int]]] = {}
        for project_id, at, gpu_seconds in charges:
            by_project.setdefault(project_id, []).append((at, gpu_seconds))
        usage = {
            project_id: decayed_usage(by_project.get(project_id, ()), now, half_life_s)
            for project_id in priority_weights
        }
        shares = MappingProxyType(
            {
                project_id: ProjectShare(
                    project_id=project_id,
                    priority_weight=weight,
                    decayed_usage_gpu_seconds=usage[project_id],
                )
                for project_id, weight in priority_weights.items()
            }
        )
    return Snapshot(
        taken_at=now,
        partitions=tuple(partitions),
        allocations=tuple(allocations),
        projects=shares,
        active_jobs=tuple(active_jobs),
        allocations_by_project=allocations_by_project,
        active_by_partition=active_by_partition,
        speeds=speeds if speeds is not None else SpeedTable(),
    )


class _DecayedShares(Mapping[ProjectId, ProjectShare]):
    """The projects' shares with their decayed usage read when a policy asks: most cycles
    of the twin use a policy that never looks (first fit, FIFO, EASY), and reading every
    project's usage at every cycle was a fifth of a long replay. Read-only, like the rest
    of the snapshot; each share is computed once."""

    def __init__(self, weights: Mapping[ProjectId, float], usage: DecayedUsage, now: float) -> None:
        self._weights = weights
        self._usage = usage
        self._now = now
        self._read: dict[ProjectId, ProjectShare] = {}

    def __getitem__(self, project_id: ProjectId) -> ProjectShare:
        share = self._read.get(project_id)
        if share is None:
            weight = self._weights[project_id]  # KeyError for an unknown project, as a dict
            share = self._read[project_id] = ProjectShare(
                project_id=project_id,
                priority_weight=weight,
                decayed_usage_gpu_seconds=self._usage.at(project_id, self._now),
            )
        return share

    def __iter__(self) -> Iterator[ProjectId]:
        return iter(self._weights)

    def __len__(self) -> int:
        return len(self._weights)

"""The catalogue as users see it, with what the broker last saw free at each partition."""

from __future__ import annotations

from dataclasses import dataclass

from aifactories.db.jobs import partition_statuses
from aifactories.domain.sites import Site
from aifactories.services.core.context import ServiceContext


@dataclass(frozen=True)
class PartitionView:
    id: str
    name: str
    gpu_model: str
    gpu_memory_gb: int
    nodes: int
    gpus_per_node: int
    total_gpus: int
    billing_weight: float
    free_gpus: int | None  # None: the broker has not reported this partition yet
    available: bool
    status_reason: str | None


@dataclass(frozen=True)
class SiteView:
    site: Site
    partitions: list[PartitionView]


def list_sites(ctx: ServiceContext) -> list[SiteView]:
    with ctx.reads() as session:
        statuses = partition_statuses(session)
    views = []
    for site in ctx.catalogue.sites:
        parts = []
        for p in site.partitions:
            status = statuses.get(p.id)
            parts.append(
                PartitionView(
                    id=p.id,
                    name=p.name,
                    gpu_model=p.gpu_model,
                    gpu_memory_gb=p.gpu_memory_gb,
                    nodes=p.nodes,
                    gpus_per_node=p.gpus_per_node,
                    total_gpus=p.total_gpus,
                    billing_weight=p.billing_weight,
                    free_gpus=status.free_gpus if status else None,
                    available=bool(status and status.available),
                    status_reason=status.reason if status else None,
                )
            )
        views.append(SiteView(site=site, partitions=parts))
    return views

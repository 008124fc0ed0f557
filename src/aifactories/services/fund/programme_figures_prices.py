"""What the programme's figures put on a GPU-hour: its euros, kWh and CO2 from the cost model,
and each site's share of capacity that the programme (the EuroHPC JU) holds.

GPU-hours in the books are *billed* GPU-hours: a job is charged GPUs x hours x the
partition's billing weight, and grants are in the same unit. A billed GPU-hour of a job at
partition p is worth ``eur_per_gpu_hour(p) / w`` euros, w the weight the job was charged at
(the physical GPU time it buys, at the partition's full cost: :meth:`Prices.cost`); energy
and carbon follow the physical GPU-hours the same way (programme_figures.py
``value_charge``).
A grant at a site (not tied to one partition) is priced as the books in euros price an
allocation (fund/valuation_rules.py): the euros of an hour of all the site's GPUs over what
that hour would charge, sum(gpus x EUR per GPU-hour) / sum(gpus x billing weight); a pool
grant the same over the sites it may be used at (every operational site when unrestricted).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from aifactories.catalogue.loader import Catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.domain.sites import Partition


class PartitionPrice(Protocol):
    """What the figures read of the cost model's ``PartitionCost`` (fund/cost_model.py)."""

    @property
    def eur_per_gpu_hour(self) -> float: ...
    @property
    def kwh_per_gpu_hour(self) -> float: ...
    @property
    def kg_co2_per_gpu_hour(self) -> float: ...


class CostLookup(Protocol):
    """The cost model as the figures use it: ``CostModel.partition("site/partition")``."""

    def partition(self, partition_id: str) -> PartitionPrice: ...


@dataclass(frozen=True, slots=True)
class ProgrammeShare:
    """The share of a site's GPU capacity that the programme allocates; the rest is the
    hosting state's. ``source`` where published, else ``assumption`` with the reason."""

    share: float
    source: str | None = None
    assumption: str | None = None

    @property
    def basis(self) -> str:
        if self.source and self.assumption:
            return f"{self.source}; assumption: {self.assumption}"
        return self.source or self.assumption or ""


# Only MeluXina-AI's split was found published; every other site takes DEFAULT_SHARE.
PROGRAMME_SHARES: dict[str, ProgrammeShare] = {
    "meluxina-ai": ProgrammeShare(
        0.5,
        source="funding.yaml: etude.lu (MeluXina-AI, 50/50 EuroHPC/state; "
        "50% of capacity for EuroHPC)",
        # The split is published for the new MeluXina-AI system; the catalogue's partition is
        # MeluXina's accelerator module today, so applying it there is itself an assumption.
        assumption="MeluXina-AI's split applied to the site's partition today (MeluXina's "
        "accelerator module) until the new system is in the catalogue",
    ),
}
DEFAULT_SHARE = ProgrammeShare(
    0.5,
    assumption=(
        "no published split for this site: the EuroHPC JU's share of access time follows "
        "the Union's share of the cost (Council Regulation (EU) 2021/1173), and the AI "
        "factories are about half EU-funded (funding.yaml: datacenterdynamics.com, wave 1 "
        "'half from the EU')"
    ),
)


def programme_share(site_id: str) -> ProgrammeShare:
    return PROGRAMME_SHARES.get(site_id, DEFAULT_SHARE)


@dataclass(frozen=True, slots=True)
class Rate:
    """Per *billed* GPU-hour: euros, kWh and kg CO2 (0 for a partition the cost model lacks)."""

    eur: float
    kwh: float
    kg_co2: float
    billing_weight: float = 1.0


NO_RATE = Rate(0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class PerGpuHour:
    """Per physical GPU-hour of a partition (the cost model's figures, unweighted)."""

    eur: float
    kwh: float
    kg_co2: float


@dataclass
class Prices:
    """Costs per partition and rates per site and pool, read once from the cost model. A
    partition the cost model does not know is listed in ``unpriced``, so that the report can
    say so rather than hide it (its use is valued at the allocation's rate, as the books do;
    a site or pool with no priced partition at 0)."""

    catalogue: Catalogue
    costs: CostLookup
    unpriced: set[str] = field(default_factory=set)

    @cached_property
    def _partitions(self) -> dict[str, Rate]:
        rates: dict[str, Rate] = {}
        for site in self.catalogue.sites:
            for part in site.partitions:
                try:
                    cost = self.costs.partition(part.id)
                except InvalidInput:  # the cost model knows no such partition: unpriced, reported
                    continue
                weight = part.billing_weight or 1.0
                rates[part.id] = Rate(
                    cost.eur_per_gpu_hour / weight,
                    cost.kwh_per_gpu_hour / weight,
                    cost.kg_co2_per_gpu_hour / weight,
                    weight,
                )
        return rates

    def _mean(self, parts: Iterable[Partition], what: str) -> Rate:
        """Per billed GPU-hour over several partitions, capacity-weighted as the books in
        euros value an allocation (fund/valuation_rules.py ``pooled_rate``):
        sum(gpus x per GPU-hour) / sum(gpus x billing weight)."""
        priced = [(p.total_gpus, self._partitions[p.id]) for p in parts if p.id in self._partitions]
        gpus = sum(g for g, _ in priced)
        weighted = sum(g * r.billing_weight for g, r in priced)
        if not weighted:
            self.unpriced.add(what)
            return NO_RATE
        # r.eur is per billed hour: x the weight gives it per GPU-hour again
        return Rate(
            sum(g * r.eur * r.billing_weight for g, r in priced) / weighted,
            sum(g * r.kwh * r.billing_weight for g, r in priced) / weighted,
            sum(g * r.kg_co2 * r.billing_weight for g, r in priced) / weighted,
            weighted / gpus,
        )

    def site(self, site_id: str) -> Rate:
        """A grant at ``site_id``: the GPU-weighted mean of its partitions."""
        site = self.catalogue.site(site_id)
        return self._mean(site.partitions if site else (), f"site {site_id}")

    def pool(self, sites: Iterable[str] | None) -> Rate:
        """A pool grant usable at ``sites`` (None: any operational site)."""
        chosen = (
            self.catalogue.operational_sites
            if sites is None
            else [s for s in self.catalogue.sites if s.id in set(sites)]
        )
        return self._mean((p for s in chosen for p in s.partitions), "pool")

    def billing_weight(self, partition_id: str) -> float:
        """Today's weight: only for a charge that does not say the weight it was made at."""
        part = self.catalogue.partition(partition_id)
        return part.billing_weight if part and part.billing_weight else 1.0

    def cost(self, partition_id: str) -> PerGpuHour | None:
        """Per physical GPU-hour of the partition; None (and listed in ``unpriced``) when
        the cost model does not know it."""
        found = self._costs.get(partition_id)
        if found is None:
            self.unpriced.add(partition_id)
        return found

    @cached_property
    def _costs(self) -> dict[str, PerGpuHour]:
        return {
            pid: PerGpuHour(
                r.eur * r.billing_weight, r.kwh * r.billing_weight, r.kg_co2 * r.billing_weight
            )
            for pid, r in self._partitions.items()
        }

    def site_cost(self, site_id: str) -> PerGpuHour:
        """Per physical GPU-hour at a site, its priced partitions weighted by their GPUs:
        for usage imported from the site's accounting, which names no partition."""
        site = self.catalogue.site(site_id)
        priced = [
            (p.total_gpus, self._costs[p.id])
            for p in (site.partitions if site else ())
            if p.id in self._costs
        ]
        gpus = sum(g for g, _ in priced)
        if not gpus:
            self.unpriced.add(f"site {site_id}")
            return PerGpuHour(0.0, 0.0, 0.0)
        return PerGpuHour(
            sum(g * c.eur for g, c in priced) / gpus,
            sum(g * c.kwh for g, c in priced) / gpus,
            sum(g * c.kg_co2 for g, c in priced) / gpus,
        )

    def import_weight(self, site_id: str) -> float:
        """The billing weight usage imported from ``site_id``'s accounting was charged at:
        the lowest of the site's partitions (services/sites/usage_import.py's rule)."""
        site = self.catalogue.site(site_id)
        return min((p.billing_weight for p in site.partitions), default=1.0) if site else 1.0

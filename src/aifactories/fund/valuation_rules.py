"""The books in euros: the rules that value GPU time at what it costs (pure arithmetic).

The ledger counts billing-weighted GPU-seconds: a GPU-hour on a partition of billing weight 2
costs an allocation two. The fund counts euros: an hour of a GPU costs the partition's full
cost per GPU-hour (capital, energy, operation; the cost model). The rules joining the two:

- a **charge** on a known partition is worth its GPU-hours actually used, unweighted
  (charged GPU-seconds / billing weight / 3600), times the partition's full cost per GPU-hour;
  a job's euros are the sum of its charges, so the same rule values jobs and charges;
- an **allocation** is not tied to one partition: its GPU-hours are worth its *rate*, the
  euros per billing-weighted GPU-hour of the partitions it may use (its site's, its pool
  sites', or every operational site's), capacity-weighted:
  ``sum(gpus x eur_per_gpu_hour) / sum(gpus x billing_weight)``, what an hour of all those
  GPUs costs over what that hour would charge. Granted and left are valued at the rate;
  reserved and used at the partitions the jobs hold or ran on (the rate for what has no
  partition, usage imported from a site's own accounting, and for a partition the cost
  model does not price: the allocation's figures stay whole, docs/fund.md);
- without a rate (no cost model, or none of its partitions priced) an allocation has no
  euros at all: all five figures None together.

So the four euro figures of an allocation add up only when the billing weights are in
proportion to the partitions' costs; the difference is the price of where the jobs ran.
No database here (``aifactories.services.fund.valuation`` reads the books).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from aifactories.catalogue.loader import Catalogue
from aifactories.domain.sites import Partition
from aifactories.domain.units import SECONDS_PER_HOUR


class CostedPartition(Protocol):
    """What valuation needs of the cost model's ``PartitionCost``."""

    @property
    def eur_per_gpu_hour(self) -> float: ...


class PartitionCosts(Protocol):
    """What valuation needs of the cost model's ``CostModel``: its partitions by id."""

    @property
    def partitions(self) -> Mapping[str, CostedPartition]: ...


@dataclass(frozen=True, slots=True)
class PartitionRate:
    """One partition's capacity, billing weight and full cost of one GPU-hour."""

    partition_id: str
    site_id: str
    gpus: int
    billing_weight: float
    eur_per_gpu_hour: float

    @property
    def eur_per_billed_gpu_hour(self) -> float:
        """Euros per GPU-hour as the ledger counts them (billing-weighted)."""
        return self.eur_per_gpu_hour / self.billing_weight


def partition_rates(catalogue: Catalogue, costs: PartitionCosts) -> dict[str, PartitionRate]:
    """The rate of every catalogue partition the cost model prices (the others are absent:
    their GPU-hours have no euro value, and are shown without one)."""
    rates: dict[str, PartitionRate] = {}
    for site in catalogue.sites:
        for partition in site.partitions:
            cost = costs.partitions.get(partition.id)
            if cost is not None:
                rates[partition.id] = _rate(partition, cost.eur_per_gpu_hour)
    return rates


def _rate(partition: Partition, eur_per_gpu_hour: float) -> PartitionRate:
    return PartitionRate(
        partition_id=partition.id,
        site_id=partition.site_id,
        gpus=partition.total_gpus,
        billing_weight=partition.billing_weight,
        eur_per_gpu_hour=eur_per_gpu_hour,
    )


def unweighted_gpu_hours(charged_gpu_seconds: int, billing_weight: float) -> float:
    """The GPU-hours behind a charge: the ledger multiplied them by the billing weight."""
    if billing_weight <= 0:
        raise ValueError(f"a billing weight is positive, not {billing_weight}")
    return charged_gpu_seconds / billing_weight / SECONDS_PER_HOUR


def charge_eur(charged_gpu_seconds: int, billing_weight: float, eur_per_gpu_hour: float) -> float:
    """A charge (a job's, or one ledger entry of it) in euros: its unweighted GPU-hours at the
    partition's full cost per GPU-hour."""
    return unweighted_gpu_hours(charged_gpu_seconds, billing_weight) * eur_per_gpu_hour


def pooled_rate(rates: Iterable[PartitionRate]) -> float | None:
    """Euros per billing-weighted GPU-hour over several partitions, capacity-weighted:
    ``sum(gpus x eur_per_gpu_hour) / sum(gpus x billing_weight)``; None without any."""
    euros = weighted = 0.0
    for rate in rates:
        euros += rate.gpus * rate.eur_per_gpu_hour
        weighted += rate.gpus * rate.billing_weight
    return euros / weighted if weighted > 0 else None


def allocation_rate(
    rates: Mapping[str, PartitionRate],
    site_id: str | None,
    pool_sites: Iterable[str] | None,
    operational_sites: Iterable[str],
) -> float | None:
    """The euros per billing-weighted GPU-hour of an allocation: pooled over its site's
    partitions, or its pool sites', or (a pool for any site) every operational site's."""
    if site_id is not None:
        sites = {site_id}
    elif pool_sites is not None:
        sites = set(pool_sites)
    else:
        sites = set(operational_sites)
    return pooled_rate(r for r in rates.values() if r.site_id in sites)


@dataclass(frozen=True, slots=True)
class Held:
    """Billing-weighted GPU-seconds held or charged on one partition (None: no partition
    known, as for usage imported from a site's accounting), and that partition's rate."""

    gpu_seconds: int
    eur_per_billed_gpu_hour: float | None


@dataclass(frozen=True, slots=True)
class AllocationEuros:
    """An allocation's balance in euros, next to its GPU-seconds. None, all five together:
    not valued (no cost model, or no partition the allocation may use is in it)."""

    eur_per_gpu_hour: float | None  # per billing-weighted GPU-hour: the allocation's rate
    granted: float | None
    reserved: float | None
    used: float | None
    left: float | None


def value_held(total_gpu_seconds: int, held: Iterable[Held], rate: float | None) -> float | None:
    """``total_gpu_seconds`` (an allocation's reserved or used) in euros: each piece at its
    partition's rate, what no piece explains (or whose partition has no cost) at the
    allocation's ``rate``. None when some part has no rate at all."""
    euros = 0.0
    explained = 0
    unpriced = 0
    for piece in held:
        explained += piece.gpu_seconds
        if piece.eur_per_billed_gpu_hour is None:
            unpriced += piece.gpu_seconds
        else:
            euros += piece.gpu_seconds / SECONDS_PER_HOUR * piece.eur_per_billed_gpu_hour
    unpriced += max(0, total_gpu_seconds - explained)
    if unpriced:
        if rate is None:
            return None
        euros += unpriced / SECONDS_PER_HOUR * rate
    return euros


def value_allocation(
    granted: int,
    reserved: int,
    used: int,
    rate: float | None,
    reservations: Iterable[Held] = (),
    charges: Iterable[Held] = (),
) -> AllocationEuros:
    """An allocation's granted, reserved, used and left GPU-seconds in euros (the rules in
    the module's docstring). Without a rate (no cost model, or none of its partitions priced)
    every figure is None together: a used EUR 0.00 beside a granted null would read as
    "nothing used" when it is "not valued"."""
    if rate is None:
        return AllocationEuros(None, None, None, None, None)
    left = granted - reserved - used
    return AllocationEuros(
        eur_per_gpu_hour=rate,
        granted=None if rate is None else granted / SECONDS_PER_HOUR * rate,
        reserved=value_held(reserved, reservations, rate),
        used=value_held(used, charges, rate),
        left=None if rate is None else left / SECONDS_PER_HOUR * rate,
    )

"""A seeded generator of allocation rounds drawn on the catalogue, for the benchmark and tests.

Capacity: each operational partition's GPUs x hours in the month x an availability factor,
times the programme's share of the machine, less a share held by running allocations that
starts high and falls as they end. Demand: a mix of Fast Lane (5k-50k GPU-hours, 3-6 months)
and Large Scale (50k-1M, 6-12 months) proposals with hardware and residency needs drawn
against the real partitions (GPU memory, CUDA or not, Hopper class, the site's country).
The programme's share is set so that requests are ``demand_ratio`` times the free capacity,
as in a competitive call. The same seed gives the same round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aifactories.catalogue.loader import Catalogue, load_default_catalogue
from aifactories.domain.sites import Partition
from aifactories.programme.award_model import PartitionCapacity, ProposalDemand

DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
AVAILABILITY = 0.92  # maintenance, drains and failures take the rest

# (organisation kind, probability, probability that the work is industrial)
KINDS = (
    ("startup", 0.30, 1.0),
    ("sme", 0.22, 1.0),
    ("industry", 0.13, 1.0),
    ("academia", 0.28, 0.15),
    ("public", 0.07, 0.1),
)
# Applicant countries, weighted roughly by the size of their AI communities.
COUNTRIES = (
    ("DE", 16), ("FR", 14), ("IT", 10), ("ES", 9), ("NL", 7), ("PL", 5), ("SE", 4),
    ("FI", 3), ("BE", 4), ("AT", 3), ("CZ", 3), ("PT", 3), ("DK", 3), ("IE", 3), ("GR", 2),
    ("SI", 1), ("BG", 1), ("LU", 1), ("HU", 2), ("RO", 2), ("NO", 2), ("CH", 2),
)  # fmt: skip
HOPPER = ("H100", "H200", "GH200")


@dataclass(frozen=True, slots=True)
class SyntheticRound:
    demands: tuple[ProposalDemand, ...]
    partitions: tuple[PartitionCapacity, ...]
    months: int
    programme_share: float
    """The share of each machine the programme allocates in this round (before holdings)."""
    demand_ratio: float
    """Requested GPU-hours over free GPU-hours in the horizon, as drawn."""


def _eligible(
    partitions: list[tuple[Partition, str]], country: str, rng: np.random.Generator
) -> tuple[str, ...]:
    memory = rng.choice([0, 48, 80], p=[0.55, 0.30, 0.15])
    cuda = rng.random() < 0.6  # code written for CUDA only: AMD partitions are out
    hopper = rng.random() < 0.12  # FP8 or recent-architecture features
    national = rng.random() < 0.08  # data must stay in the applicant's country
    return tuple(
        p.id
        for p, site_country in partitions
        if p.gpu_memory_gb >= memory
        and not (cuda and p.gpu_model.startswith("MI"))
        and not (hopper and p.gpu_model not in HOPPER)
        and not (national and site_country != country)
    )


def synthetic_round(
    proposals: int,
    *,
    seed: int,
    months: int = 12,
    demand_ratio: float = 2.0,
    catalogue: Catalogue | None = None,
) -> SyntheticRound:
    """``proposals`` ranked proposals over the catalogue's operational partitions."""
    rng = np.random.default_rng(seed)
    catalogue = catalogue or load_default_catalogue()
    parts = [(p, s.country) for s in catalogue.operational_sites for p in s.partitions]
    countries = [c for c, _ in COUNTRIES]
    country_p = np.array([w for _, w in COUNTRIES], dtype=np.float64)
    country_p /= country_p.sum()
    sites_by_country: dict[str, list[str]] = {}
    for p, c in parts:
        sites_by_country.setdefault(c, []).append(p.site_id)

    large = rng.random(proposals) < 0.35
    requests = np.where(
        large,
        np.exp(rng.uniform(np.log(50_000), np.log(1_000_000), proposals)),
        np.exp(rng.uniform(np.log(5_000), np.log(50_000), proposals)),
    ).round(-2)
    scores = np.clip(rng.beta(5, 2, proposals) * 10, 0, 10).round(2)
    ranks = np.empty(proposals, dtype=np.int64)
    ranks[np.lexsort((np.arange(proposals), -scores))] = np.arange(1, proposals + 1)
    kind_index = rng.choice(len(KINDS), size=proposals, p=[k[1] for k in KINDS])

    demands: list[ProposalDemand] = []
    for i in range(proposals):
        kind, _, industrial_p = KINDS[int(kind_index[i])]
        country = str(rng.choice(countries, p=country_p))
        duration = int(rng.choice([6, 12] if large[i] else [3, 6], p=[0.5, 0.5]))
        first = int(rng.integers(0, months - duration + 1)) if duration <= months else 0
        eligible = _eligible(parts, country, rng)
        eligible_sites = sorted({pid.split("/")[0] for pid in eligible})
        preferred: tuple[str, ...] = ()
        if eligible_sites and rng.random() < 0.4:
            home = [s for s in sites_by_country.get(country, []) if s in eligible_sites]
            preferred = (home[0],) if home else (str(rng.choice(eligible_sites)),)
        fractions = [0.3, 0.5, 0.7] if large[i] else [0.5, 0.75, 1.0]
        demands.append(
            ProposalDemand(
                proposal_id=i + 1,
                rank=int(ranks[i]),
                score=float(scores[i]),
                requested_gpu_hours=float(requests[i]),
                min_award_fraction=float(rng.choice(fractions)),
                eligible_partitions=eligible,
                preferred_sites=preferred,
                first_month=first,
                last_month=min(months, first + duration) - 1,
                industrial=bool(rng.random() < industrial_p),
                critical_domain=bool(rng.random() < 0.35),
                organisation_kind=kind,
                country=country,
            )
        )

    hours = np.array([DAYS_IN_MONTH[m % 12] * 24.0 for m in range(months)])
    gpus = np.array([p.total_gpus for p, _ in parts], dtype=np.float64)
    # Running allocations hold 25-60% of a partition now, falling towards 5% as they end.
    held_now = rng.uniform(0.25, 0.6, len(parts))
    fade = np.linspace(1.0, 0.1, months)
    held = np.clip(
        held_now[:, None] * fade[None, :] + rng.normal(0, 0.03, (len(parts), months)), 0, 1
    )
    free = gpus[:, None] * hours[None, :] * AVAILABILITY * (1.0 - held)
    share = min(1.0, float(requests.sum()) / (demand_ratio * float(free.sum())))
    free *= share
    partitions = tuple(
        PartitionCapacity(
            partition_id=p.id,
            site_id=p.site_id,
            country=country,
            gpu_hours_by_month=tuple(float(h) for h in free[k].round(1)),
        )
        for k, (p, country) in enumerate(parts)
    )
    return SyntheticRound(
        demands=tuple(demands),
        partitions=partitions,
        months=months,
        programme_share=share,
        demand_ratio=float(requests.sum()) / float(free.sum()),
    )

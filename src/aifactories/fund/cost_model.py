"""What one GPU-hour of each partition costs in euros, and what it draws and emits.

The figures come from data files (``fund/data/costs.yaml``, ``electricity_prices.yaml``,
``carbon_intensity.yaml``), each with its source or marked as an assumption with the reason,
and from the catalogue (GPU counts, countries, the sites' carbon intensity). Per partition::

    kWh per GPU-hour          = accelerator kW x PUE
    energy EUR per GPU-hour   = accelerator kW x PUE x electricity EUR/MWh / 1000
    capital EUR per GPU-hour  = capital EUR / life years / (GPUs x 8,766 h)
    operating EUR per GPU-hour = operating EUR per year / (GPUs x 8,766 h)
    full EUR per GPU-hour     = energy + capital + operating
    kg CO2 per GPU-hour       = kWh per GPU-hour x carbon g/kWh / 1000

Capital and operating costs are spread over every *available* GPU-hour (8,766 h a year, the
mean year of 365.25 days): they are the cost of an hour at full utilisation. At utilisation
``u`` a *used* GPU-hour carries ``1/u`` of them (:meth:`PartitionCost.eur_per_used_gpu_hour`).
Energy is counted at the accelerator's power with its node share, as drawn under load; the
operating cost excludes electricity (staff, maintenance, licences, network).

``load_cost_model()`` reads the embedded files; a user's file (argument ``path``, else the
``AIFACTORIES_COST_MODEL`` environment variable) is laid over them entry by entry. Pure: no
database, no clock. Money is float euros (estimates); round for display only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TypeVar

from aifactories.catalogue.loader import Catalogue, load_default_catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.fund.cost_checks import check_accelerator, check_partition
from aifactories.fund.cost_data import embedded_cost_data, lay, read_cost_file
from aifactories.fund.cost_derive import (
    accelerator_costs,
    commissioning_of,
    default_commissioning,
    default_pue,
    partition_cost,
)
from aifactories.fund.cost_figures import (
    HOURS_PER_YEAR,
    AcceleratorCost,
    DateFigure,
    Figure,
    PartitionCost,
)

__all__ = [
    "HOURS_PER_YEAR",
    "AcceleratorCost",
    "CostModel",
    "DateFigure",
    "Figure",
    "PartitionCost",
    "load_cost_model",
]

ENV_VAR = "AIFACTORIES_COST_MODEL"
AVERAGE = "EU27"  # the key of the EU average in the electricity and carbon tables
T = TypeVar("T")


@dataclass(frozen=True)
class CostModel:
    """Every catalogue partition's costs, the per-model defaults and the country tables."""

    partitions: Mapping[str, PartitionCost]
    accelerators: Mapping[str, AcceleratorCost]
    electricity_prices: Mapping[str, Figure]  # EUR/MWh by ISO country code, and EU27
    carbon_intensities: Mapping[str, Figure]  # g CO2/kWh by ISO country code, and EU27
    default_pue: Figure
    files: tuple[str, ...]  # where the figures were read, in the order they were laid

    def partition(self, partition_id: str) -> PartitionCost:
        try:
            return self.partitions[partition_id]
        except KeyError:
            known = ", ".join(sorted(self.partitions)) or "none"
            raise InvalidInput(
                "partition", f"no cost for partition {partition_id!r}; known: {known}"
            ) from None

    def accelerator(self, gpu_model: str) -> AcceleratorCost:
        found = _by_model(self.accelerators, gpu_model)
        if found is None:
            known = ", ".join(sorted(self.accelerators))
            raise InvalidInput(
                "gpu_model",
                f"no cost for GPU model {gpu_model!r}; known: {known} "
                f"(add it under 'accelerators' in a cost model file, {ENV_VAR})",
            )
        return found

    def electricity(self, country: str) -> Figure:
        """EUR/MWh for large non-household consumers; the EU average, marked as an
        assumption, for a country the tables do not have."""
        return _country_or_average(self.electricity_prices, country, "electricity price")

    def carbon(self, country: str) -> Figure:
        """The grid's g CO2/kWh; the EU average, marked as an assumption, if unknown."""
        return _country_or_average(self.carbon_intensities, country, "carbon intensity")

    def new_partition(
        self,
        partition_id: str,
        country: str,
        gpu_model: str,
        gpus: int,
        commissioned: date,
        pue: Figure | None = None,
    ) -> PartitionCost:
        """The cost of new capacity (an investment) from the per-model defaults."""
        if gpus <= 0:
            raise InvalidInput("gpus", f"must be positive, got {gpus}")
        site_id, _, _ = partition_id.partition("/")
        return partition_cost(
            partition_id=partition_id,
            site_id=site_id,
            country=country.upper(),
            gpu_model=gpu_model,
            gpus=gpus,
            own={},
            accelerator=self.accelerator(gpu_model),
            pue=pue or self.default_pue,
            commissioning=commissioning_of(commissioned),
            electricity=self.electricity(country),
            carbon=self.carbon(country),
        )


def _by_model(table: Mapping[str, T], gpu_model: str) -> T | None:
    if gpu_model in table:
        return table[gpu_model]
    wanted = gpu_model.strip().upper()
    return next((v for k, v in table.items() if k.upper() == wanted), None)


def _country_or_average(table: Mapping[str, Figure], country: str, what: str) -> Figure:
    code = "GR" if country.upper() == "EL" else country.upper()  # Eurostat writes EL
    if code in table:
        return table[code]
    average = table[AVERAGE]
    return Figure(
        average.value,
        source=average.source,
        assumption=f"no {what} for {country} in the cost model; the EU average is used"
        + (f" ({average.assumption})" if average.assumption else ""),
        period=average.period,
        confidence=average.confidence,
    )


def load_cost_model(catalogue: Catalogue | None = None, path: Path | None = None) -> CostModel:
    """The cost model of ``catalogue`` (default: the embedded one): the embedded data files,
    with ``path`` (else ``$AIFACTORIES_COST_MODEL``, if set) laid over them.

    Raises :class:`InvalidInput` naming the file, the entry and the field of bad data, and
    the partition whose derived cost is not finite or not plausible (fund/cost_checks.py).
    """
    catalogue = catalogue or load_default_catalogue()
    if path is None:
        env = os.environ.get(ENV_VAR, "").strip()
        path = Path(env) if env else None
    data = embedded_cost_data()
    if path is not None:
        user = read_cost_file(path)
        _check_partitions_known(user.partitions, catalogue, str(path))
        lay(data, user, str(path))
    for table in ("electricity", "carbon"):
        if AVERAGE not in getattr(data, table):
            raise InvalidInput(f"{table}.{AVERAGE}", f"the {table} table needs the EU average")
    partial = CostModel(
        partitions={},
        accelerators=accelerator_costs(data),
        electricity_prices=dict(data.electricity),
        carbon_intensities=dict(data.carbon),
        default_pue=default_pue(data),
        files=tuple(data.files),
    )
    for accelerator in partial.accelerators.values():
        check_accelerator(accelerator, partial.default_pue, partial.electricity(AVERAGE), data)
    commissioning = default_commissioning(data)
    partitions: dict[str, PartitionCost] = {}
    for site in catalogue.sites:
        carbon = partial.carbon(site.country)
        if site.carbon_g_per_kwh is not None:  # the catalogue's own figure wins
            carbon = Figure(
                site.carbon_g_per_kwh,
                source=f"{catalogue.source}: site {site.id} carbon_g_per_kwh",
            )
        for p in site.partitions:
            partitions[p.id] = partition_cost(
                partition_id=p.id,
                site_id=site.id,
                country=site.country,
                gpu_model=p.gpu_model,
                gpus=p.total_gpus,
                own=data.partitions.get(p.id, {}),
                accelerator=_by_model(partial.accelerators, p.gpu_model),
                pue=partial.default_pue,
                commissioning=commissioning,
                electricity=partial.electricity(site.country),
                carbon=carbon,
            )
            check_partition(partitions[p.id], data)
    return replace(partial, partitions=partitions)


def _check_partitions_known(
    entries: Mapping[str, object], catalogue: Catalogue, source: str
) -> None:
    """A user's file naming a partition the catalogue lacks is a typo, not a new partition."""
    unknown = sorted(key for key in entries if catalogue.partition(key) is None)
    if unknown:
        known = ", ".join(sorted(p.id for s in catalogue.sites for p in s.partitions))
        raise InvalidInput(
            f"{source}: partitions.{unknown[0]}",
            f"no such partition in the catalogue ({catalogue.source}); partitions are "
            f"site/partition, one of: {known}",
        )

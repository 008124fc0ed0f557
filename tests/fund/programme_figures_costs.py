"""A small cost model for the fund's tests: the interface of fund/cost_model.py with figures
easy to check by hand (partition i of the catalogue: 1 + i EUR, 0.5 + 0.1 i kWh and
0.2 kg CO2 per GPU-hour)."""

from __future__ import annotations

from dataclasses import dataclass

from aifactories.catalogue.loader import Catalogue
from aifactories.domain.errors import InvalidInput


@dataclass(frozen=True)
class SmallPartitionCost:
    eur_per_gpu_hour: float
    kwh_per_gpu_hour: float
    kg_co2_per_gpu_hour: float


class SmallCostModel:
    def __init__(self, catalogue: Catalogue) -> None:
        parts = [p for site in catalogue.sites for p in site.partitions]
        self.partitions: dict[str, SmallPartitionCost] = {
            p.id: SmallPartitionCost(1.0 + i, 0.5 + 0.1 * i, 0.2) for i, p in enumerate(parts)
        }

    def partition(self, partition_id: str) -> SmallPartitionCost:
        try:
            return self.partitions[partition_id]
        except KeyError:
            raise InvalidInput("partition", f"unknown partition {partition_id!r}") from None

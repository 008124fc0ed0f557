"""The cost model's values: figures with their sources, per accelerator model and per partition
(the formulas are in :mod:`aifactories.fund.cost_model`'s docstring and in docs/fund.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from aifactories.domain.errors import InvalidInput
from aifactories.domain.units import HOURS_PER_YEAR as HOURS_PER_YEAR  # the cost model's year


@dataclass(frozen=True, slots=True)
class Figure:
    """A number with where it comes from: a ``source`` (a public page or document) or an
    ``assumption`` with its reason (or both: a sourced figure applied by assumption)."""

    value: float
    source: str | None = None
    assumption: str | None = None
    period: str | None = None  # the year or semester the figure stands for, if it has one
    # how far the source can be trusted, as in funding.yaml: H official or two independent
    # sources agree, M one reputable secondary source, L one weak source; None: not rated
    confidence: str | None = None

    @property
    def basis(self) -> str:
        """One line for people: the source, else ``assumption: <reason>``."""
        where = _basis(self.source, self.assumption, self.confidence)
        return f"{where} ({self.period})" if self.period else where


@dataclass(frozen=True, slots=True)
class DateFigure:
    """A date with its source or assumption (a commissioning date)."""

    value: date
    source: str | None = None
    assumption: str | None = None
    confidence: str | None = None  # as Figure's

    @property
    def basis(self) -> str:
        return _basis(self.source, self.assumption, self.confidence)


@dataclass(frozen=True, slots=True)
class AcceleratorCost:
    """Defaults for new capacity of one GPU model (investments) and for partitions whose own
    figures are not published: per accelerator, its share of nodes, network, storage and
    building in ``capital_eur``, its node's share of power in ``kw``."""

    gpu_model: str
    capital_eur: Figure
    kw: Figure
    life_years: Figure
    operating_share: Figure  # yearly operating cost (without electricity) / capital


@dataclass(frozen=True, slots=True)
class PartitionCost:
    """The cost figures of one partition and what a GPU-hour of it costs."""

    partition_id: str
    site_id: str
    country: str
    gpu_model: str
    gpus: int
    capital_eur: Figure
    commissioning: DateFigure
    life_years: Figure
    accelerator_kw: Figure
    pue: Figure
    electricity_eur_per_mwh: Figure
    carbon_g_per_kwh: Figure
    operating_eur_per_year: Figure

    @property
    def commissioned(self) -> date:
        return self.commissioning.value

    @property
    def decommissioned(self) -> date:
        """When the capital is written off (commissioned + life), the end of its depreciation."""
        days = round(self.life_years.value * 365.25)
        return date.fromordinal(self.commissioned.toordinal() + days)

    @property
    def available_gpu_hours_per_year(self) -> float:
        return self.gpus * HOURS_PER_YEAR

    @property
    def kwh_per_gpu_hour(self) -> float:
        return self.accelerator_kw.value * self.pue.value

    @property
    def energy_eur_per_gpu_hour(self) -> float:
        return self.kwh_per_gpu_hour * self.electricity_eur_per_mwh.value / 1000.0

    @property
    def capital_eur_per_gpu_hour(self) -> float:
        yearly = self.capital_eur.value / self.life_years.value
        return yearly / self.available_gpu_hours_per_year

    @property
    def operating_eur_per_gpu_hour(self) -> float:
        return self.operating_eur_per_year.value / self.available_gpu_hours_per_year

    @property
    def eur_per_gpu_hour(self) -> float:
        """The full cost of one available GPU-hour: energy, capital and operation."""
        return (
            self.energy_eur_per_gpu_hour
            + self.capital_eur_per_gpu_hour
            + self.operating_eur_per_gpu_hour
        )

    def eur_per_used_gpu_hour(self, utilisation: float) -> float:
        """The full cost of a GPU-hour actually used when the partition is busy
        ``utilisation`` (0-1] of the time: the fixed costs fall on fewer hours."""
        if not 0 < utilisation <= 1:
            raise InvalidInput("utilisation", f"must be in (0, 1], got {utilisation}")
        fixed = self.capital_eur_per_gpu_hour + self.operating_eur_per_gpu_hour
        return self.energy_eur_per_gpu_hour + fixed / utilisation

    @property
    def kg_co2_per_gpu_hour(self) -> float:
        return self.kwh_per_gpu_hour * self.carbon_g_per_kwh.value / 1000.0

    def figures(self) -> dict[str, Figure | DateFigure]:
        """Every input figure by name, for reports that list sources."""
        return {
            "capital_eur": self.capital_eur,
            "commissioned": self.commissioning,
            "life_years": self.life_years,
            "accelerator_kw": self.accelerator_kw,
            "pue": self.pue,
            "electricity_eur_per_mwh": self.electricity_eur_per_mwh,
            "carbon_g_per_kwh": self.carbon_g_per_kwh,
            "operating_eur_per_year": self.operating_eur_per_year,
        }


def _basis(source: str | None, assumption: str | None, confidence: str | None) -> str:
    """A figure's source, its assumption and its confidence, as one line."""
    parts = [source] if source else []
    if assumption:
        parts.append(f"assumption: {assumption}")
    if confidence:
        parts.append(f"confidence {confidence}")
    return "; ".join(parts)

"""Complete a partition's cost figures: its own where the files give them, else derived from
its GPU model's defaults, each derived figure marked as an assumption that says how."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from aifactories.domain.errors import InvalidInput
from aifactories.fund.cost_data import CostData
from aifactories.fund.cost_figures import AcceleratorCost, DateFigure, Figure, PartitionCost

ACCELERATOR_FIELDS = ("capital_eur", "kw", "life_years", "operating_share")


def accelerator_costs(data: CostData) -> dict[str, AcceleratorCost]:
    """Every model's defaults; each must have all four figures once the files are laid."""
    out: dict[str, AcceleratorCost] = {}
    for model, figures in data.accelerators.items():
        missing = [name for name in ACCELERATOR_FIELDS if name not in figures]
        if missing:
            where = data.origin.get(f"accelerators.{model}", "the cost model")
            raise InvalidInput(
                f"{where}: accelerators.{model}",
                f"missing {', '.join(missing)}: a GPU model needs capital_eur, kw, life_years "
                "and operating_share, each with its source or assumption",
            )
        out[model] = AcceleratorCost(model, **{n: figures[n] for n in ACCELERATOR_FIELDS})
    return out


def default_pue(data: CostData) -> Figure:
    pue = data.defaults.get("pue")
    if not isinstance(pue, Figure):
        raise InvalidInput("defaults.pue", "the cost model needs a default PUE (defaults.pue)")
    return pue


def default_commissioning(data: CostData) -> DateFigure:
    when = data.defaults.get("commissioned")
    if not isinstance(when, DateFigure):
        raise InvalidInput(
            "defaults.commissioned",
            "the cost model needs a default commissioning date (defaults.commissioned)",
        )
    return when


def _figure(figures: Mapping[str, Figure | DateFigure], name: str) -> Figure | None:
    found = figures.get(name)
    return found if isinstance(found, Figure) else None


def partition_cost(
    *,
    partition_id: str,
    site_id: str,
    country: str,
    gpu_model: str,
    gpus: int,
    own: Mapping[str, Figure | DateFigure],
    accelerator: AcceleratorCost | None,
    pue: Figure,
    commissioning: DateFigure,
    electricity: Figure,
    carbon: Figure,
) -> PartitionCost:
    """``own`` figures win; the others come from ``accelerator`` (the model's defaults),
    ``pue`` and ``commissioning`` (defaults), ``electricity`` and ``carbon`` (the country's)."""

    def from_model(name: str) -> AcceleratorCost:
        if accelerator is None:
            raise InvalidInput(
                f"partitions.{partition_id}.{name}",
                f"not given, and GPU model {gpu_model!r} has no defaults to derive it from: "
                f"give the partition's {name}, or add {gpu_model} under 'accelerators' "
                "in a cost model file (AIFACTORIES_COST_MODEL)",
            )
        return accelerator

    capital = _figure(own, "capital_eur")
    if capital is None:
        per = from_model("capital_eur").capital_eur
        capital = Figure(
            per.value * gpus,
            assumption=f"{gpus:,} GPUs x EUR {per.value:,.0f} per {gpu_model} "
            f"(accelerators.{gpu_model}.capital_eur: {per.basis})",
            confidence=per.confidence,
        )
    life = _figure(own, "life_years") or _inherited(from_model("life_years").life_years, gpu_model)
    kw = _figure(own, "accelerator_kw") or _inherited(from_model("accelerator_kw").kw, gpu_model)
    operating = _figure(own, "operating_eur_per_year")
    if operating is None:
        share = from_model("operating_eur_per_year").operating_share
        operating = Figure(
            capital.value * share.value,
            assumption=f"{share.value:.0%} of the capital a year "
            f"(accelerators.{gpu_model}.operating_share: {share.basis})",
        )
    own_date = own.get("commissioned")
    return PartitionCost(
        partition_id=partition_id,
        site_id=site_id,
        country=country,
        gpu_model=gpu_model,
        gpus=gpus,
        capital_eur=capital,
        commissioning=own_date if isinstance(own_date, DateFigure) else commissioning,
        life_years=life,
        accelerator_kw=kw,
        pue=_figure(own, "pue") or pue,
        electricity_eur_per_mwh=_figure(own, "electricity_eur_per_mwh") or electricity,
        carbon_g_per_kwh=_figure(own, "carbon_g_per_kwh") or carbon,
        operating_eur_per_year=operating,
    )


def _inherited(default: Figure, gpu_model: str) -> Figure:
    """A model default used for a partition: the same figure, saying where it came from."""
    reason = f"the {gpu_model} default, the partition's own figure is not published"
    assumption = f"{reason}; {default.assumption}" if default.assumption else reason
    return Figure(default.value, default.source, assumption, default.period, default.confidence)


def commissioning_of(when: date) -> DateFigure:
    return DateFigure(when, assumption="the date given for the new capacity")

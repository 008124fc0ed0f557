"""Refuse a cost model whose derived figures no AI factory could have.

Each input figure is bounded where it is read (:mod:`aifactories.fund.cost_data`), but bounded
figures can still combine into an absurd cost: a small partition given a whole system's
capital, or a one-GPU partition with a short life. A GPU-hour of the most expensive
accelerator on the market costs a few euros; above EUR 1,000 the file is wrong, and the books
would value every allocation on that partition at nonsense. The error names the partition (or
GPU model), the files its figures came from, and the figures that make the cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from aifactories.domain.errors import InvalidInput
from aifactories.fund.cost_data import CostData
from aifactories.fund.cost_figures import HOURS_PER_YEAR, AcceleratorCost, Figure, PartitionCost

MAX_EUR_PER_GPU_HOUR = 1000.0


def _files(data: CostData, keys: Iterable[str]) -> str:
    found = [data.origin[k] for k in keys if k in data.origin]
    unique = list(dict.fromkeys(found)) or data.files
    return ", ".join(unique)


def _refuse(where: str, what: str, value: float, inputs: str) -> InvalidInput:
    shown = "not a finite number" if not math.isfinite(value) else f"EUR {value:,.2f}"
    return InvalidInput(
        where,
        f"a GPU-hour would cost {shown} ({what}), above the EUR {MAX_EUR_PER_GPU_HOUR:,.0f} "
        f"no AI factory comes near: check {inputs}",
    )


def check_partition(cost: PartitionCost, data: CostData) -> None:
    """Raise :class:`InvalidInput` if the partition's derived figures are not finite or not
    plausible, naming the partition and the files that gave its figures."""
    files = _files(data, (f"partitions.{cost.partition_id}", f"accelerators.{cost.gpu_model}"))
    where = f"{files}: partitions.{cost.partition_id}"
    derived = {
        "energy": cost.energy_eur_per_gpu_hour,
        "capital": cost.capital_eur_per_gpu_hour,
        "operating": cost.operating_eur_per_gpu_hour,
        "kWh": cost.kwh_per_gpu_hour,
        "kg CO2": cost.kg_co2_per_gpu_hour,
    }
    total = cost.eur_per_gpu_hour
    if not math.isfinite(total) or total > MAX_EUR_PER_GPU_HOUR:
        parts = ", ".join(f"{k} {v:,.2f}" for k, v in derived.items() if math.isfinite(v))
        raise _refuse(
            where,
            f"{parts}; capital EUR {cost.capital_eur.value:,.0f} over {cost.gpus:,} GPUs "
            f"and {cost.life_years.value:g} years",
            total,
            "capital_eur, life_years, operating_eur_per_year and accelerator_kw",
        )
    broken = [k for k, v in derived.items() if not math.isfinite(v) or v < 0]
    if broken:
        raise InvalidInput(where, f"the {', '.join(broken)} per GPU-hour is not a finite number")


def check_accelerator(
    accelerator: AcceleratorCost, pue: Figure, electricity: Figure, data: CostData
) -> None:
    """The same for a GPU model's defaults (new capacity is priced from them), at the default
    PUE and the EU average electricity price."""
    capital = accelerator.capital_eur.value
    hourly = (
        capital / accelerator.life_years.value / HOURS_PER_YEAR
        + capital * accelerator.operating_share.value / HOURS_PER_YEAR
        + accelerator.kw.value * pue.value * electricity.value / 1000.0
    )
    if not math.isfinite(hourly) or hourly > MAX_EUR_PER_GPU_HOUR:
        model = accelerator.gpu_model
        raise _refuse(
            f"{_files(data, (f'accelerators.{model}',))}: accelerators.{model}",
            f"EUR {capital:,.0f} per accelerator over {accelerator.life_years.value:g} years",
            hourly,
            "capital_eur, life_years and operating_share",
        )

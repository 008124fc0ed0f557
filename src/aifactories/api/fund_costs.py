"""REST endpoint ``GET /fund/costs``: every partition's cost per GPU-hour, its parts (energy,
capital, operating), its kWh and kg CO2 per GPU-hour, and each input figure with its source or
assumption. Thin: the figures come from services.fund.costs (docs/fund.md, "The cost model")."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from aifactories.api.deps import Ctx, Me
from aifactories.services.fund.costs import PartitionCostView, partition_costs

router = APIRouter(tags=["fund"])


class CostFigureOut(BaseModel):
    name: str = Field(description="capital_eur, commissioned, life_years, accelerator_kw, ...")
    value: float | str = Field(description="a number, or a date as ISO text (commissioned)")
    source: str | None = Field(description="where the figure comes from")
    assumption: str | None = Field(description="why the figure was assumed, or how derived")
    period: str | None = Field(description="the year or semester the figure stands for")
    confidence: str | None = Field(
        None,
        description="how far the source can be trusted: H official or two sources agree, "
        "M one reputable secondary source, L one weak source; null: not rated",
    )


class PartitionCostOut(BaseModel):
    partition_id: str
    site_id: str
    country: str
    gpu_model: str
    gpus: int
    eur_per_gpu_hour: float = Field(
        description="full cost of one available GPU-hour: energy + capital + operating, EUR"
    )
    energy_eur_per_gpu_hour: float
    capital_eur_per_gpu_hour: float
    operating_eur_per_gpu_hour: float
    kwh_per_gpu_hour: float
    kg_co2_per_gpu_hour: float
    figures: list[CostFigureOut]

    @classmethod
    def of(cls, view: PartitionCostView) -> PartitionCostOut:
        fields = {k: v for k, v in vars(view).items() if k != "figures"}
        return cls(**fields, figures=[CostFigureOut(**vars(f)) for f in view.figures])


@router.get("/fund/costs", response_model=list[PartitionCostOut])
def costs(context: Ctx, who: Me) -> list[PartitionCostOut]:
    """What one GPU-hour of each partition costs, with the sources of every figure. A cost
    model file that cannot be read: 500, with its problem for programme operators."""
    return [PartitionCostOut.of(view) for view in partition_costs(context, who)]

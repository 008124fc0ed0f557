"""What each partition's GPU-hour costs, for the sites list and ``GET /fund/costs``.

The cost model (:mod:`aifactories.fund.cost_model`) is data read once per catalogue, like the
catalogue itself: a changed cost model file is read by the next start. The sites list shows no
euros when the file cannot be read (the sites are still listed; the cause is logged), while
``/fund/costs``, whose whole answer is the cost model, says what is wrong with the file to
programme operators, and to others only that it cannot be read: the message names the
operator's file (``AIFACTORIES_COST_MODEL``, an absolute path on the server), which is theirs.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from aifactories.catalogue.loader import Catalogue
from aifactories.domain.errors import ConfigurationError, InvalidInput
from aifactories.fund.cost_model import (
    CostModel,
    DateFigure,
    Figure,
    PartitionCost,
    load_cost_model,
)
from aifactories.services.core.context import Principal, ServiceContext

log = logging.getLogger(__name__)

_MODELS: dict[int, tuple[Catalogue, CostModel | InvalidInput]] = {}
_LOCK = threading.Lock()
_KEPT = 8  # a process has one catalogue (tests make a few): never many


UNREADABLE = "the cost model cannot be read; an operator has the details"


def cost_model_of(catalogue: Catalogue, principal: Principal | None = None) -> CostModel:
    """The cost model of ``catalogue``, read once. Raises :class:`ConfigurationError` when a
    cost model file is wrong: naming the file, the entry and the field for a programme
    operator (``principal``), else saying only that it cannot be read (the log has it all)."""
    hit = _MODELS.get(id(catalogue))
    if hit is None or hit[0] is not catalogue:
        try:
            loaded: CostModel | InvalidInput = load_cost_model(catalogue)
        except InvalidInput as exc:  # logged once: every later call answers from here
            log.error("the cost model cannot be read: %s", exc.message)
            loaded = exc
        with _LOCK:
            if len(_MODELS) >= _KEPT:
                _MODELS.clear()
            _MODELS[id(catalogue)] = (catalogue, loaded)
        hit = (catalogue, loaded)
    if isinstance(hit[1], InvalidInput):
        if principal is not None and principal.is_operator:
            raise ConfigurationError(f"the cost model cannot be read: {hit[1].message}")
        raise ConfigurationError(UNREADABLE)
    return hit[1]


@dataclass(frozen=True)
class FigureView:
    """One input figure of a partition's cost, with where it comes from."""

    name: str
    value: float | str  # a date as ISO text
    source: str | None
    assumption: str | None
    period: str | None
    confidence: str | None  # H, M or L (docs/fund.md); None: not rated


@dataclass(frozen=True)
class PartitionCostView:
    """A partition's cost per GPU-hour, its parts, and the figures behind them."""

    partition_id: str
    site_id: str
    country: str
    gpu_model: str
    gpus: int
    eur_per_gpu_hour: float
    energy_eur_per_gpu_hour: float
    capital_eur_per_gpu_hour: float
    operating_eur_per_gpu_hour: float
    kwh_per_gpu_hour: float
    kg_co2_per_gpu_hour: float
    figures: tuple[FigureView, ...]


def _figure_view(name: str, figure: Figure | DateFigure) -> FigureView:
    if isinstance(figure, DateFigure):
        return FigureView(
            name,
            figure.value.isoformat(),
            figure.source,
            figure.assumption,
            None,
            figure.confidence,
        )
    return FigureView(
        name, figure.value, figure.source, figure.assumption, figure.period, figure.confidence
    )


def view_of(cost: PartitionCost) -> PartitionCostView:
    return PartitionCostView(
        partition_id=cost.partition_id,
        site_id=cost.site_id,
        country=cost.country,
        gpu_model=cost.gpu_model,
        gpus=cost.gpus,
        eur_per_gpu_hour=cost.eur_per_gpu_hour,
        energy_eur_per_gpu_hour=cost.energy_eur_per_gpu_hour,
        capital_eur_per_gpu_hour=cost.capital_eur_per_gpu_hour,
        operating_eur_per_gpu_hour=cost.operating_eur_per_gpu_hour,
        kwh_per_gpu_hour=cost.kwh_per_gpu_hour,
        kg_co2_per_gpu_hour=cost.kg_co2_per_gpu_hour,
        figures=tuple(_figure_view(n, f) for n, f in cost.figures().items()),
    )


def cost_fields(view: PartitionCostView | None) -> dict[str, float]:
    """The per-GPU-hour figures a partition's row in the sites list carries (none: unpriced)."""
    if view is None:
        return {}
    return {
        "eur_per_gpu_hour": view.eur_per_gpu_hour,
        "energy_eur_per_gpu_hour": view.energy_eur_per_gpu_hour,
        "capital_eur_per_gpu_hour": view.capital_eur_per_gpu_hour,
        "operating_eur_per_gpu_hour": view.operating_eur_per_gpu_hour,
        "kwh_per_gpu_hour": view.kwh_per_gpu_hour,
        "kg_co2_per_gpu_hour": view.kg_co2_per_gpu_hour,
    }


def partition_costs(ctx: ServiceContext, principal: Principal) -> list[PartitionCostView]:
    """Every catalogue partition's cost breakdown with its sources, in catalogue order
    (a cost model that cannot be read: the file's problem for programme operators only)."""
    model = cost_model_of(ctx.catalogue, principal)
    return [view_of(model.partitions[p.id]) for s in ctx.catalogue.sites for p in s.partitions]


def site_partition_costs(ctx: ServiceContext) -> dict[str, PartitionCostView]:
    """Costs by partition id for the sites list; empty when the cost model cannot be read
    (logged once), so that the sites stay listed."""
    try:
        model = cost_model_of(ctx.catalogue)
    except ConfigurationError:
        return {}
    return {pid: view_of(cost) for pid, cost in model.partitions.items()}

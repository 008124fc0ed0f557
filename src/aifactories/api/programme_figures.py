"""REST endpoint: the programme's figures over a period (programme operators)."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from aifactories.api.deps import Ctx, Me
from aifactories.domain.clock import to_datetime
from aifactories.domain.errors import InvalidInput
from aifactories.services.fund.programme_figures import programme_figures
from aifactories.services.fund.programme_figures_values import ProgrammeFigures
from aifactories.services.notifications.audit import parse_time

router = APIRouter(tags=["programme"])


class MeasureOut(BaseModel):
    family: str
    key: str
    metric: str
    value: float | None  # None: no value (never a NaN in JSON)
    unit: str


class ProgrammeFiguresOut(BaseModel):
    period_from: str = Field(description="start of the period, inclusive (ISO 8601, UTC)")
    period_to: str = Field(description="end of the period, exclusive")
    as_of: str = Field(description="only what was recorded by then counts")
    rows: list[MeasureOut]
    notes: list[str]

    @classmethod
    def of(cls, figures: ProgrammeFigures) -> ProgrammeFiguresOut:
        return cls(
            period_from=to_datetime(figures.start).isoformat(),
            period_to=to_datetime(figures.end).isoformat(),
            as_of=to_datetime(figures.as_of).isoformat(),
            rows=[
                MeasureOut(
                    family=r.family,
                    key=r.key,
                    metric=r.metric,
                    value=r.value if math.isfinite(r.value) else None,
                    unit=r.unit,
                )
                for r in figures.rows()
            ],
            notes=figures.notes,
        )


def _required(text: str, field: str) -> float:
    when = parse_time(text, field)
    if when is None:
        raise InvalidInput(field, "give a date or time", "ISO 8601, for example 2026-01-01")
    return when


@router.get("/programme/figures", response_model=ProgrammeFiguresOut)
def get_programme_figures(
    context: Ctx,
    who: Me,
    period_from: Annotated[
        str, Query(alias="from", min_length=1, max_length=64, description="ISO date, inclusive")
    ],
    period_to: Annotated[
        str, Query(alias="to", min_length=1, max_length=64, description="ISO date, exclusive")
    ],
    as_of: Annotated[
        str | None,
        Query(
            max_length=64,
            description="only what was recorded by this ISO time counts (default: now)",
        ),
    ] = None,
) -> ProgrammeFiguresOut:
    """The programme's figures for [from, to) as the books stood at ``as_of`` (programme
    operators): one long table of family, key, metric, value and unit (docs/fund.md)."""
    figures = programme_figures(
        context,
        who,
        start=_required(period_from, "from"),
        end=_required(period_to, "to"),
        as_of=parse_time(as_of, "as_of"),
    )
    return ProgrammeFiguresOut.of(figures)

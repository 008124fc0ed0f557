"""Where ``aif invest`` takes its demand from, as options (the CLI's) and as the API's body: a
plan file with, beside it, ``demand_from`` (``file``, the default: its ``demand`` rows;
``programme``: the proposals in the database; ``twin``: the twin's workload), ``as_of``,
``growth``, ``window_days`` and ``seed`` (fund/demand_rules.py states the rule). Validated
with errors that name the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from aifactories.domain.errors import InvalidInput
from aifactories.fund.demand_rules import DEFAULT_WINDOW_DAYS, DemandSource
from aifactories.fund.invest_scenario import DemandEntry, InvestScenario

# A yearly rate: the plan file's own bounds (invest_scenario.InvestScenario.growth_rate).
Growth = Annotated[float, Field(ge=-0.5, le=2, allow_inf_nan=False)]
WindowDays = Annotated[int, Field(ge=1, le=3660)]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]


def _plausible(value: datetime | None) -> datetime | None:
    if value is not None and not 2000 <= value.year <= 2100:
        raise ValueError("a date between the years 2000 and 2100")
    return value


AsOf = Annotated[datetime | None, AfterValidator(_plausible)]


class DemandOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    demand_from: DemandSource = DemandSource.FILE
    as_of: AsOf = Field(None, description="the demand's date (default now); no zone: UTC")
    growth: Growth | None = Field(None, description="yearly growth; default the file's")
    window_days: WindowDays = Field(
        DEFAULT_WINDOW_DAYS, description="the proposals' trailing window before as_of"
    )
    seed: Seed = Field(0, description="the twin's workload's seed")


class InvestRequest(InvestScenario):
    """``POST /fund/invest``'s body: a plan file, and where its demand comes from. With a
    demand from the programme or the twin the file's ``demand`` may be left out (the derived
    rows replace it; build_problem's ``demand``)."""

    demand: list[DemandEntry] = Field(default_factory=list)
    demand_from: DemandSource = DemandSource.FILE
    as_of: AsOf = None
    growth: Growth | None = None
    window_days: WindowDays = DEFAULT_WINDOW_DAYS
    seed: Seed = 0

    @model_validator(mode="after")
    def _file_has_rows(self) -> InvestRequest:
        if self.demand_from is DemandSource.FILE and not self.demand:
            raise ValueError("demand: no rows; give some, or demand_from programme or twin")
        return self

    def options(self) -> DemandOptions:
        return DemandOptions.model_validate(
            {name: getattr(self, name) for name in DemandOptions.model_fields}
        )


def demand_options(
    demand_from: DemandSource | str,
    as_of: str | datetime | None = None,
    growth: float | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    seed: int = 0,
) -> DemandOptions:
    """The CLI's options, validated as the API's: an :class:`InvalidInput` names the option."""
    given = {
        "demand_from": demand_from,
        "as_of": as_of,
        "growth": growth,
        "window_days": window_days,
        "seed": seed,
    }
    try:
        return DemandOptions.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "demand"
        raise InvalidInput(name, str(first["msg"])) from None

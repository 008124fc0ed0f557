"""A plan file for ``aif invest``: budget, years, caps, demand and candidates, in YAML (or the
same as JSON through the API), validated with errors that name the field.

Figures a candidate does not give come from its accelerator model's entry in the file
(``accelerator_models``), else from the cost model (``fund/cost_model.py``: capital, kW, life
and operating share per accelerator; electricity price and carbon per country; the default
PUE). A model's ``speed`` (reference GPU-hours per hour of it) is the file's to state: the
demand is counted in reference GPU-hours, the catalogue's billing unit (an A100 hour is 1).
Today's capacity is listed in the file, or read from the catalogue's operational partitions
(``existing.from_catalogue``), each counted at its billing weight unless the file gives its
model's speed.

Per module of a candidate (``module`` accelerators; all of them if not given: all or
nothing), with u its utilisation and a year of 8,766 hours::

    capital                = capital per accelerator x module (or the candidate's capital_eur,
                             pro rata)
    kW at the wall         = kW per accelerator x PUE x module
    MWh a year             = kW at the wall x 8,766 h x u / 1000 (drawn while busy)
    energy EUR a year      = MWh a year x the country's electricity price
    carbon t a year        = MWh a year x the country's g CO2/kWh / 1000
    operating EUR a year   = capital x operating share (electricity apart)
    GPU-hours a year       = module x 8,766 h x u x speed
    serves                 from_year to from_year + life - 1 (or until_year)
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aifactories.catalogue.loader import Catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.fund.cost_model import CostModel
from aifactories.fund.investment_model import (
    HOURS_PER_YEAR,
    Candidate,
    CandidateKind,
    Demand,
    ExistingCapacity,
    InvestmentProblem,
    Objective,
    Residency,
)
from aifactories.fund.investment_wait import MEAN_JOB_HOURS

Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166 code, e.g. DE")]
Name = Annotated[str, Field(min_length=1, max_length=64)]
# Figures above 1e15 (EUR, GPU-hours, MWh, t CO2) are no plan's: the bound keeps the solver's
# numbers finite and within the range it can compare (a 500 otherwise).
LARGEST = 1e15
Positive = Annotated[float, Field(gt=0, le=LARGEST, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, le=LARGEST, allow_inf_nan=False)]
Share = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Year = Annotated[int, Field(ge=2000, le=2100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AcceleratorModelEntry(_Strict):
    speed: Annotated[float, Field(ge=0.001, le=1000, allow_inf_nan=False)] = Field(
        description="reference (A100) GPU-hours one hour of it serves"
    )
    capital_eur: Positive | None = Field(None, description="per accelerator; else cost model")
    kw: Positive | None = Field(None, description="per accelerator with its node share")
    life_years: Positive | None = None
    operating_share: NonNegative | None = None
    note: str | None = None


class CountryEntry(_Strict):
    electricity_eur_per_mwh: NonNegative | None = None
    carbon_g_per_kwh: NonNegative | None = None
    note: str | None = None


class ExistingSite(_Strict):
    site: Name
    country: Country
    gpu_model: Name
    accelerators: Annotated[int, Field(gt=0)]
    until_year: Year | None = None


class ExistingEntry(_Strict):
    from_catalogue: bool = False
    utilisation: Share = 0.7
    sites: list[ExistingSite] = []


class DemandEntry(_Strict):
    country: Country
    priority: Name
    gpu_hours_per_year: NonNegative
    residency: Residency = Residency.ANY
    note: str | None = None


class CandidateEntry(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    kind: CandidateKind = CandidateKind.NEW_SITE
    site: Name | None = None
    country: Country
    gpu_model: Name
    accelerators: Annotated[int, Field(gt=0, le=10_000_000)]
    module: Annotated[int, Field(gt=0)] | None = Field(None, description="None: all or nothing")
    from_year: Year
    until_year: Year | None = None
    utilisation: Share | None = None
    pue: Annotated[float, Field(ge=1, le=3)] | None = None
    capital_eur: Positive | None = Field(None, description="for all its accelerators")
    kw: Positive | None = Field(None, description="for all its accelerators, before PUE")
    operating_eur_per_year: NonNegative | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _modules(self) -> CandidateEntry:
        if self.module is not None and self.accelerators % self.module:
            raise ValueError(
                f"accelerators ({self.accelerators}) must be a whole number of modules "
                f"of {self.module}"
            )
        if self.kind is CandidateKind.UPGRADE and self.module not in (None, self.accelerators):
            raise ValueError("an upgrade is all or nothing: leave 'module' out")
        return self


class CapsEntry(_Strict):
    energy_mwh_per_year: Positive | None = None
    carbon_t_per_year: Positive | None = None
    country_max_share: Share | None = None
    min_countries: Annotated[int, Field(ge=1, le=50)] | None = None
    site_power_mw: dict[Name, Positive] = {}


class InvestScenario(_Strict):
    name: Name
    description: str = ""
    years: Annotated[list[Year], Field(min_length=1, max_length=30)]
    budget_eur: NonNegative
    budget_by_year_eur: list[NonNegative] | None = None
    # a yearly rate; beyond these, 30 years of it span more orders of magnitude than a
    # solver's tolerances can tell apart
    growth_rate: Annotated[float, Field(ge=-0.5, le=2)] = 0.0
    priorities: Annotated[dict[Name, NonNegative], Field(min_length=1)]
    away_penalty: Annotated[float, Field(ge=0, le=1)] = 0.0
    objective: Objective = Field(
        Objective.SERVED,
        description="served (priority-weighted) or mean_wait (fund/investment_wait.py)",
    )
    mean_job_hours: Annotated[float, Field(gt=0, le=HOURS_PER_YEAR)] = Field(
        MEAN_JOB_HOURS, description="mean_wait: the queue's mean job length, hours"
    )
    utilisation: Share = 0.7
    pue: Annotated[float, Field(ge=1, le=3)] | None = None
    caps: CapsEntry = CapsEntry()
    accelerator_models: dict[Name, AcceleratorModelEntry] = {}
    countries: dict[Country, CountryEntry] = {}
    existing: ExistingEntry = ExistingEntry()
    demand: Annotated[list[DemandEntry], Field(min_length=1)]
    candidates: list[CandidateEntry]


def _where(loc: tuple[int | str, ...], data: Any) -> str:
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            label = f"[{key}]"
            if isinstance(node, list) and key < len(node) and isinstance(node[key], dict):
                ident = node[key].get("id")
                label += f" ({ident})" if ident else ""
            parts.append(label)
        else:
            parts.append(f".{key}" if parts else str(key))
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = None
    return "".join(parts) or "scenario"


def parse_scenario(data: object, source: str = "scenario") -> InvestScenario:
    """Validate parsed YAML or JSON; an :class:`InvalidInput` names the first bad field and
    lists every problem."""
    if not isinstance(data, dict):
        raise InvalidInput(source, "a plan file is a mapping (name, years, budget_eur, ...)")
    try:
        return InvestScenario.model_validate(data)
    except ValidationError as exc:
        problems = [(_where(tuple(e["loc"]), data), e["msg"]) for e in exc.errors()]
        listed = "; ".join(f"{where}: {msg}" for where, msg in problems)
        raise InvalidInput(problems[0][0], f"{source}: {listed}") from None


def load_scenario(path: Path | None = None) -> InvestScenario:
    """A plan file; without ``path`` the packaged InvestAI case (fund/data/investai.yaml)."""
    if path is None:
        text = resources.files("aifactories.fund").joinpath("data/investai.yaml").read_text()
        source = "investai.yaml"
    else:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput("scenario", f"{path}: cannot read it ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput("scenario", f"{source}: not valid YAML: {exc}") from None
    return parse_scenario(data, source)


class _Figures:
    """Each figure from the file if it gives one, else from the cost model."""

    def __init__(self, s: InvestScenario, costs: CostModel | None) -> None:
        self.s, self.costs = s, costs

    def _need(self, field: str) -> CostModel:
        if self.costs is None:
            raise InvalidInput(field, "not given, and no cost model to take it from")
        return self.costs

    def model(self, gpu_model: str, name: str) -> float:
        entry = self.s.accelerator_models.get(gpu_model)
        given = None if entry is None else getattr(entry, name)
        if given is not None:
            return float(given)
        field = f"accelerator_models.{gpu_model}.{name}"
        if name == "speed":
            raise InvalidInput(field, "the file must state each new model's speed", "> 0")
        return float(getattr(self._need(field).accelerator(gpu_model), name).value)

    def country(self, country: str, name: str) -> float:
        entry = self.s.countries.get(country)
        given = None if entry is None else getattr(entry, name)
        if given is not None:
            return float(given)
        costs = self._need(f"countries.{country}.{name}")
        figure = costs.electricity(country) if name.startswith("electricity") else None
        return float((figure or costs.carbon(country)).value)

    def pue(self, own: float | None) -> float:
        if own is not None or self.s.pue is not None:
            return float(own if own is not None else self.s.pue)  # type: ignore[arg-type]
        return float(self._need("pue").default_pue.value)


def _candidate(e: CandidateEntry, f: _Figures, s: InvestScenario) -> Candidate:
    module = e.module or e.accelerators
    share = module / e.accelerators
    u = e.utilisation if e.utilisation is not None else s.utilisation
    capital = (
        e.capital_eur * share if e.capital_eur else f.model(e.gpu_model, "capital_eur") * module
    )
    kw = (e.kw * share if e.kw else f.model(e.gpu_model, "kw") * module) * f.pue(e.pue)
    mwh = kw * HOURS_PER_YEAR * u / 1000.0
    if e.operating_eur_per_year is not None:
        operating = e.operating_eur_per_year * share
    else:
        operating = capital * f.model(e.gpu_model, "operating_share")
    until = e.until_year
    if until is None:
        until = e.from_year + max(round(f.model(e.gpu_model, "life_years")), 1) - 1
    return Candidate(
        id=e.id,
        kind=e.kind,
        site=e.site or e.id,
        country=e.country,
        gpu_model=e.gpu_model,
        accelerators_per_module=module,
        max_modules=e.accelerators // module,
        from_year=e.from_year,
        until_year=until,
        capital_eur=capital,
        operating_eur_per_year=operating,
        energy_eur_per_year=mwh * f.country(e.country, "electricity_eur_per_mwh"),
        kw=kw,
        gpu_hours_per_year=module * HOURS_PER_YEAR * u * f.model(e.gpu_model, "speed"),
        mwh_per_year=mwh,
        carbon_t_per_year=mwh * f.country(e.country, "carbon_g_per_kwh") / 1000.0,
        utilisation=u,
    )


def _existing(s: InvestScenario, catalogue: Catalogue | None) -> list[ExistingCapacity]:
    u, out = s.existing.utilisation, []

    def speed(gpu_model: str, billing_weight: float) -> float:
        entry = s.accelerator_models.get(gpu_model)
        return entry.speed if entry is not None else billing_weight

    if s.existing.from_catalogue:
        if catalogue is None:
            raise InvalidInput("existing.from_catalogue", "no catalogue was given to read")
        for p in catalogue.operational_partitions:
            site = catalogue.site(p.site_id)
            hours = p.total_gpus * HOURS_PER_YEAR * u * speed(p.gpu_model, p.billing_weight)
            country = site.country if site is not None else ""
            out.append(ExistingCapacity(str(p.id), country, p.gpu_model, p.total_gpus, hours))
    for i, e in enumerate(s.existing.sites):
        entry = s.accelerator_models.get(e.gpu_model)
        if entry is None:
            raise InvalidInput(
                f"existing.sites[{i}].gpu_model",
                f"{e.gpu_model!r} has no entry in accelerator_models to give its speed",
            )
        hours = e.accelerators * HOURS_PER_YEAR * u * entry.speed
        out.append(
            ExistingCapacity(e.site, e.country, e.gpu_model, e.accelerators, hours, e.until_year)
        )
    return out


def build_problem(
    s: InvestScenario,
    *,
    costs: CostModel | None = None,
    catalogue: Catalogue | None = None,
    budget_eur: float | None = None,
    demand: Sequence[Demand] | None = None,
    growth_rate: float | None = None,
    objective: Objective | None = None,
) -> InvestmentProblem:
    """The optimiser's problem from a plan file; ``budget_eur``, ``demand`` (rows derived
    elsewhere: fund/demand_rules.py), ``growth_rate`` and ``objective`` replace the file's."""
    figures = _Figures(s, costs)
    candidates = []
    for i, e in enumerate(s.candidates):
        try:
            candidates.append(_candidate(e, figures, s))
        except InvalidInput as exc:  # name the candidate too
            raise InvalidInput(exc.field, f"{exc.detail} (candidates[{i}] ({e.id}))") from None
    return InvestmentProblem(
        years=tuple(s.years),
        budget_eur=s.budget_eur if budget_eur is None else budget_eur,
        candidates=tuple(candidates),
        demand=tuple(
            (Demand(d.country, d.priority, d.gpu_hours_per_year, d.residency) for d in s.demand)
            if demand is None
            else demand
        ),
        priority_weights=dict(s.priorities),
        existing=tuple(_existing(s, catalogue)),
        growth_rate=s.growth_rate if growth_rate is None else growth_rate,
        budget_by_year_eur=None if s.budget_by_year_eur is None else tuple(s.budget_by_year_eur),
        energy_cap_mwh_per_year=s.caps.energy_mwh_per_year,
        carbon_cap_t_per_year=s.caps.carbon_t_per_year,
        country_max_share=s.caps.country_max_share,
        min_countries=s.caps.min_countries,
        site_power_kw={k: v * 1000.0 for k, v in s.caps.site_power_mw.items()},
        away_penalty=s.away_penalty,
        objective=s.objective if objective is None else objective,
        mean_job_hours=s.mean_job_hours,
    )

"""The investment problem and its plan: what ``aif invest`` optimises and what it answers.

Plain values, checked when built (an :class:`InvalidInput` names the field). Figures of a
candidate are per *module* (the step in which it can be built: all of it for an all-or-nothing
candidate), so that the optimiser multiplies them by the number of modules it chooses. GPU-hours
here are *reference* GPU-hours: an hour of a GPU model counts as its ``speed`` times an hour of
the reference model, so that demand can be served by any model. Money is float euros.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aifactories.domain.errors import InvalidInput
from aifactories.domain.units import HOURS_PER_YEAR as HOURS_PER_YEAR  # the plan files' year
from aifactories.fund.investment_cheapest import TieBreak
from aifactories.fund.investment_wait import MEAN_JOB_HOURS, WaitFigures

EU_COUNTRIES = frozenset(
    {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU"}
    | {"IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"}
)
"""The 27 member states (ISO codes; Greece as GR, as the catalogue writes it)."""


class Residency(StrEnum):
    """Where a demand's GPU-hours may be served."""

    ANY = "any"  # anywhere in the federation (EuroHPC participating states included)
    EU = "eu"  # in an EU member state
    COUNTRY = "country"  # in the demand's own country


class Objective(StrEnum):
    """What the plan optimises (investment.py, investment_wait.py)."""

    SERVED = "served"  # the most priority-weighted GPU-hours served
    MEAN_WAIT = "mean_wait"  # the lowest mean wait per GPU-hour asked (the model's queue)


class CandidateKind(StrEnum):
    NEW_SITE = "new_site"  # a gigafactory, possibly built in modules
    UPGRADE = "upgrade"  # an existing site's upgrade, all or nothing
    EXPANSION = "expansion"  # more accelerators of a model at an existing site, in modules


@dataclass(frozen=True, slots=True)
class Candidate:
    """One candidate investment; every figure is per module of ``accelerators_per_module``."""

    id: str
    kind: CandidateKind
    site: str
    country: str
    gpu_model: str
    accelerators_per_module: int
    max_modules: int  # 1: all or nothing
    from_year: int  # first year it serves; its capital is spent that year
    until_year: int | None  # last year it serves; None: to the end of the horizon
    capital_eur: float
    operating_eur_per_year: float  # staff, maintenance, licences; no electricity
    energy_eur_per_year: float
    kw: float  # at the wall (PUE included)
    gpu_hours_per_year: float  # delivered at the stated utilisation, reference GPU-hours
    mwh_per_year: float
    carbon_t_per_year: float
    utilisation: float = 1.0  # the utilisation its GPU-hours and energy are counted at

    def __post_init__(self) -> None:
        where = f"candidates[{self.id}]"
        if self.accelerators_per_module <= 0 or self.max_modules <= 0:
            raise InvalidInput(where, "needs at least one module of at least one accelerator")
        if self.until_year is not None and self.until_year < self.from_year:
            raise InvalidInput(f"{where}.until_year", "is before its from_year")
        for name in ("capital_eur", "operating_eur_per_year", "energy_eur_per_year", "kw"):
            if getattr(self, name) < 0:
                raise InvalidInput(f"{where}.{name}", "must not be negative", ">= 0")
        if self.gpu_hours_per_year <= 0:
            raise InvalidInput(f"{where}.gpu_hours_per_year", "must be positive", "> 0")

    def serves(self, year: int) -> bool:
        return self.from_year <= year and (self.until_year is None or year <= self.until_year)

    @property
    def max_accelerators(self) -> int:
        return self.accelerators_per_module * self.max_modules


@dataclass(frozen=True, slots=True)
class ExistingCapacity:
    """Capacity already there (today's factories), serving every year up to ``until_year``."""

    site: str
    country: str
    gpu_model: str
    accelerators: int
    gpu_hours_per_year: float  # reference GPU-hours, at its utilisation
    until_year: int | None = None


@dataclass(frozen=True, slots=True)
class Demand:
    """GPU-hours a year of one priority class from one country, in the horizon's first year;
    later years grow by the problem's ``growth_rate``."""

    country: str
    priority: str
    gpu_hours_per_year: float
    residency: Residency = Residency.ANY


@dataclass(frozen=True, slots=True)
class InvestmentProblem:
    years: tuple[int, ...]  # consecutive, the first is the demand's base year
    budget_eur: float
    candidates: tuple[Candidate, ...]
    demand: tuple[Demand, ...]
    priority_weights: Mapping[str, float]
    existing: tuple[ExistingCapacity, ...] = ()
    growth_rate: float = 0.0
    budget_by_year_eur: tuple[float, ...] | None = None  # unspent money carries forward
    energy_cap_mwh_per_year: float | None = None  # of the new capacity, every year
    carbon_cap_t_per_year: float | None = None  # of the new capacity, every year
    country_max_share: float | None = None  # of the new accelerators, per country
    min_countries: int | None = None  # countries with new capacity, at least
    site_power_kw: Mapping[str, float] = field(default_factory=dict)  # new draw per site
    away_penalty: float = 0.0  # share of a demand's weight lost when served abroad
    eu_countries: frozenset[str] = EU_COUNTRIES
    objective: Objective = Objective.SERVED
    mean_job_hours: float = MEAN_JOB_HOURS  # the queue's job length, for Objective.MEAN_WAIT

    def __post_init__(self) -> None:
        if not 0 < self.mean_job_hours <= HOURS_PER_YEAR:
            raise InvalidInput("mean_job_hours", "is the mean length of a job", "(0, 8766] h")
        if not self.years or list(self.years) != list(
            range(self.years[0], self.years[0] + len(self.years))
        ):
            raise InvalidInput(
                "years", "must be consecutive years, first to last", "e.g. 2027..2031"
            )
        if self.budget_eur < 0:
            raise InvalidInput("budget_eur", "must not be negative", ">= 0")
        if self.budget_by_year_eur is not None and len(self.budget_by_year_eur) != len(self.years):
            raise InvalidInput(
                "budget_by_year_eur", "needs one amount per year", f"{len(self.years)}"
            )
        if self.growth_rate <= -1:
            raise InvalidInput("growth_rate", "must be above -1 (a yearly rate)", "> -1")
        if not 0 <= self.away_penalty <= 1:
            raise InvalidInput("away_penalty", "is a share of the weight", "0..1")
        if self.country_max_share is not None and not 0 < self.country_max_share <= 1:
            raise InvalidInput("country_max_share", "is a share of the new accelerators", "(0, 1]")
        ids = [c.id for c in self.candidates]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise InvalidInput("candidates", f"ids must be unique, repeated: {', '.join(repeated)}")
        for i, d in enumerate(self.demand):
            if d.priority not in self.priority_weights:
                known = ", ".join(sorted(self.priority_weights))
                raise InvalidInput(f"demand[{i}].priority", f"unknown class {d.priority!r}", known)
            if d.gpu_hours_per_year < 0:
                raise InvalidInput(f"demand[{i}].gpu_hours_per_year", "must not be negative")
        for name, weight in self.priority_weights.items():
            if weight < 0:
                raise InvalidInput(f"priorities.{name}", "a weight must not be negative", ">= 0")

    def demand_in(self, demand: Demand, year: int) -> float:
        """GPU-hours of ``demand`` in ``year``, grown from the first year."""
        return demand.gpu_hours_per_year * (1.0 + self.growth_rate) ** (year - self.years[0])


@dataclass(frozen=True, slots=True)
class AddedPartition:
    """New capacity as the twin would add it: the boundary for checking a plan in the twin."""

    candidate_id: str
    site: str
    country: str
    gpu_model: str
    accelerators: int
    from_year: int
    until_year: int | None


@dataclass(frozen=True, slots=True)
class CandidateOutcome:
    """A candidate in the plan: modules chosen and why."""

    candidate: Candidate
    modules: int
    # capital per weighted GPU-hour (mean_wait: per hour of mean wait saved); None: adds none
    eur_per_weighted_gpu_hour: float | None
    reason: str

    @property
    def taken(self) -> bool:
        return self.modules > 0

    @property
    def accelerators(self) -> int:
        return self.modules * self.candidate.accelerators_per_module

    @property
    def capital_eur(self) -> float:
        return self.modules * self.candidate.capital_eur

    @property
    def gpu_hours_per_year(self) -> float:
        return self.modules * self.candidate.gpu_hours_per_year

    def as_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "id": c.id,
            "kind": c.kind.value,
            "site": c.site,
            "country": c.country,
            "gpu_model": c.gpu_model,
            "from_year": c.from_year,
            "until_year": c.until_year,
            "taken": self.taken,
            "modules": self.modules,
            "max_modules": c.max_modules,
            "accelerators": self.accelerators,
            "capital_eur": self.capital_eur,
            "gpu_hours_per_year": self.gpu_hours_per_year,
            "operating_eur_per_year": self.modules * c.operating_eur_per_year,
            "energy_eur_per_year": self.modules * c.energy_eur_per_year,
            "mwh_per_year": self.modules * c.mwh_per_year,
            "carbon_t_per_year": self.modules * c.carbon_t_per_year,
            "eur_per_weighted_gpu_hour": self.eur_per_weighted_gpu_hour,
            "why": self.reason,
        }


@dataclass(frozen=True, slots=True)
class ConstraintState:
    """One constraint at the plan: how much of it is used and whether it holds the plan back."""

    name: str
    used: float
    limit: float
    unit: str
    binding: bool
    text: str


@dataclass(frozen=True, slots=True)
class ServedByClass:
    """Demand and served GPU-hours of one priority class in one year, before and after."""

    priority: str
    year: int
    demand_gpu_hours: float
    served_gpu_hours: float
    baseline_served_gpu_hours: float  # with today's capacity only


@dataclass(frozen=True, slots=True)
class InvestmentPlan:
    outcomes: tuple[CandidateOutcome, ...]
    constraints: tuple[ConstraintState, ...]
    served: tuple[ServedByClass, ...]
    # served: priority-weighted GPU-hours served over the horizon; mean_wait: hours of mean
    # wait per GPU-hour asked (the model's estimate, investment_wait.py)
    objective: float
    baseline_objective: float  # the same with no investment
    weighted_demand: float  # priority-weighted GPU-hours asked (mean_wait: unweighted)
    budget_eur: float
    objective_text: str
    status: str  # optimal (within mip_rel_gap), feasible (a plan, gap above it) or time_limit
    mip_gap: float  # relative, as HiGHS proved it
    dual_bound: float  # HiGHS' bound on the objective: no plan does better than this
    solver: str
    solve_seconds: float
    objective_kind: Objective = Objective.SERVED
    wait: WaitFigures | None = None  # mean_wait: the plan's wait, split
    baseline_wait: WaitFigures | None = None  # mean_wait: today's capacity alone
    tie_break: TieBreak | None = None  # the cheapest of the plans within the gap (the 2nd stage)

    @property
    def capital_eur(self) -> float:
        return sum(o.capital_eur for o in self.outcomes)

    @property
    def added(self) -> tuple[AddedPartition, ...]:
        """The partitions the plan adds (the twin's before/after check starts from these)."""
        return tuple(
            AddedPartition(
                o.candidate.id,
                o.candidate.site,
                o.candidate.country,
                o.candidate.gpu_model,
                o.accelerators,
                o.candidate.from_year,
                o.candidate.until_year,
            )
            for o in self.outcomes
            if o.taken
        )

    @property
    def binding(self) -> tuple[ConstraintState, ...]:
        return tuple(c for c in self.constraints if c.binding)

    def summary(self) -> list[str]:
        """The objective in words: what the plan reaches, today's capacity alone, how close
        HiGHS proved it to the best (its relative gap and dual bound), and the tie-break."""
        tie = [] if self.tie_break is None else [self.tie_break.text()]
        return self._objective_summary() + tie

    def _objective_summary(self) -> list[str]:
        years = sorted({s.year for s in self.served})
        span = f"{years[0]}-{years[-1]}" if years else "the horizon"
        if self.wait is not None and self.baseline_wait is not None:
            w, b = self.wait, self.baseline_wait
            return [
                f"mean wait {span}: {w.mean_wait_h:,.1f} h per GPU-hour asked (queueing "
                f"{w.queue_h:,.1f} h, unserved {w.unserved_h:,.1f} h: {w.unserved_share:.1%} "
                f"of the GPU-hours asked); the GPU-hours served wait {w.served_wait_h:,.1f} h",
                f"today's capacity alone: {b.mean_wait_h:,.1f} h (queueing {b.queue_h:,.1f} h, "
                f"unserved {b.unserved_h:,.1f} h: {b.unserved_share:.1%}); the model's "
                "estimate, not the twin's (--check runs the plan in the twin)",
                f"proven: within {self.mip_gap:.2%} of the best; no plan waits less than "
                f"{self.dual_bound:,.2f} h (HiGHS' dual bound)",
            ]
        share = self.objective / self.weighted_demand if self.weighted_demand else 0.0
        base = self.baseline_objective / self.weighted_demand if self.weighted_demand else 0.0
        return [
            f"weighted GPU-hours served {span}: {self.objective / 1e9:,.2f} bn of "
            f"{self.weighted_demand / 1e9:,.2f} bn asked ({share:.0%}); today's capacity alone "
            f"{self.baseline_objective / 1e9:,.2f} bn ({base:.0%})",
            f"proven: within {self.mip_gap:.2%} of the best; no plan serves more than "
            f"{self.dual_bound / 1e9:,.3f} bn (HiGHS' dual bound)",
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "objective_kind": self.objective_kind.value,
            # the unit of "objective" and of each candidate's "eur_per_weighted_gpu_hour"
            "objective_unit": (
                "hours of mean wait per GPU-hour asked (candidates: EUR per hour saved)"
                if self.objective_kind is Objective.MEAN_WAIT
                else "weighted GPU-hours served (candidates: EUR per weighted GPU-hour)"
            ),
            "objective": self.objective,
            "dual_bound": self.dual_bound,
            "wait": None if self.wait is None else self.wait.as_dict(),
            "baseline_wait": None if self.baseline_wait is None else self.baseline_wait.as_dict(),
            "baseline_objective": self.baseline_objective,
            "tie_break": None if self.tie_break is None else self.tie_break.as_dict(),
            "weighted_demand": self.weighted_demand,
            "objective_text": self.objective_text,
            "budget_eur": self.budget_eur,
            "capital_eur": self.capital_eur,
            "mip_gap": self.mip_gap,
            "solver": self.solver,
            "solve_seconds": self.solve_seconds,
            "candidates": [o.as_dict() for o in self.outcomes],
            "added_partitions": [
                {
                    "candidate_id": a.candidate_id,
                    "site": a.site,
                    "country": a.country,
                    "gpu_model": a.gpu_model,
                    "accelerators": a.accelerators,
                    "from_year": a.from_year,
                    "until_year": a.until_year,
                }
                for a in self.added
            ],
            "constraints": [
                {
                    "name": c.name,
                    "used": c.used,
                    "limit": c.limit,
                    "unit": c.unit,
                    "binding": c.binding,
                    "text": c.text,
                }
                for c in self.constraints
            ],
            "served": [
                {
                    "priority": s.priority,
                    "year": s.year,
                    "demand_gpu_hours": s.demand_gpu_hours,
                    "served_gpu_hours": s.served_gpu_hours,
                    "baseline_served_gpu_hours": s.baseline_served_gpu_hours,
                }
                for s in self.served
            ],
        }

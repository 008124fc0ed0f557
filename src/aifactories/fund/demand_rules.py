"""The demand of ``aif invest`` from the platform's own data: the programme's proposals or the
twin's workload, turned into the plan file's demand rows (reference GPU-hours a year in the
plan's first year, per country, priority class and residency). Pure: plain records in, rows
and the sentence that states the rule out; services/fund/invest_demand.py reads the records.

The rule, for either source (the printed plan says it with its figures):

- **What counts.** The programme: every proposal submitted in the trailing window (default
  the 365 days before ``as_of``) that still stands as a request: whatever its decision
  (awarded, rejected, under review, ...) but not withdrawn (its applicant took it back) nor
  failing its automated checks (not a valid request until fixed; once submitted again it
  counts at that submission). Requests, not awards: awards are capped by today's capacity and
  the calls' budgets, the very thing an investment changes, so they would hide the demand a
  plan is for. The twin: every job of the trace, over the trace's span.
- **GPU-hours.** A proposal's requested GPU-hours are in the programme's billing unit (an A100
  hour is 1, as the plan's reference GPU-hours); a trace job's GPUs x runtime, its runtime at
  reference speed (the twin's convention), in the same unit.
- **Annualised.** The hours counted over the window (or span) x 365.25 days / its days.
- **Country.** The proposal's organisation's country; a twin job's project's home country.
- **Priority class.** ``critical_domain`` when its domain is critical, else ``industrial`` for
  an industrial application, else ``other``: the plan file's classes, one per request (a
  request both critical and industrial counts as critical: the scenario's classes are
  exclusive, and the programme's weights give both classes 1.5).
- **Residency.** The request's own: no countries listed (the programme's and the twin's
  "anywhere") is ``any``; its organisation's country alone is ``country``; countries all of
  the EU is ``eu`` (the optimiser's pools are country, EU and all: a list of some member
  states is counted as the EU, the nearest pool that holds them); a list with a country
  outside the EU is ``any``.
- **Grown.** x (1 + growth rate) per year from ``as_of``'s year to the plan's first year
  (whole years; the plan grows the later years at the same rate). ``as_of`` within 30 years
  of the plan's first year (its own span), each row within the plan file's bound on a figure
  (1e15 GPU-hours a year): else an error names ``as_of`` or ``growth``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from aifactories.domain.clock import to_datetime
from aifactories.domain.errors import InvalidInput
from aifactories.fund.invest_scenario import LARGEST
from aifactories.fund.investment_model import EU_COUNTRIES, Demand, Residency

DAY_S = 86400.0
DAYS_PER_YEAR = 365.25  # annualising: the calendar's mean year
DEFAULT_WINDOW_DAYS = 365
CRITICAL, INDUSTRIAL, OTHER = "critical_domain", "industrial", "other"
PRIORITY_CLASSES = (CRITICAL, INDUSTRIAL, OTHER)
# A proposal in one of these is no standing request (see the module's rule); a draft was
# never submitted.
NOT_COUNTED = frozenset({"draft", "withdrawn", "checks_failed"})


class DemandSource(StrEnum):
    """Where ``aif invest`` takes its demand from."""

    FILE = "file"  # the plan file's demand rows (the default)
    PROGRAMME = "programme"  # the programme's proposals in the database
    TWIN = "twin"  # the twin's workload


@dataclass(frozen=True, slots=True)
class DemandRecord:
    """One request (a proposal) or one job of the twin, as the rule needs it."""

    gpu_hours: float  # reference GPU-hours
    country: str  # its organisation's (or project's) country
    critical_domain: bool
    industrial: bool
    residency: tuple[str, ...] = ()  # countries it may run in; () anywhere
    submitted_at: float = 0.0  # epoch seconds (a proposal's submission)
    status: str = ""  # a proposal's status; "" for a twin job


@dataclass(frozen=True, slots=True)
class DerivedDemand:
    """The demand rows and what they were derived from, said in :attr:`text`."""

    source: DemandSource
    rows: tuple[Demand, ...]
    counted: int  # proposals or jobs counted
    gpu_hours: float  # counted over the window, before annualising
    per_year: float  # annualised, before growth
    growth_factor: float
    first_year: int
    text: str

    @property
    def gpu_hours_per_year(self) -> float:
        """In the plan's first year: the rows' sum."""
        return sum(d.gpu_hours_per_year for d in self.rows)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source.value,
            "rule": self.text,
            "counted": self.counted,
            "gpu_hours_counted": self.gpu_hours,
            "gpu_hours_per_year_before_growth": self.per_year,
            "growth_factor": self.growth_factor,
            "gpu_hours_per_year": self.gpu_hours_per_year,
        }


def priority_class(critical_domain: bool, industrial: bool) -> str:
    return CRITICAL if critical_domain else INDUSTRIAL if industrial else OTHER


def residency_of(countries: Sequence[str], home: str) -> Residency:
    if not countries:
        return Residency.ANY
    if set(countries) == {home}:
        return Residency.COUNTRY
    return Residency.EU if set(countries) <= EU_COUNTRIES else Residency.ANY


MAX_YEARS_APART = 30
"""The demand's year (as_of) at most this far from the plan's first year: a plan file's own
span (at most 30 years). Further, a yearly growth compounds past any figure a plan holds
(3^73 from 2027 back to 2100 at -50%: a demand of 1e21 GPU-hours a year)."""


def growth_factor(growth_rate: float, from_year: int, to_year: int) -> float:
    return float((1.0 + growth_rate) ** (to_year - from_year))


def _grown(growth_rate: float, as_of_year: int, first_year: int) -> float:
    """The growth factor from the demand's year to the plan's first, both within reach."""
    if abs(first_year - as_of_year) > MAX_YEARS_APART:
        raise InvalidInput(
            "as_of",
            f"the demand's year {as_of_year} is {abs(first_year - as_of_year)} years from the "
            f"plan's first year {first_year}: its growth would be compounded over all of them",
            limit=f"within {MAX_YEARS_APART} years of {first_year}",
        )
    return growth_factor(growth_rate, as_of_year, first_year)


def _within_reach(rows: Sequence[Demand], growth_rate: float, factor: float) -> None:
    """Each derived row within the plan file's own bound on a figure (LARGEST)."""
    largest = max((d.gpu_hours_per_year for d in rows), default=0.0)
    if largest > LARGEST:
        raise InvalidInput(
            "growth",
            f"{growth_rate:g} a year grows the demand x{factor:.3g} to {largest:.3g} GPU-hours "
            "a year in one country and class, more than a plan holds",
            limit=f"a demand of at most {LARGEST:.0e} GPU-hours a year: a lower growth, or an "
            "as_of closer to the plan's first year",
        )


def _rows(records: Iterable[DemandRecord], scale: float) -> tuple[tuple[Demand, ...], int, float]:
    hours: dict[tuple[str, str, Residency], float] = defaultdict(float)
    counted, total = 0, 0.0
    for r in records:
        key = (r.country, priority_class(r.critical_domain, r.industrial))
        hours[(*key, residency_of(r.residency, r.country))] += r.gpu_hours
        counted += 1
        total += r.gpu_hours
    rows = tuple(
        Demand(country, cls, h * scale, residency)
        for (country, cls, residency), h in sorted(hours.items())
        if h > 0
    )
    return rows, counted, total


def _millions(hours: float) -> str:
    return f"{hours / 1e6:,.2f} M" if hours >= 1e6 else f"{hours:,.0f}"


def _growth_text(growth_rate: float, as_of_year: int, first_year: int, factor: float) -> str:
    years = first_year - as_of_year
    return (
        f"grown {growth_rate:.0%}/year over {years} year{'s' if abs(years) != 1 else ''} "
        f"from {as_of_year} to {first_year} (x{factor:.3g})"
    )


def _check(window_days: float, growth_rate: float) -> None:
    if not (math.isfinite(window_days) and 1 <= window_days <= 3660):
        raise InvalidInput("window_days", f"{window_days}", limit="1 to 3660 days")
    if not (math.isfinite(growth_rate) and -0.5 <= growth_rate <= 2):
        raise InvalidInput("growth", f"{growth_rate}", limit="-0.5 to 2 (a yearly rate)")


def programme_demand(
    requests: Iterable[DemandRecord],
    *,
    as_of: float,
    first_year: int,
    growth_rate: float,
    window_days: float = DEFAULT_WINDOW_DAYS,
) -> DerivedDemand:
    """The proposals' requests submitted in ``(as_of - window_days, as_of]`` (see the module's
    rule), as demand rows of the plan's ``first_year``."""
    _check(window_days, growth_rate)
    start = as_of - window_days * DAY_S
    standing = [
        r for r in requests if start < r.submitted_at <= as_of and r.status not in NOT_COUNTED
    ]
    as_of_year = to_datetime(as_of).year
    factor = _grown(growth_rate, as_of_year, first_year)
    annual = DAYS_PER_YEAR / window_days
    rows, counted, total = _rows(standing, annual * factor)
    _within_reach(rows, growth_rate, factor)
    text = (
        f"demand: {counted:,} proposals submitted {to_datetime(start):%Y-%m-%d}.."
        f"{to_datetime(as_of):%Y-%m-%d} (all but withdrawn and failing their checks: "
        f"requests, not awards), requested {_millions(total)} GPU-hours, annualised "
        f"(x{annual:.3g}: {_millions(total * annual)} a year), by the organisation's country "
        f"and the proposal's priority class and residency, "
        f"{_growth_text(growth_rate, as_of_year, first_year, factor)}: "
        f"{_millions(total * annual * factor)} GPU-hours a year in {first_year}"
    )
    return DerivedDemand(
        DemandSource.PROGRAMME, rows, counted, total, total * annual, factor, first_year, text
    )


def workload_demand(
    jobs: Iterable[DemandRecord],
    *,
    span_days: float,
    as_of: float,
    first_year: int,
    growth_rate: float,
    workload: str,
    placement_rule: str,
) -> DerivedDemand:
    """The twin's jobs over a trace of ``span_days`` (all of them count), as demand rows of
    the plan's ``first_year``; ``workload`` names the trace and ``placement_rule`` says how its
    jobs got their country and class, for the printed rule."""
    _check(span_days, growth_rate)
    as_of_year = to_datetime(as_of).year
    factor = _grown(growth_rate, as_of_year, first_year)
    annual = DAYS_PER_YEAR / span_days
    rows, counted, total = _rows(jobs, annual * factor)
    _within_reach(rows, growth_rate, factor)
    text = (
        f"demand: the twin's workload {workload}, {counted:,} jobs over {span_days:g} days, "
        f"{_millions(total)} GPU-hours (GPUs x runtime at reference speed), annualised "
        f"(x{annual:.3g}: {_millions(total * annual)} a year), {placement_rule}, "
        f"{_growth_text(growth_rate, as_of_year, first_year, factor)}: "
        f"{_millions(total * annual * factor)} GPU-hours a year in {first_year}"
    )
    return DerivedDemand(
        DemandSource.TWIN, rows, counted, total, total * annual, factor, first_year, text
    )

"""The allocation round's values: what proposals ask for, what partitions can give, the
programme's weights, and the plan an allocator returns; plus what every allocator shares:
the round as numpy arrays, the objective, and why a proposal got less than it asked.

Months are indices into the round's horizon (0 = its first month). GPU time is in GPU-hours
here, as the panel and the optimiser reason in them; the service turns awards into GPU-seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from aifactories.domain.errors import InvalidInput

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]
Reason = Literal["capacity", "rank", "constraint"]

EPS_HOURS = 1e-3
"""GPU-hours below this (3.6 GPU-seconds) are solver round-off, not an award."""

SMALL_KINDS = frozenset({"startup", "sme"})
DEFAULT_SPREAD_FACTOR = 2.0


@dataclass(frozen=True, slots=True)
class ProposalDemand:
    """One ranked proposal of the round. ``eligible_partitions`` are the partitions meeting
    its hardware and residency needs (the caller decides); months are inclusive indices."""

    proposal_id: int
    rank: int
    score: float
    requested_gpu_hours: float
    min_award_fraction: float
    eligible_partitions: tuple[str, ...]
    preferred_sites: tuple[str, ...]
    first_month: int
    last_month: int
    industrial: bool
    critical_domain: bool
    organisation_kind: str
    country: str

    def __post_init__(self) -> None:
        where = f"proposal {self.proposal_id}"
        if self.rank < 1:
            raise InvalidInput(f"{where}.rank", "ranks start at 1 (the best)", ">= 1")
        if not self.requested_gpu_hours > 0:
            raise InvalidInput(f"{where}.requested_gpu_hours", "must be positive", "> 0")
        if not 0 < self.min_award_fraction <= 1:
            raise InvalidInput(f"{where}.min_award_fraction", "a fraction", "0 < f <= 1")
        if self.last_month < self.first_month:
            raise InvalidInput(f"{where}.last_month", "before first_month", ">= first_month")

    @property
    def period_months(self) -> int:
        return self.last_month - self.first_month + 1


@dataclass(frozen=True, slots=True)
class PartitionCapacity:
    """Free GPU-hours of one partition per month of the horizon (its capacity less what
    running allocations already hold)."""

    partition_id: str
    site_id: str
    country: str
    gpu_hours_by_month: tuple[float, ...]

    def __post_init__(self) -> None:
        if any(not hours >= 0 for hours in self.gpu_hours_by_month):
            raise InvalidInput(f"{self.partition_id}.gpu_hours_by_month", "negative", ">= 0")


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """A call's budget that several partitions share over the whole horizon: a site's own
    line, or the pool for the sites without one. The months are not split in advance, so a
    round of short proposals can still use all of it."""

    name: str
    partition_ids: tuple[str, ...]
    gpu_hours: float

    def __post_init__(self) -> None:
        if not self.gpu_hours >= 0:
            raise InvalidInput(f"budget line {self.name}.gpu_hours", "negative", ">= 0")


@dataclass(frozen=True, slots=True)
class ProgrammeWeights:
    """The policy, in points. Fully funding proposal p is worth
    ``1 + rank*merit + industrial + critical_domain + startup_sme`` (the terms that apply;
    merit is 1 for rank 1 and 0 for the last rank), earned in proportion to the share of its
    request that is awarded. Defaults are a starting point for the programme to set, not
    findings."""

    rank: float = 2.0
    industrial: float = 0.5
    critical_domain: float = 0.5
    startup_sme: float = 0.25
    preferred_site: float = 0.05
    """Points per average request's worth of GPU-hours placed on the proposal's preferred
    sites: a tie-breaker. Per GPU-hour rather than per share of the request, so that it
    depends on the hours and sites only, which lets the optimiser pool proposals exactly."""
    country_balance: float = 1.0
    """Points lost per average request's worth of GPU-hours that a country is awarded above
    ``(1 + country_tolerance)`` times its share of the requested hours. A soft penalty, not a
    cap: capacity that no other country's proposal can use still goes out as long as an award
    is worth more than its penalty (a weight above the proposals' values would leave it idle)."""
    country_tolerance: float = 0.25
    spread_factor: float = DEFAULT_SPREAD_FACTOR
    """A rule more than a weight: a project may take at most ``spread_factor`` times its even
    monthly share (request / months of its period) in any month, as teams use GPU-hours over
    the whole period and one project must not drain a month that others planned on."""
    request_exponent: float = 1.0
    """1 counts the share of each request awarded (a small proposal fully funded is worth as
    much as a large one of the same merit); 0 counts GPU-hours, in units of the average
    request; in between blends the two."""

    def __post_init__(self) -> None:
        for name in ("rank", "industrial", "critical_domain", "startup_sme", "preferred_site"):
            if getattr(self, name) < 0:
                raise InvalidInput(f"weights.{name}", "must not be negative", ">= 0")
        if self.country_balance < 0 or self.country_tolerance < 0:
            raise InvalidInput("weights.country_balance", "must not be negative", ">= 0")
        if self.spread_factor < 1:
            raise InvalidInput("weights.spread_factor", "below the even share", ">= 1")
        if not 0 <= self.request_exponent <= 1:
            raise InvalidInput("weights.request_exponent", "out of range", "0..1")

    def proposal_value(self, demand: ProposalDemand, worst_rank: int) -> float:
        """Points for funding ``demand`` in full, in a round whose last rank is ``worst_rank``."""
        merit = 1.0 if worst_rank <= 1 else (worst_rank - demand.rank) / (worst_rank - 1)
        return (
            1.0
            + self.rank * max(0.0, merit)
            + (self.industrial if demand.industrial else 0.0)
            + (self.critical_domain if demand.critical_domain else 0.0)
            + (self.startup_sme if demand.organisation_kind in SMALL_KINDS else 0.0)
        )

    def describe(self) -> str:
        """The objective in words, with the weights, for the decision record."""
        share = (
            "the share of its request awarded"
            if self.request_exponent == 1
            else f"its awarded GPU-hours / (request^{self.request_exponent:g} x "
            f"average request^{1 - self.request_exponent:g})"
        )
        return (
            "Maximise the sum over proposals of value x " + share + ", where value = 1 + "
            f"{self.rank:g} x merit (1 for rank 1, 0 for the last rank) + {self.industrial:g} "
            f"if industrial + {self.critical_domain:g} if in a critical domain + "
            f"{self.startup_sme:g} if a startup or SME; plus {self.preferred_site:g} per "
            "average request's worth of GPU-hours on the proposal's preferred sites; minus "
            f"{self.country_balance:g} per average request's worth of GPU-hours that a country "
            f"receives above {1 + self.country_tolerance:g} x its share of the hours requested "
            "by proposals that could be funded. "
            "Each proposal gets nothing or between its minimum fraction and its request, over "
            "its eligible partitions and its months, at most "
            f"{self.spread_factor:g} x its even monthly share in any month, within each "
            "partition's free GPU-hours per month."
        )


@dataclass(frozen=True, slots=True)
class AwardLine:
    proposal_id: int
    site_id: str
    partition_id: str
    month: int
    gpu_hours: float


@dataclass(frozen=True, slots=True)
class ProposalOutcome:
    """Requested against awarded; for a proposal awarded less than it asked, ``reason`` (one
    of capacity, rank, constraint) and ``explanation`` (a sentence for the applicant)."""

    proposal_id: int
    requested: float
    awarded: float
    reason: Reason | None = None
    explanation: str = ""


@dataclass(frozen=True, slots=True)
class AwardPlan:
    lines: tuple[AwardLine, ...]
    outcomes: tuple[ProposalOutcome, ...]
    objective_value: float
    objective_text: str
    solver: str
    solve_seconds: float
    status: str
    mip_gap: float | None = None
    """Relative gap proven between the plan and the bound (None for a rule without a bound,
    such as greedy)."""

    @property
    def awarded_gpu_hours(self) -> float:
        return sum(line.gpu_hours for line in self.lines)


@dataclass(frozen=True, slots=True)
class RoundArrays:
    """A round as arrays (P proposals, K partitions, T months), built once and shared by the
    optimiser, the greedy rule, the objective and the explanations, so they agree."""

    demands: tuple[ProposalDemand, ...]
    partitions: tuple[PartitionCapacity, ...]
    months: int
    spread_factor: float
    request: FloatArray  # [P]
    min_fraction: FloatArray  # [P]
    eligible: BoolArray  # [P, K]: eligible and known to the round
    in_period: BoolArray  # [P, T]: months of the period inside the horizon
    capacity: FloatArray  # [K, T]
    month_cap: FloatArray  # [P]: most GPU-hours a proposal may take in one month
    preferred: BoolArray  # [P, K]: the partition is at one of the proposal's preferred sites
    country: IntArray  # [P]: index into countries
    countries: tuple[str, ...]
    line_of: IntArray  # [K]: the budget line a partition draws on, -1 for none
    line_budget: FloatArray  # [L]: GPU-hours of each budget line over the horizon
    line_names: tuple[str, ...]
    rule_limit: FloatArray = field(init=False)  # [P]: most it may get, ignoring others
    alone_limit: FloatArray = field(init=False)  # [P]: most the free capacity could give it

    def __post_init__(self) -> None:
        # Alone, a proposal takes min(monthly cap, free hours on its partitions) each month.
        free = self.eligible.astype(np.float64) @ self.capacity  # [P, T]
        per_month = np.where(self.in_period, self.month_cap[:, None], 0.0)
        usable = self.eligible.any(axis=1)
        rule = np.where(usable, np.minimum(self.request, per_month.sum(axis=1)), 0.0)
        alone = np.minimum(self.request, np.minimum(per_month, free).sum(axis=1))
        if self.line_budget.size:
            # A line gives a proposal at most its budget: an upper bound on what it could
            # have alone (exact when it can reach one line only).
            outside = self.eligible[:, self.line_of < 0].astype(np.float64)
            bound = np.minimum(per_month, outside @ self.capacity[self.line_of < 0]).sum(axis=1)
            for g, budget in enumerate(self.line_budget):
                ks = self.line_of == g
                reach = np.minimum(per_month, self.eligible[:, ks] @ self.capacity[ks]).sum(axis=1)
                bound += np.minimum(budget, reach)
            alone = np.minimum(alone, bound)
        object.__setattr__(self, "rule_limit", rule)
        object.__setattr__(self, "alone_limit", np.where(usable, alone, 0.0))

    @classmethod
    def build(
        cls,
        demands: tuple[ProposalDemand, ...] | list[ProposalDemand],
        partitions: tuple[PartitionCapacity, ...] | list[PartitionCapacity],
        *,
        months: int,
        spread_factor: float,
        budget_lines: tuple[BudgetLine, ...] | list[BudgetLine] = (),
    ) -> RoundArrays:
        demands, partitions = tuple(demands), tuple(partitions)
        if months < 1:
            raise InvalidInput("months", "the horizon needs at least one month", ">= 1")
        ids = [d.proposal_id for d in demands]
        if len(set(ids)) != len(ids):
            raise InvalidInput("demands", "proposal ids must be unique")
        column = {p.partition_id: k for k, p in enumerate(partitions)}
        if len(column) != len(partitions):
            raise InvalidInput("partitions", "partition ids must be unique")
        capacity = np.zeros((len(partitions), months))
        for k, p in enumerate(partitions):
            hours = p.gpu_hours_by_month[:months]
            capacity[k, : len(hours)] = hours  # months a partition does not list: nothing free
        n = len(demands)
        eligible = np.zeros((n, len(partitions)), dtype=np.bool_)
        preferred = np.zeros_like(eligible)
        site_of = np.array([p.site_id for p in partitions], dtype=object)
        for i, d in enumerate(demands):
            cols = [column[pid] for pid in d.eligible_partitions if pid in column]
            eligible[i, cols] = True
            if d.preferred_sites and len(partitions):
                preferred[i] = np.isin(site_of, d.preferred_sites) & eligible[i]
        first = np.array([d.first_month for d in demands], dtype=np.int64)
        last = np.array([d.last_month for d in demands], dtype=np.int64)
        t = np.arange(months)
        in_period = (t[None, :] >= first[:, None]) & (t[None, :] <= last[:, None])
        request = np.array([d.requested_gpu_hours for d in demands], dtype=np.float64)
        countries = tuple(sorted({d.country for d in demands}))
        country_at = {c: i for i, c in enumerate(countries)}
        line_of = np.full(len(partitions), -1, dtype=np.int64)
        for g, line in enumerate(budget_lines):
            for pid in line.partition_ids:
                if pid not in column:
                    continue  # a partition this round does not offer draws nothing
                if line_of[column[pid]] >= 0:
                    raise InvalidInput(
                        "budget_lines", f"partition {pid} is in two budget lines", "one line"
                    )
                line_of[column[pid]] = g
        return cls(
            demands=demands,
            partitions=partitions,
            months=months,
            spread_factor=spread_factor,
            request=request,
            min_fraction=np.array([d.min_award_fraction for d in demands], dtype=np.float64),
            eligible=eligible,
            in_period=in_period.reshape(n, months),
            capacity=capacity,
            # The cap counts the whole period, also months outside the horizon: a project
            # asking for 12 months does not get them squeezed into the 3 that remain.
            month_cap=request / (last - first + 1).astype(np.float64) * spread_factor,
            preferred=preferred,
            country=np.array([country_at[d.country] for d in demands], dtype=np.int64),
            countries=countries,
            line_of=line_of,
            line_budget=np.array([line.gpu_hours for line in budget_lines], dtype=np.float64),
            line_names=tuple(line.name for line in budget_lines),
        )

    def line_used(self, x: FloatArray) -> FloatArray:
        """GPU-hours each budget line gives in allocation ``x`` [P, K, T]."""
        by_partition = x.sum(axis=(0, 2))
        inside = self.line_of >= 0
        used = np.bincount(
            self.line_of[inside], weights=by_partition[inside], minlength=self.line_budget.size
        )
        return np.asarray(used, dtype=np.float64)

    def free_after(self, x: FloatArray) -> FloatArray:
        """Free GPU-hours [K, T] left by ``x``: partition capacity less use, each cell also
        at most what its budget line has left (so a spent line offers nothing)."""
        left: FloatArray = np.maximum(0.0, self.capacity - x.sum(axis=0))
        if self.line_budget.size:
            line_left = np.maximum(0.0, self.line_budget - self.line_used(x))
            inside = self.line_of >= 0
            left[inside] = np.minimum(left[inside], line_left[self.line_of[inside]][:, None])
        return left

    @property
    def usable_hours(self) -> float:
        """GPU-hours the round could give at most: capacity, within each budget line."""
        total = float(self.capacity[self.line_of < 0].sum())
        for g, budget in enumerate(self.line_budget):
            total += min(float(budget), float(self.capacity[self.line_of == g].sum()))
        return total

    def describe_lines(self) -> str:
        """The budget lines in words, for the objective record ('' when there are none)."""
        if not self.line_budget.size:
            return ""
        parts = [
            f"{name}: {budget:,.0f}"
            for name, budget in zip(self.line_names, self.line_budget.tolist(), strict=True)
        ]
        return " Within the call's budget lines (GPU-hours over the horizon): " + (
            "; ".join(parts) + "."
        )

    def dense(self, lines: tuple[AwardLine, ...] | list[AwardLine]) -> FloatArray:
        """A plan's lines as GPU-hours [P, K, T]; a line this round does not know is an error."""
        row = {d.proposal_id: i for i, d in enumerate(self.demands)}
        column = {p.partition_id: k for k, p in enumerate(self.partitions)}
        x = np.zeros((len(self.demands), len(self.partitions), self.months))
        for line in lines:
            if line.proposal_id not in row or line.partition_id not in column:
                raise InvalidInput("lines", f"unknown proposal or partition in {line}")
            x[row[line.proposal_id], column[line.partition_id], line.month] += line.gpu_hours
        return x

    def clean(self, x: FloatArray) -> FloatArray:
        """``x`` [P, K, T] without solver dust: pieces of at most EPS_HOURS, and awards far
        below their minimum (real awards sit at it within 1e-6), set to zero, so that the
        lines, the outcomes and the objective all read the same plan."""
        x = np.where(x > EPS_HOURS, x, 0.0)
        dust = x.sum(axis=(1, 2)) < 0.5 * self.request * self.min_fraction
        x[dust] = 0.0
        return x

    def lines(self, x: FloatArray) -> tuple[AwardLine, ...]:
        """The award lines of ``x`` [P, K, T] (cleaned), in proposal, partition, month order."""
        p, k, m = np.nonzero(x)
        return tuple(
            AwardLine(
                self.demands[i].proposal_id,
                self.partitions[j].site_id,
                self.partitions[j].partition_id,
                t,
                h,
            )
            for i, j, t, h in zip(
                p.tolist(), k.tolist(), m.tolist(), x[p, k, m].tolist(), strict=True
            )
        )

    def value_per_hour(self, weights: ProgrammeWeights) -> tuple[FloatArray, FloatArray]:
        """Points per awarded GPU-hour of each proposal, and the bonus per GPU-hour on one of
        its preferred sites (the same for every proposal: see ``preferred_site``)."""
        worst = max((d.rank for d in self.demands), default=1)
        value = np.array([weights.proposal_value(d, worst) for d in self.demands])
        average = float(self.request.mean()) if len(self.demands) else 1.0
        alpha = weights.request_exponent
        scale = self.request**alpha * average ** (1.0 - alpha)
        return value / scale, np.full(len(self.demands), weights.preferred_site / average)

    @property
    def fundable(self) -> BoolArray:
        """Proposals that could reach their minimum with the free capacity to themselves."""
        return self.alone_limit >= self.request * self.min_fraction - EPS_HOURS

    def country_limits(self, weights: ProgrammeWeights) -> FloatArray:
        """Each country's share of the total award above which the penalty applies: its
        share of the hours requested by fundable proposals (a country is not held back
        because another's proposals cannot run on any partition offered)."""
        asked = np.where(self.fundable, self.request, 0.0)
        requested = np.bincount(self.country, weights=asked, minlength=len(self.countries))
        return requested / max(float(requested.sum()), 1e-300) * (1.0 + weights.country_tolerance)

    def evaluate(self, weights: ProgrammeWeights, x: FloatArray) -> tuple[float, FloatArray]:
        """The objective of an allocation [P, K, T] under ``weights`` (the optimiser's,
        computed the same way for any plan), and each country's hours above (+) or below
        (-) its balance limit."""
        vph, bonus = self.value_per_hour(weights)
        awarded = x.sum(axis=(1, 2))
        on_preferred = (x.sum(axis=2) * self.preferred).sum(axis=1)
        by_country = np.bincount(self.country, weights=awarded, minlength=len(self.countries))
        balance = by_country - self.country_limits(weights) * awarded.sum()
        average = float(self.request.mean()) if len(self.demands) else 1.0
        value = float(vph @ awarded + bonus @ on_preferred)
        value -= weights.country_balance / average * float(np.maximum(0.0, balance).sum())
        return value, balance

    def held_by_balance(self, weights: ProgrammeWeights, balance: FloatArray) -> frozenset[str]:
        """Countries at or over their limit while the penalty is on: more for them costs."""
        if weights.country_balance <= 0:
            return frozenset()
        return frozenset(c for c, b in zip(self.countries, balance, strict=True) if b > -EPS_HOURS)

    def explain(
        self, x: FloatArray, *, displaced_by: str, over_balance: frozenset[str] = frozenset()
    ) -> tuple[ProposalOutcome, ...]:
        """Outcomes of an allocation [P, K, T]: for each proposal short of its request, the
        first reason that holds, checked from the proposal's own limits outwards: its own
        constraints, then the free capacity (as if alone), then the other proposals."""
        by_month = x.sum(axis=1)  # [P, T]
        awarded = by_month.sum(axis=1)
        left = self.free_after(x)  # [K, T]
        room = np.minimum(
            np.where(self.in_period, self.month_cap[:, None] - by_month, 0.0),
            self.eligible.astype(np.float64) @ left,
        )
        extra = np.maximum(0.0, room).sum(axis=1)
        outcomes: list[ProposalOutcome] = []
        for i, d in enumerate(self.demands):
            got, asked = float(awarded[i]), float(self.request[i])
            reason, why = self._reason(i, d, got, float(extra[i]), displaced_by, over_balance)
            outcomes.append(ProposalOutcome(d.proposal_id, asked, got, reason, why))
        return tuple(outcomes)

    def _reason(
        self,
        i: int,
        d: ProposalDemand,
        got: float,
        extra: float,
        displaced_by: str,
        over_balance: frozenset[str],
    ) -> tuple[Reason | None, str]:
        asked = float(self.request[i])
        if got >= asked - EPS_HOURS:
            return None, ""
        minimum = asked * float(self.min_fraction[i])
        span = f"months {d.first_month}-{d.last_month}"
        if not self.eligible[i].any():
            return "constraint", (
                "No partition offered in this round meets its hardware and residency needs."
            )
        if not self.in_period[i].any():
            return "constraint", f"Its period ({span}) lies outside the horizon of this round."
        rule, alone = float(self.rule_limit[i]), float(self.alone_limit[i])
        if got >= rule - EPS_HOURS or rule < minimum - EPS_HOURS:
            return "constraint", (
                f"At most {rule:,.0f} GPU-hours fit its {span} inside the horizon at "
                f"{self.spread_factor:g} x its even monthly share "
                f"({float(self.month_cap[i]):,.0f} GPU-hours a month)"
                + (f", below its minimum of {minimum:,.0f}." if rule < minimum else ".")
            )
        if got >= alone - EPS_HOURS or alone < minimum - EPS_HOURS:
            return "capacity", (
                f"Its eligible partitions have only {alone:,.0f} GPU-hours free for it in "
                f"{span} (after running allocations), of the {asked:,.0f} it asked"
                + (f", below its minimum of {minimum:,.0f}." if alone < minimum else ".")
            )
        if extra >= asked - got - EPS_HOURS and d.country in over_balance:
            return "constraint", (
                f"Country balance: {d.country} already receives more than its share of the "
                "requested hours allows before the penalty, and the rest of this request was "
                "worth less than the penalty."
            )
        if got <= EPS_HOURS and extra > EPS_HOURS:
            return "rank", (
                f"Only {extra:,.0f} GPU-hours were left for it in {span} after {displaced_by}, "
                f"below its minimum of {minimum:,.0f}; alone it could have had {alone:,.0f}."
            )
        return "rank", (
            f"Its eligible partitions in {span} went to {displaced_by}; alone it could have "
            f"had {alone:,.0f} GPU-hours."
        )

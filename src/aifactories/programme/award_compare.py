"""Two award plans side by side on the same round and the same weights: the objective, hours
awarded, proposals funded, fairness between organisation kinds and between countries, and the
capacity left unused.

Fairness is read on the share of requested GPU-hours that each group (organisation kind, or
applicant country) receives; equal shares mean every group was served in proportion to what
it asked. Jain's index of those shares is 1 when they are all equal and 1/n at worst (one
group gets everything); it is computed over the groups that asked for something.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aifactories.programme.award_model import (
    EPS_HOURS,
    AwardPlan,
    BudgetLine,
    FloatArray,
    PartitionCapacity,
    ProgrammeWeights,
    ProposalDemand,
    RoundArrays,
)

KINDS = ("startup", "sme", "industry", "academia", "public")


def jain_index(values: FloatArray) -> float:
    """Jain's fairness index, (sum x)^2 / (n sum x^2); 1.0 for no values or all zero."""
    square = float((values**2).sum())
    return (
        1.0
        if values.size == 0 or square == 0
        else float(values.sum()) ** 2 / (values.size * square)
    )


@dataclass(frozen=True, slots=True)
class PlanSummary:
    name: str
    objective_value: float
    awarded_gpu_hours: float
    requested_gpu_hours: float
    funded: int  # in full
    partial: int
    unfunded: int
    share_by_kind: dict[str, float]  # awarded / requested GPU-hours, per organisation kind
    share_by_country: dict[str, float]
    jain_kinds: float
    jain_countries: float
    countries_over_balance: tuple[str, ...]
    unused_gpu_hours: float
    capacity_gpu_hours: float
    solve_seconds: float
    status: str
    mip_gap: float | None

    @property
    def unused_percent(self) -> float:
        return (
            100.0 * self.unused_gpu_hours / self.capacity_gpu_hours
            if self.capacity_gpu_hours
            else 0.0
        )


@dataclass(frozen=True, slots=True)
class Comparison:
    a: PlanSummary
    b: PlanSummary
    weights_text: str

    @property
    def gain_percent(self) -> float:
        """How much more ``a`` is worth than ``b`` under the same weights, in % of ``b``."""
        base = abs(self.b.objective_value)
        return 100.0 * (self.a.objective_value - self.b.objective_value) / base if base else 0.0

    def table_rows(self) -> list[tuple[str, str, str, str]]:
        """(measure, a, b, a - b) as text, for printing in any table."""
        a, b = self.a, self.b

        def row(
            label: str, x: float, y: float, fmt: str, unit: str = ""
        ) -> tuple[str, str, str, str]:
            return label, f"{x:{fmt}}{unit}", f"{y:{fmt}}{unit}", f"{x - y:+{fmt}}{unit}"

        rows = [
            row("objective (points)", a.objective_value, b.objective_value, ",.2f"),
            ("gain over " + b.name, f"{self.gain_percent:+.1f}%", "", ""),
            row("GPU-hours awarded", a.awarded_gpu_hours, b.awarded_gpu_hours, ",.0f"),
            row(
                "share of requested hours",
                100 * a.awarded_gpu_hours / max(a.requested_gpu_hours, EPS_HOURS),
                100 * b.awarded_gpu_hours / max(b.requested_gpu_hours, EPS_HOURS),
                ".1f",
                "%",
            ),
            row("proposals funded in full", a.funded, b.funded, ",d"),
            row("proposals funded in part", a.partial, b.partial, ",d"),
            row("proposals not funded", a.unfunded, b.unfunded, ",d"),
        ]
        for kind in sorted(set(a.share_by_kind) | set(b.share_by_kind), key=_kind_order):
            x, y = a.share_by_kind.get(kind, 0.0), b.share_by_kind.get(kind, 0.0)
            rows.append(row(f"  share awarded: {kind}", 100 * x, 100 * y, ".1f", "%"))
        rows += [
            row("Jain index, kinds", a.jain_kinds, b.jain_kinds, ".3f"),
            row("Jain index, countries", a.jain_countries, b.jain_countries, ".3f"),
            row(
                "lowest country share",
                100 * min(a.share_by_country.values(), default=0.0),
                100 * min(b.share_by_country.values(), default=0.0),
                ".1f",
                "%",
            ),
            row(
                "countries over balance",
                len(a.countries_over_balance),
                len(b.countries_over_balance),
                "d",
            ),
            row("unused capacity (GPU-hours)", a.unused_gpu_hours, b.unused_gpu_hours, ",.0f"),
            row("unused capacity", a.unused_percent, b.unused_percent, ".2f", "%"),
            row("solve time", a.solve_seconds, b.solve_seconds, ".2f", " s"),
            (
                "status (gap)",
                _status(a),
                _status(b),
                "",
            ),
        ]
        return rows


def _kind_order(kind: str) -> tuple[int, str]:
    return (KINDS.index(kind) if kind in KINDS else len(KINDS), kind)


def _status(plan: PlanSummary) -> str:
    return plan.status if plan.mip_gap is None else f"{plan.status} ({plan.mip_gap:.1e})"


def _shares(groups: list[str], awarded: FloatArray, requested: FloatArray) -> dict[str, float]:
    names = sorted(set(groups))
    index = np.array([names.index(g) for g in groups], dtype=np.int64)
    got = np.bincount(index, weights=awarded, minlength=len(names))
    asked = np.bincount(index, weights=requested, minlength=len(names))
    return {n: float(g / q) for n, g, q in zip(names, got, asked, strict=True) if q > 0}


def summarise(name: str, plan: AwardPlan, r: RoundArrays, weights: ProgrammeWeights) -> PlanSummary:
    """One plan's measures on round ``r``; the objective is recomputed under ``weights``."""
    x = r.dense(plan.lines)
    awarded = x.sum(axis=(1, 2))
    value, balance = r.evaluate(weights, x)
    full = awarded >= r.request - EPS_HOURS
    some = awarded > EPS_HOURS
    kinds = _shares([d.organisation_kind for d in r.demands], awarded, r.request)
    countries = _shares([d.country for d in r.demands], awarded, r.request)
    capacity = r.usable_hours
    return PlanSummary(
        name=name,
        objective_value=value,
        awarded_gpu_hours=float(awarded.sum()),
        requested_gpu_hours=float(r.request.sum()),
        funded=int(full.sum()),
        partial=int((some & ~full).sum()),
        unfunded=int((~some).sum()),
        share_by_kind=kinds,
        share_by_country=countries,
        jain_kinds=jain_index(np.array(list(kinds.values()))),
        jain_countries=jain_index(np.array(list(countries.values()))),
        countries_over_balance=tuple(
            c for c, b in zip(r.countries, balance, strict=True) if b > EPS_HOURS
        ),
        unused_gpu_hours=max(0.0, capacity - float(awarded.sum())),
        capacity_gpu_hours=capacity,
        solve_seconds=plan.solve_seconds,
        status=plan.status,
        mip_gap=plan.mip_gap,
    )


def compare(
    plan_a: AwardPlan,
    plan_b: AwardPlan,
    demands: tuple[ProposalDemand, ...] | list[ProposalDemand],
    partitions: tuple[PartitionCapacity, ...] | list[PartitionCapacity],
    weights: ProgrammeWeights | None = None,
    *,
    months: int | None = None,
    names: tuple[str, str] = ("optimiser", "greedy"),
    budget_lines: tuple[BudgetLine, ...] | list[BudgetLine] = (),
) -> Comparison:
    """``plan_a`` next to ``plan_b`` on the same round, both scored under ``weights``.
    ``months`` defaults to the longest capacity series of ``partitions``."""
    weights = weights or ProgrammeWeights()
    horizon = months or max((len(p.gpu_hours_by_month) for p in partitions), default=1)
    r = RoundArrays.build(
        demands,
        partitions,
        months=horizon,
        spread_factor=weights.spread_factor,
        budget_lines=budget_lines,
    )
    return Comparison(
        a=summarise(names[0], plan_a, r, weights),
        b=summarise(names[1], plan_b, r, weights),
        weights_text=weights.describe(),
    )

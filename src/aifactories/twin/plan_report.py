"""The plan check's HTML report: euros to accelerators to GPU-hours to waits, today and with
the plan side by side (one page, plotly.js embedded once, every plot's numbers in a table)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go

from aifactories.twin.plan_access import mode_titles
from aifactories.twin.plan_check import FederationYear, PlanCheck
from aifactories.twin.report import page


@dataclass(frozen=True)
class Investment:
    """One taken investment as the report shows it."""

    label: str
    capital_eur: float
    accelerators: int
    gpu_model: str


def _rows(check: PlanCheck) -> list[tuple[str, str, str]]:
    def number(value: float, digits: int = 0) -> str:
        return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"

    pairs: list[tuple[str, float, float, int]] = [
        ("accelerators", check.before.gpus, check.after.gpus, 0),
        (
            "jobs never started (too large, or still queued)",
            check.before.never_started,
            check.after.never_started,
            0,
        ),
        ("mean wait of started jobs (h)", check.before.mean_wait_h, check.after.mean_wait_h, 2),
        ("90th percentile wait (h)", check.before.p90_wait_h, check.after.p90_wait_h, 2),
        ("utilisation (%)", 100 * check.before.utilisation, 100 * check.after.utilisation, 1),
        ("GPU-hours delivered", check.before.gpu_hours, check.after.gpu_hours, 0),
        ("work done (A100-hours)", check.before.work_a100_hours, check.after.work_a100_hours, 0),
        ("energy (MWh)", check.before.energy_mwh, check.after.energy_mwh, 0),
        ("carbon (t CO2e)", check.before.carbon_t, check.after.carbon_t, 0),
    ]
    return [(name, number(a, d), number(b, d)) for name, a, b, d in pairs]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _side_by_side(
    title: str, years: Sequence[FederationYear], values: Sequence[float], axis: str
) -> go.Figure:
    figure = go.Figure(go.Bar(x=[y.label for y in years], y=list(values)))
    figure.update_layout(title=title, yaxis_title=axis, height=320)
    return figure


def _shares(title: str, before: Mapping[str, float], after: Mapping[str, float]) -> go.Figure:
    keys = sorted(set(before) | set(after))
    figure = go.Figure(
        [
            go.Bar(name="today", x=keys, y=[100 * before.get(k, 0.0) for k in keys]),
            go.Bar(name="with the plan", x=keys, y=[100 * after.get(k, 0.0) for k in keys]),
        ]
    )
    figure.update_layout(
        title=title, yaxis_title="% of GPU-hours delivered", barmode="group", height=320
    )
    return figure


def _share_rows(before: Mapping[str, float], after: Mapping[str, float]) -> list[list[str]]:
    return [
        [k, f"{100 * before.get(k, 0.0):.1f}", f"{100 * after.get(k, 0.0):.1f}"]
        for k in sorted(set(before) | set(after))
    ]


def _days(hours: float) -> str:
    return "n/a" if math.isnan(hours) else f"{hours / 24:,.2f}"


def _access(check: PlanCheck) -> tuple[go.Figure, str]:
    """Time to access per access mode (decision + first-job wait): a plot and its table."""
    titles = mode_titles()
    counts = check.mode_jobs
    before, after = check.before.time_to_access, check.after.time_to_access
    names = [titles[m] for m in titles]
    figure = go.Figure(
        [
            go.Bar(
                name=year.label,
                x=names,
                y=[year.time_to_access[m].median_h / 24 for m in titles],
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        (year.time_to_access[m].p90_h - year.time_to_access[m].median_h) / 24
                        for m in titles
                    ],
                    "arrayminus": [0.0] * len(titles),
                },
            )
            for year in (check.before, check.after)
        ]
    )
    figure.update_layout(
        title="Time to access per access mode: median, bar to the 90th percentile (days)",
        yaxis_title="days",
        barmode="group",
        height=360,
    )
    rows = [
        [
            titles[m],
            f"{counts[m]:,}",
            _days(check.decision_times[m].hours),
            check.decision_times[m].basis,
            _days(before[m].median_h),
            _days(before[m].p90_h),
            _days(after[m].median_h),
            _days(after[m].p90_h),
            f"{before[m].no_access:,} / {after[m].no_access:,}",
        ]
        for m in titles
    ]
    headers = [
        "access mode",
        "jobs",
        "decision (days)",
        "decision time from",
        f"median, {check.before.label}",
        f"p90, {check.before.label}",
        f"median, {check.after.label}",
        f"p90, {check.after.label}",
        "never started (today / with the plan)",
    ]
    text = (
        "<h2>Time to access per access mode (days)</h2>"
        "<p>Each job stands for the first job of a project arriving when it does: its time to "
        "access is its mode's time from submission to decision plus its wait in the twin. "
        "Its mode: the smallest of Playground, Fast Lane and Large Scale whose largest grant "
        "holds its work; half of the academic and public jobs above Playground go to AI for "
        "Science (seeded). twin/plan_access.py states the rule.</p>" + _table(headers, rows)
    )
    return figure, text


def write_plan_report(
    out: Path, title: str, check: PlanCheck, investments: Sequence[Investment], notes: str = ""
) -> Path:
    """``out/plan.html``: the investments, then today and with the plan, side by side."""
    before, after = check.before, check.after
    years = (before, after)
    capital = sum(i.capital_eur for i in investments)
    access_figure, access_text = _access(check)
    invest_rows = [
        [i.label, f"{i.capital_eur / 1e6:,.0f}", f"{i.accelerators:,}", i.gpu_model]
        for i in investments
    ]
    figures = [
        go.Figure(
            go.Bar(x=[i.label for i in investments], y=[i.capital_eur / 1e6 for i in investments])
        ).update_layout(title="Euros invested (EUR m)", yaxis_title="EUR m", height=320),
        go.Figure(
            [
                go.Bar(
                    name=model,
                    x=[y.label for y in years],
                    y=[y.gpus_by_model.get(model, 0) for y in years],
                )
                for model in sorted(set(before.gpus_by_model) | set(after.gpus_by_model))
            ]
        ).update_layout(title="Accelerators by model", barmode="stack", height=360),
        _side_by_side(
            "Work done (A100-hours)", years, [y.work_a100_hours for y in years], "A100-hours"
        ),
        _side_by_side("Mean wait of started jobs (h)", years, [y.mean_wait_h for y in years], "h"),
        _side_by_side("Jobs never started", years, [y.never_started for y in years], "jobs"),
        access_figure,
        _shares(
            "Delivered GPU-hours by organisation kind", before.share_by_kind, after.share_by_kind
        ),
        _shares("Delivered GPU-hours by domain", before.share_by_domain, after.share_by_domain),
        _shares(
            "Delivered GPU-hours by home country", before.share_by_country, after.share_by_country
        ),
    ]
    body = (
        f"<p>{check.jobs:,} jobs over {check.days:g} days, {check.demand_a100_hours_per_year:,.0f}"
        f" A100-hours a year of demand (job sizes x{check.size_factor}), policy "
        f"{html.escape(check.policy)}; the same jobs on both federations.</p>"
        + (f"<p class='note'>{html.escape(notes)}</p>" if notes else "")
        + f"<h2>Investments: EUR {capital / 1e6:,.0f} m</h2>"
        + _table(["investment", "EUR m", "accelerators", "model"], invest_rows)
        + "<h2>Today and with the plan</h2>"
        + _table(["figure", before.label, after.label], _rows(check))
        + access_text
        + "<h2>Shares of delivered GPU-hours (%)</h2>"
        + _table(
            ["organisation kind", "today", "with the plan"],
            _share_rows(before.share_by_kind, after.share_by_kind),
        )
        + _table(
            ["domain", "today", "with the plan"],
            _share_rows(before.share_by_domain, after.share_by_domain),
        )
        + _table(
            ["home country", "today", "with the plan"],
            _share_rows(before.share_by_country, after.share_by_country),
        )
        + "<h2>Wait for a project's first job, median (h)</h2>"
        + _table(
            ["organisation kind", "today", "with the plan"],
            [
                [
                    k,
                    f"{before.first_wait_h.get(k, math.nan):.2f}",
                    f"{after.first_wait_h.get(k, math.nan):.2f}",
                ]
                for k in sorted(set(before.first_wait_h) | set(after.first_wait_h))
            ],
        )
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "plan.html"
    path.write_text(page(title, body, figures), encoding="utf-8")
    return path

"""The twin's HTML report: the figures people would rather see than read (Plotly), in one
file that opens without a network and stays small: plotly.js embedded once (its basic bundle,
:mod:`aifactories.twin.plotly_bundle`), every curve cut to what a screen shows, times in the
unit that fits the trace, policies by their full names. The figures are
:mod:`aifactories.twin.report_figures`."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go

from aifactories.twin import report_figures
from aifactories.twin.metrics.constraints import report_note
from aifactories.twin.metrics.results import PolicyRun
from aifactories.twin.metrics.steady_state import RULE, warnings
from aifactories.twin.metrics.summary import Row
from aifactories.twin.plotly_bundle import plotly_script
from aifactories.twin.policy_titles import policy_title
from aifactories.twin.summary_table import cells, columns
from aifactories.twin.units import Units, unit_for

_STYLE = (
    "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
    "font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}.note{color:#555;font-size:12px}</style>"
)


def _table(rows: Sequence[Row], units: Units) -> str:
    chosen = columns(units, detailed=True)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["policy", *(c.header for c in chosen)])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in cells(row, chosen)) + "</tr>"
        for row in rows
    )
    return (
        # scrolls sideways on a narrow screen rather than cutting the last columns off
        "<div style='overflow-x:auto'>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        f"<p class='note'>{html.escape(units.rule(), quote=False)} Every figure of every "
        "policy, times in seconds: summary.csv and summary.parquet beside this page; each job: "
        "jobs.csv and jobs.parquet.</p>"
    )


def _window_notes(rows: Sequence[Row]) -> str:
    """The rule that chose the measured window, and each warning about it (steady_state.py)."""
    notes = []
    if rows and rows[0].get("scope") == "steady state":
        first = rows[0]
        notes.append(
            f"<p>{html.escape(RULE)}: {float(first['window_start_h']):,.1f} h to "
            f"{float(first['window_end_h']):,.1f} h. The whole run: summary_whole_run.csv.</p>"
        )
    notes += [
        f"<p style='color:#a40000;font-weight:bold'>warning: {html.escape(w)}</p>"
        for w in warnings(rows)
    ]
    return "".join(notes)


def page(title: str, body: str, figures: Sequence[go.Figure]) -> str:
    """One HTML page: ``body``, then ``figures``, drawn by one embedded copy of plotly.js."""
    drawn = "".join(f.to_html(full_html=False, include_plotlyjs=False) for f in figures)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>{_STYLE}"
        "<script type='text/javascript'>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>"
        f"{plotly_script(figures)}</head><body><h1>{html.escape(title)}</h1>{body}{drawn}"
        "</body></html>"
    )


def write_report(out: Path, title: str, runs: Sequence[PolicyRun], rows: Sequence[Row]) -> Path:
    """``out/index.html``: the comparison table and the figures."""
    units = Units.of(runs)
    text = page(
        title,
        _window_notes(rows) + report_note(rows) + _table(rows, units),
        report_figures.figures(runs, rows, units),
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    path.write_text(text, encoding="utf-8")
    return path


def write_sweep_report(out: Path, rows: Sequence[Row], knees: dict[str, float | None]) -> Path:
    """``out/sweep.html``: mean JCT against offered load, one line per policy, knees marked.
    The unit fits the shortest mean JCT (at the lowest load, about the jobs' runtime)."""
    finite = [float(r["jct_mean"]) for r in rows if math.isfinite(float(r["jct_mean"]))]
    unit = unit_for(min(finite, default=3600.0))
    figure = go.Figure()
    for policy in dict.fromkeys(str(r["policy"]) for r in rows):
        points = sorted(
            (float(r["load"]), unit.of(float(r["jct_mean"]))) for r in rows if r["policy"] == policy
        )
        knee = knees.get(policy)
        name = policy_title(policy)
        label = f"{name} (saturates at {knee:g})" if knee is not None else name
        figure.add_trace(
            go.Scatter(
                x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers", name=label
            )
        )
    figure.update_layout(
        title="Mean job completion time against offered load",
        xaxis_title="offered load (GPU-hours asked / GPU-hours available)",
        yaxis_title=f"mean JCT ({unit.word})",
        yaxis_type="log",
    )
    title = "aifactories twin: load sweep"
    text = page(
        title, "<p class='note'>Every run's figures: sweep.csv beside this page.</p>", [figure]
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sweep.html"
    path.write_text(text, encoding="utf-8")
    return path

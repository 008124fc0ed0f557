"""The programme's figures written out: ``report.html`` (plots drawn by the one embedded copy
of plotly.js that the twin's reports use, each plot followed by its numbers), and the long
table as ``figures.csv`` and ``figures.parquet`` (family, key, metric, value, unit).

Input is what ``GET /programme/figures`` answers (``ProgrammeFiguresOut``), so the CLI writes
the same report through the API as a portal page would from the service."""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from aifactories.twin.plotly_bundle import plotly_script

COLUMNS = ("family", "key", "metric", "value", "unit")
FILES = ("report.html", "figures.csv", "figures.parquet")
COUNTS = frozenset({"jobs"})  # metrics shown as whole numbers
BREAKDOWNS = (
    ("kind", "organisation kind"),
    ("domain", "domain"),
    ("critical", "critical domain"),
    ("industrial", "industrial application"),
    ("country", "country"),
    ("mode", "access mode"),
    ("site", "site"),
)
_STYLE = (
    "<style>body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:"
    "collapse;font-size:12px;margin-bottom:2em}td,th{border:1px solid #ccc;padding:3px 6px;"
    "text-align:right}td:first-child,th:first-child{text-align:left}.note{color:#555;"
    "font-size:12px}</style>"
)


@dataclass(frozen=True, slots=True)
class Section:
    """One plot and the table of the numbers it draws."""

    title: str
    figure: go.Figure
    header: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]


def frame(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """The long table, one row per figure, in the API's order."""
    return pl.DataFrame(
        {c: [r[c] for r in rows] for c in COLUMNS},
        schema={
            "family": pl.String,
            "key": pl.String,
            "metric": pl.String,
            "value": pl.Float64,
            "unit": pl.String,
        },
    )


def _number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) < 1 and value != 0:
        return f"{value:.3g}"
    return f"{value:,.{digits}f}"


def _pivot(
    rows: Sequence[Mapping[str, Any]], family: str, prefix: str
) -> dict[str, dict[str, float | None]]:
    """{key without its prefix: {metric: value}} of one family's rows whose key has the prefix."""
    table: dict[str, dict[str, float | None]] = defaultdict(dict)
    for r in rows:
        if r["family"] == family and str(r["key"]).startswith(prefix):
            table[str(r["key"])[len(prefix) :]][str(r["metric"])] = r["value"]
    return dict(table)


def _bars(
    title: str,
    keys: list[str],
    series: list[tuple[str, list[float | None]]],
    axis: str,
    *,
    stack: bool = False,
) -> go.Figure:
    figure = go.Figure([go.Bar(name=name, x=keys, y=values) for name, values in series])
    figure.update_layout(
        title=title, yaxis_title=axis, barmode="stack" if stack else "group", height=380
    )
    return figure


def _column(
    table: dict[str, dict[str, float | None]], keys: list[str], metric: str
) -> list[float | None]:
    return [table.get(k, {}).get(metric, 0.0) for k in keys]


def _granted_and_used(
    words: str,
    keys: list[str],
    granted: dict[str, dict[str, float | None]],
    used: dict[str, dict[str, float | None]],
) -> go.Figure:
    """GPU-hours on the left, euros on the right, granted beside used."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("GPU-hours", "EUR"))
    colours = {"granted": "#1f77b4", "used": "#ff7f0e"}
    for col, metric in ((1, "gpu_hours"), (2, "eur")):
        for name, table in (("granted", granted), ("used", used)):
            figure.add_trace(
                go.Bar(
                    name=name,
                    x=keys,
                    y=_column(table, keys, metric),
                    marker_color=colours[name],
                    showlegend=col == 1,
                    legendgroup=name,
                ),
                row=1,
                col=col,
            )
    figure.update_layout(
        title=f"GPU-hours and euros granted and used by {words}", barmode="group", height=400
    )
    return figure


def _money_sections(rows: Sequence[Mapping[str, Any]]) -> list[Section]:
    sections = []
    for dimension, words in BREAKDOWNS:
        granted = _pivot(rows, "granted", f"{dimension}=")
        used = _pivot(rows, "used", f"{dimension}=")
        keys = sorted(set(granted) | set(used))
        if not keys:
            continue
        figure = _granted_and_used(words, keys, granted, used)
        table = [
            (
                k,
                _number(granted.get(k, {}).get("gpu_hours", 0.0)),
                _number(granted.get(k, {}).get("eur", 0.0), 0),
                _number(used.get(k, {}).get("gpu_hours", 0.0)),
                _number(used.get(k, {}).get("eur", 0.0), 0),
            )
            for k in keys
        ]
        header = (words, "GPU-h granted", "EUR granted", "GPU-h used", "EUR used")
        sections.append(Section(f"By {words}", figure, header, table))
    return sections


def _stage_cell(values: dict[str, float | None], stage: str) -> str:
    median = _number(values.get(f"{stage}_median"), 2)
    p90 = _number(values.get(f"{stage}_p90"), 2)
    return f"{median} / {p90} (n={_number(values.get(f'{stage}_count'), 0)})"


def _access_section(rows: Sequence[Mapping[str, Any]]) -> Section | None:
    table = _pivot(rows, "time_to_access", "mode=")
    if not table:
        return None
    modes = sorted(table)
    stages = ("submission_to_decision", "decision_to_first_job", "submission_to_first_job")
    series = []
    for stage in stages:
        for stat in ("median", "p90"):
            values = [table[m].get(f"{stage}_{stat}") for m in modes]
            series.append((f"{stage.replace('_', ' ')} ({stat})", values))
    figure = _bars("Time to access per access mode", modes, series, "days")
    body = [
        (
            m,
            *(_stage_cell(table[m], s) for s in stages),
        )
        for m in modes
    ]
    header = ("mode", *(f"{s.replace('_', ' ')}: median / p90 days" for s in stages))
    return Section("Time to access", figure, header, body)


def _simple_section(
    rows: Sequence[Mapping[str, Any]],
    family: str,
    prefix: str,
    title: str,
    metrics: list[tuple[str, str]],
    axis: str,
    *,
    drawn: int = 1,
    stack: bool = False,
    digits: int = 1,
) -> Section | None:
    """A bar per key for the first ``drawn`` metrics (those in the axis' unit); the table
    holds every metric."""
    table = _pivot(rows, family, prefix)
    total = [r for r in rows if r["family"] == family and r["key"] == "total"]
    if total:
        table["total"] = {str(r["metric"]): r["value"] for r in total}
    if not table:
        return None
    keys = sorted(k for k in table if k != "total") + (["total"] if "total" in table else [])
    plotted = [k for k in keys if k != "total"] or keys
    series = [(label, [table[k].get(metric) for k in plotted]) for metric, label in metrics[:drawn]]
    figure = _bars(title, plotted, series, axis, stack=stack)
    header = (prefix.rstrip("=") or family, *(label for _, label in metrics))
    body = [
        (k, *(_number(table[k].get(m), 0 if m in COUNTS else digits) for m, _ in metrics))
        for k in keys
    ]
    return Section(title, figure, header, body)


def sections(rows: Sequence[Mapping[str, Any]]) -> list[Section]:
    """Every plot of the report, in reading order; families without rows are left out."""
    found = _money_sections(rows)
    optional = [
        _access_section(rows),
        _simple_section(
            rows,
            "wait",
            "mode=",
            "Waiting time of jobs per access mode",
            [("mean", "mean (h)"), ("median", "median (h)"), ("p90", "p90 (h)"), ("jobs", "jobs")],
            "hours",
            drawn=3,
            digits=2,
        ),
        _simple_section(
            rows,
            "utilisation",
            "partition=",
            "Utilisation of each partition",
            [
                ("utilisation", "of its capacity"),
                ("of_programme_share", "of the programme's share"),
                ("used_gpu_hours", "GPU-h used"),
                ("available_gpu_hours", "GPU-h available"),
            ],
            "share of the GPU-hours available",
            drawn=2,
            digits=0,
        ),
        _simple_section(
            rows,
            "energy",
            "site=",
            "Energy and carbon of the GPU-hours used",
            [("energy", "kWh"), ("carbon", "kg CO2"), ("gpu_hours", "GPU-h")],
            "kWh, kg CO2",
            drawn=2,
            digits=0,
        ),
        _simple_section(
            rows,
            "capacity_share",
            "site=",
            "Capacity: the programme's share and the hosting state's",
            [
                ("programme_gpu_hours", "programme GPU-h"),
                ("hosting_gpu_hours", "hosting state GPU-h"),
                ("used_gpu_hours", "used by the programme GPU-h"),
                ("programme_share", "programme share"),
            ],
            "GPU-hours",
            drawn=2,
            stack=True,
            digits=0,
        ),
    ]
    return found + [s for s in optional if s is not None]


def _table(section: Section) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in section.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in section.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report_html(figures: Mapping[str, Any]) -> str:
    """The page for ``figures`` (``GET /programme/figures``'s answer)."""
    rows = figures["rows"]
    found = sections(rows)
    title = f"Programme figures, {figures['period_from'][:10]} to {figures['period_to'][:10]}"
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in figures.get("notes", []))
    intro = (
        f"<p>Period [{html.escape(figures['period_from'])}, "
        f"{html.escape(figures['period_to'])}), as the books stood at "
        f"{html.escape(figures['as_of'])}: only ledger entries and audit events recorded by "
        "then count. GPU-hours are billed GPU-hours (the ledger's); euros the full cost of the "
        "GPU time behind them (docs/fund.md). Every number: figures.csv and figures.parquet "
        f"beside this page.</p><ul class='note'>{notes}</ul>"
    )
    parts = [
        f"<h2>{html.escape(s.title)}</h2>"
        + s.figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"figure-{i}")
        + _table(s)
        for i, s in enumerate(found)
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>{_STYLE}"
        f"{plotly_script([s.figure for s in found])}</head><body><h1>{html.escape(title)}</h1>"
        f"{intro}{''.join(parts)}</body></html>"
    )


def write_report(
    out: Path, figures: Mapping[str, Any], step: Callable[[str], None] = lambda _: None
) -> list[Path]:
    """``out/report.html``, ``out/figures.csv`` and ``out/figures.parquet``; ``step`` is told
    each file as it is written (a progress bar)."""
    out.mkdir(parents=True, exist_ok=True)
    table = frame(figures["rows"])
    paths = [out / name for name in FILES]
    step(FILES[0])
    paths[0].write_text(report_html(figures), encoding="utf-8")
    step(FILES[1])
    table.write_csv(paths[1])
    step(FILES[2])
    table.write_parquet(paths[2])
    return paths

"""The twin's HTML report: the figures people would rather see than read (Plotly, one file,
no network needed to open it)."""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from aifactories.twin.metrics.results import PolicyRun
from aifactories.twin.metrics.summary import Row


def _cdf(values: Sequence[float]) -> tuple[list[float], list[float]]:
    ordered = sorted(values)
    n = len(ordered)
    return ordered, [(i + 1) / n for i in range(n)]


def _cdf_figure(runs: Sequence[PolicyRun], title: str, wait: bool) -> go.Figure:
    figure = go.Figure()
    for run in runs:
        values = [
            ((r.start_s if wait else r.end_s) - r.submit_s) / 3600
            for r in run.results
            if r.start_s is not None and r.end_s is not None
        ]
        if values:
            x, y = _cdf(values)
            figure.add_trace(go.Scatter(x=x, y=y, mode="lines", name=run.policy))
    figure.update_layout(
        title=title,
        xaxis_title="hours",
        yaxis_title="fraction of jobs",
        xaxis_type="log" if not wait else "linear",
    )
    return figure


def _by_group(runs: Sequence[PolicyRun], attribute: str, title: str) -> go.Figure:
    figure = go.Figure()
    for run in runs:
        waits: dict[str, list[float]] = defaultdict(list)
        for r in run.results:
            if r.start_s is not None:
                waits[getattr(r, attribute)].append((r.start_s - r.submit_s) / 3600)
        groups = sorted(waits)
        figure.add_trace(
            go.Bar(x=groups, y=[sum(waits[g]) / len(waits[g]) for g in groups], name=run.policy)
        )
    figure.update_layout(title=title, yaxis_title="mean wait (hours)", barmode="group")
    return figure


def _utilisation(runs: Sequence[PolicyRun]) -> go.Figure:
    figure = go.Figure()
    for run in runs:
        latest: dict[str, tuple[int, int]] = {}
        xs, ys = [], []
        for time_s, site, busy, total in run.utilisation_samples:
            latest[site] = (busy, total)
            capacity = sum(t for _b, t in latest.values())
            xs.append(time_s / 3600)
            ys.append(sum(b for b, _t in latest.values()) / capacity if capacity else 0.0)
        figure.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", name=run.policy, line={"shape": "hv"})
        )
    figure.update_layout(
        title="GPUs busy over time (whole federation)",
        xaxis_title="hours",
        yaxis_title="fraction of GPUs busy",
    )
    return figure


def _site_steps(run: PolicyRun) -> dict[str, tuple[list[float], list[float | None]]]:
    """Each site's fraction of GPUs busy, one point per change (the line is a step, so a
    repeat adds nothing), held to the end of the run; None while the site has no GPUs (down),
    which Plotly draws as a gap."""
    steps: dict[str, tuple[list[float], list[float | None]]] = {}
    last: dict[str, float | None] = {}
    for time_s, site, busy, total in run.utilisation_samples:
        value = busy / total if total else None
        xs, ys = steps.setdefault(site, ([], []))
        if site not in last or last[site] != value:
            last[site] = value
            xs.append(time_s / 3600)
            ys.append(value)
    for site, (xs, ys) in steps.items():
        xs.append(max(run.horizon_end_s / 3600, xs[-1]))
        ys.append(last[site])
    return steps


def _utilisation_by_site(runs: Sequence[PolicyRun]) -> go.Figure:
    """One panel per policy (stacked, same time axis), one line per site. Fractions rather
    than GPU counts, as the sites differ by orders of magnitude in size; a site keeps its
    colour in every panel and one legend entry toggles it everywhere."""
    rows = max(1, len(runs))
    figure = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        subplot_titles=[run.policy for run in runs],
        vertical_spacing=min(0.08, 0.3 / rows),
    )
    sites = sorted({site for run in runs for _t, site, _b, _n in run.utilisation_samples})
    palette = qualitative.Dark24
    colour = {site: palette[i % len(palette)] for i, site in enumerate(sites)}
    for row, run in enumerate(runs, start=1):
        for site, (xs, ys) in sorted(_site_steps(run).items()):
            figure.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    name=site,
                    legendgroup=site,
                    showlegend=row == 1,
                    line={"shape": "hv", "color": colour[site]},
                ),
                row=row,
                col=1,
            )
        figure.update_yaxes(title_text="busy", range=[0, 1.05], row=row, col=1)
    figure.update_xaxes(title_text="hours", row=rows, col=1)
    figure.update_layout(
        title="GPUs busy over time per site (fraction of each site's GPUs; gaps: site down)",
        height=200 + 220 * rows,
    )
    return figure


def _queue(runs: Sequence[PolicyRun]) -> go.Figure:
    figure = go.Figure()
    for run in runs:
        figure.add_trace(
            go.Scatter(
                x=[t / 3600 for t, _q in run.queue_samples],
                y=[q for _t, q in run.queue_samples],
                mode="lines",
                name=run.policy,
                line={"shape": "hv"},
            )
        )
    figure.update_layout(
        title="Jobs waiting over time", xaxis_title="hours", yaxis_title="pending jobs"
    )
    return figure


def _energy(rows: Sequence[Row]) -> go.Figure:
    policies = [str(r["policy"]) for r in rows]
    figure = go.Figure(
        [
            go.Bar(x=policies, y=[float(r["energy_kwh"]) / 1000 for r in rows], name="energy MWh"),
            go.Bar(
                x=policies, y=[float(r["carbon_kg"]) / 1000 for r in rows], name="carbon t CO2e"
            ),
        ]
    )
    figure.update_layout(title="Energy and carbon", barmode="group")
    return figure


def _table(rows: Sequence[Row]) -> str:
    columns = list(rows[0]) if rows else []
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{v:,.3f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>"
            for v in (row.get(c, "") for c in columns)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(out: Path, title: str, runs: Sequence[PolicyRun], rows: Sequence[Row]) -> Path:
    """``out/index.html``: the comparison table and the figures, plotly.js embedded once."""
    figures = [
        _cdf_figure(runs, "Job completion time (CDF)", wait=False),
        _cdf_figure(runs, "Wait before start (CDF)", wait=True),
        _by_group(runs, "organisation_kind", "Mean wait by organisation kind"),
        _by_group(runs, "domain", "Mean wait by domain"),
        _by_group(runs, "country", "Mean wait by home country"),
        _utilisation(runs),
        _utilisation_by_site(runs),
        _queue(runs),
        _energy(rows),
    ]
    parts = [
        figure.to_html(full_html=False, include_plotlyjs=(index == 0))
        for index, figure in enumerate(figures)
    ]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{_table(rows)}{''.join(parts)}</body></html>"
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_sweep_report(out: Path, rows: Sequence[Row], knees: dict[str, float | None]) -> Path:
    """``out/sweep.html``: mean JCT against offered load, one line per policy, knees marked."""
    figure = go.Figure()
    for policy in dict.fromkeys(str(r["policy"]) for r in rows):
        points = sorted(
            (float(r["load"]), float(r["jct_mean"]) / 3600) for r in rows if r["policy"] == policy
        )
        knee = knees.get(policy)
        label = f"{policy} (saturates at {knee:g})" if knee is not None else policy
        figure.add_trace(
            go.Scatter(
                x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers", name=label
            )
        )
    figure.update_layout(
        title="Mean job completion time against offered load",
        xaxis_title="offered load (GPU-hours asked / GPU-hours available)",
        yaxis_title="mean JCT (hours)",
        yaxis_type="log",
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sweep.html"
    path.write_text(figure.to_html(full_html=True, include_plotlyjs=True), encoding="utf-8")
    return path

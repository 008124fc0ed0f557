"""The report's figures: job times in the unit that fits the trace, the clock in the unit that
fits the run, policies by their full names, and every curve cut to what a screen shows
(:mod:`aifactories.twin.downsample`), so that the report stays small at any trace size."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from aifactories.twin.downsample import MAX_POINTS, cdf_points, step_points
from aifactories.twin.metrics.results import PolicyRun
from aifactories.twin.metrics.summary import Row
from aifactories.twin.policy_titles import policy_title
from aifactories.twin.units import Units

FIGURE_POINTS = 12_000  # a figure with many curves (sites x policies) shares this budget


def _short(values: Sequence[float | None]) -> list[float | None]:
    """Six significant digits: finer than any axis shows, and half the bytes of a full repr."""
    return [None if v is None else float(f"{v:.6g}") for v in values]


def _per_curve(curves: int) -> int:
    return min(MAX_POINTS, max(200, FIGURE_POINTS // max(1, curves)))


def cdf_figure(runs: Sequence[PolicyRun], units: Units, wait: bool) -> go.Figure:
    unit = units.job
    figure = go.Figure()
    for run in runs:
        values = [
            unit.of((r.start_s if wait else r.end_s) - r.submit_s)
            for r in run.results
            if r.start_s is not None and r.end_s is not None
        ]
        if values:
            x, y = cdf_points(values)
            figure.add_trace(
                go.Scatter(x=_short(x), y=_short(y), mode="lines", name=policy_title(run.policy))
            )
    what = "Wait before start" if wait else "Job completion time"
    figure.update_layout(
        title=f"{what} (CDF)",
        xaxis_title=f"{what.lower()} ({unit.word})",
        yaxis_title="fraction of jobs",
        xaxis_type="linear" if wait else "log",
    )
    return figure


def by_group(runs: Sequence[PolicyRun], units: Units, attribute: str, title: str) -> go.Figure:
    unit = units.job
    figure = go.Figure()
    for run in runs:
        waits: dict[str, list[float]] = defaultdict(list)
        for r in run.results:
            if r.start_s is not None:
                waits[getattr(r, attribute)].append(unit.of(r.start_s - r.submit_s))
        groups = sorted(waits)
        figure.add_trace(
            go.Bar(
                x=groups,
                y=_short([sum(waits[g]) / len(waits[g]) for g in groups]),
                name=policy_title(run.policy),
            )
        )
    figure.update_layout(title=title, yaxis_title=f"mean wait ({unit.word})", barmode="group")
    return figure


def utilisation(runs: Sequence[PolicyRun], units: Units) -> go.Figure:
    figure = go.Figure()
    for run in runs:
        latest: dict[str, tuple[int, int]] = {}
        busy_all = capacity = 0  # the sums over the sites' latest samples, kept as they change
        xs: list[float] = []
        ys: list[float | None] = []
        for time_s, site, busy, total in run.utilisation_samples:
            before_busy, before_total = latest.get(site, (0, 0))
            latest[site] = (busy, total)
            busy_all += busy - before_busy
            capacity += total - before_total
            xs.append(units.clock.of(time_s))
            ys.append(busy_all / capacity if capacity else 0.0)
        x, y = step_points(xs, ys, _per_curve(len(runs)))
        figure.add_trace(
            go.Scatter(
                x=_short(x),
                y=_short(y),
                mode="lines",
                name=policy_title(run.policy),
                line={"shape": "hv"},
            )
        )
    figure.update_layout(
        title="GPUs busy over time (whole federation)",
        xaxis_title=f"simulated time ({units.clock.word})",
        yaxis_title="fraction of GPUs busy",
    )
    return figure


def site_steps(run: PolicyRun) -> dict[str, tuple[list[float], list[float | None]]]:
    """Each site's fraction of GPUs busy, one point per change (the line is a step, so a
    repeat adds nothing), held to the end of the run; None while the site has no GPUs (down),
    which Plotly draws as a gap. Times in seconds."""
    steps: dict[str, tuple[list[float], list[float | None]]] = {}
    last: dict[str, float | None] = {}
    for time_s, site, busy, total in run.utilisation_samples:
        value = busy / total if total else None
        xs, ys = steps.setdefault(site, ([], []))
        if site not in last or last[site] != value:
            last[site] = value
            xs.append(time_s)
            ys.append(value)
    for site, (xs, ys) in steps.items():
        xs.append(max(run.horizon_end_s, xs[-1]))
        ys.append(last[site])
    return steps


def utilisation_by_site(runs: Sequence[PolicyRun], units: Units) -> go.Figure:
    """One panel per policy (stacked, same time axis), one line per site. Fractions rather
    than GPU counts, as the sites differ by orders of magnitude in size; a site keeps its
    colour in every panel and one legend entry toggles it everywhere."""
    rows = max(1, len(runs))
    figure = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        subplot_titles=[policy_title(run.policy) for run in runs],
        vertical_spacing=min(0.08, 0.3 / rows),
    )
    sites = sorted({site for run in runs for _t, site, _b, _n in run.utilisation_samples})
    palette = qualitative.Dark24
    colour = {site: palette[i % len(palette)] for i, site in enumerate(sites)}
    budget = _per_curve(len(sites) * len(runs))
    for row, run in enumerate(runs, start=1):
        for site, (seconds, values) in sorted(site_steps(run).items()):
            xs, ys = step_points([units.clock.of(s) for s in seconds], values, budget)
            figure.add_trace(
                go.Scatter(
                    x=_short(xs),
                    y=_short(ys),
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
    figure.update_xaxes(title_text=f"simulated time ({units.clock.word})", row=rows, col=1)
    figure.update_layout(
        title="GPUs busy over time per site (fraction of each site's GPUs; gaps: site down)",
        height=200 + 220 * rows,
    )
    return figure


def queue(runs: Sequence[PolicyRun], units: Units) -> go.Figure:
    figure = go.Figure()
    for run in runs:
        xs, ys = step_points(
            [units.clock.of(t) for t, _q in run.queue_samples],
            [float(q) for _t, q in run.queue_samples],
            _per_curve(len(runs)),
        )
        figure.add_trace(
            go.Scatter(
                x=_short(xs),
                y=[None if q is None else int(q) for q in ys],
                mode="lines",
                name=policy_title(run.policy),
                line={"shape": "hv"},
            )
        )
    figure.update_layout(
        title="Jobs waiting over time",
        xaxis_title=f"simulated time ({units.clock.word})",
        yaxis_title="pending jobs",
    )
    return figure


def energy(rows: Sequence[Row]) -> go.Figure:
    policies = [policy_title(str(r["policy"])) for r in rows]
    figure = go.Figure(
        [
            go.Bar(x=policies, y=[float(r["energy_kwh"]) / 1000 for r in rows], name="energy MWh"),
            go.Bar(
                x=policies, y=[float(r["carbon_kg"]) / 1000 for r in rows], name="carbon t CO2e"
            ),
        ]
    )
    figure.update_layout(
        title="Energy and carbon",
        yaxis_title="MWh (energy), t CO2e (carbon)",
        barmode="group",
    )
    return figure


def figures(runs: Sequence[PolicyRun], rows: Sequence[Row], units: Units) -> list[go.Figure]:
    """Every figure of a run's report, in the order shown."""
    return [
        cdf_figure(runs, units, wait=False),
        cdf_figure(runs, units, wait=True),
        by_group(runs, units, "organisation_kind", "Mean wait by organisation kind"),
        by_group(runs, units, "domain", "Mean wait by domain"),
        by_group(runs, units, "country", "Mean wait by home country"),
        utilisation(runs, units),
        utilisation_by_site(runs, units),
        queue(runs, units),
        energy(rows),
    ]

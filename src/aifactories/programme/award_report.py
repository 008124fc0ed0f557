"""An award run as one HTML page (Plotly embedded, no network needed to open it): the
objective and its weights, requested against awarded GPU-hours per proposal, the hours
awarded per month stacked by partition, the share of requested hours each organisation kind
received, the optimiser-against-greedy table, and the proposals that got less than they asked
with the reason.

Input is the run as ``GET /award-runs/{id}`` returns it: ``plan`` (the chosen method's
outcomes), ``lines`` (that plan's GPU-hours per proposal, partition and month, keyed by
proposal id, months as epoch seconds) and ``comparison`` (``table_rows()`` of
``award_compare.Comparison``: measure, optimiser, greedy, difference). When the run also
carries ``optimiser`` and ``greedy`` (each like ``plan``, optionally with ``lines`` of
``AwardLine``: proposal_id, site_id, partition_id, month index, gpu_hours) and
``month_starts`` (epoch seconds of each month index), both plans are drawn; otherwise only
the chosen one is, and the page says so. Nothing is drawn that the run does not hold.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from aifactories.programme.award_model import EPS_HOURS

PLAN_NAMES = ("optimiser", "greedy")
KIND_ROW_PREFIX = "share awarded: "
TOTAL_SHARE_ROW = "share of requested hours"
_COLOURS = {"requested": "#9e9e9e", "optimiser": "#1f77b4", "greedy": "#ff7f0e"}


@dataclass(frozen=True, slots=True)
class MonthlyLine:
    month: str  # YYYY-MM, or "month N" when the run has no month starts
    site_id: str
    partition_id: str
    gpu_hours: float


@dataclass(frozen=True, slots=True)
class PlanView:
    """One plan as the page needs it; ``monthly`` is None when the run has not its lines."""

    name: str
    outcomes: tuple[dict[str, Any], ...]
    monthly: tuple[MonthlyLine, ...] | None


def comparison_header(rows: Sequence[Sequence[str]]) -> tuple[str, str, str, str]:
    """Column names of the comparison rows, which are stored without a header: plan a is the
    optimiser, plan b is named by the 'gain over ...' row (the greedy rule by default)."""
    gain = next((r[0] for r in rows if r and r[0].startswith("gain over ")), "")
    b = gain.removeprefix("gain over ") or "greedy"
    return "measure", "optimiser", b, f"optimiser - {b}"


def _month(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m")


def _chosen_lines(run: dict[str, Any]) -> tuple[MonthlyLine, ...]:
    """The chosen plan's lines as the run view gives them: per proposal, epoch months."""
    return tuple(
        MonthlyLine(
            _month(float(line["month_starts_at"])),
            str(line["site_id"]),
            str(line["partition_id"]),
            float(line["gpu_hours"]),
        )
        for lines in run.get("lines", {}).values()
        for line in lines
    )


def _plan_lines(plan: dict[str, Any], month_starts: Sequence[float]) -> tuple[MonthlyLine, ...]:
    """A plan's ``AwardLine``s (month indices) with the run's month starts."""

    def label(index: int) -> str:
        return _month(month_starts[index]) if index < len(month_starts) else f"month {index}"

    return tuple(
        MonthlyLine(
            label(int(line["month"])),
            str(line["site_id"]),
            str(line["partition_id"]),
            float(line["gpu_hours"]),
        )
        for line in plan["lines"]
    )


def plan_views(run: dict[str, Any]) -> list[PlanView]:
    """Both plans when the run carries them, else the chosen one (``plan``/``lines``)."""
    month_starts = [float(s) for s in run.get("month_starts") or []]
    views = []
    for name in PLAN_NAMES:
        plan = run.get(name)
        if not isinstance(plan, dict):
            continue
        monthly: tuple[MonthlyLine, ...] | None = None
        if plan.get("lines") is not None:
            monthly = _plan_lines(plan, month_starts)
        elif name == run.get("method") and "lines" in run:
            monthly = _chosen_lines(run)
        views.append(PlanView(name, tuple(plan.get("outcomes", ())), monthly))
    if views:
        return views
    return [
        PlanView(
            str(run.get("method", "plan")),
            tuple(run["plan"].get("outcomes", ())),
            _chosen_lines(run) if "lines" in run else None,
        )
    ]


def proposal_order(run: dict[str, Any], plans: Sequence[PlanView]) -> list[int]:
    """The panel's order: the run's ``proposals`` if it lists them, then the order of the
    outcomes (the service builds them in rank order) for any id not listed."""
    listed = [int(p) for p in run.get("proposals") or []]
    seen = dict.fromkeys(listed)
    for plan in plans:
        seen.update(dict.fromkeys(int(o["proposal_id"]) for o in plan.outcomes))
    return list(seen)


def _percent(text: str) -> float | None:
    try:
        return float(text.strip().removesuffix("%").replace(",", ""))
    except ValueError:
        return None


def shares_by_kind(rows: Sequence[Sequence[str]]) -> dict[str, dict[str, float]]:
    """From the comparison rows: per plan, the share (%) of requested GPU-hours awarded, all
    proposals together ('all') and per organisation kind."""
    _, a, b, _ = comparison_header(rows)
    shares: dict[str, dict[str, float]] = {a: {}, b: {}}
    for row in rows:
        if len(row) < 3:
            continue
        label = row[0].strip()
        if label == TOTAL_SHARE_ROW:
            group = "all"
        elif label.startswith(KIND_ROW_PREFIX):
            group = label.removeprefix(KIND_ROW_PREFIX)
        else:
            continue
        for plan, text in ((a, row[1]), (b, row[2])):
            value = _percent(text)
            if value is not None:
                shares[plan][group] = value
    return {plan: groups for plan, groups in shares.items() if groups}


# -- figures ---------------------------------------------------------------------------------


def _requested_vs_awarded(order: Sequence[int], plans: Sequence[PlanView]) -> go.Figure:
    labels = [f"#{pid}" for pid in order]
    requested: dict[int, float] = {}
    for plan in plans:
        for o in plan.outcomes:
            requested.setdefault(int(o["proposal_id"]), float(o["requested"]))
    figure = go.Figure(
        go.Bar(
            x=labels,
            y=[requested.get(pid, 0.0) for pid in order],
            name="requested",
            marker_color=_COLOURS["requested"],
        )
    )
    for plan in plans:
        by_id = {int(o["proposal_id"]): o for o in plan.outcomes}
        figure.add_trace(
            go.Bar(
                x=labels,
                y=[float(by_id[pid]["awarded"]) if pid in by_id else None for pid in order],
                name=f"awarded: {plan.name}",
                marker_color=_COLOURS.get(plan.name),
                customdata=[
                    (by_id[pid].get("reason") or "in full") if pid in by_id else "" for pid in order
                ],
                hovertemplate="%{x}: %{y:,.0f} GPU-hours (%{customdata})<extra></extra>",
            )
        )
    figure.update_layout(
        title="Requested and awarded GPU-hours per proposal (panel order)",
        xaxis_title="proposal",
        yaxis_title="GPU-hours",
        barmode="group",
    )
    return figure


def _per_month(plans: Sequence[PlanView]) -> go.Figure:
    drawn = [p for p in plans if p.monthly is not None]
    months = sorted({line.month for p in drawn for line in p.monthly or ()})
    partitions = sorted({line.partition_id for p in drawn for line in p.monthly or ()})
    palette = qualitative.Dark24
    colour = {part: palette[i % len(palette)] for i, part in enumerate(partitions)}
    rows = max(1, len(drawn))
    figure = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        subplot_titles=[p.name for p in drawn],
        vertical_spacing=min(0.12, 0.3 / rows),
    )
    for row, plan in enumerate(drawn, start=1):
        hours: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for line in plan.monthly or ():
            hours[line.partition_id][line.month] += line.gpu_hours
        for part in partitions:
            figure.add_trace(
                go.Bar(
                    x=months,
                    y=[hours[part].get(m, 0.0) for m in months],
                    name=part,
                    legendgroup=part,
                    showlegend=row == 1,
                    marker_color=colour[part],
                    hovertemplate=f"{part}<br>%{{x}}: %{{y:,.0f}} GPU-hours<extra></extra>",
                ),
                row=row,
                col=1,
            )
        figure.update_yaxes(title_text="GPU-hours", row=row, col=1)
    figure.update_xaxes(title_text="month (UTC)", type="category", row=rows, col=1)
    figure.update_layout(
        title="GPU-hours awarded per month, stacked by partition",
        barmode="stack",
        height=200 + 260 * rows,
    )
    return figure


def shares_by_country(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per plan, the share (%) of requested GPU-hours awarded to each country's proposals,
    from the run's ``shares_by_country`` (fractions), in country order."""
    stored = run.get("shares_by_country") or {}
    return {
        plan: {c: 100.0 * float(v) for c, v in sorted(by_country.items())}
        for plan, by_country in stored.items()
        if by_country
    }


def _shares_figure(
    shares: dict[str, dict[str, float]],
    title: str = "Share of requested GPU-hours awarded, all proposals and by organisation kind",
    axis: str = "organisation kind",
) -> go.Figure:
    groups = list(dict.fromkeys(g for by_group in shares.values() for g in by_group))
    figure = go.Figure(
        [
            go.Bar(
                x=groups,
                y=[by_group.get(g) for g in groups],
                name=plan,
                marker_color=_COLOURS.get(plan),
                hovertemplate="%{x}: %{y:.1f}%<extra></extra>",
            )
            for plan, by_group in shares.items()
        ]
    )
    figure.update_layout(
        title=title,
        xaxis_title=axis,
        yaxis_title="% of requested GPU-hours",
        yaxis_range=[0, 105],
        barmode="group",
    )
    return figure


# -- tables ----------------------------------------------------------------------------------


def _table(
    header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = ()
) -> str:
    """An HTML table of text cells, escaped; the ``numeric`` columns align right."""
    right = frozenset(numeric)

    def cell(tag: str, index: int, text: str) -> str:
        align = " class='num'" if index in right else ""
        return f"<{tag}{align}>{html.escape(text)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    body = "".join(
        "<tr>" + "".join(cell("td", i, str(v)) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _hours(value: Any) -> str:
    return f"{float(value):,.0f}"


def _awards_table(run: dict[str, Any], order: Sequence[int], plans: Sequence[PlanView]) -> str:
    by_plan = [{int(o["proposal_id"]): o for o in p.outcomes} for p in plans]
    chosen_sites = {
        int(pid): sorted({str(line["site_id"]) for line in lines})
        for pid, lines in run.get("lines", {}).items()
    }
    header = ["proposal", "requested h"] + [f"awarded h ({p.name})" for p in plans]
    header.append(f"sites ({run.get('method', '')})")
    rows = []
    for pid in order:
        found = next((o for outcomes in by_plan if (o := outcomes.get(pid))), None)
        rows.append(
            [f"#{pid}", _hours(found["requested"]) if found else "-"]
            + [_hours(o[pid]["awarded"]) if pid in o else "-" for o in by_plan]
            + [", ".join(chosen_sites.get(pid, [])) or "-"]
        )
    return _table(header, rows, numeric=range(1, len(header) - 1))


def _short_table(order: Sequence[int], plans: Sequence[PlanView]) -> str:
    position = {pid: i for i, pid in enumerate(order)}
    rows = []
    for plan in plans:
        short = [
            o for o in plan.outcomes if float(o["awarded"]) < float(o["requested"]) - EPS_HOURS
        ]
        for o in sorted(short, key=lambda o: position.get(int(o["proposal_id"]), 0)):
            requested, awarded = float(o["requested"]), float(o["awarded"])
            rows.append(
                [
                    plan.name,
                    f"#{o['proposal_id']}",
                    _hours(requested),
                    _hours(awarded),
                    f"{100 * awarded / requested:.1f}%" if requested else "-",
                    str(o.get("reason") or "-"),
                    str(o.get("explanation") or ""),
                ]
            )
    if not rows:
        return "<p>Every proposal got what it asked.</p>"
    header = ["plan", "proposal", "requested h", "awarded h", "share", "reason", "explanation"]
    return _table(header, rows, numeric=(2, 3, 4))


def _summary(run: dict[str, Any]) -> list[tuple[str, str]]:
    plan = run.get("plan", {})
    gap = plan.get("mip_gap")
    created = run.get("created_at")
    return [
        ("call", str(run.get("call", ""))),
        ("run", str(run.get("id", ""))),
        ("method", str(run.get("method", ""))),
        ("status", str(run.get("status", ""))),
        ("created", _day(created) if created is not None else "-"),
        ("applied", _day(run["applied_at"]) if run.get("applied_at") is not None else "-"),
        ("solver", str(plan.get("solver", ""))),
        (
            "solve status",
            str(plan.get("status", "")) + (f" (gap {float(gap):.1e})" if gap is not None else ""),
        ),
        ("solve time", f"{float(plan.get('solve_seconds', 0.0)):.2f} s"),
        ("GPU-hours awarded", _hours(plan.get("awarded_gpu_hours", 0.0))),
    ]


def _day(epoch_s: Any) -> str:
    return datetime.fromtimestamp(float(epoch_s), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:80em}"
    "table{border-collapse:collapse;font-size:13px;margin:0.5em 0 1.5em}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
    "td.num,th.num{text-align:right}.note{color:#555;font-size:13px}"
)


def award_run_html(run: dict[str, Any], *, title: str | None = None) -> str:
    """The whole page for ``run`` (a run as ``GET /award-runs/{id}`` returns it)."""
    title = title or f"Award run {run.get('id', '')} for call {run.get('call', '')}"
    plans = plan_views(run)
    order = proposal_order(run, plans)
    comparison = [[str(c) for c in row] for row in run.get("comparison") or []]
    shares = shares_by_kind(comparison)
    esc = html.escape

    notes: list[str] = []
    if len(plans) == 1:
        notes.append(
            f"This run holds the per-proposal and monthly awards of the plan it chose "
            f"({plans[0].name}) only; the other plan appears in the comparison table."
        )
    missing = [p.name for p in plans if p.monthly is None]
    if missing:
        notes.append(f"No monthly lines in this run for: {', '.join(missing)}.")

    figures = [_requested_vs_awarded(order, plans)]
    if any(p.monthly for p in plans):
        figures.append(_per_month(plans))
    else:
        notes.append("No GPU-hours were awarded per month in this run.")
    if shares:
        figures.append(_shares_figure(shares))
    else:
        notes.append("The comparison holds no share of requested hours per organisation kind.")
    countries = shares_by_country(run)
    if countries:
        figures.append(
            _shares_figure(countries, "Share of requested GPU-hours awarded by country", "country")
        )
    else:
        notes.append("This run stores no share of requested hours per country.")
    charts = "".join(  # fixed div ids: the same run gives the same page
        "<div class='figure'>"
        + f.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"award-figure-{i}")
        + "</div>"
        for i, f in enumerate(figures)
    )

    weights = run.get("weights") or {}
    parts = [
        f"<h1>{esc(title)}</h1>",
        _table([], _summary(run)),
        "<h2>Objective</h2>",
        f"<p>{esc(str(run.get('objective', '')))}</p>",
        _table(["weight", "value"], [(k, f"{float(v):g}") for k, v in weights.items()], [1]),
        "<h2>Figures</h2>",
        "".join(f"<p class='note'>{esc(n)}</p>" for n in notes),
        charts,
        "<h2>Optimiser against the greedy rule (same weights)</h2>",
        _table(comparison_header(comparison), comparison, numeric=(1, 2, 3))
        if comparison
        else "<p>No comparison in this run.</p>",
        "<h2>Awards per proposal</h2>",
        _awards_table(run, order, plans),
        "<h2>Proposals awarded less than they asked</h2>",
        _short_table(order, plans),
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(parts)}</body></html>"
    )

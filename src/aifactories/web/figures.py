"""The programme's public figures, for anyone: calls, proposals received and awarded, and
GPU-hours requested, granted and delivered, by access mode and by organisation kind
(services/programme/public_figures.py). Each table has a bar chart drawn on the server as
SVG: no script, and the same numbers are in the table for anyone who cannot see it."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from aifactories.services.programme.public_figures import OUTSIDE_CALLS, FigureRow, public_figures
from aifactories.web.render import render
from aifactories.web.session import MaybeSignedIn, context

router = APIRouter(include_in_schema=False)

LABELS = {
    "playground": "Playground",
    "fast_lane": "Fast Lane",
    "large_scale": "Large Scale",
    "ai_for_science": "AI for Science",
    "education": "Education",
    OUTSIDE_CALLS: "Outside the calls",
    "startup": "Start-ups",
    "sme": "SMEs",
    "industry": "Industry",
    "academia": "Academia",
    "public": "Public sector",
}

# the chart's geometry, in SVG user units (it scales to the page's width)
LABEL_W = 150
BAR_W = 420
BAR_H = 14
GROUP_H = 2 * BAR_H + 14
TOP = 8


@dataclass(frozen=True)
class Bar:
    y: float
    width: float
    value: float
    kind: str  # "granted" or "delivered": the CSS class, and the legend


@dataclass(frozen=True)
class Group:
    label: str
    y: float
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    label_w: int
    groups: tuple[Group, ...]


def label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " ").capitalize())


def chart(rows: list[FigureRow]) -> Chart:
    """Two bars per row, GPU-hours granted and delivered, scaled to the largest value."""
    most = max([r.granted_gpu_hours for r in rows] + [r.delivered_gpu_hours for r in rows] + [0])
    groups = []
    for i, row in enumerate(rows):
        y = TOP + i * GROUP_H
        bars = tuple(
            Bar(
                y=y + j * BAR_H,
                width=round(BAR_W * value / most, 1) if most else 0.0,
                value=value,
                kind=kind,
            )
            for j, (kind, value) in enumerate(
                (("granted", row.granted_gpu_hours), ("delivered", row.delivered_gpu_hours))
            )
        )
        groups.append(Group(label=label(row.key), y=y, bars=bars))
    return Chart(
        width=LABEL_W + BAR_W + 110,
        height=TOP * 2 + len(rows) * GROUP_H,
        label_w=LABEL_W,
        groups=tuple(groups),
    )


@router.get("/portal/figures", response_class=HTMLResponse)
def figures_page(request: Request, _principal: MaybeSignedIn) -> HTMLResponse:
    figures = public_figures(context(request))
    return render(
        request,
        "figures/figures.html",
        page="figures",
        figures=figures,
        label=label,
        by_mode_chart=chart(figures.by_mode),
        by_kind_chart=chart(figures.by_organisation_kind),
    )

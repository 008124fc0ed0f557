"""The programme's figures (services/fund/programme_figures.py) as the portal page's sections:
each a bar chart drawn on the server as SVG (the public figures page's approach and geometry,
web/figures.py: no script) and the table of the same numbers, already formatted, so that the
template only lays them out and anyone who cannot see a chart reads its table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from aifactories.services.fund.programme_figures import POOL, STAGES
from aifactories.services.fund.programme_figures_report import BREAKDOWNS  # the report's order
from aifactories.services.fund.programme_figures_values import (
    Energy,
    HoursAndEuros,
    ProgrammeFigures,
    Waits,
)
from aifactories.web.figures import BAR_H, BAR_W, LABEL_W, TOP, Bar, Chart, Group, label
from aifactories.web.templating import eur, gpu_hours

# keys shown as they are (a country code, a site or partition id), not turned into words
VERBATIM = frozenset({"country", "site"})
YES_NO = {
    "critical": {"yes": "Critical domain", "no": "Other domains"},
    "industrial": {"yes": "Industrial application", "no": "Other applications"},
}
STAGE_WORDS = dict(
    zip(
        STAGES,
        ("submission to decision", "decision to first job", "submission to first job"),
        strict=True,
    )
)
# the first two colours are the public figures' (portal.css .bar.granted, .bar.delivered)
COLOURS = {"granted": "#0b4f9c", "delivered": "#c25e00", "third": "#3d7a3d"}
GAP = 14


@dataclass(frozen=True)
class Series:
    kind: str  # a key of COLOURS: the bar's CSS class and fill
    legend: str


@dataclass(frozen=True)
class Plot:
    id: str
    title: str
    unit: str  # what the bars count, said in the caption
    series: tuple[Series, ...]
    chart: Chart
    texts: dict[tuple[int, int], str]  # (group, bar) -> the number written beside the bar


@dataclass(frozen=True)
class Table:
    caption: str
    header: tuple[str, ...]  # the first names the rows
    rows: list[tuple[str, list[str]]]
    foot: tuple[str, list[str]] | None = None
    text: tuple[int, ...] = ()  # the cells (by index) that are words, not numbers


@dataclass(frozen=True)
class Section:
    id: str
    heading: str
    intro: str
    plots: list[Plot]
    table: Table
    sources: list[str] = field(default_factory=list)  # numbered below the table


def number(value: float, unit: str) -> str:
    """A figure as the tables show it; "-" where there is none (no value, NaN)."""
    if not math.isfinite(value):
        return "-"
    if unit == "GPU-h":
        return gpu_hours(round(value, 2))
    if unit == "EUR":
        return eur(value)
    if unit == "ratio":
        return f"{value:.1%}"
    if unit in {"days", "hours"}:
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def plot(
    id: str,
    title: str,
    unit: str,
    series: Sequence[Series],
    groups: Sequence[tuple[str, Sequence[float]]],
) -> Plot:
    """One bar per series in each group, scaled to the largest value of the chart."""
    finite = [v for _, values in groups for v in values if math.isfinite(v)]
    most = max([*finite, 0.0])
    height = len(series) * BAR_H + GAP
    built, texts = [], {}
    for i, (name, values) in enumerate(groups):
        y = TOP + i * height
        bars = []
        for j, (s, value) in enumerate(zip(series, values, strict=True)):
            shown = value if math.isfinite(value) else 0.0
            width = round(BAR_W * shown / most, 1) if most > 0 else 0.0
            bars.append(Bar(y=y + j * BAR_H, width=max(width, 0.0), value=shown, kind=s.kind))
            texts[(i, j)] = number(value, unit)
        built.append(Group(label=name, y=y, bars=tuple(bars)))
    chart = Chart(
        width=LABEL_W + BAR_W + 120,
        height=TOP * 2 + max(len(groups), 1) * height,
        label_w=LABEL_W,
        groups=tuple(built),
    )
    return Plot(id, title, unit, tuple(series), chart, texts)


def key_label(dimension: str, key: str) -> str:
    if key == POOL:
        return "Pool (any site)"
    if dimension in YES_NO:
        return YES_NO[dimension].get(key, key)
    return key if dimension in VERBATIM else label(key)


GRANTED_USED = (Series("granted", "granted"), Series("delivered", "used"))


def _breakdown(figures: ProgrammeFigures, dimension: str, words: str) -> Section:
    def table_of(rows: list[HoursAndEuros]) -> dict[str, HoursAndEuros]:
        return {r.key: r for r in rows if r.dimension == dimension}

    granted, used = table_of(figures.granted), table_of(figures.used)
    keys = list(dict.fromkeys([*granted, *used]))
    none = HoursAndEuros(dimension, "", 0.0, 0.0)
    pairs = [(k, granted.get(k, none), used.get(k, none)) for k in keys]
    names = [key_label(dimension, k) for k in keys]
    hours = [(n, (g.gpu_hours, u.gpu_hours)) for n, (_, g, u) in zip(names, pairs, strict=True)]
    money = [(n, (g.eur, u.eur)) for n, (_, g, u) in zip(names, pairs, strict=True)]
    total_g = next((r for r in figures.granted if r.dimension == "total"), none)
    total_u = next((r for r in figures.used if r.dimension == "total"), none)

    def cells(g: HoursAndEuros, u: HoursAndEuros) -> list[str]:
        return [
            number(g.gpu_hours, "GPU-h"),
            number(g.eur, "EUR"),
            number(u.gpu_hours, "GPU-h"),
            number(u.eur, "EUR"),
        ]

    return Section(
        id=f"by-{dimension}",
        heading=f"Granted and used by {words}",
        intro="",
        plots=[
            plot(f"chart-{dimension}-hours", f"GPU-hours by {words}", "GPU-h", GRANTED_USED, hours),
            plot(f"chart-{dimension}-eur", f"Euros by {words}", "EUR", GRANTED_USED, money),
        ],
        table=Table(
            f"GPU-hours and euros granted and used, by {words}",
            (words.capitalize(), "Granted (GPU-h)", "Granted (EUR)", "Used (GPU-h)", "Used (EUR)"),
            [(n, cells(g, u)) for n, (_, g, u) in zip(names, pairs, strict=True)],
            ("Total", cells(total_g, total_u)),
        ),
    )


def _utilisation(figures: ProgrammeFigures) -> Section:
    rows = figures.utilisation
    return Section(
        "utilisation",
        "Utilisation of each partition",
        "Physical GPU-hours the programme's jobs used, against the partition's GPUs times the "
        "hours of the period, and against the programme's share of them.",
        [
            plot(
                "chart-utilisation",
                "Utilisation of each partition by the programme",
                "ratio",
                (
                    Series("granted", "of its capacity"),
                    Series("delivered", "of the programme's share"),
                ),
                [(u.partition_id, (u.utilisation, u.of_programme_share)) for u in rows],
            )
        ],
        Table(
            "Utilisation of each partition by the programme's jobs",
            (
                "Partition",
                "GPUs",
                "Available (GPU-h)",
                "Programme's share (GPU-h)",
                "Used (GPU-h)",
                "Utilisation",
                "Of the programme's share",
            ),
            [
                (
                    u.partition_id,
                    [
                        f"{u.gpus:,}",
                        number(u.available_gpu_hours, "GPU-h"),
                        number(u.programme_gpu_hours, "GPU-h"),
                        number(u.used_gpu_hours, "GPU-h"),
                        number(u.utilisation, "ratio"),
                        number(u.of_programme_share, "ratio"),
                    ],
                )
                for u in rows
            ],
        ),
    )


def _time_to_access(figures: ProgrammeFigures) -> Section:
    whole = [d for d in figures.time_to_access if d.stage == STAGES[2]]
    order = {stage: i for i, stage in enumerate(STAGES)}
    return Section(
        "time-to-access",
        "Time to access, per access mode",
        "From a proposal's submission to its decision, and from the decision to the project's "
        "first job: median and 90th percentile, in days. The chart shows the whole path.",
        [
            plot(
                "chart-access",
                "Days from submission to first job, per access mode",
                "days",
                (Series("granted", "median"), Series("delivered", "90th percentile")),
                [(label(d.mode), (d.median_days, d.p90_days)) for d in whole],
            )
        ],
        Table(
            "Time to access per access mode and stage, in days",
            ("Access mode", "Stage", "Proposals", "Median (days)", "90th percentile (days)"),
            [
                (
                    label(d.mode),
                    [
                        STAGE_WORDS.get(d.stage, d.stage),
                        f"{d.count:,}",
                        number(d.median_days, "days"),
                        number(d.p90_days, "days"),
                    ],
                )
                for d in sorted(figures.time_to_access, key=lambda d: (d.mode, order[d.stage]))
            ],
            text=(0,),
        ),
    )


def _waits(figures: ProgrammeFigures) -> Section:
    modes = [w for w in figures.waits if w.mode != "total"]
    total = next((w for w in figures.waits if w.mode == "total"), None)

    def cells(w: Waits) -> list[str]:
        return [f"{w.count:,}", *(number(h, "hours") for h in (w.mean_h, w.median_h, w.p90_h))]

    return Section(
        "waits",
        "Waiting time of jobs, per access mode",
        "Jobs started in the period: hours from submission to start.",
        [
            plot(
                "chart-waits",
                "Hours from a job's submission to its start, per access mode",
                "hours",
                (Series("granted", "median"), Series("delivered", "90th percentile")),
                [(label(w.mode), (w.median_h, w.p90_h)) for w in modes],
            )
        ],
        Table(
            "Waiting time of jobs per access mode, in hours",
            ("Access mode", "Jobs", "Mean (h)", "Median (h)", "90th percentile (h)"),
            [(label(w.mode), cells(w)) for w in modes],
            ("All jobs", cells(total)) if total is not None else None,
        ),
    )


def _energy(figures: ProgrammeFigures) -> Section:
    sites = [e for e in figures.energy if e.site_id != "total"]
    total = next((e for e in figures.energy if e.site_id == "total"), None)

    def cells(e: Energy) -> list[str]:
        return [number(e.gpu_hours, "GPU-h"), number(e.kwh, "kWh"), number(e.kg_co2, "kg CO2")]

    return Section(
        "energy",
        "Energy and carbon",
        "Energy of the GPU-hours used (GPUs' power and the site's PUE, from the cost model) and "
        "its carbon at the country's grid intensity.",
        [
            plot(
                "chart-energy",
                "Energy used, per site",
                "kWh",
                (Series("third", "kWh"),),
                [(key_label("site", e.site_id), (e.kwh,)) for e in sites],
            ),
            plot(
                "chart-carbon",
                "Carbon emitted, per site",
                "kg CO2",
                (Series("third", "kg CO2"),),
                [(key_label("site", e.site_id), (e.kg_co2,)) for e in sites],
            ),
        ],
        Table(
            "Energy and carbon of the GPU-hours used, per site",
            ("Site", "GPU-hours (physical)", "Energy (kWh)", "Carbon (kg CO2)"),
            [(key_label("site", e.site_id), cells(e)) for e in sites],
            ("Total", cells(total)) if total is not None else None,
        ),
    )


def _capacity(figures: ProgrammeFigures) -> Section:
    rows = figures.capacity_shares
    # one basis holds for most sites: said once, below the table, and referred to by number
    bases = list(dict.fromkeys(c.basis for c in rows))
    return Section(
        "capacity",
        "The programme's share of capacity and the hosting states'",
        "Each site's GPU-hours over the period split between the programme and the hosting "
        "state, and what the programme's jobs used; each share's source or assumption is "
        "numbered below the table.",
        [
            plot(
                "chart-capacity",
                "GPU-hours of each site: the programme's, the hosting state's, used",
                "GPU-h",
                (
                    Series("granted", "the programme's share"),
                    Series("delivered", "the hosting state's"),
                    Series("third", "used by the programme"),
                ),
                [
                    (c.site_id, (c.programme_gpu_hours, c.hosting_gpu_hours, c.used_gpu_hours))
                    for c in rows
                ],
            )
        ],
        Table(
            "The programme's share of each site's capacity over the period",
            (
                "Site",
                "GPUs",
                "Programme's share",
                "Programme (GPU-h)",
                "Hosting state (GPU-h)",
                "Used by the programme (GPU-h)",
                "Source of the share",
            ),
            [
                (
                    c.site_id,
                    [
                        f"{c.gpus:,}",
                        number(c.share, "ratio"),
                        number(c.programme_gpu_hours, "GPU-h"),
                        number(c.hosting_gpu_hours, "GPU-h"),
                        number(c.used_gpu_hours, "GPU-h"),
                        f"[{bases.index(c.basis) + 1}]",
                    ],
                )
                for c in rows
            ],
            text=(5,),
        ),
        sources=bases,
    )


def sections(figures: ProgrammeFigures) -> list[Section]:
    """Every section of the page, in the order of docs/fund.md's families."""
    return [
        *(_breakdown(figures, dimension, words) for dimension, words in BREAKDOWNS),
        _utilisation(figures),
        _time_to_access(figures),
        _waits(figures),
        _energy(figures),
        _capacity(figures),
    ]

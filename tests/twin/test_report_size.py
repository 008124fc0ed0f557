"""The report stays small at any trace size: one copy of plotly.js (its basic bundle), every
curve cut to about a thousand points with its shape kept."""

from __future__ import annotations

import re
from pathlib import Path

import plotly.graph_objects as go
import pytest

from aifactories.twin import report_figures
from aifactories.twin.downsample import MAX_POINTS, cdf_points, step_points
from aifactories.twin.metrics.results import JobResult, PolicyRun
from aifactories.twin.metrics.summary import compare
from aifactories.twin.plotly_bundle import basic_draws, plotly_script
from aifactories.twin.report import write_report, write_sweep_report
from aifactories.twin.units import Units

TWO_MB = 2 * 1024 * 1024
# The banner at the top of every plotly.js bundle, basic or full: one per copy embedded.
BANNER = re.compile(r"\* plotly\.js .*v\d+\.\d+\.\d+")


def big_run(policy: str, jobs: int, sites: int, seed: int) -> PolicyRun:
    """A run of ``jobs`` jobs and a busy utilisation history, built without simulating."""
    results = []
    for i in range(jobs):
        submit = 30.0 * i
        start = submit + (i * 7919 + seed) % 5000
        runtime = 60.0 + (i * 104729 + seed) % 20000
        results.append(
            JobResult(
                job_id=str(i),
                project=f"p{i % 40}",
                organisation_kind=("academia", "industry", "public")[i % 3],
                domain=("science", "health", "climate", "ai")[i % 4],
                country=("DE", "FR", "IT", "ES", "FI")[i % 5],
                site_id=f"s{i % sites}",
                partition_id=f"s{i % sites}/p",
                gpu_model="A100",
                gpus=1 + i % 8,
                submit_s=submit,
                start_s=start,
                end_s=start + runtime,
                runtime_s=runtime,
                requested_runtime_s=2 * runtime,
                gpu_seconds=runtime,
                energy_kwh=0.1,
                carbon_kg=0.02,
            )
        )
    end = 30.0 * jobs + 30000
    utilisation = tuple(
        (10.0 * k, f"s{k % sites}", (k * 37 + seed) % 64, 64) for k in range(int(end / 10))
    )
    queue = tuple((10.0 * k, (k * 13 + seed) % 500) for k in range(int(end / 10)))
    return PolicyRun(
        policy=policy,
        results=tuple(results),
        cycle_runtimes_s=(0.001,) * 100,
        utilisation_samples=utilisation,
        queue_samples=queue,
        horizon_start_s=0.0,
        horizon_end_s=end,
    )


@pytest.fixture(scope="module")
def runs() -> list[PolicyRun]:
    return [big_run(p, 8_000, 16, seed) for seed, p in enumerate(("fifo", "easy_backfill"))]


def test_cdf_keeps_both_ends_and_the_quantiles() -> None:
    values = [float(v) for v in range(100_000)]
    x, y = cdf_points(values, 1000)
    assert len(x) == len(y) <= 1000
    assert (x[0], y[0]) == (0.0, 1 / 100_000) and (x[-1], y[-1]) == (99_999.0, 1.0)
    median = next(xv for xv, yv in zip(x, y, strict=True) if yv >= 0.5)
    assert median == pytest.approx(50_000, abs=150)  # within one grid step of the true median
    assert cdf_points([3.0, 1.0, 2.0]) == ([1.0, 2.0, 3.0], [1 / 3, 2 / 3, 1.0])


def test_step_decimation_keeps_every_spike_gap_and_the_end() -> None:
    xs = [float(t) for t in range(50_000)]
    ys: list[float | None] = [0.5] * 50_000
    ys[12_345] = 1.0  # a one-sample spike
    ys[30_001] = 0.0  # a one-sample dip
    ys[40_000] = None  # a gap (the site down)
    ys[-1] = 0.25  # the value held at the end
    x, y = step_points(xs, ys, 1000)
    assert len(x) <= 1010
    kept = dict(zip(x, y, strict=True))
    assert kept[12_345.0] == 1.0 and kept[30_001.0] == 0.0
    assert kept[40_000.0] is None and kept[40_001.0] == 0.5  # the gap ends where it did
    assert (x[0], x[-1], y[-1]) == (0.0, 49_999.0, 0.25)
    assert set(y) <= {0.5, 1.0, 0.0, None, 0.25}  # only values the curve has
    assert step_points([0.0, 1.0], [1.0, None]) == ([0.0, 1.0], [1.0, None])


def test_every_curve_is_cut_to_about_a_thousand_points(runs: list[PolicyRun]) -> None:
    figures = report_figures.figures(runs, compare(runs), Units.of(runs))
    lengths = [len(trace.x) for figure in figures for trace in figure.data]
    assert max(lengths) <= MAX_POINTS + 10
    per_site = figures[6]  # 16 sites x 2 policies share the figure's budget
    assert len(per_site.data) == 32
    assert sum(len(t.x) for t in per_site.data) <= report_figures.FIGURE_POINTS + 32 * 10


def test_a_report_of_16000_jobs_is_under_2_mb_with_one_plotly(
    tmp_path: Path, runs: list[PolicyRun]
) -> None:
    path = write_report(tmp_path, "big", runs, compare(runs))
    page = path.read_text(encoding="utf-8")
    assert path.stat().st_size < TWO_MB
    assert len(BANNER.findall(page)) == 1 and "plotly.js (basic - minified)" in page
    assert "<script src=" not in page  # opens offline: nothing to fetch
    assert page.count("Plotly.newPlot") == 9


def test_a_figure_the_basic_bundle_cannot_draw_gets_the_full_one() -> None:
    scatter = go.Figure(go.Scatter(x=[1], y=[1]))
    heatmap = go.Figure(go.Heatmap(z=[[1]]))
    assert basic_draws([scatter]) and not basic_draws([scatter, heatmap])
    full = plotly_script([scatter, heatmap])
    assert len(BANNER.findall(full)) == 1 and "(basic - minified)" not in full
    assert len(full) > 3 * len(plotly_script([scatter]))


def test_a_sweep_report_embeds_plotly_once(tmp_path: Path) -> None:
    rows = [
        {"policy": p, "load": load, "jct_mean": 3600.0 * load * (1 + i)}
        for i, p in enumerate(("fifo", "easy_backfill"))
        for load in (0.5, 1.0, 1.5)
    ]
    page = write_sweep_report(tmp_path, rows, {"fifo": 1.0, "easy_backfill": None}).read_text()
    assert len(BANNER.findall(page)) == 1 and len(page) < TWO_MB
    assert "FIFO (no backfill) (saturates at 1)" in page and "EASY backfill" in page
    assert "mean JCT (minutes)" in page  # shortest mean JCT 30 min: minutes

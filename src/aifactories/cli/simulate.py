"""``aif simulate``: the twin from the command line (acts locally, no server needed)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from aifactories.cli import render
from aifactories.domain.errors import AifError, InvalidInput
from aifactories.services.context import catalogue_from_settings
from aifactories.services.simulate import (
    SimulationRequest,
    parse_sweep,
    saturation_load,
    simulate,
    sweep,
    write_results,
)
from aifactories.settings import Settings
from aifactories.twin.report import write_report, write_sweep_report

_COLUMNS = [
    ("wait_mean", "mean wait h", 3600),
    ("jct_mean", "mean JCT h", 3600),
    ("jct_p99", "p99 JCT h", 3600),
    ("slowdown_mean", "bounded slowdown", 1),
    ("utilisation", "utilisation", 1),
    ("ftf_worst", "worst FTF rho", 1),
    ("jain_slowdown", "Jain (slowdown)", 1),
    ("energy_kwh", "energy MWh", 1000),
    ("carbon_kg", "carbon t CO2e", 1000),
    ("cycle_p99_ms", "cycle p99 ms", 1),
]


def simulate_command(
    policy: Annotated[str, typer.Option(help="comma-separated policies to compare")] = (
        "first_fit,earliest_start,fair_share"
    ),
    trace: Annotated[Path | None, typer.Option(help="a trace file (else the generator)")] = None,
    trace_format: Annotated[
        str | None,
        typer.Option("--format", help="philly, swf, alibaba, helios, pollux, sia, sacct"),
    ] = None,
    jobs: Annotated[int, typer.Option(help="generator: number of jobs")] = 2000,
    load: Annotated[float, typer.Option(help="generator: offered load (1.0 = all GPUs)")] = 1.0,
    seed: Annotated[int, typer.Option(help="seed of the generator and the mapping")] = 0,
    limit: Annotated[int | None, typer.Option(help="read only the first N trace jobs")] = None,
    out: Annotated[Path, typer.Option(help="where jobs.csv and summary.csv go")] = Path("report"),
    sweep_spec: Annotated[
        str | None,
        typer.Option(
            "--sweep", help="load=START:STOP:STEP: each policy at each load, with its knee"
        ),
    ] = None,
) -> None:
    """Run the twin: the production policies on a trace, in virtual time, compared."""
    request = SimulationRequest(
        policies=[p.strip() for p in policy.split(",") if p.strip()],
        seed=seed,
        jobs=jobs,
        load=load,
        trace=trace,
        trace_format=trace_format,
        limit=limit,
    )
    if sweep_spec is not None:
        _sweep(request, sweep_spec, out)
        return
    try:
        catalogue = catalogue_from_settings(Settings())
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=render.err_console,
        ) as bars:
            tasks: dict[str, TaskID] = {}

            def progress(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bars.add_task(f"{name:<15}", total=total)
                bars.update(tasks[name], completed=done)

            trace_used, runs, rows = simulate(request, catalogue, progress)
    except AifError as exc:
        bound = f" (expected: {exc.limit})" if isinstance(exc, InvalidInput) and exc.limit else ""
        render.err_console.print(f"[red]error:[/red] {exc.message}{bound}", highlight=False)
        raise typer.Exit(2) from None
    table = Table(title=f"{trace_used.name}: {len(trace_used.jobs):,} jobs")
    table.add_column("policy")
    for _key, label, _scale in _COLUMNS:
        table.add_column(label, justify="right")
    for row in rows:
        cells = [str(row["policy"])]
        for key, _label, scale in _COLUMNS:
            value = row.get(key)
            cells.append("-" if not isinstance(value, float) else f"{value / scale:,.2f}")
        table.add_row(*cells)
    render.console.print(table)
    for path in write_results(out, runs, rows):
        render.console.print(f"wrote {path}")
    report = write_report(out, f"aifactories twin: {trace_used.name}", runs, rows)
    render.console.print(f"wrote {report} (open it in a browser)")


def _bars() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=render.err_console,
    )


def _sweep(request: SimulationRequest, spec: str, out: Path) -> None:
    try:
        loads = parse_sweep(spec)
        catalogue = catalogue_from_settings(Settings())
        with _bars() as bars:
            tasks: dict[str, TaskID] = {}

            def progress(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bars.add_task(f"{name:<22}", total=total)
                bars.update(tasks[name], completed=done)

            rows = sweep(request, catalogue, loads, progress)
    except AifError as exc:
        bound = f" (expected: {exc.limit})" if isinstance(exc, InvalidInput) and exc.limit else ""
        render.err_console.print(f"[red]error:[/red] {exc.message}{bound}", highlight=False)
        raise typer.Exit(2) from None
    policies = list(dict.fromkeys(str(r["policy"]) for r in rows))
    knees = {
        p: saturation_load(
            [(float(r["load"]), float(r["jct_mean"])) for r in rows if r["policy"] == p]
        )
        for p in policies
    }
    table = Table(title="Mean JCT (hours) against offered load")
    table.add_column("load", justify="right")
    for p in policies:
        table.add_column(p, justify="right")
    for load in loads:
        cells = [f"{load:g}"]
        for p in policies:
            row = next(r for r in rows if r["policy"] == p and r["load"] == load)
            cells.append(f"{float(row['jct_mean']) / 3600:,.2f}")
        table.add_row(*cells)
    render.console.print(table)
    for p, knee in knees.items():
        render.console.print(
            f"{p}: saturation load "
            + (f"{knee:g}" if knee is not None else "beyond the swept range")
            + " (mean JCT more than twice its value at the lowest load)"
        )
    out.mkdir(parents=True, exist_ok=True)
    with (out / "sweep.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    render.console.print(f"wrote {out / 'sweep.csv'}")
    render.console.print(f"wrote {write_sweep_report(out, rows, knees)} (open it in a browser)")

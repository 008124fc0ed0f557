"""``aif simulate``: the twin from the command line (acts locally, no server needed)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.markup import escape
from rich.progress import (
    TaskID,
)

from aifactories.cli import render
from aifactories.domain.errors import AifError, InvalidInput

if TYPE_CHECKING:  # the twin is imported when it runs: 'aif simulate --help' stays fast
    from collections.abc import Callable

    from aifactories.catalogue.loader import Catalogue
    from aifactories.services.twin.sweep import SweepPoint
    from aifactories.services.twin.sweep_engines import EngineChoice
    from aifactories.twin.metrics.results import PolicyRun
    from aifactories.twin.scenario import Scenario
    from aifactories.twin.traces.model import Trace

# twin.scenario.DEFAULT_POLICIES, written out: importing the twin costs 0.2 s at start-up
# (tests/cli/test_start.py checks that the two agree)
DEFAULT_POLICIES_SHOWN = "first_fit,earliest_start,fair_share"


def simulate_command(
    scenario: Annotated[
        Path | None,
        typer.Option(help="a scenario YAML file; options given here override its values"),
    ] = None,
    sites: Annotated[
        str | None,
        typer.Option(
            help="the federation: 'auto' (the trace's own machine if it describes one, else "
            "the catalogue), 'trace', 'catalogue' or a catalogue YAML file",
            show_default="auto",
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="comma-separated policies",
            show_default=DEFAULT_POLICIES_SHOWN,
        ),
    ] = None,
    trace: Annotated[Path | None, typer.Option(help="a trace file (else the generator)")] = None,
    trace_format: Annotated[
        str | None,
        typer.Option("--format", help="philly, swf, alibaba, helios, pollux, sia, sacct"),
    ] = None,
    hours: Annotated[
        float | None,
        typer.Option(help="generator: the jobs arriving in this many hours", show_default="336"),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option(help="generator: this many jobs instead of --hours")
    ] = (None),
    load: Annotated[
        float | None,
        typer.Option(
            help="generator: offered load, 1.0 = all GPUs; trace: arrivals this many times as fast",
            show_default="0.9 (generator), 1.0 (trace)",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="seed of the generator and the mapping", show_default="0")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="read only the first N trace jobs")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="the folder of runs: each run gets a new folder inside it, DIR/latest the newest",
            show_default="report",
        ),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option(help="this run's folder itself (new or empty), instead of one inside --out"),
    ] = None,
    sweep_spec: Annotated[
        list[str] | None,
        typer.Option(
            "--sweep",
            help="an axis of a sweep, once per axis: load=START:STOP:STEP (each policy's knee), "
            "seed=START:STOP, policy=A,B, scenario=FILE,FILE",
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="where a sweep runs: local, serial, tcp://HOST:PORT (Dask), slurm, or a "
            "cluster YAML file (docs/twin.md)",
            show_default="local",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="a sweep's local processes or Slurm worker jobs", show_default="cores"),
    ] = None,
) -> None:
    """Run the twin: the production policies on a trace, in virtual time, compared.

    With --scenario FILE, the options given here override the file's values (docs/twin.md).
    """
    from aifactories.services.twin.run_folders import exact_run_folder
    from aifactories.services.twin.simulate import prepare, simulate, write_results, write_scenario
    from aifactories.services.twin.sweep_engines import choose_engine
    from aifactories.twin.report import write_report
    from aifactories.twin.scenario import Overrides, default_scenario, read_scenario, with_overrides
    from aifactories.twin.summary_table import cells, columns
    from aifactories.twin.units import Units

    given = Overrides(
        sites=sites,
        policies=None
        if policy is None
        else tuple(p.strip() for p in policy.split(",") if p.strip()),
        seed=seed,
        jobs=jobs,
        hours=hours,
        load=load,
        trace=trace,
        trace_format=trace_format,
        limit=limit,
        out=out,
    )
    try:
        chosen = with_overrides(
            read_scenario(scenario) if scenario is not None else default_scenario(), given
        )
        if run_dir is not None:  # refused before a long run, not after it
            exact_run_folder(run_dir)
        if sweep_spec:
            engine = choose_engine(cluster, workers)
            _sweep(chosen, sweep_spec, run_dir, engine, lambda s: with_overrides(s, given))
            return
        if cluster is not None or workers is not None:
            raise InvalidInput(
                "--cluster" if cluster is not None else "--workers",
                "sets where a sweep's runs go, and this is one run",
                limit="add --sweep, or leave it out",
            )
        prepared = prepare(chosen, _configured)
        from aifactories.twin.policy_titles import policy_title

        with render.progress_bars() as bars:
            tasks: dict[str, TaskID] = {}

            def progress(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bars.add_task(f"{policy_title(name):<24}", total=total)
                bars.update(tasks[name], completed=done)

            runs, rows = simulate(prepared, progress)
    except AifError as exc:
        _fail(exc)
    trace_used = prepared.trace
    # Times in the unit that fits the trace, each header with its unit; the policies' full
    # names, never cut short (render.print_split); the files keep seconds and identifiers.
    shown = columns(Units.of(runs))
    render.print_split(
        f"{trace_used.name}: {len(trace_used.jobs):,} jobs",
        [("policy", "left"), *((c.header, "right") for c in shown)],
        [cells(row, shown) for row in rows],
    )
    _say_window(rows)
    _say_workload(chosen, prepared.trace, runs, prepared.catalogue)
    folder = _run_folder(chosen, run_dir, sweep=False)
    render.console.print(f"results of this run in {folder}/")
    for path in write_results(folder, runs, rows):
        render.console.print(f"wrote {path}")
    written = write_scenario(folder, prepared)
    render.console.print(
        f"wrote {written} (aif simulate --scenario {written} reruns this run, into a new folder)"
    )
    report = write_report(folder, prepared.title, runs, rows)
    render.console.print(f"wrote {report} (open it in a browser)")


def _run_folder(scenario: Scenario, run_dir: Path | None, sweep: bool) -> Path:
    """The run's own folder: ``--run-dir`` as given, else a new one inside ``out``."""
    from aifactories.services.twin.run_folders import exact_run_folder, new_run_folder, run_name

    try:
        if run_dir is not None:
            return exact_run_folder(run_dir)
        trace = scenario.spec.workload.trace
        name = run_name(scenario.spec.name, Path(trace.path) if trace else None, sweep)
        return new_run_folder(Path(scenario.spec.out), name)
    except AifError as exc:
        _fail(exc)


def _say_workload(
    scenario: Scenario, trace: Trace, runs: list[PolicyRun], sites: Catalogue
) -> None:
    """What the run replayed and on what: the trace's jobs with what its reader skipped or
    changed, the machine, and per policy the jobs that ran against their constraints."""
    from aifactories.services.twin.scenario import sites_of
    from aifactories.twin.metrics.constraints import violations

    render.console.print(f"workload: {trace.summary()}")
    render.console.print(f"sites: {sites_of(scenario, lambda: sites)[1]}")
    for run in runs:
        render.console.print(violations(trace, run, sites.sites).sentence())


def _say_window(rows: list[dict[str, float | str]]) -> None:
    """Which jobs and hours the figures cover, and what makes them doubtful."""
    from aifactories.twin.metrics.steady_state import RULE, warnings

    if rows and rows[0].get("scope") == "steady state":
        first = rows[0]
        render.console.print(
            f"{RULE}: {float(first['window_start_h']):,.1f} h to "
            f"{float(first['window_end_h']):,.1f} h, {int(first['jobs']):,} jobs; "
            "the whole run's figures: summary_whole_run.csv",
            highlight=False,
        )
    for warning in warnings(rows):
        render.err_console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)


def _configured() -> Catalogue:
    """``sites: catalogue``: the platform's catalogue (AIFACTORIES_CATALOGUE, else embedded)."""
    from aifactories.services.core.context import catalogue_from_settings
    from aifactories.settings import Settings

    return catalogue_from_settings(Settings())


def _fail(exc: AifError) -> NoReturn:
    bound = f" (expected: {exc.limit})" if isinstance(exc, InvalidInput) and exc.limit else ""
    # Escaped: a message may quote a pattern like [a-z0-9], which Rich would take as markup.
    # Soft-wrapped: one error stays one line, however narrow the terminal.
    render.err_console.print(
        f"[red]error:[/red] {escape(exc.message + bound)}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(2) from None


def _sweep(
    scenario: Scenario,
    texts: list[str],
    run_dir: Path | None,
    choice: EngineChoice,
    overridden: Callable[[Scenario], Scenario],
) -> None:
    from dataclasses import replace

    from aifactories.services.twin.sweep import parse_axes, saturation_load, sweep
    from aifactories.services.twin.sweep_engines import open_engine
    from aifactories.twin.policy_titles import policy_title
    from aifactories.twin.report import write_sweep_report
    from aifactories.twin.units import unit_for

    files, spec = parse_axes(texts, scenario)
    if files is not None:  # the command line's options hold for every scenario swept
        spec = replace(spec, scenarios=tuple(overridden(f) for f in files))
    render.err_console.print(f"sweep on {choice.describe()}")
    # Slurm worker jobs log into the run's folder, so it is made first (a failed start keeps
    # their logs there); any other engine writes nothing until the sweep has its rows.
    out = _run_folder(scenario, run_dir, sweep=True) if choice.kind == "slurm" else None
    logs = out / "worker-logs" if out is not None else None
    with open_engine(choice, logs=logs) as engine, render.progress_bars() as bars:
        task = bars.add_task("runs", total=None)

        def progress(point: SweepPoint, done: int, total: int) -> None:
            bars.update(task, completed=done, total=total, description=point.describe())

        rows = sweep(spec, _configured, engine, progress)
    # One curve per scenario and policy: mean JCT at each load, the mean over the seeds.
    curves: dict[tuple[str, str], dict[float, list[float]]] = {}
    for r in rows:
        curve = curves.setdefault((str(r["scenario"]), str(r["policy"])), {})
        curve.setdefault(float(r["load"]), []).append(float(r["jct_mean"]))
    means = {key: {x: sum(v) / len(v) for x, v in c.items()} for key, c in curves.items()}
    several = len({s for s, _p in means}) > 1
    names = {key: f"{key[0]}: {key[1]}" if several else key[1] for key in means}
    loads = sorted({x for curve in means.values() for x in curve})
    seeds = len({r["seed"] for r in rows})
    knees = {names[k]: saturation_load(sorted(c.items())) for k, c in means.items()}
    # the unit of the shortest mean JCT (at the lowest load, about the jobs' runtime), as
    # sweep.html's axis
    unit = unit_for(min((j for c in means.values() for j in c.values() if j == j), default=3600))
    cells = [
        [f"{x:g}"] + [f"{unit.of(c[x]):,.2f}" if x in c else "-" for c in means.values()]
        for x in loads
    ]
    render.print_split(
        "Mean JCT against offered load" + (f" (mean over {seeds} seeds)" if seeds > 1 else ""),
        [
            ("load", "right"),
            *((f"{policy_title(names[k])} ({unit.symbol})", "right") for k in means),
        ],
        cells,
    )
    for name, knee in knees.items() if len(loads) > 1 else ():
        render.console.print(
            f"{policy_title(name)}: saturation load "
            + (f"{knee:g}" if knee is not None else "beyond the swept range")
            + " (mean JCT more than twice its value at the lowest load)"
        )
    # Runs whose queue never levelled off: their mean JCT grows with the run's length.
    unsettled = sorted({(float(r["load"]), str(r["policy"])) for r in rows if r.get("steady") == 0})
    if unsettled:
        render.err_console.print(
            "[yellow]warning:[/yellow] no steady state (figures depend on the run's length) at "
            + ", ".join(f"{policy} @ {load:g}" for load, policy in unsettled),
            highlight=False,
        )
    if out is None:
        out = _run_folder(scenario, run_dir, sweep=True)
    render.console.print(f"results of this sweep in {out}/")
    with (out / "sweep.csv").open("w", newline="", encoding="utf-8") as handle:
        # Every column of every row: scenarios over different sites have different ones.
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
    render.console.print(f"wrote {out / 'sweep.csv'}")
    curve_rows: list[dict[str, float | str]] = [
        {"policy": names[k], "load": x, "jct_mean": jct}
        for k, c in means.items()
        for x, jct in c.items()
    ]
    report = write_sweep_report(out, curve_rows, knees)
    render.console.print(f"wrote {report} (open it in a browser)")

"""Where the next euro goes: the investment plan that serves the most priority-weighted demand.

``aif invest [SCENARIO.yaml] [--budget EUR] [--json] [--check [--days D] [--out DIR]
[--sequential]]
[--demand-from file|programme|twin [--as-of DATE] [--growth RATE] [--window-days N]]`` acts
locally (no server needed): the plan file (default: the packaged InvestAI case,
fund/data/investai.yaml), costs from the cost model, today's capacity from the platform's
catalogue (AIFACTORIES_CATALOGUE, else embedded); the demand from the file, or derived from
the local database's proposals or the twin's workload (fund/demand_rules.py states the rule).
``--check`` then runs the plan in the twin
(services/fund/plan_check.py) and writes its report in a new folder inside ``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.markup import escape

from aifactories.cli import render
from aifactories.domain.errors import AifError, InvalidInput
from aifactories.fund.demand_rules import DEFAULT_WINDOW_DAYS, DemandSource
from aifactories.fund.investment_model import Objective

if TYPE_CHECKING:
    from rich.progress import TaskID

    from aifactories.catalogue.loader import Catalogue
    from aifactories.fund.invest_request import DemandOptions
    from aifactories.services.fund.invest import InvestmentRun
    from aifactories.services.fund.plan_decisions import DecisionTimes
    from aifactories.settings import Settings
    from aifactories.twin.plan_access import AccessTime


def invest_command(
    scenario: Annotated[
        Path | None,
        typer.Argument(help="a plan file (YAML); default: the packaged InvestAI case"),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(help="budget in euros instead of the file's, e.g. 2e10", min=0),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the plan as JSON")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="run the plan in the twin: today's federation and with the plan, over the "
            "same jobs (the plan's last-year demand); writes an HTML report",
        ),
    ] = False,
    days: Annotated[
        float,
        typer.Option(
            help="with --check: days of demand to simulate (a week by default, about 15 s on 2 "
            "cores; --days 365 runs the year of the InvestAI demand: 9.4 min and 4.35 GB on 2 "
            "cores with both federations at once, about 16 min of CPU and 2.7 GB with --sequential;"
            " docs/benchmarks.md)",
            min=0.01,
            max=3660,
        ),
    ] = 7.0,
    seed: Annotated[
        int,
        typer.Option(help="the twin's seed: --check's jobs and --demand-from twin's workload"),
    ] = 0,
    demand_from: Annotated[
        DemandSource,
        typer.Option(
            help="where the demand comes from: the plan file's rows (file), the programme's "
            "proposals in the local database (programme: GPU-hours requested over --window-days "
            "before --as-of, annualised), or a year of the twin's workload (twin); grown by "
            "--growth a year to the plan's first year"
        ),
    ] = DemandSource.FILE,
    as_of: Annotated[
        str | None,
        typer.Option(help="the demand's date, ISO 8601 (e.g. 2026-12-07); default now"),
    ] = None,
    growth: Annotated[
        float | None,
        typer.Option(help="yearly growth of the demand, e.g. 0.3; default the file's"),
    ] = None,
    window_days: Annotated[
        int, typer.Option(help="with --demand-from programme: the trailing window, in days")
    ] = DEFAULT_WINDOW_DAYS,
    objective: Annotated[
        Objective | None,
        typer.Option(
            help="served: the most priority-weighted GPU-hours served; mean_wait: the lowest "
            "mean wait per GPU-hour asked (an M/M/1 queue per country and year, unserved "
            "GPU-hours waiting a year; docs/fund.md); default the file's (served)"
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="with --check: the report goes in a new folder inside this")
    ] = Path("report"),
    sequential: Annotated[
        bool,
        typer.Option(
            "--sequential",
            help="with --check: run the two federations one after the other in this process "
            "(a 1-core machine, or less memory: one federation at a time); by default they "
            "run in two processes at once when 2 cores or more are free to this process",
        ),
    ] = False,
) -> None:
    """Where the next euro goes: the plan that serves the most priority-weighted demand."""
    from aifactories.fund.invest_request import demand_options
    from aifactories.services.core.context import catalogue_from_settings
    from aifactories.settings import Settings

    settings = Settings()
    catalogue = catalogue_from_settings(settings)
    try:
        options = demand_options(demand_from, as_of, growth, window_days, seed)
        run = _plan(scenario, catalogue, settings, budget, options, objective)
    except AifError as exc:
        _fail(exc)
    if as_json:
        render.print_json(run.as_dict())
    else:
        _print(run)
    if check:
        _check(run, catalogue, days=days, seed=seed, out=out, workers=1 if sequential else None)


def _plan(
    scenario: Path | None,
    catalogue: Catalogue,
    settings: Settings,
    budget: float | None,
    options: DemandOptions,
    objective: Objective | None = None,
) -> InvestmentRun:
    """The plan; with the programme's demand, read from the local database."""
    from aifactories.domain.clock import SystemClock
    from aifactories.services.fund.invest import plan_from_file
    from aifactories.services.fund.invest_demand import check_programme_database
    from aifactories.services.platform import Platform

    if options.demand_from is not DemandSource.PROGRAMME:
        return plan_from_file(
            scenario,
            catalogue,
            budget_eur=budget,
            demand=options,
            clock=SystemClock(),
            objective=objective,
        )
    check_programme_database(settings)  # before Platform, which would create an empty one
    platform = Platform(settings)
    try:
        return plan_from_file(
            scenario,
            catalogue,
            budget_eur=budget,
            demand=options,
            ctx=platform.ctx,
            objective=objective,
        )
    finally:
        platform.stop()


def _check(
    run: InvestmentRun,
    catalogue: Catalogue,
    *,
    days: float,
    seed: int,
    out: Path,
    workers: int | None,
) -> None:
    """The plan in the twin, with a progress bar per federation, then the figures side by side.
    The bars are updated here, in this thread, whichever process runs a federation."""
    from aifactories.services.fund.plan_check import check_plan_in_twin
    from aifactories.services.twin.run_folders import new_run_folder
    from aifactories.twin.plan_access import mode_titles

    bars = render.progress_bars()
    tasks: dict[str, TaskID] = {}

    def progress(label: str, done: int, total: int) -> None:
        if label not in tasks:
            tasks[label] = bars.add_task(f"twin: {label}", total=total)
        bars.update(tasks[label], completed=done)

    try:
        decisions = _decision_times()
        folder = new_run_folder(out, "invest-check")
        with bars:
            result = check_plan_in_twin(
                run,
                catalogue,
                folder,
                days=days,
                seed=seed,
                decisions=decisions,
                progress=progress,
                workers=workers,
            )
    except AifError as exc:
        _fail(exc)
    before, after = result.check.before, result.check.after
    t = render.table(f"The plan in the twin: {result.check.jobs:,} jobs over {days:g} days")
    for name in ("", before.label, after.label):
        t.add_column(name, justify="left" if not name else "right")
    for name, a, b in (
        ("accelerators", f"{before.gpus:,}", f"{after.gpus:,}"),
        ("jobs never started", f"{before.never_started:,}", f"{after.never_started:,}"),
        ("mean wait (h)", f"{before.mean_wait_h:,.2f}", f"{after.mean_wait_h:,.2f}"),
        ("90th percentile wait (h)", f"{before.p90_wait_h:,.2f}", f"{after.p90_wait_h:,.2f}"),
        ("utilisation", f"{before.utilisation:.0%}", f"{after.utilisation:.0%}"),
        (
            "work done (A100-hours, M)",
            f"{before.work_a100_hours / 1e6:,.1f}",
            f"{after.work_a100_hours / 1e6:,.1f}",
        ),
        ("energy (GWh)", f"{before.energy_mwh / 1e3:,.1f}", f"{after.energy_mwh / 1e3:,.1f}"),
        ("carbon (kt CO2e)", f"{before.carbon_t / 1e3:,.1f}", f"{after.carbon_t / 1e3:,.1f}"),
    ):
        t.add_row(name, a, b)
    for mode, title in mode_titles().items():
        t.add_row(
            f"time to access, {title}: median / p90 (days)",
            _access_days(before.time_to_access[mode]),
            _access_days(after.time_to_access[mode]),
        )
    render.console.print(t)
    render.console.print(
        f"time to access: each job's wait + its access mode's decision time, from "
        f"{escape(result.decisions.source)}",
        highlight=False,
        soft_wrap=True,
    )
    render.console.print(f"wrote {result.report} (open it in a browser)")


def _access_days(access: AccessTime) -> str:
    if access.jobs == 0:
        return "n/a"
    return f"{access.median_h / 24:,.2f} / {access.p90_h / 24:,.2f}"


def _decision_times() -> DecisionTimes:
    """Each access mode's decision time: the local database's medians when it has decided
    proposals, else the published targets (no database is created for this)."""
    from aifactories.services.fund.plan_decisions import decision_times_from_books, published
    from aifactories.services.platform import Platform
    from aifactories.settings import Settings

    settings = Settings()
    if settings.embedded_database_missing:
        return published("no local database")
    platform = Platform(settings)
    try:
        return decision_times_from_books(platform.ctx)
    finally:
        platform.stop()


def _eur(value: float) -> str:
    return f"{value / 1e9:,.2f} bn" if abs(value) >= 1e8 else f"{value / 1e6:,.1f} m"


def _print(run: InvestmentRun) -> None:
    plan = run.plan
    t = render.table(f"{run.scenario.name}: where the next euro goes", show_lines=True)
    for name, justify in (
        ("candidate", "left"),
        ("site", "left"),
        ("model", "left"),
        ("from", "right"),
        ("", "left"),
        ("accelerators", "right"),
        ("capital EUR", "right"),
        ("GPU-hours/yr", "right"),
        ("why", "left"),
    ):
        t.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for o in plan.outcomes:
        c = o.candidate
        t.add_row(
            c.id,
            f"{c.site} ({c.country})",
            c.gpu_model,
            str(c.from_year),
            "[green]taken[/green]" if o.taken else "left",
            f"{o.accelerators:,}" if o.taken else f"0 of {c.max_accelerators:,}",
            _eur(o.capital_eur) if o.taken else f"({_eur(c.capital_eur * c.max_modules)})",
            f"{o.gpu_hours_per_year / 1e6:,.0f} M" if o.taken else "",
            escape(o.reason),
        )
    out = render.console
    out.print(t)
    out.print(escape(run.demand_text), highlight=False)
    out.print(f"Objective: {escape(plan.objective_text)}", highlight=False)
    for line in plan.summary():
        out.print(f"  {escape(line)}", highlight=False)
    out.print(
        f"  capital EUR {_eur(plan.capital_eur)} of {_eur(plan.budget_eur)}; "
        f"{sum(o.accelerators for o in plan.outcomes):,} new accelerators",
        highlight=False,
    )
    served = render.table("GPU-hours a year by priority class (reference GPU-hours, M)")
    for name in ("class", "year", "asked", "served", "today's capacity alone"):
        served.add_column(name, justify="left" if name == "class" else "right")
    for s in plan.served:
        served.add_row(
            s.priority,
            str(s.year),
            f"{s.demand_gpu_hours / 1e6:,.0f}",
            f"{s.served_gpu_hours / 1e6:,.0f}",
            f"{s.baseline_served_gpu_hours / 1e6:,.0f}",
        )
    out.print(served)
    binding = plan.binding
    out.print("Binding constraints:" if binding else "Binding constraints: none", highlight=False)
    for held in binding:
        out.print(f"  {held.name}: {escape(held.text)}", highlight=False)
    out.print(
        f"Solver: {escape(plan.solver)}; {plan.status}, gap {plan.mip_gap:.1e}, "
        f"{plan.solve_seconds:.2f} s",
        highlight=False,
    )


def _fail(exc: AifError) -> NoReturn:
    bound = f" (expected: {exc.limit})" if isinstance(exc, InvalidInput) and exc.limit else ""
    render.err_console.print(
        f"[red]error:[/red] {escape(exc.message + bound)}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(2) from None

"""``aif programme``: the programme's figures over any period, written as a report.

``report`` talks to the REST API (``GET /programme/figures``, programme operators), like the
other programme commands; ``seed-history`` acts locally on the database, like ``aif demo``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aifactories.cli import render
from aifactories.cli.remote import call, client, fail

programme_app = typer.Typer(
    help="The programme's figures over any period: a report (HTML, CSV, Parquet).",
    no_args_is_help=True,
)


def _total(figures: dict[str, Any], family: str, metric: str) -> float:
    for row in figures["rows"]:
        if (row["family"], row["key"], row["metric"]) == (family, "total", metric):
            return float(row["value"] or 0.0)
    return 0.0


@programme_app.command("report")
def report(
    period_from: Annotated[
        str, typer.Option("--from", help="first day of the period (ISO date, inclusive)")
    ],
    period_to: Annotated[str, typer.Option("--to", help="end of the period (ISO date, exclusive)")],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="the books as they stood at this ISO time (default: now)"),
    ] = None,
    out: Annotated[
        Path,
        typer.Option("--out", help="the folder to write report.html, figures.csv and .parquet"),
    ] = Path("programme-report"),
) -> None:
    """The programme's figures for [--from, --to) as report.html, figures.csv and
    figures.parquet (programme operators)."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

    from aifactories.services.fund.programme_figures_report import FILES, write_report

    params = {"from": period_from, "to": period_to} | ({"as_of": as_of} if as_of else {})
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]programme report[/bold] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=render.err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("reading the figures", total=1 + len(FILES))
        figures = call(client().get, "/programme/figures", params=params)

        def step(name: str) -> None:
            progress.update(task, description=f"writing {name}", advance=1)

        try:
            paths = write_report(out, figures, step)
        except OSError as exc:
            fail(f"cannot write the report in {out}: {exc.strerror or exc}")
        progress.update(task, advance=1)
    render.console.print(
        f"{figures['period_from'][:10]} to {figures['period_to'][:10]}, as of "
        f"{figures['as_of'][:19]}: granted {_total(figures, 'granted', 'gpu_hours'):,.0f} "
        f"GPU-hours (EUR {_total(figures, 'granted', 'eur'):,.0f}), used "
        f"{_total(figures, 'used', 'gpu_hours'):,.0f} GPU-hours "
        f"(EUR {_total(figures, 'used', 'eur'):,.0f})",
        highlight=False,
        soft_wrap=True,
    )
    for path in paths:
        render.console.print(f"wrote {path}", highlight=False, soft_wrap=True)


@programme_app.command("seed-history")
def seed_history_command(
    days: Annotated[int, typer.Option(min=30, max=3660, help="how long the history is")] = 365,
    proposals: Annotated[int, typer.Option(min=1, max=10_000, help="how many proposals")] = 60,
    seed: Annotated[int, typer.Option(help="the random seed: the same seed, the same history")] = 0,
) -> None:
    """Write a seeded history ending now (calls, proposals from every organisation kind and
    domain, decisions, awards, jobs and their charges) into the local database; needs the
    demo (aif demo load). Acts locally."""
    from aifactories.domain.errors import AifError
    from aifactories.services.fund.history_seed import seed_history
    from aifactories.services.platform import Platform
    from aifactories.settings import Settings

    platform = Platform(Settings())
    try:
        platform.check_schema()
        lease = platform.lease.view()
        if lease.active:
            # Its broker would place the seeded jobs as they are written and reserve their
            # budgets a second time; the history is written in virtual time, alone.
            fail(
                f"the platform is running ({lease.holder} leads its broker), which would run "
                "the seeded jobs itself: stop 'aif up', seed, then start it again"
            )
        with render.console.status(f"writing {days} days of the programme ..."):
            history = seed_history(platform.ctx, days=days, proposals=proposals, seed=seed)
    except AifError as exc:
        fail(exc.message)
    finally:
        platform.stop()
    awarded = sum(1 for p in history.proposals if p.awarded)
    render.console.print(
        f"seeded {len(history.proposals)} proposals ({awarded} awarded) and {history.jobs} jobs; "
        "report on them with: aif programme report --from "
        f"{_day(history.start)} --to {_day(history.end + 86400)}",
        highlight=False,
        soft_wrap=True,
    )


def _day(epoch: float) -> str:
    from aifactories.domain.clock import to_datetime

    return f"{to_datetime(epoch):%Y-%m-%d}"

"""``aif usage import``: charge what members ran at Slurm sites outside the broker (local)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from aifactories.cli import render
from aifactories.cli.human import hours, plural

usage_app = typer.Typer(
    help="Usage from the sites' own accounting (acts locally on the database).",
    no_args_is_help=True,
)


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is no ISO date or time; use for example 2026-11-01 or 2026-11-01T08:00",
            param_hint="--since",
        ) from None


@usage_app.command("import")
def import_command(
    site: Annotated[
        list[str] | None, typer.Option(help="only this site (repeatable); default: every site")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="jobs ended since this ISO time; default: since the last import"),
    ] = None,
) -> None:
    """Import the jobs that ended at the Slurm sites and charge those run outside the broker,
    once each (a second import of the same window charges nothing)."""
    from aifactories.domain.errors import AifError
    from aifactories.services.platform import Platform
    from aifactories.services.sites.usage_import import import_usage
    from aifactories.settings import Settings

    platform = Platform(Settings())
    try:
        platform.check_schema()
        with render.console.status("reading the sites' accounting ..."):
            reports = import_usage(platform.ctx, sites=site or None, since=_since(since))
    except AifError as exc:
        render.err_console.print(f"error: {exc.message}")
        raise typer.Exit(1) from exc
    finally:
        platform.stop()
    table = render.table("Usage import")
    for column in ("site", "accounting", "seen", "charged", "GPU-hours", "already", "broker's"):
        table.add_column(column, justify="left" if column in ("site", "accounting") else "right")
    problems: list[str] = []
    for report in reports:
        table.add_row(
            report.site_id,
            report.mode or "-",
            plural(report.seen, "job"),
            plural(report.charged_jobs, "job"),
            hours(report.charged_gpu_seconds / 3600),
            plural(report.already_imported, "job"),
            plural(report.broker_jobs, "job"),
        )
        if report.error:
            problems.append(f"{report.site_id}: {report.error}")
        problems.extend(report.skipped)
    render.console.print(table)
    for problem in problems:
        render.console.print(f"  note: {problem}")
    if any(r.error for r in reports):
        raise typer.Exit(1)

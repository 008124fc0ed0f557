"""``aif accounts sync``: the Slurm sites' accounts and limits follow the ledger (local)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from aifactories.cli import render
from aifactories.domain.errors import AifError
from aifactories.services.platform import Platform
from aifactories.services.site_accounts import reconcile_site_accounts
from aifactories.settings import Settings

accounts_app = typer.Typer(
    help="Slurm accounts, associations and GPU-minute limits at the sites (acts locally).",
    no_args_is_help=True,
)


@accounts_app.command("sync")
def sync_command(
    site: Annotated[
        list[str] | None, typer.Option(help="only this site (repeatable); default: every site")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="show what would change, change nothing")] = False,
) -> None:
    """Make every Slurm site with slurmdbd hold exactly the ledger's accounts, members and
    remaining GPU-hours; report and correct changes made by hand at a site."""
    platform = Platform(Settings())
    try:
        platform.check_schema()
        with render.console.status("reading the sites' accounts ..."):
            report = reconcile_site_accounts(platform.ctx, sites=site or None, dry_run=dry_run)
    except AifError as exc:
        render.err_console.print(f"error: {exc.message}")
        raise typer.Exit(1) from exc
    finally:
        platform.stop()
    verb = "would do" if dry_run else "done"
    table = Table(title="Accounts at the sites" + (" (dry run)" if dry_run else ""))
    for column in ("site", verb, "drift corrected", "pending", "note"):
        table.add_column(column)
    for result in report.sites:
        table.add_row(
            result.site_id,
            "\n".join(result.actions) or "-",
            "\n".join(result.drift) or "-",
            "\n".join(result.pending) or "-",
            "\n".join(filter(None, [result.skipped, result.error, *result.problems])) or "-",
        )
    render.console.print(table)
    if any(r.error for r in report.sites):
        raise typer.Exit(1)

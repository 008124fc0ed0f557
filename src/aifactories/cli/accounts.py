"""``aif accounts sync``: the Slurm sites' accounts, members and limits follow the ledger
(acts locally: reads the database, runs ``sacctmgr`` with each site's ``slurm_conf``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from aifactories.cli import render
from aifactories.cli.human import plural

if TYPE_CHECKING:
    from rich.table import Table

    from aifactories.services.sites.site_accounts import AccountsReport

accounts_app = typer.Typer(
    help="Slurm accounts, associations and GPU-minute limits at the sites (acts locally).",
    no_args_is_help=True,
)

# Rows shown per site and kind unless --all: a first sync of 1,000 projects is long.
_SHOWN = 20


@accounts_app.command("sync")
def sync_command(
    site: Annotated[
        list[str] | None, typer.Option(help="only this site (repeatable); default: every site")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would change, change nothing")
    ] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help=f"list every change, not the first {_SHOWN} of each kind")
    ] = False,
) -> None:
    """Make every Slurm site with slurmdbd hold exactly the ledger's accounts (under
    'aifactories'), members and remaining GPU-hours; report and correct changes made by hand
    at a site. Exit 1 if a site could not be synced."""
    from aifactories.domain.errors import AifError
    from aifactories.services.platform import Platform
    from aifactories.services.sites.site_accounts import reconcile_site_accounts
    from aifactories.settings import Settings

    platform = Platform(Settings())
    try:
        platform.check_schema()
        with render.console.status("reading the ledger and the sites' accounts ..."):
            report = reconcile_site_accounts(platform.ctx, sites=site or None, dry_run=dry_run)
    except AifError as exc:
        render.err_console.print(f"error: {exc.message}")
        raise typer.Exit(1) from exc
    finally:
        platform.stop()
    render.console.print(accounts_table(report, None if show_all else _SHOWN))
    if any(r.error for r in report.sites):
        raise typer.Exit(1)


def accounts_table(report: AccountsReport, shown: int | None) -> Table:
    """One row per change, drift, pending removal or note, grouped by site."""
    title = "Accounts at the sites" + (" (dry run: nothing changed)" if report.dry_run else "")
    table = render.table(title)
    table.add_column("site")
    table.add_column("kind")
    table.add_column("what")
    done = "would do" if report.dry_run else "done"
    for result in report.sites:
        if result.skipped:
            table.add_row(result.site_id, "skipped", result.skipped)
            continue
        if result.error:
            table.add_row(result.site_id, "[red]error[/red]", result.error)
        groups = (
            ("[yellow]drift[/yellow]", result.drift),
            (done, result.actions),
            ("pending", result.pending),
            ("problem", result.problems),
        )
        for kind, lines in groups:
            for line in lines if shown is None else lines[:shown]:
                table.add_row(result.site_id, kind, line)
            if shown is not None and len(lines) > shown:
                more = len(lines) - shown
                table.add_row(result.site_id, kind, f"... and {more} more (--all)")
        if not result.error and not result.actions:
            in_step = f"{plural(result.accounts, 'account')}, nothing to do"
            table.add_row(result.site_id, "in step", in_step)
    return table

"""``aif``: submit and follow jobs, see sites and balances; ``aif up`` starts the platform.

Every user command talks to the REST API; only administration (``up``, ``db``, ``demo``, ...)
acts on the database directly.

Each command lives in its own module, imported only when that command runs (cli/lazy.py):
``aif --help`` and shell completion read the table below. A new command is a row here; its
help is the first line of its docstring (or its Typer app's help), which a test compares.
"""

from __future__ import annotations

from typing import Annotated

import typer

from aifactories.cli.lazy import Lazy, LazyGroup

JOBS = "Jobs"
PROGRAMME = "Access programme"
LOCAL = "Administration (acts locally)"

COMMANDS: tuple[Lazy, ...] = (
    Lazy(
        "login",
        "aifactories.cli.session",
        "app",
        "Check a token against the server and save it in your profile.",
        panel=JOBS,
    ),
    Lazy(
        "whoami",
        "aifactories.cli.session",
        "app",
        "Who the saved token belongs to, and its projects.",
        panel=JOBS,
    ),
    Lazy(
        "sites",
        "aifactories.cli.jobs",
        "app",
        "The catalogue: sites, partitions, billing weights, free GPUs now and EUR per GPU-hour.",
        panel=JOBS,
    ),
    Lazy(
        "submit",
        "aifactories.cli.submit",
        "app",
        "Submit a batch script or a command, with sbatch's options.",
        panel=JOBS,
    ),
    Lazy("jobs", "aifactories.cli.jobs", "app", "Your projects' jobs, newest first.", panel=JOBS),
    Lazy(
        "job",
        "aifactories.cli.jobs",
        "app",
        "One job: state, site, partition, times, charge and why it waits.",
        panel=JOBS,
    ),
    Lazy(
        "logs",
        "aifactories.cli.logs",
        "logs",
        "A job's standard output (or error), as it is written.",
        panel=JOBS,
    ),
    Lazy(
        "cancel",
        "aifactories.cli.jobs",
        "app",
        "Cancel a job, a job array or one array task.",
        panel=JOBS,
    ),
    Lazy(
        "balance",
        "aifactories.cli.jobs",
        "app",
        "GPU-hours granted, reserved, used and left, per allocation.",
        panel=JOBS,
    ),
    Lazy(
        "tokens",
        "aifactories.cli.tokens",
        "tokens_app",
        "Your API tokens: list, create, revoke.",
        group=True,
        panel=JOBS,
    ),
    Lazy(
        "calls",
        "aifactories.cli.calls",
        "calls_app",
        "Calls for proposals, in the published access modes.",
        group=True,
        panel=PROGRAMME,
    ),
    Lazy(
        "proposals",
        "aifactories.cli.proposals",
        "proposals_app",
        "Proposals to calls.",
        group=True,
        panel=PROGRAMME,
    ),
    Lazy(
        "reviews",
        "aifactories.cli.reviews",
        "reviews_app",
        "Peer review: the pool, assignments, scores, ranking, decisions.",
        group=True,
        panel=PROGRAMME,
    ),
    Lazy(
        "awards",
        "aifactories.cli.awards",
        "awards_app",
        "Awards after a cut-off (programme operators).",
        group=True,
        panel=PROGRAMME,
    ),
    Lazy(
        "projects",
        "aifactories.cli.projects",
        "projects_app",
        "Projects and their members.",
        group=True,
        panel=PROGRAMME,
    ),
    Lazy(
        "allocations",
        "aifactories.cli.allocations",
        "allocations_app",
        "Allocations: balances and alerts, extension and transfer requests, closing.",
        group=True,
        panel=PROGRAMME,
    ),
    Lazy(
        "audit",
        "aifactories.cli.audit",
        "audit_app",
        "The audit log of the access programme, and the notification outbox.",
        group=True,
        panel=PROGRAMME,
    ),
    Lazy(
        "programme",
        "aifactories.cli.programme",
        "programme_app",
        "The programme's figures over any period: a report (HTML, CSV, Parquet).",
        group=True,
        panel=PROGRAMME,
    ),
    Lazy(
        "up",
        "aifactories.cli.admin",
        "up",
        "Migrate the database and start the platform: REST API and broker.",
        panel=LOCAL,
    ),
    Lazy(
        "invest",
        "aifactories.cli.invest",
        "invest_command",
        "Where the next euro goes: the plan that serves the most priority-weighted demand.",
        panel=LOCAL,
    ),
    Lazy(
        "simulate",
        "aifactories.cli.simulate",
        "simulate_command",
        "Run the twin: the production policies on a trace, in virtual time, compared.",
        panel=LOCAL,
    ),
    Lazy(
        "db",
        "aifactories.cli.admin",
        "db_app",
        "Database administration (acts locally).",
        group=True,
        panel=LOCAL,
    ),
    Lazy(
        "demo",
        "aifactories.cli.admin",
        "demo_app",
        "The demo data set (acts locally).",
        group=True,
        panel=LOCAL,
    ),
    Lazy(
        "usage",
        "aifactories.cli.usage",
        "usage_app",
        "Usage from the sites' own accounting (acts locally on the database).",
        group=True,
        panel=LOCAL,
    ),
    Lazy(
        "accounts",
        "aifactories.cli.accounts",
        "accounts_app",
        "Slurm accounts, associations and GPU-minute limits at the sites (acts locally).",
        group=True,
        panel=LOCAL,
    ),
)


class AifGroup(LazyGroup):
    table = COMMANDS


app = typer.Typer(
    name="aif",
    cls=AifGroup,
    help="aifactories: Europe's AI factories as one federation.",
    no_args_is_help=True,
    # --install-completion / --show-completion (bash, zsh, fish, PowerShell); completing a
    # command's options imports that command's module only (docs/api-and-cli.md)
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # here: a few ms that only --version pays

        typer.echo(f"aif (aifactories) {version('aifactories')}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """aifactories: Europe's AI factories as one federation."""


def run() -> None:
    """Console-script entry point."""
    app()

"""Administration commands that act locally: start the platform, migrate, load the demo."""

from __future__ import annotations

import os
import signal
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from aifactories.cli import render
from aifactories.domain.errors import AifError

if TYPE_CHECKING:  # the services are imported where a command needs them: start-up stays fast
    from aifactories.services.platform import Platform
    from aifactories.settings import Settings

db_app = typer.Typer(help="Database administration (acts locally).", no_args_is_help=True)
demo_app = typer.Typer(help="The demo data set (acts locally).", no_args_is_help=True)

DEMO_USER = "alice"
DEMO_PROJECT = "aurora-vision"
DEMO_TIME_FACTOR = 60.0


class LogFormatOption(StrEnum):  # typer offers an Enum's values as the option's choices
    TEXT = "text"
    JSON = "json"


def _platform(settings: Settings | None = None) -> Platform:
    from aifactories.services.platform import Platform
    from aifactories.settings import Settings

    try:
        return Platform(settings or Settings())
    except AifError as exc:
        render.err_console.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(2) from None


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the configured database to the newest schema."""
    platform = _platform()
    platform.migrate()
    render.console.print(f"database at {platform.database_url} is up to date")
    platform.stop()


@db_app.command("backup")
def db_backup(
    to: Annotated[Path, typer.Option("--to", help="the backup file to write", dir_okay=False)],
) -> None:
    """Back up the database while the platform runs (SQLite: an online copy; PostgreSQL:
    prints the pg_dump command to run)."""
    from aifactories.services import backup
    from aifactories.settings import Settings

    url = Settings().resolved_database_url
    if not backup.is_sqlite(url):
        render.err_console.print(
            "PostgreSQL is backed up with its own tool, pg_dump (consistent while the platform "
            f"runs; docs/operations.md):\n  {backup.pg_dump_command(url, to)}",
            highlight=False,
        )
        raise typer.Exit(1)
    try:
        report = backup.backup_sqlite(url, to)
    except AifError as exc:
        render.err_console.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(2) from None
    render.console.print(
        f"backed up {url} to {report.path} ({report.size_bytes:,} bytes, schema revision "
        f"{report.revision}); restore: stop the platform, copy it over the database file and "
        "delete its -wal and -shm files",
        highlight=False,
    )


@db_app.command("lease")
def db_lease() -> None:
    """Which platform instance's broker places now (the broker lease)."""
    platform = _platform()
    try:
        view = platform.lease.view()
    finally:
        platform.stop()
    if not view.active:
        render.console.print(
            f"no instance leads the broker (epoch {view.epoch}); a running 'aif up' takes the "
            "lease within its renew interval"
        )
        return
    render.console.print(
        f"{view.holder} leads the broker (epoch {view.epoch}; the lease runs "
        f"{view.expires_at - view.now:.1f} s more unless renewed)",
        highlight=False,
    )


def _write_demo_profile(platform: Platform, server: str) -> None:
    from aifactories.cli.demo_profile import write_demo_profile
    from aifactories.services.demo import load_demo

    tokens = load_demo(platform.ctx).tokens
    tokens_file = platform.settings.data_dir / "demo-tokens.txt"
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    tokens_file.write_text("".join(f"{u} {t}\n" for u, t in tokens.items()), "utf-8")
    tokens_file.chmod(0o600)
    said = write_demo_profile(
        platform, server, DEMO_USER, DEMO_PROJECT, tokens[DEMO_USER], tokens_file
    )
    render.console.print(
        f"demo loaded; {said}; every demo user's token is in {tokens_file}", highlight=False
    )


@demo_app.command("load")
def demo_load(server: str = "http://127.0.0.1:8000") -> None:
    """Load the demo data set and write a CLI profile for its principal investigator."""
    platform = _platform()
    platform.migrate()
    _write_demo_profile(platform, server)
    platform.stop()


def _exit_on_signal(signum: int, _frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)


def _backends(platform: Platform, settings: Settings) -> str:
    """Which back-end drives which sites, for the start-up line."""
    kinds: dict[str, list[str]] = {}
    for site in platform.catalogue.operational_sites:
        kind = site.executor.kind if site.executor is not None else settings.executor
        kinds.setdefault(kind, []).append(site.id)
    parts = []
    for kind, ids in kinds.items():
        label = f"{kind}: {len(ids)} sites" if len(ids) > 3 else f"{kind}: {', '.join(ids)}"
        if kind == "emulated":
            label += f", time factor {settings.emulated_time_factor:g}, "
            label += platform.job_isolation().describe()
        parts.append(label)
    return "; ".join(parts)


def up(
    demo: Annotated[bool, typer.Option(help="load the demo data set and CLI profile")] = False,
    host: Annotated[str | None, typer.Option(help="listen address")] = None,
    port: Annotated[int | None, typer.Option(help="listen port")] = None,
    time_factor: Annotated[
        float | None, typer.Option(help="emulated sites run this many times faster than the clock")
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="placement policy: first_fit, earliest_start, fair_share, fifo, "
            "easy_backfill, slurm_multifactor, slurm_siblings, random, expected_completion"
        ),
    ] = None,
    sites: Annotated[
        Path | None,
        typer.Option(
            help="site catalogue to run against (default: the embedded one); a file written by "
            "'scripts/slurm-sites up' drives real local Slurm clusters",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="API worker processes (the broker always runs once, here)"
        ),
    ] = 1,
    log_format: Annotated[
        LogFormatOption | None,
        typer.Option(help="'text' (default) or 'json': one JSON object per log line"),
    ] = None,
) -> None:
    """Migrate the database and start the platform: REST API and broker."""
    import uvicorn

    from aifactories.api.app import create_app
    from aifactories.services.logging_setup import configure_logging
    from aifactories.settings import Settings

    overrides: dict[str, object] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    if policy:
        overrides["policy"] = policy
    if sites is not None:
        overrides["catalogue"] = sites
    if log_format is not None:
        overrides["log_format"] = log_format.value
    if time_factor is not None:
        overrides["emulated_time_factor"] = time_factor
    elif demo:
        overrides["emulated_time_factor"] = DEMO_TIME_FACTOR
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings.log_format, access_log=settings.access_log)
    platform = _platform(settings)
    try:
        # Before anything starts: a machine that cannot confine jobs is refused here with the
        # reason and the fixes, not in a traceback from the API's start-up.
        backends = _backends(platform, settings)
    except AifError as exc:
        render.err_console.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(2) from None
    platform.migrate()
    server = f"http://{settings.host}:{settings.port}"
    if demo:
        _write_demo_profile(platform, server)
    render.console.print(
        f"aifactories at {server} (API docs: {server}/docs); database {platform.database_url}; "
        f"{len(platform.catalogue.operational_sites)} operational sites "
        f"({backends}); policy {settings.policy}"
    )
    if demo:
        render.console.print(
            "try, from another terminal:\n"
            "  aif sites\n"
            "  aif submit --gpus 8 --time 2:00:00 -- python examples/train.py --steps 20\n"
            "  cd examples && aif submit --wait job.sh\n"
            "  aif jobs\n"
            "  aif balance\n"
            "  aif simulate --jobs 1000      (the digital twin, offline)"
        )
    # uvicorn stops gracefully on SIGTERM, then raises the signal again under the handler that
    # was there before it: the default one would end the process before 'finally' stops the
    # platform (and releases the broker lease to a standby at once). Make it an exit instead.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        if workers == 1:
            app = create_app(settings, platform=platform)
            uvicorn.run(
                app,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                access_log=False,  # the platform's own access log has the route and principal
                log_config=None,  # uvicorn's records go through configure_logging's handler
            )
        else:
            # Workers are new processes that read settings from the environment: hand them
            # this command's overrides that way.
            for key, value in overrides.items():
                os.environ[f"AIFACTORIES_{key.upper()}"] = str(value)
            if settings.run_broker:
                platform.start_broker()
            uvicorn.run(
                "aifactories.api.app:create_worker_app",
                factory=True,
                workers=workers,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                access_log=False,
                log_config=None,
            )
    finally:
        platform.stop()

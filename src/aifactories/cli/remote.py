"""What every remote ``aif`` command shares: the API client from the profile, errors turned
into a red message and an exit code by HTTP status, warnings, and the --json option."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import typer

from aifactories.cli import render
from aifactories.cli.client import ApiError, Client
from aifactories.cli.config import load_profile

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
# exit codes by HTTP status, so scripts can tell failures apart
EXIT_CODES = {422: 2, 404: 3, 401: 4, 403: 4, 409: 5, 0: 6}


def fail(message: str, code: int = 1) -> NoReturn:
    from rich.markup import escape  # a message may quote "[a-z]", which is no markup

    render.err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """One line on standard error, ``warning: ...``: the command goes on."""
    from rich.markup import escape

    render.err_console.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False)


def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        fail(exc.message, EXIT_CODES.get(exc.status, 1))


def client() -> Client:
    return Client(load_profile())

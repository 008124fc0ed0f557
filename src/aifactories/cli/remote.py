"""What every remote ``aif`` command shares: the API client from the profile, errors turned
into a red message and an exit code by HTTP status, and the --json option."""

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
    render.err_console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        fail(exc.message, EXIT_CODES.get(exc.status, 1))


def client() -> Client:
    return Client(load_profile())

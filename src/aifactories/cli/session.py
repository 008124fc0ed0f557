"""``aif login`` and ``aif whoami``: the token the CLI acts with.

The token never has to be on the command line, where it would stay in the shell's history and
be visible to every user of the machine in ``ps``. On a terminal, ``aif login`` signs in
through the institution's sign-in page when the server has an OpenID provider (the device
grant: open a URL, enter a code; cli/device_login.py), else asks for the token with a hidden
prompt; it reads the token from standard input when that is a pipe (``echo $TOKEN | aif
login``), or from ``--token-file`` (``-``: standard input).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from aifactories.cli import render
from aifactories.cli.client import Client
from aifactories.cli.config import DEFAULT_SERVER, Profile, save_profile
from aifactories.cli.remote import JsonOpt, call, client, fail, warn

app = typer.Typer(add_completion=False)

TOKEN_ON_COMMAND_LINE = (
    "--token puts the token in your shell's history and shows it in 'ps' to every user of "
    "this machine; pipe it instead (echo $TOKEN | aif login ...) or use --token-file FILE"
)


def _read_token(token_file: Path | None) -> str:
    if token_file == Path("-"):  # standard input; on a terminal, the hidden prompt
        token_file = None
        text = (
            typer.prompt("API token", hide_input=True)
            if sys.stdin.isatty()
            else sys.stdin.readline()
        )
    elif token_file is not None:
        try:
            text = token_file.read_text("utf-8")
        except OSError as exc:
            fail(f"cannot read the token file {token_file}: {exc.strerror or exc}", 2)
    elif not sys.stdin.isatty():
        text = sys.stdin.readline()  # the first line: 'echo $TOKEN |' or '< file'
    else:
        text = typer.prompt("API token", hide_input=True)
    token = text.strip()
    if not token:
        where = f"the file {token_file}" if token_file else "standard input"
        fail(f"no token in {where}; make one with 'aif tokens create' or in the portal", 2)
    return token


@app.command()
def login(
    server: Annotated[str, typer.Option(help="API URL")] = DEFAULT_SERVER,
    project: Annotated[str | None, typer.Option(help="default project")] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="read the token from this file ('-': standard input, hidden on a terminal)"
        ),
    ] = None,
    device: Annotated[
        bool,
        typer.Option(
            "--device",
            help="sign in at your institution's page in a browser, even without a terminal "
            "(the default on a terminal when the server offers it)",
        ),
    ] = False,
    # Kept, with a warning, so that existing scripts go on working while they are moved to
    # standard input; hidden from --help so that nobody starts using it.
    token: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> None:
    """Check a token against the server and save it in your profile.

    On a terminal: through your institution's sign-in page when the server offers it (open
    the URL shown, enter the code), else a hidden prompt for a token. The token is read from
    standard input when it is a pipe (echo $TOKEN | aif login), or from --token-file.
    """
    if token is not None:
        warn(TOKEN_ON_COMMAND_LINE)
        if token_file is not None:
            fail("give the token once: --token-file or --token, not both", 2)
    elif token_file is None and (device or sys.stdin.isatty()):
        token = _device_or_prompt(server, device)
    else:
        token = _read_token(token_file)
    me = call(Client(Profile(server=server, token=token)).get, "/me")
    path = save_profile(Profile(server=server, token=token, project=project))
    render.console.print(
        f"logged in as [bold]{me['username']}[/bold] at {server}; profile saved to {path}",
        highlight=False,
    )


def _device_or_prompt(server: str, required: bool) -> str:
    from aifactories.cli import device_login  # only now: it is not needed otherwise

    api = Client(Profile(server=server))
    started = device_login.offered(api)
    if started is None:
        if required:
            fail(
                f"the server at {server} offers no sign-in through an institution's page; make "
                "a token in the portal (your account page) and give it with --token-file",
                2,
            )
        return _read_token(None)
    done = device_login.sign_in(api, started)
    if done.needs_organisation:
        warn("choose your organisation once in the portal (it asks when you sign in there)")
    return done.token


@app.command()
def whoami(as_json: JsonOpt = False) -> None:
    """Who the saved token belongs to, and its projects."""
    me = call(client().get, "/me")
    if as_json:
        render.print_json(me)
        return
    render.console.print(render.whoami_line(me), highlight=False)

"""``aif tokens``: list, create and revoke your API tokens; ``issue`` makes one on the server
itself (acts locally, like ``aif accounts sync``): the way back in when every token expired."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from aifactories.cli import render
from aifactories.cli.human import local_time, plural
from aifactories.cli.remote import JsonOpt, call, client, fail

if TYPE_CHECKING:
    from rich.table import Table

tokens_app = typer.Typer(help="Your API tokens: list, create, revoke.", no_args_is_help=True)


def _day(iso: str | None) -> str:
    return local_time(iso, seconds=False)


def tokens_table(tokens: list[dict[str, Any]]) -> Table:
    table = render.table("API tokens")
    for column in ("id", "user", "label", "status", "created", "expires", "last used"):
        table.add_column(column)
    for t in tokens:
        status = t["status"]
        colour = {"active": "green", "expired": "yellow", "revoked": "red"}.get(status, "white")
        table.add_row(
            str(t["id"]),
            t["username"],
            t["label"],
            f"[{colour}]{status}[/{colour}]",
            _day(t["created_at"]),
            _day(t["expires_at"]) if t["expires_at"] else "never",
            _day(t["last_used_at"]),
        )
    return table


def _print_secret(made: dict[str, Any]) -> None:
    if made["token"] is None:
        render.console.print(
            f"token {made['id']} was made by an earlier attempt of this request; its secret "
            "was shown then only: revoke it ('aif tokens revoke') and create another"
        )
        return
    render.console.print(
        f"token [bold]{made['id']}[/bold] ({made['label']}) for {made['username']}, "
        f"expires {_day(made['expires_at'])}. Its secret, shown this once:"
    )
    print(made["token"])  # plain, on its own line: easy to copy or capture


@tokens_app.command("list")
def list_command(
    user: Annotated[
        str | None, typer.Option(help="operators: another user's tokens, or '*' for all")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Your tokens, newest first: status, expiry and last use (to the minute)."""
    data = call(client().get, "/tokens", params={"user": user} if user else None)
    if as_json:
        render.print_json(data)
    else:
        render.console.print(tokens_table(data))


@tokens_app.command("create")
def create_command(
    label: Annotated[str, typer.Option(help="what the token is for")] = "cli",
    days: Annotated[
        int | None, typer.Option(help="lifetime in days (default: the platform's maximum)")
    ] = None,
    user: Annotated[str | None, typer.Option(help="operators: make it for this user")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a new token; its secret is printed this once. Log in with it: aif login."""
    body: dict[str, Any] = {"label": label}
    if days is not None:
        body["expires_in_days"] = days
    if user is not None:
        body["user"] = user
    data = call(client().post, "/tokens", json=body, idempotent=True)
    if as_json:
        render.print_json(data)
    else:
        _print_secret(data)


@tokens_app.command("revoke")
def revoke_command(token_id: int, as_json: JsonOpt = False) -> None:
    """Revoke a token of yours (operators: anyone's); it stops working at once."""
    data = call(client().delete, f"/tokens/{token_id}")
    if as_json:
        render.print_json(data)
    else:
        render.console.print(f"token {token_id} ({data['label']}) of {data['username']}: revoked")


@tokens_app.command("issue")
def issue_command(
    username: str,
    label: Annotated[str, typer.Option(help="what the token is for")] = "issued on the server",
    days: Annotated[int | None, typer.Option(help="lifetime in days")] = None,
) -> None:
    """On the server, with its settings and database: make a token for a user without an API
    token (every one of theirs expired). Prints the secret once."""
    from aifactories.domain.errors import AifError
    from aifactories.services.core.tokens import issue_token
    from aifactories.services.platform import Platform
    from aifactories.settings import Settings

    settings = Settings()
    lifetime = days or settings.token_lifetime_days
    if not 1 <= lifetime <= settings.token_lifetime_days:
        fail(f"--days: 1 to {settings.token_lifetime_days} (AIFACTORIES_TOKEN_LIFETIME_DAYS)", 2)
    platform = Platform(settings)
    try:
        platform.check_schema()
        made = issue_token(platform.ctx, username, label, lifetime)
    except AifError as exc:
        fail(exc.message)
    finally:
        platform.stop()
    render.err_console.print(
        f"token {made.view.id} for {username}, valid {plural(lifetime, 'day')}:"
    )
    print(made.secret)

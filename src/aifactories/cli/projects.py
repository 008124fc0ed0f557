"""``aif projects``: your projects, their members; PIs add and remove members."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aifactories.cli import render
from aifactories.cli.human import hours, plural
from aifactories.cli.remote import JsonOpt, call, client

projects_app = typer.Typer(help="Projects and their members.", no_args_is_help=True)


def _print(project: dict[str, Any]) -> None:
    render.console.print(
        f"[bold]{project['code']}[/bold] {project['title']} ({project['organisation']}; "
        f"{project['domain']}{', industrial' if project['industrial'] else ''}; weight "
        f"{project['priority_weight']:g}): {project['used_gpu_hours']:,.1f} of "
        f"{project['granted_gpu_hours']:,.1f} GPU-hours used"
    )
    table = render.table("Members")
    for column in ("user", "name", "role", "cap"):
        table.add_column(column)
    for member in project["members"]:
        cap = member["cap_gpu_hours"]
        table.add_row(
            member["username"],
            member["full_name"],
            "PI" if member["role"] == "pi" else member["role"],
            f"{hours(cap, 0)} (GPU-hours)" if cap else "-",
        )
    render.console.print(table)


@projects_app.command("list")
def list_command(as_json: JsonOpt = False) -> None:
    """Your projects (all of them for a programme operator)."""
    data = call(client().get, "/projects")
    if as_json:
        render.print_json(data)
        return
    table = render.table("Projects")
    for column in ("code", "title", "organisation", "domain", "members", "used / granted"):
        table.add_column(column)
    for p in data:
        table.add_row(
            p["code"],
            p["title"],
            p["organisation"] or "-",
            p["domain"],
            plural(len(p["members"]), "member"),
            f"{p['used_gpu_hours']:,.1f} / {hours(p['granted_gpu_hours'], 1)}",
        )
    render.console.print(table)


@projects_app.command("show")
def show(project: str, as_json: JsonOpt = False) -> None:
    """A project with its members."""
    data = call(client().get, f"/projects/{project}")
    if as_json:
        render.print_json(data)
    else:
        _print(data)


@projects_app.command("add-member")
def add_member(
    project: str,
    username: str,
    role: Annotated[str, typer.Option(help="member or pi")] = "member",
    cap: Annotated[float | None, typer.Option("--cap-gpu-hours", help="a per-member cap")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a member (the project's PI, or a programme operator)."""
    body = {"username": username, "role": role, "cap_gpu_hours": cap}
    data = call(client().post, f"/projects/{project}/members", json=body)
    if as_json:
        render.print_json(data)
    else:
        _print(data)


@projects_app.command("remove-member")
def remove_member(
    project: str,
    username: str,
    reason: Annotated[str, typer.Option(help="why, for the audit log")],
    as_json: JsonOpt = False,
) -> None:
    """Remove a member who has no job queued or running."""
    data = call(
        client().post, f"/projects/{project}/members/{username}/remove", json={"reason": reason}
    )
    if as_json:
        render.print_json(data)
    else:
        _print(data)

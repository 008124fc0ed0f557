"""``aif calls``: the open calls; programme operators open and close them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aifactories.cli import render
from aifactories.cli.programme_render import call_details, calls_table
from aifactories.cli.remote import JsonOpt, call, client, fail

calls_app = typer.Typer(
    help="Calls for proposals, in the published access modes.", no_args_is_help=True
)


def parse_pairs(items: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"{option} takes KEY=VALUE, got {item!r}", 2)
        out[key.strip()] = value.strip()
    return out


@calls_app.command("list")
def list_command(
    include_closed: Annotated[bool, typer.Option("--all", help="closed calls too")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The calls open for proposals."""
    data = call(client().get, "/calls", params={"include_closed": include_closed})
    if as_json:
        render.print_json(data)
    else:
        render.console.print(calls_table(data))


@calls_app.command("show")
def show(code: str, as_json: JsonOpt = False) -> None:
    """One call: its rules, criteria, cut-offs and budget left."""
    data = call(client().get, f"/calls/{code}")
    if as_json:
        render.print_json(data)
    else:
        render.console.print(call_details(data))


@calls_app.command("open")
def open_command(
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="the call as YAML (the API's fields)")
    ] = None,
    code: Annotated[str | None, typer.Option(help="short unique code, e.g. pg-2027-01")] = None,
    title: Annotated[str | None, typer.Option()] = None,
    mode: Annotated[
        str | None,
        typer.Option(help="playground, fast_lane, large_scale, ai_for_science or education"),
    ] = None,
    closes: Annotated[str | None, typer.Option(help="closing date, ISO")] = None,
    opens: Annotated[str | None, typer.Option(help="opening date, ISO; default now")] = None,
    cutoff: Annotated[list[str] | None, typer.Option(help="a cut-off date (repeatable)")] = None,
    budget: Annotated[
        list[str] | None, typer.Option(help="SITE=GPU-HOURS or pool=GPU-HOURS (repeatable)")
    ] = None,
    rule: Annotated[
        list[str] | None, typer.Option(help="narrow a mode rule: KEY=VALUE (repeatable)")
    ] = None,
    course_ends: Annotated[str | None, typer.Option(help="Education: the course's end")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a call (programme operators)."""
    import yaml

    body: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = yaml.safe_load(file.read_text("utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            fail(f"cannot read {file}: {exc}", 2)
        if not isinstance(loaded, dict):
            fail(f"{file} must hold a mapping of the call's fields", 2)
        body.update(loaded)
    budgets = {k: float(v) for k, v in parse_pairs(budget, "--budget").items()}
    rules = {k: yaml.safe_load(v) for k, v in parse_pairs(rule, "--rule").items()}
    options = {
        "code": code,
        "title": title,
        "mode": mode,
        "closes_at": closes,
        "opens_at": opens,
        "cutoffs": cutoff or None,
        "budget_gpu_hours": budgets or None,
        "rules": rules or None,
        "course_ends_at": course_ends,
    }
    body.update({k: v for k, v in options.items() if v is not None})
    data = call(client().post, "/calls", json=body)
    if as_json:
        render.print_json(data)
    else:
        render.console.print(call_details(data))


@calls_app.command("close")
def close(
    code: str,
    reason: Annotated[str, typer.Option(help="why, for the audit log")],
    as_json: JsonOpt = False,
) -> None:
    """Close a call to new proposals (programme operators)."""
    data = call(client().post, f"/calls/{code}/close", json={"reason": reason})
    if as_json:
        render.print_json(data)
    else:
        render.console.print(f"call {data['code']} is {data['status']}")

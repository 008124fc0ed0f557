"""``aif awards``: run the allocation optimiser after a cut-off, compare, report, apply."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aifactories.cli import render
from aifactories.cli.calls import parse_pairs
from aifactories.cli.human import hours, plural
from aifactories.cli.programme_render import day
from aifactories.cli.remote import JsonOpt, call, client, fail

awards_app = typer.Typer(help="Awards after a cut-off (programme operators).", no_args_is_help=True)


def _month(epoch_s: float) -> str:
    """A calendar month of the plan (they start at midnight UTC): ``2027-03``."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m")


def _print_run(run: dict[str, Any]) -> None:
    from aifactories.programme.award_report import comparison_header

    render.console.print(
        f"[bold]award run {run['id']}[/bold] for call {run['call']} ({run['method']}, "
        f"{run['status']}); solved by {run['plan']['solver']} in "
        f"{run['plan']['solve_seconds']:.2f} s, status {run['plan']['status']}"
    )
    render.console.print(f"[dim]objective:[/dim] {run['objective']}")
    render.console.print(
        "[dim]weights:[/dim] " + ", ".join(f"{k}={v:g}" for k, v in run["weights"].items())
    )
    table = render.table("Awards")
    for column in ("proposal", "requested", "awarded", "sites", "months", "why less"):
        table.add_column(column, justify="right" if column in ("requested", "awarded") else "left")
    for outcome in run["plan"]["outcomes"]:
        lines = run["lines"].get(str(outcome["proposal_id"]), [])
        sites = sorted({line["site_id"] for line in lines})
        months = sorted({line["month_starts_at"] for line in lines})
        table.add_row(
            str(outcome["proposal_id"]),
            hours(outcome["requested"], 0),
            hours(outcome["awarded"], 0),
            ", ".join(sites) or "-",
            f"{_month(months[0])} to {_month(months[-1])}" if months else "-",
            f"{outcome['reason']}: {outcome['explanation']}" if outcome["reason"] else "",
        )
    render.console.print(table)
    comparison = render.table("Optimiser against the greedy rule (same weights)")
    # the stored rows have no header: measure, optimiser, greedy, difference
    for column in comparison_header(run["comparison"]):
        comparison.add_column(column)
    for row in run["comparison"]:
        comparison.add_row(*row)
    render.console.print(comparison)


@awards_app.command("propose")
def propose(
    call_code: Annotated[str, typer.Argument(metavar="CALL")],
    method: Annotated[str, typer.Option(help="optimiser or greedy")] = "optimiser",
    cutoff: Annotated[float | None, typer.Option(help="only this cut-off (epoch s)")] = None,
    weight: Annotated[
        list[str] | None, typer.Option(help="a programme weight: NAME=VALUE (repeatable)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose awards for the call's accepted proposals (nothing is granted yet)."""
    weights = {k: float(v) for k, v in parse_pairs(weight, "--weight").items()} or None
    body = {"method": method, "cutoff_at": cutoff, "weights": weights}
    with render.console.status("solving the allocation ..."):
        run = call(client().post, f"/calls/{call_code}/award-runs", json=body)
    if as_json:
        render.print_json(run)
    else:
        _print_run(run)
        render.console.print(f"apply with: aif awards apply {run['id']} --reason '...'")


@awards_app.command("show")
def show(run_id: int, as_json: JsonOpt = False) -> None:
    """One award run: objective, weights, awards, reasons, comparison."""
    run = call(client().get, f"/award-runs/{run_id}")
    if as_json:
        render.print_json(run)
    else:
        _print_run(run)


@awards_app.command("report")
def report(
    run_id: Annotated[int, typer.Argument(metavar="RUN_ID")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="the HTML file to write", show_default="award-run-RUN_ID.html"
        ),
    ] = None,
) -> None:
    """One award run as an HTML page with figures (Plotly embedded: opens without network)."""
    from aifactories.programme.award_report import award_run_html

    run = call(client().get, f"/award-runs/{run_id}")
    path = output or Path(f"award-run-{run_id}.html")
    try:
        path.write_text(award_run_html(run), encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")
    render.console.print(f"wrote {path} (open it in a browser)", highlight=False, soft_wrap=True)


@awards_app.command("list")
def list_command(
    call_code: Annotated[str, typer.Argument(metavar="CALL")], as_json: JsonOpt = False
) -> None:
    """The award runs of a call."""
    runs = call(client().get, f"/calls/{call_code}/award-runs")
    if as_json:
        render.print_json(runs)
        return
    table = render.table(f"Award runs of {call_code}")
    for column in ("id", "method", "status", "awarded", "proposals", "created"):
        table.add_column(column)
    for run in runs:
        table.add_row(
            str(run["id"]),
            run["method"],
            run["status"],
            hours(run["plan"]["awarded_gpu_hours"], 0),
            plural(len(run["plan"]["outcomes"]), "proposal"),
            day(run["created_at"]),
        )
    render.console.print(table)


@awards_app.command("apply")
def apply(
    run_id: int,
    reason: Annotated[str, typer.Option(help="the decision's reason, for the audit log")],
    as_json: JsonOpt = False,
) -> None:
    """Grant a proposed run: projects, members and allocations, in one transaction."""
    run = call(client().post, f"/award-runs/{run_id}/apply", json={"reason": reason})
    if as_json:
        render.print_json(run)
    else:
        render.console.print(f"award run {run['id']} applied")

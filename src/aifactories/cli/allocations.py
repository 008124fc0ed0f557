"""``aif allocations``: list, close, extend, transfer, requests and their decisions, alerts,
sweep. Over the REST API, like every user command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from aifactories.cli import render
from aifactories.cli.config import load_profile
from aifactories.cli.human import hours, local_day, local_time, percent, plural
from aifactories.cli.remote import JsonOpt, call, client, fail

if TYPE_CHECKING:
    from rich.table import Table

allocations_app = typer.Typer(
    help="Allocations: balances and alerts, extension and transfer requests, closing.",
    no_args_is_help=True,
)

ReasonOpt = Annotated[str, typer.Option("--reason", help="why; the project's PI reads it")]
WhyOpt = Annotated[str, typer.Option("--why", help="justification; the programme reads it")]


def _allocations_table(rows: list[dict[str, Any]], project: str) -> Table:
    table = render.table(f"Allocations of {project} (GPU-hours, and in euros: docs/fund.md)")
    for column in (
        "id",
        "site",
        "status",
        "from",
        "until",
        "granted",
        "reserved",
        "used",
        "left",
        "used",
        "EUR granted",
        "EUR used",
        "EUR left",
        "alerts",
    ):
        right = column in {"granted", "reserved", "used", "left"} or column.startswith("EUR")
        table.add_column(column, justify="right" if right else "left")
    for a in rows:
        status = a["status"] if a["status"] == "open" else f"[dim]{a['status']}[/dim]"
        table.add_row(
            str(a["id"]),
            a["site_id"] or "any site",
            status,
            local_day(a["starts_at_iso"]),
            local_day(a["ends_at_iso"]),
            hours(a["granted_gpu_hours"]),
            hours(a["reserved_gpu_hours"]),
            hours(a["used_gpu_hours"]),
            hours(a["left_gpu_hours"]),
            percent(a["used_percent"]),
            render.euros(a.get("granted_eur")),  # an older server sends none: "-"
            render.euros(a.get("used_eur")),
            render.euros(a.get("left_eur")),
            ", ".join(f"{t} %" for t in a["alerts_sent"]) or "-",
        )
    return table


def _requests_table(rows: list[dict[str, Any]]) -> Table:
    table = render.table("Allocation requests")
    for column in (
        "id",
        "project",
        "allocation",
        "kind",
        "GPU-hours",
        "until / to",
        "status",
        "by",
        "asked",
        "justification",
        "decision",
    ):
        table.add_column(column, justify="right" if column == "GPU-hours" else "left")
    style = {"pending": "yellow", "approved": "green", "refused": "red"}
    for r in rows:
        if r["kind"] == "transfer":
            where = f"to allocation {r['target_allocation_id']}"
        else:
            where = local_day(r["new_ends_at_iso"])
        decision = "-"
        if r["decided_by"]:
            decision = f"{r['decided_by']}: {r['decision_reason']}"
        table.add_row(
            str(r["id"]),
            r["project"],
            str(r["allocation_id"]),
            r["kind"],
            hours(r["gpu_hours"]),
            where,
            f"[{style.get(r['status'], '')}]{r['status']}[/]"
            if r["status"] in style
            else r["status"],
            r["requested_by"],
            local_day(r["created_at_iso"]),
            r["justification"],
            decision,
        )
    return table


def _request_line(r: dict[str, Any]) -> str:
    return (
        f"request [bold]{r['id']}[/bold]: {r['kind']} of allocation {r['allocation_id']} "
        f"({r['project']}) is {r['status']}"
    )


@allocations_app.command("list")
def list_command(
    project: Annotated[str | None, typer.Option("--project", "-A", help="project code")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A project's allocations: period, GPU-hours granted, reserved, used, left, alerts."""
    project = project or load_profile().project
    if not project:
        fail("say which project: aif allocations list -A CODE", 2)
    rows = call(client().get, f"/projects/{project}/allocations")
    if as_json:
        render.print_json(rows)
    else:
        render.console.print(_allocations_table(rows, project))


@allocations_app.command("alerts")
def alerts_command(allocation_id: int, as_json: JsonOpt = False) -> None:
    """The usage alerts sent for an allocation."""
    rows = call(client().get, f"/allocations/{allocation_id}/alerts")
    if as_json:
        render.print_json(rows)
        return
    if not rows:
        render.console.print(f"no usage alert for allocation {allocation_id} yet")
    for a in rows:
        render.console.print(
            f"{a['threshold']:>3} % used: alerted {local_time(a['at_iso'], seconds=False)}"
        )


@allocations_app.command("close")
def close_command(allocation_id: int, reason: ReasonOpt, as_json: JsonOpt = False) -> None:
    """Close an allocation (operators): no new jobs; its queued jobs are cancelled."""
    data = call(client().post, f"/allocations/{allocation_id}/close", json={"reason": reason})
    if as_json:
        render.print_json(data)
        return
    render.console.print(f"allocation [bold]{allocation_id}[/bold] closed")
    if data["cancelling_job_ids"]:
        ids = ", ".join(map(str, data["cancelling_job_ids"]))
        render.console.print(f"  queued jobs being cancelled (next broker cycle): {ids}")
    if data["running_job_ids"]:
        ids = ", ".join(map(str, data["running_job_ids"]))
        render.console.print(f"  running jobs that finish and are charged to it: {ids}")


@allocations_app.command("extend")
def extend_command(
    allocation_id: int,
    why: WhyOpt,
    gpu_hours: Annotated[float, typer.Option("--gpu-hours", help="GPU-hours more")] = 0.0,
    until: Annotated[
        str | None, typer.Option("--until", help="new end: ISO date (end of that day, UTC)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask for an extension (PI): more GPU-hours and/or a later end."""
    body: dict[str, Any] = {"kind": "extension", "gpu_hours": gpu_hours, "justification": why}
    if until is not None:
        body["until"] = until
    data = call(client().post, f"/allocations/{allocation_id}/requests", json=body)
    if as_json:
        render.print_json(data)
    else:
        render.console.print(_request_line(data))


@allocations_app.command("transfer")
def transfer_command(
    allocation_id: int,
    to: Annotated[int, typer.Option("--to", help="the allocation that receives the GPU-hours")],
    gpu_hours: Annotated[float, typer.Option("--gpu-hours", help="GPU-hours to move")],
    why: WhyOpt,
    as_json: JsonOpt = False,
) -> None:
    """Ask to move GPU-hours (PI) from this allocation to another of the same project."""
    body = {"kind": "transfer", "gpu_hours": gpu_hours, "to_allocation": to, "justification": why}
    data = call(client().post, f"/allocations/{allocation_id}/requests", json=body)
    if as_json:
        render.print_json(data)
    else:
        render.console.print(_request_line(data))


@allocations_app.command("requests")
def requests_command(
    status: Annotated[
        str | None, typer.Option(help="pending, approved or refused; default: all")
    ] = None,
    project: Annotated[str | None, typer.Option("--project", "-A", help="project code")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Extension and transfer requests: all for operators, your projects' for a PI."""
    params = {k: v for k, v in {"status": status, "project": project}.items() if v is not None}
    rows = call(client().get, "/allocation-requests", params=params)
    if as_json:
        render.print_json(rows)
    else:
        render.console.print(_requests_table(rows))


def _decide(request_id: int, decision: str, reason: str, as_json: bool) -> None:
    data = call(
        client().post,
        f"/allocation-requests/{request_id}/decision",
        json={"decision": decision, "reason": reason},
    )
    if as_json:
        render.print_json(data)
    else:
        render.console.print(_request_line(data))


@allocations_app.command("approve")
def approve_command(request_id: int, reason: ReasonOpt, as_json: JsonOpt = False) -> None:
    """Approve a request (operators); it is applied at once."""
    _decide(request_id, "approve", reason, as_json)


@allocations_app.command("refuse")
def refuse_command(request_id: int, reason: ReasonOpt, as_json: JsonOpt = False) -> None:
    """Refuse a request (operators)."""
    _decide(request_id, "refuse", reason, as_json)


@allocations_app.command("sweep")
def sweep_command(as_json: JsonOpt = False) -> None:
    """Run the lifecycle sweep now (operators): usage alerts and expiry."""
    data = call(client().post, "/allocations/sweep")
    if as_json:
        render.print_json(data)
        return
    for a in data["alerts"]:
        render.console.print(
            f"alert: allocation {a['allocation_id']} ({a['project']}) at {a['threshold']} % "
            f"({percent(a['used_percent'])} used)"
        )
    for c in data["expired"]:
        allocation = c["allocation"]
        render.console.print(
            f"expired: allocation {allocation['id']} ({allocation['project']}), "
            f"{plural(len(c['cancelling_job_ids']), 'queued job')} being cancelled"
        )
    if data["finalised_job_ids"]:
        ids = ", ".join(map(str, data["finalised_job_ids"]))
        render.console.print(f"cancelled pending jobs marked for cancellation: {ids}")
    if not (data["alerts"] or data["expired"] or data["finalised_job_ids"]):
        render.console.print("nothing to do")

"""Rich tables for the access programme: calls, proposals and their checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.table import Table

STATUS_STYLE = {
    "draft": "dim",
    "checks_failed": "red",
    "technical_check": "cyan",
    "revision": "yellow",
    "under_review": "cyan",
    "accepted": "green",
    "awarded": "bold green",
    "rejected": "red",
    "withdrawn": "magenta",
}


def day(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def calls_table(calls: list[dict[str, Any]]) -> Table:
    table = Table(title="Calls")
    for column in ("code", "mode", "status", "title", "opens", "closes", "cut-offs", "budget h"):
        table.add_column(column, justify="right" if column == "budget h" else "left")
    for call in calls:
        table.add_row(
            call["code"],
            call["mode"],
            call["status"],
            call["title"],
            day(call["opens_at"]),
            day(call["closes_at"]),
            ", ".join(day(c) for c in call["cutoffs"]) or "-",
            ", ".join(f"{k} {v:,.0f}" for k, v in call["budget_gpu_hours"].items()),
        )
    return table


def call_details(call: dict[str, Any]) -> Table:
    table = Table(title=f"Call {call['code']}: {call['title']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rules = call["rules"]
    left = call.get("budget_left_gpu_hours") or {}
    rows = [
        ("mode", f"{rules['title']} ({call['mode']}); review: {rules['review']}"),
        ("status", call["status"]),
        ("open", f"{day(call['opens_at'])} to {day(call['closes_at'])}"),
        ("cut-offs", ", ".join(day(c) for c in call["cutoffs"]) or "-"),
        (
            "request",
            f"{rules['min_gpu_hours']:,.0f} to {rules['max_gpu_hours']:,.0f} GPU-hours, "
            f"{rules['durations_months']} months",
        ),
        ("eligible", f"{', '.join(rules['organisation_kinds'])} in {rules['country_list']}"),
        (
            "criteria",
            ", ".join(f"{c['name']} {c['weight']:g}" for c in rules["criteria"]),
        ),
        (
            "budget",
            ", ".join(
                f"{k}: {v:,.0f} h" + (f" ({left[k]:,.0f} left)" if k in left else "")
                for k, v in call["budget_gpu_hours"].items()
            ),
        ),
    ]
    for field, value in rows:
        table.add_row(field, str(value))
    return table


def proposals_table(proposals: list[dict[str, Any]]) -> Table:
    table = Table(title="Proposals")
    for column in ("id", "call", "status", "title", "organisation", "domain", "GPU-h", "project"):
        table.add_column(column, justify="right" if column in ("id", "GPU-h") else "left")
    for p in proposals:
        style = STATUS_STYLE.get(p["status"], "")
        table.add_row(
            str(p["id"]),
            p["call"],
            f"[{style}]{p['status']}[/{style}]" if style else p["status"],
            p["title"],
            p["organisation"],
            p["domain"] + (" *" if p["critical_domain"] else ""),
            f"{p['requested_gpu_hours']:,.0f}",
            p["project"] or "-",
        )
    return table


def proposal_details(p: dict[str, Any]) -> Table:
    table = Table(title=f"Proposal {p['id']}: {p['title']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows: list[tuple[str, str]] = [
        ("call", f"{p['call']} ({p['mode']})"),
        ("status", p["status"]),
        ("applicant", f"{p['pi']}, {p['organisation']} ({p['organisation_kind']}, {p['country']})"),
        (
            "domain",
            p["domain"]
            + (" (critical)" if p["critical_domain"] else "")
            + (", industrial" if p["industrial"] else ""),
        ),
        ("request", f"{p['requested_gpu_hours']:,.0f} GPU-hours over {p['period_months']} months"),
        (
            "hardware",
            f"{p['gpu_model'] or 'any GPU'}, >= {p['min_gpu_memory_gb']} GB, "
            f"largest job {p['largest_job_gpus']} GPUs",
        ),
        ("sites", f"preferred {p['preferred_sites'] or '-'}; can run at {p['candidate_sites']}"),
        ("residency", ", ".join(p["residency"]) or "any"),
        ("team", ", ".join(p["members"]) or "-"),
    ]
    if p.get("score") is not None:
        rows.append(("score", f"{p['score']:.2f} (rank {p['rank']})"))
    if p.get("decision_reason"):
        rows.append(("reason", p["decision_reason"]))
    if p.get("project"):
        rows.append(("project", f"{p['project']}  (aif submit -A {p['project']} ...)"))
    for field, value in rows:
        table.add_row(field, value)
    for check in p["checks"]:
        mark = "[green]pass[/green]" if check["passed"] else "[red]FAIL[/red]"
        table.add_row(f"check {check['name']}", f"{mark} {check['message']}")
    return table

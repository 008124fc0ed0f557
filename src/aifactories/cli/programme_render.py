"""Rich tables for the access programme: calls, proposals and their checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aifactories.cli.human import hours, local_day, plural
from aifactories.cli.render import table as new_table

if TYPE_CHECKING:
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


def day(ts: float | str | None) -> str:
    """The local date of an API time (epoch seconds or ISO)."""
    return local_day(ts)


def _months(values: list[int]) -> str:
    if not values:
        return "-"
    return (
        ", ".join(str(v) for v in values[:-1])
        + (" or " if len(values) > 1 else "")
        + (plural(values[-1], "month"))
    )


def calls_table(calls: list[dict[str, Any]]) -> Table:
    table = new_table("Calls")
    for column in ("code", "mode", "status", "title", "opens", "closes", "cut-offs", "budget"):
        table.add_column(column)
    for call in calls:
        table.add_row(
            call["code"],
            call["mode"],
            call["status"],
            call["title"],
            day(call["opens_at"]),
            day(call["closes_at"]),
            ", ".join(day(c) for c in call["cutoffs"]) or "-",
            ", ".join(f"{k}: {hours(v, 0)}" for k, v in call["budget_gpu_hours"].items()),
        )
    return table


def call_details(call: dict[str, Any]) -> Table:
    table = new_table(f"Call {call['code']}: {call['title']}", show_header=False)
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
            f"over {_months(rules['durations_months'] or [])}",
        ),
        (
            "eligible",
            f"{', '.join(rules['organisation_kinds'] or []) or 'any organisation'} in "
            f"{rules['country_list'] or 'any country'}",
        ),
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
    table = new_table("Proposals", caption="* a critical domain")
    for column in (
        "id", "call", "status", "title", "organisation", "domain", "GPU-hours", "project",
    ):  # fmt: skip
        table.add_column(column, justify="right" if column in ("id", "GPU-hours") else "left")
    for p in proposals:
        style = STATUS_STYLE.get(p["status"], "")
        table.add_row(
            str(p["id"]),
            p["call"],
            f"[{style}]{p['status']}[/{style}]" if style else p["status"],
            p["title"],
            p["organisation"],
            p["domain"] + (" *" if p["critical_domain"] else ""),
            hours(p["requested_gpu_hours"], 0),
            p["project"] or "-",
        )
    return table


def proposal_details(p: dict[str, Any]) -> Table:
    table = new_table(f"Proposal {p['id']}: {p['title']}", show_header=False)
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
        (
            "request",
            f"{p['requested_gpu_hours']:,.0f} GPU-hours over {plural(p['period_months'], 'month')}",
        ),
        (
            "hardware",
            f"{p['gpu_model'] or 'any GPU'}, "
            + (f"at least {p['min_gpu_memory_gb']} GB per GPU, " if p["min_gpu_memory_gb"] else "")
            + f"largest job {plural(p['largest_job_gpus'], 'GPU')}",
        ),
        (
            "sites",
            f"preferred {', '.join(p['preferred_sites']) or '-'}; "
            f"can run at {', '.join(p['candidate_sites']) or 'no site'}",
        ),
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

"""Rich tables for people, JSON for scripts. Colour only on a terminal (and never with NO_COLOR)."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from aifactories.domain.units import format_duration


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    # Piped or captured: no colour, and wide enough that tables are not squeezed into 80
    # columns (COLUMNS still wins when set).
    return Console(stderr=stderr, no_color=True, width=int(os.environ.get("COLUMNS", "160")))


console = _console()
err_console = _console(stderr=True)

STATE_STYLE = {
    "pending": "yellow",
    "placed": "cyan",
    "submitted": "cyan",
    "running": "green",
    "completed": "bold green",
    "failed": "red",
    "cancelled": "magenta",
    "timeout": "red",
}


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _hours(value: float) -> str:
    return f"{value:,.2f}"


def _time(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")


def sites_table(sites: list[dict[str, Any]], show_planned: bool) -> Table:
    table = Table(title="Sites of the federation", show_lines=False)
    for column in (
        "site",
        "country",
        "supercomputer",
        "status",
        "partition",
        "GPU",
        "mem GB",
        "GPUs",
        "weight",
        "free now",
    ):
        table.add_column(
            column,
            justify="right" if column in {"mem GB", "GPUs", "weight", "free now"} else "left",
        )
    for site in sites:
        if site["status"] != "operational" and not show_planned:
            continue
        if not site["partitions"]:
            table.add_row(
                site["id"],
                site["country"],
                site["supercomputer"],
                f"[dim]{site['status']}[/dim]",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
            )
        for p in site["partitions"]:
            if p["free_gpus"] is None:
                free = "[dim]unknown[/dim]"
            elif not p["available"]:
                free = f"[red]down[/red] ({p['status_reason']})"
            else:
                free = f"{p['free_gpus']:,}"
            table.add_row(
                site["id"],
                site["country"],
                site["supercomputer"],
                site["status"],
                p["name"],
                p["gpu_model"],
                str(p["gpu_memory_gb"]),
                f"{p['total_gpus']:,}",
                f"{p['billing_weight']:g}",
                free,
            )
    return table


def jobs_table(jobs: list[dict[str, Any]]) -> Table:
    table = Table(title="Jobs")
    for column in (
        "id",
        "project",
        "name",
        "state",
        "GPUs",
        "site/partition",
        "submitted",
        "elapsed",
        "GPU-h",
        "reason",
    ):
        table.add_column(column)
    for job in jobs:
        style = STATE_STYLE.get(job["state"], "")
        charged = job["charged_gpu_hours"] or job["reserved_gpu_hours"]
        table.add_row(
            str(job["id"]),
            job["project"],
            job["name"],
            f"[{style}]{job['state']}[/{style}]" if style else job["state"],
            str(job["allocated_gpus"] or job["gpus"]),
            job["partition_id"] or "-",
            _time(job["submitted_at"]),
            format_duration(job["elapsed_s"]) if job["elapsed_s"] is not None else "-",
            _hours(charged),
            job["reason"] or "",
        )
    return table


def job_details(job: dict[str, Any]) -> Table:
    table = Table(show_header=False, title=f"Job {job['id']}")
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("name", job["name"]),
        ("state", job["state"]),
        ("reason", job["reason"] or "-"),
        ("project", job["project"]),
        (
            "asked",
            f"{job['gpus']} GPU(s) of {job['gpu_model']}"
            + (f" on {job['nodes']} node(s)" if job["nodes"] else "")
            + (f", >= {job['min_gpu_memory_gb']} GB" if job["min_gpu_memory_gb"] else ""),
        ),
        ("time limit", format_duration(job["time_limit_s"])),
        ("countries", ", ".join(job["countries"]) or "any"),
        ("site / partition", job["partition_id"] or "-"),
        ("site job id", job["site_job_id"] or "-"),
        ("submitted", _time(job["submitted_at"])),
        ("placed", _time(job["placed_at"])),
        ("started", _time(job["started_at"])),
        ("ended", _time(job["ended_at"])),
        ("elapsed", format_duration(job["elapsed_s"]) if job["elapsed_s"] is not None else "-"),
        ("exit code", "-" if job["exit_code"] is None else str(job["exit_code"])),
        ("reserved GPU-h", _hours(job["reserved_gpu_hours"])),
        ("charged GPU-h", _hours(job["charged_gpu_hours"])),
        ("requeues", str(job["requeues"])),
        ("command", "(job script)" if job["has_script"] else " ".join(job["command"])[:200] or "-"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def balance_table(balance: dict[str, Any]) -> Table:
    table = Table(
        title=f"Balance of {balance['project_code']} (GPU-hours)",
        caption=f"domain {balance['domain']}"
        + (", industrial" if balance["industrial"] else "")
        + f"; priority weight {balance['priority_weight']:g}",
    )
    for column in (
        "allocation",
        "site",
        "status",
        "valid until",
        "granted",
        "reserved",
        "used",
        "left",
    ):
        table.add_column(
            column, justify="right" if column in {"granted", "reserved", "used", "left"} else "left"
        )
    for a in balance["allocations"]:
        table.add_row(
            str(a["allocation_id"]),
            a["site_id"] or "any site",
            a["status"],
            a["ends_at"][:10],
            _hours(a["granted_gpu_hours"]),
            _hours(a["reserved_gpu_hours"]),
            _hours(a["used_gpu_hours"]),
            _hours(a["left_gpu_hours"]),
        )
    return table
